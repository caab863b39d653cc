package protocols

import "strings"

// Redacted is what a secret is replaced with.
const Redacted = "[REDACTED]"

// sensitiveHeaders are header names whose values are credentials.
var sensitiveHeaders = []string{
	"authorization", "proxy-authorization", "cookie", "set-cookie",
	"x-api-key", "x-auth-token", "x-amz-security-token",
}

// sensitiveQueryKeys are query parameters that commonly carry tokens.
var sensitiveQueryKeys = []string{
	"access_token", "id_token", "refresh_token", "token", "api_key", "apikey",
	"password", "passwd", "secret", "client_secret", "sig", "signature", "x-amz-signature",
}

// IsSensitiveHeader reports whether a header's value is a secret.
func IsSensitiveHeader(name string) bool {
	for _, s := range sensitiveHeaders {
		if equalFoldASCII(name, s) {
			return true
		}
	}
	return false
}

// RedactHeaders replaces the values of sensitive headers in place and
// reports whether it replaced any.
func RedactHeaders(h Headers) bool {
	changed := false
	for i := range h {
		if IsSensitiveHeader(h[i].Name) && h[i].Value != Redacted {
			h[i].Value = Redacted
			changed = true
		}
	}
	return changed
}

// RedactTarget removes URL user info ("//user:pass@host") and the values of
// well-known token query keys from a request target, and reports whether it
// changed anything. It works on the raw text so that everything else stays
// byte for byte as sent.
func RedactTarget(target string) (string, bool) {
	changed := false
	if i := strings.Index(target, "://"); i >= 0 {
		rest := target[i+3:]
		end := strings.IndexAny(rest, "/?#")
		if end < 0 {
			end = len(rest)
		}
		if at := strings.LastIndexByte(rest[:end], '@'); at >= 0 {
			target = target[:i+3] + Redacted + rest[at:]
			changed = true
		}
	}
	q := strings.IndexByte(target, '?')
	if q < 0 {
		return target, changed
	}
	head, query, frag := target[:q+1], target[q+1:], ""
	if h := strings.IndexByte(query, '#'); h >= 0 {
		query, frag = query[:h], query[h:]
	}
	parts := strings.Split(query, "&")
	for i, p := range parts {
		key, _, hasValue := strings.Cut(p, "=")
		if !hasValue {
			continue
		}
		for _, s := range sensitiveQueryKeys {
			if equalFoldASCII(key, s) {
				parts[i] = key + "=" + Redacted
				changed = true
				break
			}
		}
	}
	if !changed {
		return head + query + frag, false
	}
	return head + strings.Join(parts, "&") + frag, true
}
