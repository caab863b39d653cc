package http1

import (
	"strings"

	"github.com/sondehq/sonde/protocols"
)

// Tunnel is the protocol an HTTP/1 connection switches to after a 2xx
// response to CONNECT: the bytes that follow are the tunnelled payload,
// not HTTP/1. UpgradeError.To carries it so that the pipeline can look
// at those bytes afresh.
const Tunnel protocols.Protocol = "tunnel"

// detectWindow is how much of an unterminated request line Detect looks at
// before it decides from the method and the target alone.
const detectWindow = 8 << 10

// knownMethods are the methods of RFC 9110, the WebDAV family and the
// vendor methods Wireshark knows. Any token is a valid method, but a request
// line without an HTTP version (HTTP/0.9 form, or a line too long to see its
// end) is taken for HTTP only with one of these.
var knownMethods = []string{
	"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH", "QUERY",
	"PROPFIND", "PROPPATCH", "MKCOL", "COPY", "MOVE", "LOCK", "UNLOCK", "SEARCH", "REPORT",
	"MKCALENDAR", "ACL", "BIND", "UNBIND", "REBIND", "MERGE", "CHECKOUT", "CHECKIN", "UNCHECKOUT",
	"MKACTIVITY", "MKWORKSPACE", "UPDATE", "LABEL", "VERSION-CONTROL", "BASELINE-CONTROL",
	"ORDERPATCH", "PURGE", "LINK", "UNLINK", "NOTIFY", "SUBSCRIBE", "UNSUBSCRIBE", "POLL",
	"BCOPY", "BMOVE", "BDELETE", "BPROPFIND", "BPROPPATCH",
	"CCM_POST", "RPC_CONNECT", "RPC_IN_DATA", "RPC_OUT_DATA",
}

type dissector struct{}

// New returns the HTTP/1.x dissector.
func New() protocols.Dissector { return dissector{} }

func (dissector) Protocol() protocols.Protocol { return protocols.HTTP1 }

// LossCounters names the counters that count loss (protocols.LossCounters).
func (dissector) LossCounters() []string { return counterNames.Loss() }

func (dissector) NewConn(info protocols.ConnInfo, emit protocols.EmitFunc) protocols.Conn {
	return newConn(info, emit)
}

// Detect claims a connection whose first bytes are a request line ending in
// an HTTP/1.x version, or a status line "HTTP/1.x NNN". It needs the whole
// request line because the version is what tells HTTP from look-alikes such
// as Redis inline commands ("GET key\r\n").
func (dissector) Detect(prefix []byte, _ protocols.Ports) protocols.Detection {
	switch v := detectStatus(prefix); v {
	case protocols.Match:
		return protocols.Detection{Verdict: protocols.Match}
	case protocols.NeedMore:
		return protocols.Detection{Verdict: protocols.NeedMore}
	}
	v := detectRequest(prefix, detectWindow)
	return protocols.Detection{Verdict: v, FromClient: v == protocols.Match}
}

// detectStatus matches "HTTP/1.D DDD", the start of a status line.
func detectStatus(p []byte) protocols.Verdict {
	const pattern = "HTTP/1.# ###"
	for i := 0; i < len(pattern); i++ {
		if i == len(p) {
			return protocols.NeedMore
		}
		if pattern[i] == '#' {
			if !isDigit(p[i]) {
				return protocols.NoMatch
			}
		} else if p[i] != pattern[i] {
			return protocols.NoMatch
		}
	}
	return protocols.Match
}

// detectRequest matches "token SP target SP HTTP/1.D CRLF" (LF alone is
// tolerated), or the HTTP/0.9 form "GET SP /path CRLF". A line that is still
// open after window bytes is decided by the method and the target's first byte.
func detectRequest(p []byte, window int) protocols.Verdict {
	i := 0
	for i < len(p) && isTchar(p[i]) {
		i++
	}
	if i == len(p) {
		if i >= window {
			return protocols.NoMatch
		}
		return protocols.NeedMore
	}
	if i == 0 || p[i] != ' ' {
		return protocols.NoMatch
	}
	method := p[:i]
	// RFC 9113 §3.4: "PRI * HTTP/2.0" is the HTTP/2 connection preface.
	if string(method) == "PRI" {
		return protocols.NoMatch
	}
	start := i + 1
	j := start
	for j < len(p) && p[j] > ' ' && p[j] != 0x7f {
		j++
	}
	if j == len(p) {
		if j < window {
			return protocols.NeedMore
		}
		if j > start && p[start] == '/' && isKnownMethod(method) {
			return protocols.Match
		}
		return protocols.NoMatch
	}
	if j == start {
		return protocols.NoMatch
	}
	switch p[j] {
	case ' ':
	case '\r', '\n':
		if string(method) != "GET" || p[start] != '/' {
			return protocols.NoMatch
		}
		return matchEOL(p[j:])
	default:
		return protocols.NoMatch
	}
	rest := p[j+1:]
	const version = "HTTP/1.#"
	for k := 0; k < len(version); k++ {
		if k == len(rest) {
			return protocols.NeedMore
		}
		if version[k] == '#' {
			if !isDigit(rest[k]) {
				return protocols.NoMatch
			}
		} else if rest[k] != version[k] {
			return protocols.NoMatch
		}
	}
	return matchEOL(rest[len(version):])
}

// matchEOL matches CRLF or a bare LF.
func matchEOL(p []byte) protocols.Verdict {
	switch {
	case len(p) == 0:
		return protocols.NeedMore
	case p[0] == '\n':
		return protocols.Match
	case p[0] != '\r':
		return protocols.NoMatch
	case len(p) == 1:
		return protocols.NeedMore
	case p[1] == '\n':
		return protocols.Match
	}
	return protocols.NoMatch
}

func isKnownMethod(m []byte) bool {
	for _, k := range knownMethods {
		if string(m) == k {
			return true
		}
	}
	return false
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// isTchar reports whether c may appear in a token (RFC 9110 §5.6.2).
func isTchar(c byte) bool { return c < 0x80 && tcharTable[c] }

var tcharTable = func() (t [128]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
		t[c-'a'+'A'] = true
	}
	for _, c := range []byte("!#$%&'*+-.^_`|~") {
		t[c] = true
	}
	return t
}()

// hasPrefixFold reports whether p starts with the ASCII string s, ignoring case.
func hasPrefixFold[T string | []byte](p T, s string) bool {
	return len(p) >= len(s) && strings.EqualFold(string(p[:len(s)]), s)
}
