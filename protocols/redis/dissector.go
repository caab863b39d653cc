package redis

import (
	"bytes"
	"strings"

	"github.com/sondehq/sonde/protocols"
)

// Ports Redis servers and Sentinels listen on. They only break ties: a
// connection is recognised by its bytes.
var redisPorts = []uint16{6379, 6380, 26379}

type dissector struct{}

// New returns the Redis dissector.
func New() protocols.Dissector { return dissector{} }

func (dissector) Protocol() protocols.Protocol { return protocols.Redis }

// LossCounters names the counters that count loss (protocols.LossCounters).
func (dissector) LossCounters() []string { return counterNames.Loss() }

func (dissector) NewConn(info protocols.ConnInfo, emit protocols.EmitFunc) protocols.Conn {
	return newConn(info, emit)
}

var (
	fromClient = protocols.Detection{Verdict: protocols.Match, FromClient: true}
	fromServer = protocols.Detection{Verdict: protocols.Match}
)

// Detect recognises a command (an array of bulk strings whose first is a
// command name, or an inline command of a known name) or a reply (a RESP2
// or RESP3 value with a well-formed first line).
func (dissector) Detect(p []byte, ports protocols.Ports) protocols.Detection {
	if len(p) == 0 {
		return protocols.Detection{Verdict: protocols.NeedMore}
	}
	switch {
	case p[0] == '*':
		switch requestStart(p) {
		case protocols.NeedMore:
			return protocols.Detection{Verdict: protocols.NeedMore}
		case protocols.Match:
			// Commands sent from a Redis port: a master streaming to its
			// replica, caught mid-stream.
			if isRedisPort(ports.Src) && !isRedisPort(ports.Dst) {
				return fromServer
			}
			return fromClient
		}
		if v := replyStart(p); v != protocols.Match {
			return protocols.Detection{Verdict: v}
		}
		// An array whose first string is no command we know is a reply,
		// unless the ports say that it travels to the server.
		if isRedisPort(ports.Dst) && !isRedisPort(ports.Src) {
			return fromClient
		}
		return fromServer
	case isReplyType(p[0]):
		v := replyStart(p)
		// "+OK <text>" is also how POP3 servers greet: without a Redis port
		// to say otherwise, leave it to them.
		if v == protocols.Match && bytes.HasPrefix(p, []byte("+OK ")) && !isRedisPort(ports.Src) && !isRedisPort(ports.Dst) {
			return protocols.Detection{Verdict: protocols.NoMatch}
		}
		if v != protocols.Match {
			return protocols.Detection{Verdict: v}
		}
		// Reply-like bytes sent to a Redis port: a client sending garbage
		// (Redis reads it as an inline command and answers an error).
		if isRedisPort(ports.Dst) && !isRedisPort(ports.Src) {
			return fromClient
		}
		return fromServer
	}
	// memcached's text protocol shares "get" and "set" with Redis.
	if hasPort(ports, 11211) && !isRedisPort(ports.Src) && !isRedisPort(ports.Dst) {
		return protocols.Detection{Verdict: protocols.NoMatch}
	}
	v := inlineStart(p, true)
	if v == protocols.Match {
		return fromClient
	}
	return protocols.Detection{Verdict: v}
}

func isRedisPort(p uint16) bool {
	for _, r := range redisPorts {
		if p == r {
			return true
		}
	}
	return false
}

func hasPort(ports protocols.Ports, p uint16) bool { return ports.Src == p || ports.Dst == p }

func isReplyType(c byte) bool {
	switch c {
	case '+', '-', ':', '$', '*', '%', '~', ',', '(', '#', '_', '=', '!', '|', '>':
		return true
	}
	return false
}

// firstLine returns the first line of p without its CRLF, and what follows
// it. A line must end within limit bytes.
func firstLine(p []byte, limit int) (line, rest []byte, v protocols.Verdict) {
	i := bytes.IndexByte(p[:min(len(p), limit)], '\n')
	if i < 0 {
		if len(p) >= limit {
			return nil, nil, protocols.NoMatch
		}
		return nil, nil, protocols.NeedMore
	}
	if i == 0 || p[i-1] != '\r' {
		return nil, nil, protocols.NoMatch
	}
	return p[:i-1], p[i+1:], protocols.Match
}

