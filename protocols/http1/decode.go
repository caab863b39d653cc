package http1

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"errors"
	"io"

	"github.com/sondehq/sonde/protocols"
)

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
