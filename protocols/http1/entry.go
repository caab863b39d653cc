package http1

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/klauspost/compress/zstd"

	"github.com/sondehq/sonde/protocols"
)

// zstdMaxWindow is the largest window RFC 9659 lets an HTTP zstd payload use.
const zstdMaxWindow = 8 << 20

// decodeBody replaces the kept bytes of a body sent with a content coding by
// their decoded form, at most limit bytes of it, for display. It returns a
// warning when the bytes do not decode; the body then keeps its raw bytes.
// A body whose kept bytes were cut by the body cap decodes as far as they go.
func decodeBody(b *protocols.Body, coding string, limit int) string {
	if len(b.Data) == 0 || limit <= 0 {
		return ""
	}
	src := bytes.NewReader(b.Data)
	var r io.Reader
	switch coding {
	case "gzip":
		zr, err := gzip.NewReader(src)
		if err != nil {
			return undecodable(coding, err)
		}
		r = zr
	case "deflate":
		// "deflate" is meant to be zlib (RFC 9110 §8.4.1.2), but some
		// servers send raw deflate; the zlib header tells them apart.
		if isZlibHeader(b.Data) {
			zr, err := zlib.NewReader(src)
			if err != nil {
				return undecodable(coding, err)
			}
			r = zr
		} else {
			r = flate.NewReader(src)
		}
	case "zstd":
		// RFC 9659: a zstd-coded HTTP payload uses a window of at most
		// 8 MiB, which bounds what the decoder holds.
		zr, err := zstd.NewReader(src, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true),
			zstd.WithDecoderMaxWindow(zstdMaxWindow), zstd.WithDecoderMaxMemory(uint64(limit)+1))
		if err != nil {
			return undecodable(coding, err)
		}
		defer zr.Close()
		r = zr
	default:
		return ""
	}
	var out bytes.Buffer
	out.Grow(min(limit, 4*len(b.Data)))
	_, err := io.Copy(&out, io.LimitReader(r, int64(limit)+1))
	truncated := b.Truncated
	if out.Len() > limit {
		out.Truncate(limit)
		truncated, err = true, nil
	}
	if err != nil && !(b.Truncated && errors.Is(err, io.ErrUnexpectedEOF)) {
		return undecodable(coding, err)
	}
	b.Data, b.Truncated, b.Encoding = out.Bytes(), truncated, coding
	return ""
}

func undecodable(coding string, err error) string {
	return coding + " content not decoded, shown as sent: " + err.Error()
}

// isZlibHeader checks the two-byte zlib header (RFC 1950 §2.2): method 8
// (deflate) and a check value that makes the pair a multiple of 31.
func isZlibHeader(p []byte) bool {
	return len(p) >= 2 && p[0]&0x0f == 8 && (uint16(p[0])<<8|uint16(p[1]))%31 == 0
}

func (c *conn) newExchange(s *side) *exchange {
	ex := &exchange{entry: &protocols.Entry{Protocol: protocols.HTTP1, HTTP: &protocols.HTTPRecord{}}}
	c.reportSkipped(s, ex)
	return ex
}

// reportSkipped notes on ex the bytes its side discarded before it.
func (c *conn) reportSkipped(s *side, ex *exchange) {
	if s.skipped == 0 {
		return
	}
	what := "bytes that do not parse as HTTP/1"
	switch s.sync {
	case syncGap:
		what = "bytes after a gap"
	case syncMidStream:
		what = "bytes of a connection joined mid-stream"
	}
	ex.entry.Warn(fmt.Sprintf("%d %s skipped before this %s", s.skipped, what, messageName(s.dir)))
	s.skipped = 0
}

func messageName(d protocols.Direction) string {
	if d == protocols.ClientToServer {
		return "request"
	}
	return "response"
}

// finish fills in the entry's summary, timing and unmatched state.
func (c *conn) finish(ex *exchange) {
	e := ex.entry
	for _, b := range ex.bodies {
		if b.coding != "" {
			if w := decodeBody(b.body, b.coding, c.opts.DecodedCap); w != "" {
				e.Warn(w)
			}
		}
		// After decoding, so that a compressed body is read as its content.
		if c.opts.Redact && c.opts.Secrets.RedactBody(b.body, b.contentType) {
			e.Redacted = true
		}
		if c.opts.Redact && protocols.WithholdCoded(b.body, b.coding) {
			e.Redacted = true
			e.Warn(fmt.Sprintf(protocols.WithheldCodedWarning, b.coding))
		}
	}
	ex.bodies = nil
	end := ex.respEnd
	switch {
	case ex.req == nil:
		e.Unmatched = protocols.MissingRequest
		e.Start = ex.respStart
	case ex.resp == nil:
		e.Unmatched = protocols.MissingResponse
		end = ex.reqEnd
	}
	if ex.req != nil {
		e.Summary.Method, e.Summary.Target = ex.req.Method, ex.req.Target
	}
	if ex.resp != nil && ex.resp.StatusCode != 0 {
		e.Summary.Status = strconv.Itoa(ex.resp.StatusCode)
	}
	e.Duration = max(end.Sub(e.Start), 0)
}