// Limits of what detection and resynchronisation look at.
const (
	headerLimit = 24   // "*2147483647\r\n" and the like
	textLimit   = 1024 // a simple string, an error, an inline command
	nameLimit   = 32   // a command name
)

// replyStart says whether p starts with a well-formed RESP line of a reply.
func replyStart(p []byte) protocols.Verdict {
	kind := p[0]
	if !isReplyType(kind) {
		return protocols.NoMatch
	}
	limit := headerLimit
	switch kind {
	case '+', '-':
		limit = textLimit
	case ',', '(':
		limit = 2 * headerLimit
	}
	line, _, v := firstLine(p, limit)
	if v == protocols.NeedMore && !plausiblePartial(kind, p[1:]) {
		return protocols.NoMatch
	}
	if v != protocols.Match {
		return v
	}
	rest := line[1:]
	ok := false
	switch kind {
	case '+':
		ok = printable(rest)
	case '-':
		ok = errorCode(rest) != "" && printable(rest)
	case ':':
		_, ok = parseInt(rest)
	case ',':
		ok = validDouble(rest)
	case '(':
		ok = validBigNumber(rest)
	case '#':
		ok = len(rest) == 1 && (rest[0] == 't' || rest[0] == 'f')
	case '_':
		ok = len(rest) == 0
	case '$', '!', '=', '*', '%', '~', '>', '|':
		n, isInt := parseInt(rest)
		ok = isInt && (n >= 0 || n == -1 && (kind == '$' || kind == '*'))
	}
	if !ok {
		return protocols.NoMatch
	}
	return protocols.Match
}

// plausiblePartial says whether an unfinished first line may still become
// a well-formed one.
func plausiblePartial(kind byte, b []byte) bool {
	if len(b) > 0 && b[len(b)-1] == '\r' {
		b = b[:len(b)-1]
	}
	switch kind {
	case '+', '-':
		return printable(b)
	case ',', '(':
		return !bytes.ContainsFunc(b, func(r rune) bool { return !strings.ContainsRune("0123456789+-.eEinfa", r) })
	case '#', '_':
		return len(b) <= 1
	}
	return !bytes.ContainsFunc(b, func(r rune) bool { return !strings.ContainsRune("0123456789-", r) })
}

// requestStart says whether p starts with a command array:
// "*<n>\r\n$<len>\r\n<known command name>\r\n".
func requestStart(p []byte) protocols.Verdict {
	line, rest, v := firstLine(p, headerLimit)
	if v != protocols.Match {
		if v == protocols.NeedMore && !plausiblePartial('*', p[1:]) {
			return protocols.NoMatch
		}
		return v
	}
	if n, ok := parseInt(line[1:]); !ok || n < 1 {
		return protocols.NoMatch
	}
	if len(rest) == 0 {
		return protocols.NeedMore
	}
	if rest[0] != '$' {
		return protocols.NoMatch
	}
	line, rest, v = firstLine(rest, headerLimit)
	if v != protocols.Match {
		return v
	}
	n, ok := parseInt(line[1:])
	if !ok || n < 1 || n > nameLimit {
		return protocols.NoMatch
	}
	if len(rest) < int(n)+2 {
		return protocols.NeedMore
	}
	if rest[n] != '\r' || rest[n+1] != '\n' || !isCommandName(rest[:n], true) {
		return protocols.NoMatch
	}
	return protocols.Match
}

