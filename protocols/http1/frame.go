package http1

import (
	"bytes"
	"strconv"
	"strings"

	"github.com/sondehq/sonde/protocols"
)

const (
	// maxHeaderBlock bounds a start line plus its header fields, and a
	// trailer section. Servers refuse far less (nginx: 8 KiB lines by
	// default); what is larger is not a message Sonde can show.
	maxHeaderBlock = 64 << 10
	// maxHeaders bounds the fields of one header block (Node.js' default).
	maxHeaders = 2000
	// maxInformational bounds the 1xx responses remembered for one request.
	maxInformational = 16
)

// requestLine holds the offsets of a request line's parts.
type requestLine struct {
	methodEnd          int
	targetStart, tEnd  int
	versionStart, vEnd int // equal when the line has no version (HTTP/0.9 form)
}

// splitRequestLine parses "method SP target SP version" leniently, the way
// RFC 9112 §3 allows ("recipients MAY instead parse on whitespace-delimited
// word boundaries"): runs of spaces and tabs separate the parts, and a target
// containing spaces is accepted when the last word is the version. A line
// without a version (HTTP/0.9 form, or a client that dropped it) is accepted
// only with a well-known method.
func splitRequestLine(line []byte) (requestLine, bool) {
	var rl requestLine
	for rl.methodEnd < len(line) && isTchar(line[rl.methodEnd]) {
		rl.methodEnd++
	}
	if rl.methodEnd == 0 {
		return rl, false
	}
	end := len(line)
	for end > rl.methodEnd && isSpace(line[end-1]) {
		end--
	}
	start := rl.methodEnd
	if start < end && !isSpace(line[start]) {
		return rl, false
	}
	for start < end && isSpace(line[start]) {
		start++
	}
	rl.targetStart, rl.tEnd, rl.versionStart, rl.vEnd = start, end, end, end
	last := bytes.LastIndexAny(line[start:end], " \t")
	if last < 0 {
		return rl, isKnownMethod(line[:rl.methodEnd])
	}
	last += start
	if !hasPrefixFold(line[last+1:end], "HTTP/") {
		return rl, false
	}
	rl.versionStart = last + 1
	rl.tEnd = last
	for rl.tEnd > start && isSpace(line[rl.tEnd-1]) {
		rl.tEnd--
	}
	return rl, true
}

// statusLine holds a status line's code and the offsets of its other parts.
type statusLine struct {
	versionEnd             int
	code                   int
	reasonStart, reasonEnd int
}

// parseStatusLine parses "HTTP/x.y SP 3DIGIT [SP reason]". The protocol name
// is matched without regard to case, as browsers do.
func parseStatusLine(line []byte) (statusLine, bool) {
	var sl statusLine
	sl.versionEnd = bytes.IndexAny(line, " \t")
	if sl.versionEnd < 0 || !hasPrefixFold(line[:sl.versionEnd], "HTTP/") {
		return sl, false
	}
	p := sl.versionEnd
	for p < len(line) && isSpace(line[p]) {
		p++
	}
	c := line[p:]
	if len(c) < 3 || c[0] < '1' || c[0] > '9' || !isDigit(c[1]) || !isDigit(c[2]) || (len(c) > 3 && !isSpace(c[3])) {
		return sl, false
	}
	sl.code = int(c[0]-'0')*100 + int(c[1]-'0')*10 + int(c[2]-'0')
	sl.reasonStart, sl.reasonEnd = p+3, len(line)
	for sl.reasonStart < sl.reasonEnd && isSpace(line[sl.reasonStart]) {
		sl.reasonStart++
	}
	for sl.reasonEnd > sl.reasonStart && isSpace(line[sl.reasonEnd-1]) {
		sl.reasonEnd--
	}
	return sl, true
}

// parseFields parses header (or trailer) field lines, one per line, each
// ending in CRLF or LF, in wire order with the names' original case.
// obs-fold continuation lines (RFC 9112 §5.2) are joined to the previous
// value with a space. Lines that are not fields are skipped with a warning.
func parseFields(block string, warn func(string)) (protocols.Headers, error) {
	var h protocols.Headers
	if n := strings.Count(block, "\n"); n > 0 {
		h = make(protocols.Headers, 0, min(n, maxHeaders))
	}
	for len(block) > 0 {
		var line string
		line, block, _ = strings.Cut(block, "\n")
		line = strings.TrimSuffix(line, "\r")
		if line == "" {
			continue
		}
		if isSpace(line[0]) {
			if len(h) == 0 {
				warn("continuation line before the first header field ignored")
				continue
			}
			last := &h[len(h)-1]
			if v := trimOWS(line); v != "" {
				if last.Value == "" {
					last.Value = v
				} else {
					last.Value += " " + v
				}
			}
			continue
		}
		name, value, ok := strings.Cut(line, ":")
		name = strings.TrimRight(name, " \t")
		if !ok || name == "" {
			warn("header line without a field name ignored")
			continue
		}
		if len(h) == maxHeaders {
			return h, protocols.Malformed(protocols.HTTP1, codeTooManyHeaders, "more than "+strconv.Itoa(maxHeaders)+" fields")
		}
		h = append(h, protocols.Header{Name: name, Value: trimOWS(value)})
	}
	return h, nil
}

