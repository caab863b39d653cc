package protocols

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// Redacted is what a secret is replaced with.
const Redacted = "[REDACTED]"

// A name is secret when, normalised (percent-decoded, lower case, without
// '-', '_', '.', '+' and spaces), it ends with one of secretWords or equals
// one of secretNames or secretParams. Suffixes catch the prefixed and
// compound spellings services invent ("X-Vault-Token", "client_secret",
// "userPassword") without a list of every product; a word is matched whole
// at the end, so "max_tokens" (ends with "tokens") and "Sec-WebSocket-Key"
// (a nonce, not "apikey") stay visible.
var secretWords = []string{
	"password", "passwd", "passphrase", // passwords as forms, configs and CLIs name them
	"passwordconfirmation", // sign-up forms repeat the password under this name
	"secret",               // client_secret, X-Hub-Secret, secret
	"token",                // access_token, X-CSRF-Token, X-Vault-Token, auth_token, gRPC "token"
	"apikey",               // api_key, X-Goog-Api-Key, Api-Key
	"accesskey",            // aws_secret_access_key and the like
	"secretkey",            // secret_key, S3-style secret keys
	"privatekey",           // private_key in service-account JSON
	"credential",           // X-Amz-Credential (the access key of a presigned URL)
	"credentials",          // credentials objects and fields
	"sessionid",            // session_id, sessionid, JSESSIONID: a session is a login
	"sessid",               // PHPSESSID
	"cookie",               // Cookie, Set-Cookie
	"authorization",        // Authorization, Proxy-Authorization, X-Forwarded-Authorization
	"authentication",       // Authentication, a misspelt Authorization some clients send
	"jwt",                  // jwt, id_jwt: a bearer token by another name
	"signature",            // X-Amz-Signature, X-Goog-Signature: reusable until expiry
	"assertion",            // client_assertion (RFC 7521): a signed credential
}

// secretNames are short names that are secrets only when they are the whole
// name: as suffixes they would hit "bypass", "author" or "subsession".
var secretNames = []string{
	"sig",     // signed URLs' signature (Azure SAS, CloudFront)
	"pass",    // a password, in URLs and forms
	"pwd",     // a password, in URLs and forms
	"auth",    // an auth token or basic credentials
	"session", // a session token
}

// secretParams are secrets as parameters (query keys, form fields, header
// and metadata names) but ordinary words inside JSON documents, where "code"
// is an error code and "key" names a map entry or a cache key: redacting
// them there would hide what users read bodies for.
var secretParams = []string{
	"code", // the OAuth authorization code (RFC 6749 §4.1.2), good for one token
	"key",  // Google-style API keys (?key=...)
}

// notSecret are names the suffix rule would catch that carry no credential:
// pagination cursors, which users page through while debugging.
var notSecret = []string{"pagetoken", "nextpagetoken", "nexttoken", "continuationtoken"}

// SecretPolicy decides what is a secret. Its zero value is the built-in rule
// alone; Names and Patterns extend it, never narrow it. A SecretPolicy is
// safe for concurrent use once built: dissectors only read it.
type SecretPolicy struct {
	// Names are extra secret names, compared whole after the same
	// normalisation as the built-in ones ("X-My-Key" matches "x_my_key").
	Names []string
	// Patterns are matched against values: header and metadata values, query
	// and form values, and body text. The parts they match are replaced by
	// Redacted.
	Patterns []*regexp.Regexp
}

// NewSecretPolicy builds a policy from extra names and regular expressions
// (Go syntax), as given on a command line.
func NewSecretPolicy(names, patterns []string) (SecretPolicy, error) {
	p := SecretPolicy{Names: append([]string(nil), names...)}
	for _, s := range patterns {
		re, err := regexp.Compile(s)
		if err != nil {
			return SecretPolicy{}, fmt.Errorf("redaction pattern %q is not a valid regular expression: %w", s, err)
		}
		p.Patterns = append(p.Patterns, re)
	}
	return p, nil
}

// IsSecretName reports whether the built-in rule calls a header, query key,
// form field or metadata name secret.
func IsSecretName(name string) bool { return SecretPolicy{}.IsSecret(name) }

// IsSensitiveHeader reports whether a header's value is a secret under the
// built-in rule.
func IsSensitiveHeader(name string) bool { return IsSecretName(name) }

// IsSecret reports whether a header, query key, form field or metadata name
// is secret under the policy.
func (p SecretPolicy) IsSecret(name string) bool { return p.secret(name, true) }

// isSecretField reports whether a JSON member name is secret: the same rule
// without secretParams.
func (p SecretPolicy) isSecretField(name string) bool { return p.secret(name, false) }

func (p SecretPolicy) secret(name string, param bool) bool {
	var buf [64]byte
	return p.secretNormalized(normalizeName(buf[:0], name), param)
}

// secretNormalized is secret for a name already normalised.
func (p SecretPolicy) secretNormalized(n []byte, param bool) bool {
	if len(n) == 0 {
		return false
	}
	for _, s := range p.Names {
		var b2 [64]byte
		if string(normalizeName(b2[:0], s)) == string(n) {
			return true
		}
	}
	if len(n) >= 3 && hasSecretTail(n) {
		for _, s := range notSecret {
			if string(n) == s {
				return false
			}
		}
		for _, s := range secretWords {
			if len(n) >= len(s) && string(n[len(n)-len(s):]) == s {
				return true
			}
		}
	}
	for _, s := range secretNames {
		if string(n) == s {
			return true
		}
	}
	if param {
		for _, s := range secretParams {
			if string(n) == s {
				return true
			}
		}
	}
	return false
}

