package http2

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/http2/hpack"

	"github.com/sondehq/sonde/protocols"
)

const version = "HTTP/2"

// stream is one HTTP/2 stream being followed: one request and its response.
type stream struct {
	id    uint32
	seq   uint64
	start time.Time
	last  time.Time
	// joined is true when the stream opened before Sonde saw it.
	joined bool
	half   [2]half
	sizes  [2]int64
	ended  [2]bool
	// reset is the RST_STREAM error code's name once a side reset the
	// stream; resetBy is that side and resetAt when.
	reset   string
	resetBy protocols.Direction
	resetAt time.Time
	// lingers is true while a reset stream waits for frames the other side
	// sent before the reset reached it.
	lingers bool
	gap     bool
	grpc    bool
	// informational lists the 1xx statuses before the final response.
	informational []int
	warnings      []string
	// upgrade is the HTTP/1.1 request that became stream 1 (h2c Upgrade).
	upgrade *protocols.Entry
	// held is what the stream holds of Options.Budget: its header fields
	// and what each side's payload may keep.
	held int
}

// half is what one side of a stream sent.
type half struct {
	seen bool // its (non-informational) header block
	// dataSeen is true once DATA came: a header block after it is trailers.
	dataSeen bool
	// Pseudo-header fields (RFC 9113 §8.3).
	method, scheme, authority, path string
	status                          int
	headers, trailers               protocols.Headers
	body                            protocols.Body
	// msgs reads gRPC messages from DATA instead of keeping a body.
	msgs *grpcReader
	// redacted is true when a field was hidden because the sender marked it
	// never-indexed (RFC 7541 §7.1.3).
	redacted bool
	// reserved is what the payload (body or gRPC messages) has drawn
	// from Options.Budget, at most the body cap; starved says the budget
	// was spent and nothing more of it is kept.
	reserved int
	starved  bool
}

func newStream(id uint32, seq uint64, ts time.Time) *stream {
	return &stream{id: id, seq: seq, start: ts, last: ts}
}

func (s *stream) touch(ts time.Time) {
	if ts.After(s.last) {
		s.last = ts
	}
}

func (s *stream) warn(w string) {
	for _, have := range s.warnings {
		if have == w {
			return
		}
	}
	s.warnings = append(s.warnings, w)
}

// upgradeFrom makes the stream the continuation of an HTTP/1.1 request that
// asked for h2c.
func (s *stream) upgradeFrom(up *protocols.Entry) {
	s.upgrade = up
	s.ended[protocols.ClientToServer] = true
	if up.HTTP != nil && up.HTTP.Request != nil {
		s.half[protocols.ClientToServer].seen = true
	}
	s.gap = up.Gap
	for _, w := range up.Warnings {
		s.warn(w)
	}
}

// headers applies a decoded header block that dir sent on the stream.
func (s *stream) headers(dir protocols.Direction, db decodedBlock, opts *protocols.Options) {
	if db.unknown {
		s.warn(warnJoined)
	}
	if db.overflow {
		s.warn(warnHeaderList)
	}
	h := &s.half[dir]
	var p pseudoFields
	regular := splitFields(db.fields, &p, opts.Redact, &h.redacted)
	switch {
	case h.seen || h.dataSeen:
		// RFC 9113 §8.1: a block after the headers (and the data) is trailers.
		h.trailers = append(h.trailers, regular...)
		return
	case dir == protocols.ServerToClient && p.status >= 100 && p.status < 200:
		s.informational = append(s.informational, p.status)
		return
	}
	h.seen = true
	h.method, h.scheme, h.authority, h.path, h.status = p.method, p.scheme, p.authority, p.path, p.status
	h.headers = regular
	s.detectGRPC(opts)
}

type pseudoFields struct {
	method, scheme, authority, path string
	status                          int
}

// splitFields takes the pseudo-header fields out of a block and returns the
// others in wire order.
func splitFields(fields []hpack.HeaderField, p *pseudoFields, redact bool, redacted *bool) protocols.Headers {
	out := make(protocols.Headers, 0, len(fields))
	for _, f := range fields {
		switch f.Name {
		case ":method":
			p.method = f.Value
		case ":scheme":
			p.scheme = f.Value
		case ":authority":
			p.authority = f.Value
		case ":path":
			p.path = f.Value
		case ":status":
			p.status, _ = strconv.Atoi(f.Value)
		default:
			v := f.Value
			if redact && f.Sensitive && v != protocols.Redacted {
				v, *redacted = protocols.Redacted, true
			}
			out = append(out, protocols.Header{Name: f.Name, Value: v})
		}
	}
	return out
}

