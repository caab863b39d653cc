package http2

import (
	"cmp"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"

	"github.com/sondehq/sonde/protocols"
)

const (
	// grpcPrefixLen is the length prefix of every gRPC message: a flags byte
	// and a 4-byte big-endian length.
	grpcPrefixLen = 5
	// maxListedMessages is how many messages per side of a call are listed;
	// beyond it they are only counted.
	maxListedMessages = 256
	// maxWebTrailers bounds the trailers message of a gRPC-Web response.
	maxWebTrailers = 8 << 10
)

// contentKind is how a call's messages are framed and encoded.
type contentKind uint8

const (
	kindProto   contentKind = iota // application/grpc, application/grpc+proto
	kindOther                      // application/grpc+json and other codecs: not protobuf
	kindWeb                        // application/grpc-web(+proto): trailers travel as a message
	kindWebText                    // application/grpc-web-text: base64, not decoded
)

// grpcContentType recognises gRPC content types ("application/grpc*").
func grpcContentType(ct string) (contentKind, bool) {
	ct, _, _ = strings.Cut(strings.ToLower(strings.TrimSpace(ct)), ";")
	ct = strings.TrimSpace(ct)
	rest, ok := strings.CutPrefix(ct, "application/grpc")
	if !ok {
		return 0, false
	}
	switch rest {
	case "", "+proto":
		return kindProto, true
	case "-web", "-web+proto":
		return kindWeb, true
	case "-web-text", "-web-text+proto":
		return kindWebText, true
	}
	return kindOther, true
}

// grpcReader follows the length-prefixed messages of one side of a call
// across DATA frames, counting every message and keeping the first ones up
// to the body cap.
type grpcReader struct {
	kind   contentKind
	prefix [grpcPrefixLen]byte
	nhdr   int
	// The message in progress.
	inMsg      bool
	remaining  int64
	size       int64
	compressed bool
	keep       bool // listed
	webTrailer bool
	raw        []byte
	cut        bool // raw holds less than the message
	out        protocols.GRPCMessages
	used       int // content bytes kept, against the body cap
	fields     int // protobuf fields decoded, against maxCallFields
	// toDecode lists the messages whose fields are still to be decoded;
	// coded those left compressed, which cannot be searched for secrets.
	toDecode, coded []int
	// unsynced is true while message boundaries are unknown (bytes went
	// missing, or the stream was joined late); lost says why.
	unsynced bool
	lost     string
	// trailers are a gRPC-Web response's trailers.
	trailers protocols.Headers
	opts     *protocols.Options
}

// feed reads the payload of one DATA frame.
func (r *grpcReader) feed(p []byte, enc string) {
	if r.kind == kindWebText {
		r.lost = "grpc-web-text not decoded"
		return
	}
	if r.unsynced {
		// Senders start messages at frame starts more often than not: a
		// frame that holds whole messages exactly is where to resume.
		if !wholeMessages(p) {
			return
		}
		r.unsynced = false
	}
	r.out.Encoding = enc
	opts := r.opts
	for len(p) > 0 {
		if !r.inMsg {
			k := copy(r.prefix[r.nhdr:], p)
			r.nhdr += k
			p = p[k:]
			if r.nhdr < grpcPrefixLen {
				return
			}
			r.nhdr = 0
			if !r.begin() {
				return
			}
		}
		k := min(int64(len(p)), r.remaining)
		r.take(p[:k], opts)
		p = p[k:]
		r.remaining -= k
		if r.remaining == 0 {
			r.end()
		}
	}
}

// begin starts the message whose prefix was just read.
func (r *grpcReader) begin() bool {
	flags := r.prefix[0]
	valid := flags <= 1 || (r.kind == kindWeb && flags&^0x81 == 0)
	if !valid {
		// gRPC over HTTP/2: the flags byte is 0 or 1; anything else means
		// the stream is not where Sonde thinks it is.
		r.desync(fmt.Sprintf("message prefix with flags %#x", flags))
		return false
	}
	length := int64(binary.BigEndian.Uint32(r.prefix[1:]))
	r.inMsg, r.remaining, r.size = true, length, length
	r.compressed = flags&1 != 0
	r.webTrailer = r.kind == kindWeb && flags&0x80 != 0
	r.raw, r.cut = nil, false
	if r.webTrailer {
		return true
	}
	r.out.Count++
	r.out.Bytes += length
	r.keep = len(r.out.Messages) < maxListedMessages
	if !r.keep {
		r.out.Truncated = true
	}
	return true
}