// secretTails are the last three letters of secretWords: most names end
// otherwise, and are told apart without comparing every word (JSON bodies
// ask about every member name).
var secretTails = func() []uint32 {
	var t []uint32
	for _, w := range secretWords {
		if v := tail3([]byte(w)); !slices.Contains(t, v) {
			t = append(t, v)
		}
	}
	return t
}()

func tail3(n []byte) uint32 {
	return uint32(n[len(n)-3])<<16 | uint32(n[len(n)-2])<<8 | uint32(n[len(n)-1])
}

func hasSecretTail(n []byte) bool {
	v := tail3(n)
	for _, t := range secretTails {
		if t == v {
			return true
		}
	}
	return false
}

// normalizeName appends to dst the name percent-decoded, in lower case, and
// without the separators services put between words.
func normalizeName[S ~string | ~[]byte](dst []byte, name S) []byte {
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c == '%' && i+2 < len(name) && isHex(name[i+1]) && isHex(name[i+2]) {
			c = unhex(name[i+1])<<4 | unhex(name[i+2])
			i += 2
		}
		switch {
		case c == '-' || c == '_' || c == '.' || c == ' ' || c == '+':
			continue
		case 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}

// RedactValue replaces what the policy's patterns match in a value and
// reports whether it replaced anything.
func (p SecretPolicy) RedactValue(v string) (string, bool) {
	changed := false
	for _, re := range p.Patterns {
		if re.MatchString(v) {
			v, changed = re.ReplaceAllLiteralString(v, Redacted), true
		}
	}
	return v, changed
}

// urlHeaders are headers whose values are URLs, which carry user info and
// token query keys as request targets do.
var urlHeaders = []string{"location", "content-location", "referer", "refresh"}

// RedactHeaders applies the built-in rule to h; see SecretPolicy.RedactHeaders.
func RedactHeaders(h Headers) bool { return SecretPolicy{}.RedactHeaders(h) }

// RedactHeaders replaces, in place, the values of secret-named fields, the
// secrets inside URL-valued fields (Location, Referer, ...), and what the
// policy's patterns match, and reports whether it replaced anything.
func (p SecretPolicy) RedactHeaders(h Headers) bool {
	changed := false
	for i := range h {
		f := &h[i]
		if f.Value == Redacted {
			continue
		}
		if p.IsSecret(f.Name) {
			f.Value, changed = Redacted, true
			continue
		}
		for _, u := range urlHeaders {
			if equalFoldASCII(f.Name, u) {
				var c bool
				if f.Value, c = p.RedactTarget(f.Value); c {
					changed = true
				}
				break
			}
		}
		var c bool
		if f.Value, c = p.RedactValue(f.Value); c {
			changed = true
		}
	}
	return changed
}

// RedactTarget applies the built-in rule to a target; see SecretPolicy.RedactTarget.
func RedactTarget(target string) (string, bool) { return SecretPolicy{}.RedactTarget(target) }

// RedactTarget removes URL user info ("//user:pass@host") and the values of
// secret-named query (and fragment) keys from a request target or a URL,
// and what the policy's patterns match in the other values, and reports
// whether it changed anything. It works on the raw text so that everything
// else stays byte for byte as sent.
func (p SecretPolicy) RedactTarget(target string) (string, bool) {
	changed := false
	if i := strings.Index(target, "://"); i >= 0 {
		rest := target[i+3:]
		end := strings.IndexAny(rest, "/?#")
		if end < 0 {
			end = len(rest)
		}
		if at := strings.LastIndexByte(rest[:end], '@'); at >= 0 && rest[:at] != Redacted {
			target = target[:i+3] + Redacted + rest[at:]
			changed = true
		}
	}
	head, frag, hasFrag := strings.Cut(target, "#")
	path, query, hasQuery := strings.Cut(head, "?")
	if hasQuery {
		if q, c := p.redactPairs(query); c {
			query, changed = q, true
		}
	}
	if hasFrag {
		// OAuth's implicit grant returns its token in the fragment of a
		// redirect's Location (RFC 6749 §4.2.2).
		if f, c := p.redactPairs(frag); c {
			frag, changed = f, true
		}
	}
	if !changed {
		return target, false
	}
	out := path
	if hasQuery {
		out += "?" + query
	}
	if hasFrag {
		out += "#" + frag
	}
	return out, true
}

// redactPairs redacts an application/x-www-form-urlencoded list (a query, a
// fragment, a form body): the values of secret-named keys, and what the
// patterns match in the others.
func (p SecretPolicy) redactPairs(s string) (string, bool) {
	changed := false
	parts := strings.Split(s, "&")
	for i, part := range parts {
		key, value, hasValue := strings.Cut(part, "=")
		if !hasValue || value == Redacted {
			continue
		}
		if p.IsSecret(key) {
			parts[i] = key + "=" + Redacted
			changed = true
		} else if v, c := p.RedactValue(value); c {
			parts[i] = key + "=" + v
			changed = true
		}
	}
	if !changed {
		return s, false
	}
	return strings.Join(parts, "&"), true
}