// detectGRPC makes the stream a gRPC call when its content-type says so: the
// request's, or the response's when the request was not seen.
func (s *stream) detectGRPC(opts *protocols.Options) {
	if s.grpc {
		return
	}
	src := &s.half[protocols.ClientToServer]
	if !src.seen || s.upgrade != nil {
		src = &s.half[protocols.ServerToClient]
	}
	ct, _ := src.headers.Get("content-type")
	kind, ok := grpcContentType(ct)
	if !ok {
		return
	}
	s.grpc = true
	for i := range s.half {
		h := &s.half[i]
		h.msgs = &grpcReader{kind: kind, opts: opts}
		switch {
		case h.body.Size > 0:
			h.msgs.desync("sent before the call was recognised")
		case s.joined && !h.seen:
			// Its headers came before Sonde joined: so may part of a message.
			h.msgs.desync("joined mid-stream")
		}
	}
}

// data handles the payload of a DATA frame of size bytes.
func (s *stream) data(dir protocols.Direction, p []byte, size int64, opts *protocols.Options) {
	s.sizes[dir] += size
	h := &s.half[dir]
	h.dataSeen = true
	if h.starved {
		h.body.Size += int64(len(p))
		h.body.Truncated = true
		if h.msgs != nil {
			h.msgs.desync(warnBudgetCut)
		}
		return
	}
	if h.msgs != nil {
		enc, _ := h.headers.Get("grpc-encoding")
		h.msgs.feed(p, strings.ToLower(strings.TrimSpace(enc)))
		return
	}
	h.body.Capture(p, opts.BodyCap)
}

// lost marks bytes of dir as missing.
func (s *stream) lost(dir protocols.Direction) {
	s.gap = true
	if m := s.half[dir].msgs; m != nil {
		m.desync("bytes missing")
	}
}

// missing says which half of the exchange was never seen. A reset answers
// the request: only a request never seen is missing then.
func (s *stream) missing() protocols.Unmatched {
	switch {
	case !s.half[protocols.ServerToClient].seen && s.sizes[protocols.ServerToClient] == 0 && s.reset == "":
		return protocols.MissingResponse
	case !s.half[protocols.ClientToServer].seen:
		return protocols.MissingRequest
	}
	return protocols.Matched
}

// entry builds the stream's entry.
func (s *stream) entry(u protocols.Unmatched, opts *protocols.Options) *protocols.Entry {
	e := &protocols.Entry{
		Protocol:     protocols.HTTP2,
		Start:        s.start,
		RequestSize:  s.sizes[protocols.ClientToServer],
		ResponseSize: s.sizes[protocols.ServerToClient],
		Unmatched:    u,
		Gap:          s.gap,
	}
	if s.upgrade != nil {
		e.Start = s.upgrade.Start
		e.RequestSize += s.upgrade.RequestSize
		e.ResponseSize += s.upgrade.ResponseSize // the 101
		e.Redacted = s.upgrade.Redacted
	}
	e.Duration = max(s.last.Sub(e.Start), 0)
	if s.grpc {
		s.grpcEntry(e, opts)
	} else {
		s.httpEntry(e, opts)
	}
	e.Redacted = e.Redacted || s.half[0].redacted || s.half[1].redacted
	e.Warnings = s.warnings
	return e
}