func (r *grpcReader) take(p []byte, opts *protocols.Options) {
	room := 0
	switch {
	case r.webTrailer:
		room = maxWebTrailers - len(r.raw)
	case r.keep:
		room = opts.BodyCap - r.used - len(r.raw)
	}
	if len(p) > room {
		p = p[:max(room, 0)]
		r.cut = true
	}
	r.raw = append(r.raw, p...)
}

// end finishes the message in progress.
func (r *grpcReader) end() {
	enc, opts := r.out.Encoding, r.opts
	r.inMsg = false
	if r.webTrailer {
		r.trailers = append(r.trailers, parseWebTrailers(r.raw)...)
		r.raw = nil
		return
	}
	if !r.keep {
		return
	}
	m := protocols.GRPCMessage{Size: r.size, Compressed: r.compressed, Truncated: r.cut}
	data := r.raw
	r.raw = nil
	decode := r.kind != kindOther
	if r.compressed {
		switch {
		case decodable(enc):
			out, truncated, err := inflate(enc, data, min(opts.DecodedCap, opts.BodyCap-r.used))
			if err != nil {
				m.DecodeError = "not decompressed: " + enc + ": " + err.Error()
				decode = false
				break
			}
			data, m.Truncated = out, m.Truncated || truncated
		case enc == "" || enc == "identity":
			m.DecodeError = "compressed flag set without a grpc-encoding"
			decode = false
		default:
			m.DecodeError = "compressed with " + enc + ": not decompressed"
			decode = false
		}
		if !decode {
			r.coded = append(r.coded, len(r.out.Messages))
		}
	}
	m.Data = data
	r.used += len(data)
	if decode {
		// Decoded when the call's entry is made: a field tree takes many
		// times the bytes of its message, and a call may stay open long.
		r.toDecode = append(r.toDecode, len(r.out.Messages))
	}
	r.out.Messages = append(r.out.Messages, m)
}

// decodeFields decodes the listed messages as protobuf, within the
// call's cap on fields.
func (r *grpcReader) decodeFields() {
	for _, i := range r.toDecode {
		m := &r.out.Messages[i]
		if r.fields >= maxCallFields {
			m.DecodeError = fmt.Sprintf("not decoded: the call's messages already have %d fields", maxCallFields)
			continue
		}
		fields, used, err := decodeProto(m.Data, maxCallFields-r.fields)
		r.fields += used
		m.Fields = fields
		switch {
		case err != nil && m.Truncated:
			m.DecodeError = "message truncated: fields decoded up to the cap"
		case err != nil:
			m.DecodeError = err.Error()
		}
	}
	r.toDecode = nil
}

// desync records that message boundaries are lost, for the reason given,
// keeping what was read of a message in progress.
func (r *grpcReader) desync(reason string) {
	if r.lost == "" {
		r.lost = reason
	}
	if r.inMsg {
		r.cut = true
		r.end()
	}
	r.unsynced, r.nhdr = true, 0
}

// wholeMessages reports whether p is one or more complete length-prefixed
// messages, nothing more.
func wholeMessages(p []byte) bool {
	if len(p) < grpcPrefixLen {
		return false
	}
	for len(p) >= grpcPrefixLen {
		if p[0] > 1 {
			return false
		}
		n := int64(binary.BigEndian.Uint32(p[1:grpcPrefixLen]))
		if n > int64(len(p)-grpcPrefixLen) {
			return false
		}
		p = p[grpcPrefixLen+n:]
	}
	return len(p) == 0
}

// parseWebTrailers reads the header lines of a gRPC-Web trailers message.
func parseWebTrailers(p []byte) protocols.Headers {
	var out protocols.Headers
	for line := range strings.SplitSeq(string(p), "\n") {
		line = strings.TrimRight(line, "\r")
		name, value, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		out = append(out, protocols.Header{Name: strings.ToLower(strings.TrimSpace(name)), Value: strings.TrimSpace(value)})
	}
	return out
}

// grpcCodes are the status code names of the gRPC spec (statuscodes.md).
var grpcCodes = [...]string{
	"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
	"ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
	"ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
	"UNAUTHENTICATED",
}

func grpcCodeName(c int) string {
	if c >= 0 && c < len(grpcCodes) {
		return grpcCodes[c]
	}
	return "CODE_" + strconv.Itoa(c)
}