// framing is what the header fields say about the body that follows.
type framing struct {
	// length is the Content-Length, or -1.
	length int64
	// transferEncoding is true when Transfer-Encoding is present; chunked is
	// true when its final coding is chunked (RFC 9112 §6.3).
	transferEncoding, chunked bool
	// coding is the single content coding to decode for display, if any.
	coding  string
	upgrade string
	host    string
}

// readFraming extracts the framing of a message from its header fields.
func readFraming(h protocols.Headers) (framing, error) {
	f := framing{length: -1}
	for _, field := range h {
		switch {
		case strings.EqualFold(field.Name, "Content-Length"):
			// RFC 9110 §8.6: a list of identical values may be treated as one.
			for v := range strings.SplitSeq(field.Value, ",") {
				n, ok := parseLength(trimOWS(v))
				if !ok || (f.length >= 0 && n != f.length) {
					return f, protocols.Malformed(protocols.HTTP1, codeBadContentLength, strconv.Quote(field.Value))
				}
				f.length = n
			}
		case strings.EqualFold(field.Name, "Transfer-Encoding"):
			f.transferEncoding = true
			if v := trimOWS(lastListItem(field.Value)); v != "" {
				f.chunked = strings.EqualFold(v, "chunked")
			}
		case strings.EqualFold(field.Name, "Content-Encoding"):
			switch v := strings.ToLower(trimOWS(field.Value)); v {
			case "gzip", "x-gzip":
				f.coding = "gzip"
			case "deflate":
				f.coding = "deflate"
			case "", "identity":
				f.coding = ""
			default:
				// Kept, so that a body Sonde cannot decode is known to
				// be coded (and withheld when secrets are redacted).
				f.coding = v
			}
		case strings.EqualFold(field.Name, "Upgrade"):
			f.upgrade = field.Value
		case strings.EqualFold(field.Name, "Host"):
			f.host = field.Value
		}
	}
	return f, nil
}

// parseLength parses a Content-Length value: 1*DIGIT, no sign, small enough
// to count in an int64.
func parseLength(v string) (int64, bool) {
	if v == "" || len(v) > 18 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(v); i++ {
		if !isDigit(v[i]) {
			return 0, false
		}
		n = n*10 + int64(v[i]-'0')
	}
	return n, true
}

func lastListItem(v string) string {
	if i := strings.LastIndexByte(v, ','); i >= 0 {
		return v[i+1:]
	}
	return v
}

// upgradeToken is the first protocol of an Upgrade field, lowercased
// ("websocket", "h2c"), or "unknown" when the field is missing.
func upgradeToken(v string) string {
	v, _, _ = strings.Cut(v, ",")
	v = strings.ToLower(trimOWS(v))
	if v == "" {
		return "unknown"
	}
	return v
}

// splitTarget derives the scheme, authority and path of a request target in
// any of its four forms (RFC 9112 §3.2). User info is never part of the
// authority it returns.
func splitTarget(target string) (scheme, authority, path string) {
	switch {
	case target == "*":
		return "", "", "*"
	case strings.HasPrefix(target, "/"):
		return "", "", cutQuery(target)
	}
	if i := strings.Index(target, "://"); i > 0 {
		scheme, rest := target[:i], target[i+3:]
		end := strings.IndexAny(rest, "/?#")
		if end < 0 {
			end = len(rest)
		}
		authority = rest[:end]
		if at := strings.LastIndexByte(authority, '@'); at >= 0 {
			authority = authority[at+1:]
		}
		path = cutQuery(rest[end:])
		if path == "" {
			path = "/"
		}
		return scheme, authority, path
	}
	return "", target, ""
}