// inlineStart says whether p starts with an inline command of a known name
// that is not an HTTP request line ("GET / HTTP/1.1"). With host, a "Host:"
// line after it marks HTTP as well (detection sees a connection's first
// bytes; resynchronisation must not depend on how far the stream came).
func inlineStart(p []byte, host bool) protocols.Verdict {
	i := 0
	for i < len(p) && i <= nameLimit && nameByte(p[i]) {
		i++
	}
	if i == len(p) && i <= nameLimit {
		if i > 0 && isCommandPrefix(p) {
			return protocols.NeedMore
		}
		return protocols.NoMatch
	}
	if i == 0 || i > nameLimit || !isBlank(p[i]) || !isCommandName(p[:i], false) {
		return protocols.NoMatch
	}
	j := bytes.IndexByte(p[:min(len(p), textLimit)], '\n')
	if j < 0 {
		if len(p) >= textLimit {
			return protocols.NoMatch
		}
		return protocols.NeedMore
	}
	// Redis itself hangs up on "Host:" as a cross-protocol attack.
	if bytes.Contains(p[:j], []byte("HTTP/")) || host && hasPrefixFold(p[j+1:], "host:") {
		return protocols.NoMatch
	}
	return protocols.Match
}

func hasPrefixFold(b []byte, prefix string) bool {
	return len(b) >= len(prefix) && bytes.EqualFold(b[:len(prefix)], []byte(prefix))
}

func nameByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-' || c == '.'
}

// isCommandName says whether name is a Redis command, or, with modules, a
// module command such as "JSON.GET" or "FT.SEARCH".
func isCommandName(name []byte, modules bool) bool {
	if len(name) > nameLimit {
		return false
	}
	var buf [nameLimit]byte
	up := upperASCII(buf[:0], name)
	if _, ok := commands[string(up)]; ok {
		return true
	}
	if !modules {
		return false
	}
	dot := bytes.IndexByte(up, '.')
	if dot <= 0 || dot == len(up)-1 {
		return false
	}
	for _, c := range up {
		if !('A' <= c && c <= 'Z' || c == '.' || c == '_') {
			return false
		}
	}
	return true
}

func isCommandPrefix(p []byte) bool {
	var buf [nameLimit]byte
	up := string(upperASCII(buf[:0], p))
	for name := range commands {
		if strings.HasPrefix(name, up) {
			return true
		}
	}
	return false
}

func upperASCII(dst, b []byte) []byte {
	for _, c := range b {
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst
}

// printable says whether a line's text has no control bytes (tabs aside).
func printable(b []byte) bool {
	for _, c := range b {
		if c < 0x20 && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// errorCode is the first word of an error reply ("ERR", "WRONGTYPE") when
// it is an upper-case code, as Redis and its modules send them.
func errorCode(text []byte) string {
	i := 0
	for i < len(text) && ('A' <= text[i] && text[i] <= 'Z' || '0' <= text[i] && text[i] <= '9' || text[i] == '_' || text[i] == '-') {
		i++
	}
	if i == 0 || i < len(text) && text[i] != ' ' || text[0] < 'A' || text[0] > 'Z' {
		return ""
	}
	return string(text[:i])
}

// findStart looks, after a gap, for where a value may begin: a line start
// (or where the gap ended, which may be a boundary) with a well-formed
// command or reply. It returns the offset and whether it found one; without
// one, the bytes before the offset are skipped and the rest may still
// become one.
func (d *decoder) findStart(p []byte) (int, bool) {
	for i := 0; ; {
		var v protocols.Verdict
		q := p[i:]
		if len(q) == 0 {
			return i, false
		}
		if i == 0 && !d.lineStart {
			// The previous bytes ended inside a line.
			v = protocols.NoMatch
		} else {
			v = d.startsHere(q)
		}
		switch v {
		case protocols.Match:
			return i, true
		case protocols.NeedMore:
			return i, false
		}
		j := bytes.IndexByte(q, '\n')
		if j < 0 {
			d.lineStart = false
			return len(p), false
		}
		i += j + 1
		d.lineStart = true
	}
}

// startsHere says whether a command or reply starts at a line start.
func (d *decoder) startsHere(q []byte) protocols.Verdict {
	switch {
	case !d.client:
		return replyStart(q)
	case q[0] == '*':
		return requestStart(q)
	case d.inlineOK:
		return inlineStart(q, false)
	}
	return protocols.NoMatch
}