func (s *stream) httpEntry(e *protocols.Entry, opts *protocols.Options) {
	rec := &protocols.HTTPRecord{StreamID: s.id, ResetCode: s.reset}
	e.HTTP = rec
	if req := &s.half[protocols.ClientToServer]; s.upgrade != nil && s.upgrade.HTTP != nil {
		rec.Upgrade = s.upgrade.HTTP.Upgrade
		if r := s.upgrade.HTTP.Request; r != nil {
			cp := *r
			rec.Request = &cp
		}
	} else if req.seen || req.body.Size > 0 {
		// Without its headers (joined mid-stream) a request still shows its body.
		r := &protocols.HTTPRequest{
			Method:    req.method,
			Target:    req.path,
			Version:   version,
			Scheme:    req.scheme,
			Authority: req.authority,
			Headers:   req.headers,
			Trailers:  req.trailers,
			Body:      s.body(protocols.ClientToServer, opts),
		}
		if opts.Redact {
			var changed bool
			r.Target, changed = opts.Secrets.RedactTarget(r.Target)
			e.Redacted = e.Redacted || changed
			r.Authority, changed = redactAuthority(r.Authority)
			e.Redacted = e.Redacted || changed
		}
		r.Path, _, _ = strings.Cut(r.Target, "?")
		rec.Request = r
	}
	if resp := &s.half[protocols.ServerToClient]; resp.seen || resp.body.Size > 0 {
		// Without its headers (joined mid-stream) a response still shows its body.
		rec.Response = &protocols.HTTPResponse{
			Version:       version,
			StatusCode:    resp.status,
			Headers:       resp.headers,
			Trailers:      resp.trailers,
			Body:          s.body(protocols.ServerToClient, opts),
			Informational: s.informational,
		}
		if s.upgrade != nil {
			// The 101 that switched the connection came before it.
			rec.Response.Informational = append([]int{101}, s.informational...)
		}
	}
	if opts.Redact {
		for _, h := range s.allHeaders(rec) {
			e.Redacted = opts.Secrets.RedactHeaders(h) || e.Redacted
		}
		if r := rec.Request; r != nil && s.upgrade == nil {
			ct, _ := r.Headers.Get("content-type")
			e.Redacted = opts.Secrets.RedactBody(&r.Body, ct) || e.Redacted
			s.withholdCoded(e, &r.Body, r.Headers)
		}
		if r := rec.Response; r != nil {
			ct, _ := r.Headers.Get("content-type")
			e.Redacted = opts.Secrets.RedactBody(&r.Body, ct) || e.Redacted
			s.withholdCoded(e, &r.Body, r.Headers)
		}
	}
	if rec.Request != nil {
		e.Summary.Method, e.Summary.Target = rec.Request.Method, rec.Request.Target
	}
	switch {
	case rec.Response != nil && rec.Response.StatusCode != 0:
		e.Summary.Status = strconv.Itoa(rec.Response.StatusCode)
	case s.reset != "":
		e.Summary.Status = s.reset
	}
}

func (s *stream) allHeaders(rec *protocols.HTTPRecord) []protocols.Headers {
	var hs []protocols.Headers
	if rec.Request != nil {
		hs = append(hs, rec.Request.Headers, rec.Request.Trailers)
	}
	if rec.Response != nil {
		hs = append(hs, rec.Response.Headers, rec.Response.Trailers)
	}
	return hs
}

// withholdCoded withholds a body left in the content coding its headers
// name, which cannot be searched for secrets.
func (s *stream) withholdCoded(e *protocols.Entry, b *protocols.Body, h protocols.Headers) {
	enc, _ := h.Get("content-encoding")
	if protocols.WithholdCoded(b, enc) {
		e.Redacted = true
		s.warn(fmt.Sprintf(protocols.WithheldCodedWarning, strings.ToLower(strings.TrimSpace(enc))))
	}
}

// body returns the body dir sent, decoded for display when it carries a
// content coding Sonde knows.
func (s *stream) body(dir protocols.Direction, opts *protocols.Options) protocols.Body {
	h := &s.half[dir]
	b := h.body
	enc, _ := h.headers.Get("content-encoding")
	enc = strings.ToLower(strings.TrimSpace(enc))
	if b.Size == 0 || !decodable(enc) {
		return b
	}
	out, truncated, err := inflate(enc, b.Data, min(opts.DecodedCap, opts.BodyCap))
	if err != nil {
		s.warn("body not decoded: " + enc + ": " + err.Error())
		return b
	}
	b.Data, b.Truncated, b.Encoding = out, b.Truncated || truncated, enc
	return b
}

// redactAuthority hides user info in an :authority, which RFC 9113 §8.3.1
// forbids but clients have been seen to send.
func redactAuthority(a string) (string, bool) {
	at := strings.LastIndexByte(a, '@')
	if at < 0 {
		return a, false
	}
	return protocols.Redacted + a[at:], true
}