func cutQuery(s string) string {
	if i := strings.IndexAny(s, "?#"); i >= 0 {
		return s[:i]
	}
	return s
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' }

func trimOWS(s string) string { return strings.Trim(s, " \t") }

func trimCR(b []byte) []byte {
	if len(b) > 0 && b[len(b)-1] == '\r' {
		return b[:len(b)-1]
	}
	return b
}

const (
	// maxChunkLine bounds a chunk-size line with its extensions (net/http
	// refuses more than 4 KiB too).
	maxChunkLine = 4 << 10
	// maxGarbage is how many bytes that do not parse as HTTP/1 are skipped,
	// looking for the next message, before the connection is given up.
	// Skipping after a gap or a mid-stream join is not bounded: the bytes
	// are the rest of a message whose framing was lost, not garbage.
	maxGarbage = 64 << 10
)

// startLine returns the length of the first line of data with its LF, 0
// while the line is incomplete, and an error once it is longer than any
// header block.
func (s *side) startLine(data []byte) (int, error) {
	if s.lineEnd == 0 {
		i := bytes.IndexByte(data[s.scan:], '\n')
		if i < 0 {
			s.scan = len(data)
		} else {
			s.lineEnd = s.scan + i + 1
			s.scan = s.lineEnd
		}
	}
	if s.lineEnd > maxHeaderBlock+1 || (s.lineEnd == 0 && len(data) > maxHeaderBlock) {
		return 0, protocols.Malformed(protocols.HTTP1, codeStartLineTooLong, "")
	}
	return s.lineEnd, nil
}

// rescan forgets what was learnt about the front of the data, once bytes
// were consumed from it.
func (s *side) rescan() {
	s.scan, s.lineEnd, s.parsed = 0, 0, false
}

// headerEnd returns the offset just past the empty line that ends the header
// block whose field lines begin at from, or -1 when it has not all arrived.
// A block larger than maxHeaderBlock is an error, wherever the data was cut.
func (s *side) headerEnd(data []byte, from int) (int, error) {
	p := max(from, s.scan)
	for {
		i := bytes.IndexByte(data[p:], '\n')
		if i < 0 {
			s.scan = p
			if len(data) > maxHeaderBlock {
				return -1, protocols.Malformed(protocols.HTTP1, codeHeadersTooLarge, "")
			}
			return -1, nil
		}
		line := data[p : p+i]
		p += i + 1
		if len(line) == 0 || (len(line) == 1 && line[0] == '\r') {
			if p > maxHeaderBlock {
				return -1, protocols.Malformed(protocols.HTTP1, codeHeadersTooLarge, "")
			}
			return p, nil
		}
	}
}

// readChunkSize reads "chunk-size [chunk-ext] CRLF" (RFC 9112 §7.1).
// Extensions are skipped: nothing in them is worth showing.
func readChunkSize(s *side, data []byte) (int, error) {
	i := bytes.IndexByte(data, '\n')
	if i > maxChunkLine || (i < 0 && len(data) > maxChunkLine) {
		return 0, protocols.Malformed(protocols.HTTP1, codeChunkLineTooLong, "")
	}
	if i < 0 {
		return 0, nil
	}
	line := trimCR(data[:i])
	if j := bytes.IndexByte(line, ';'); j >= 0 {
		line = line[:j]
	}
	line = bytes.Trim(line, " \t")
	size, ok := parseHex(line)
	if !ok {
		return 0, protocols.Malformed(protocols.HTTP1, codeBadChunkSize, strconv.Quote(string(line)))
	}
	*s.size += int64(i + 1)
	if size == 0 {
		s.state = stTrailers
	} else {
		s.state, s.remain = stChunkData, size
	}
	return i + 1, nil
}

// parseHex parses a chunk size. Fifteen hex digits are more than any real
// chunk and cannot overflow an int64.
func parseHex(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 15 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		var d byte
		switch {
		case '0' <= c && c <= '9':
			d = c - '0'
		case 'a' <= c && c <= 'f':
			d = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			d = c - 'A' + 10
		default:
			return 0, false
		}
		n = n<<4 | int64(d)
	}
	return n, true
}

// readChunkEnd reads the CRLF after a chunk's data (a bare LF is tolerated).
func readChunkEnd(s *side, data []byte) (int, error) {
	n := 0
	switch {
	case data[0] == '\n':
		n = 1
	case data[0] != '\r':
		return 0, protocols.Malformed(protocols.HTTP1, codeBadChunkEnd, "")
	case len(data) == 1:
		return 0, nil
	case data[1] == '\n':
		n = 2
	default:
		return 0, protocols.Malformed(protocols.HTTP1, codeBadChunkEnd, "")
	}
	*s.size += int64(n)
	s.state = stChunkSize
	return n, nil
}