func (s *stream) grpcEntry(e *protocols.Entry, opts *protocols.Options) {
	e.Protocol = protocols.GRPC
	req, resp := &s.half[protocols.ClientToServer], &s.half[protocols.ServerToClient]
	rec := &protocols.GRPCRecord{
		StatusCode:       -1,
		Authority:        req.authority,
		StreamID:         s.id,
		HTTPStatus:       resp.status,
		ResetCode:        s.reset,
		RequestMetadata:  req.headers,
		ResponseMetadata: resp.headers,
		Trailers:         resp.trailers,
	}
	e.GRPC = rec
	path := req.path
	if up := s.upgrade; up != nil && up.HTTP != nil && up.HTTP.Request != nil {
		path, rec.Authority = up.HTTP.Request.Target, up.HTTP.Request.Authority
		rec.RequestMetadata = up.HTTP.Request.Headers
	}
	rec.ContentType, _ = rec.RequestMetadata.Get("content-type")
	if rec.ContentType == "" {
		rec.ContentType, _ = resp.headers.Get("content-type")
	}
	rec.Service, rec.Method = splitGRPCPath(path)
	for i, m := range []*grpcReader{req.msgs, resp.msgs} {
		if m == nil {
			continue
		}
		if m.inMsg {
			m.desync("the stream ended inside a message")
		}
		m.decodeFields()
		if m.lost != "" {
			s.warn([...]string{"request", "response"}[i] + " messages: some not parsed: " + m.lost)
		}
		if i == 0 {
			rec.Requests = m.out
		} else {
			rec.Responses = m.out
			rec.Trailers = append(rec.Trailers, m.trailers...)
		}
	}
	// RFC-less but universal: trailers carry the status, or the response
	// headers do in a trailers-only response.
	src := rec.Trailers
	if _, ok := src.Get("grpc-status"); !ok {
		src = resp.headers
	}
	if v, ok := src.Get("grpc-status"); ok {
		if code, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && code >= 0 {
			rec.StatusCode, rec.Status = code, grpcCodeName(code)
		} else {
			s.warn("grpc-status not a number: " + strconv.Quote(v))
		}
	}
	if v, ok := src.Get("grpc-message"); ok {
		rec.Message = percentDecode(v)
	}
	if v, ok := src.Get("grpc-status-details-bin"); ok {
		if raw, err := decodeBinHeader(v); err == nil {
			rec.StatusDetails, _, _ = decodeProto(raw, maxProtoFields)
		} else {
			s.warn("grpc-status-details-bin not base64")
		}
	}
	if opts.Redact {
		for i, m := range []*grpcReader{req.msgs, resp.msgs} {
			if m == nil {
				continue
			}
			out := &rec.Requests
			if i == 1 {
				out = &rec.Responses
			}
			for _, j := range m.coded {
				if msg := &out.Messages[j]; len(msg.Data) > 0 {
					msg.Data, msg.Truncated, e.Redacted = nil, true, true
					s.warn(fmt.Sprintf(protocols.WithheldCodedWarning, "grpc-encoding "+cmp.Or(out.Encoding, "(none)")))
				}
			}
		}
		for _, h := range []protocols.Headers{rec.RequestMetadata, rec.ResponseMetadata, rec.Trailers} {
			e.Redacted = opts.Secrets.RedactHeaders(h) || e.Redacted
		}
		var changed bool
		rec.Authority, changed = redactAuthority(rec.Authority)
		e.Redacted = e.Redacted || changed
	}
	e.Summary.Method = path
	e.Summary.Target = rec.Authority
	if e.Summary.Target == "" {
		e.Summary.Target = rec.Service
	}
	switch {
	case rec.Status != "":
		e.Summary.Status = rec.Status
	case s.reset != "":
		e.Summary.Status = s.reset
	}
}

// splitGRPCPath splits "/pkg.Service/Method".
func splitGRPCPath(path string) (service, method string) {
	rest, ok := strings.CutPrefix(path, "/")
	if !ok {
		return "", path
	}
	service, method, ok = strings.Cut(rest, "/")
	if !ok {
		return "", rest
	}
	return service, method
}

// decodeBinHeader decodes a "-bin" metadata value: base64, padded or not.
func decodeBinHeader(v string) ([]byte, error) {
	return base64.RawStdEncoding.DecodeString(strings.TrimRight(strings.TrimSpace(v), "="))
}

// percentDecode undoes grpc-message's percent-encoding; malformed escapes
// stay as they are, as the gRPC spec asks.
func percentDecode(s string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+3], 16, 8); err == nil {
				b.WriteByte(byte(v))
				i += 2
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
