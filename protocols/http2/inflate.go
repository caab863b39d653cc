package http2

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/zstd"
)

// decodable reports whether inflate knows the content coding.
func decodable(enc string) bool {
	return enc == "gzip" || enc == "x-gzip" || enc == "deflate" || enc == "zstd"
}

// zstdMaxWindow is the largest window RFC 9659 lets an HTTP zstd payload
// use, which bounds what the decoder holds.
const zstdMaxWindow = 8 << 20

// inflate decodes p, coded with enc, keeping at most limit bytes of the
// result: a payload that inflates past it is shown truncated.
func inflate(enc string, p []byte, limit int) ([]byte, bool, error) {
	var r io.Reader
	switch enc {
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(bytes.NewReader(p))
		if err != nil {
			return nil, false, err
		}
		r = zr
	case "deflate":
		// RFC 9110 §8.4.1.2 says zlib; some servers send raw deflate.
		if zr, err := zlib.NewReader(bytes.NewReader(p)); err == nil {
			r = zr
		} else {
			r = flate.NewReader(bytes.NewReader(p))
		}
	case "zstd":
		zr, err := zstd.NewReader(bytes.NewReader(p), zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true),
			zstd.WithDecoderMaxWindow(zstdMaxWindow), zstd.WithDecoderMaxMemory(uint64(max(limit, 0))+1))
		if err != nil {
			return nil, false, err
		}
		defer zr.Close()
		r = zr
	default:
		return nil, false, fmt.Errorf("unknown content coding %q", enc)
	}
	limit = max(limit, 0)
	out, err := io.ReadAll(io.LimitReader(r, int64(limit)+1))
	if len(out) > limit {
		return out[:limit], true, nil
	}
	if errors.Is(err, io.ErrUnexpectedEOF) && len(out) > 0 {
		// A stream cut short (a capped body) or never finished (a server
		// that only flushes): what it held is still worth showing.
		return out, false, nil
	}
	return out, false, err
}
