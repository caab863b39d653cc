package kafka

import (
	"bytes"
	"fmt"
	"io"
	"sync"

	"github.com/golang/snappy"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"

	"github.com/sondehq/sonde/protocols/internal/bin"
)

// zstdMaxWindow bounds the window a zstd frame may ask the decoder to
// allocate. Kafka batches are small (1 MiB by default), and their frames
// declare windows no larger than their content.
const zstdMaxWindow = 8 << 20

// xerialMagic starts snappy data in the framing of snappy-java, which Kafka's
// Java clients use: the magic, a version and a compatible version (int32
// each), then blocks of int32 length + raw snappy block.
var xerialMagic = []byte{0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0}

// codecs pools decompressors, which are costly to make, and their output
// buffers, so that a connection holds neither between frames.
type codecs struct {
	gzip sync.Pool // *gzip.Reader
	lz4  sync.Pool // *lz4.Reader
	zstd sync.Pool // *zstd.Decoder
	bufs sync.Pool // *bytes.Buffer
}

func (c *codecs) buffer() *bytes.Buffer {
	if b, ok := c.bufs.Get().(*bytes.Buffer); ok {
		b.Reset()
		return b
	}
	return new(bytes.Buffer)
}

func (c *codecs) release(b *bytes.Buffer) {
	if b != nil {
		c.bufs.Put(b)
	}
}

// decompress inflates src with Kafka's codec number into buf, up to limit
// bytes. capped says the output went on past the limit (a bomb, or a batch
// larger than the cap); out then holds the first limit bytes.
func (c *codecs) decompress(codec int8, src []byte, limit int, buf *bytes.Buffer) (out []byte, capped bool, err error) {
	buf.Reset()
	var r io.Reader
	switch codec {
	case 1:
		zr, _ := c.gzip.Get().(*gzip.Reader)
		if zr == nil {
			zr = new(gzip.Reader)
		}
		defer c.gzip.Put(zr)
		if err := zr.Reset(bytes.NewReader(src)); err != nil {
			return nil, false, fmt.Errorf("gzip: %w", err)
		}
		r = zr
	case 2:
		return snappyDecode(src, limit, buf)
	case 3:
		zr, _ := c.lz4.Get().(*lz4.Reader)
		if zr == nil {
			zr = lz4.NewReader(nil)
		}
		defer c.lz4.Put(zr)
		zr.Reset(bytes.NewReader(src))
		r = zr
	case 4:
		zr, _ := c.zstd.Get().(*zstd.Decoder)
		if zr == nil {
			// One goroutine-free decoder: with concurrency 1 a stream
			// is decoded synchronously in Read.
			zr, err = zstd.NewReader(nil, zstd.WithDecoderConcurrency(1),
				zstd.WithDecoderLowmem(true), zstd.WithDecoderMaxWindow(zstdMaxWindow))
			if err != nil {
				return nil, false, fmt.Errorf("zstd: %w", err)
			}
		}
		defer c.zstd.Put(zr)
		// A bytes.Reader, not a bytes.Buffer: zstd decodes a Buffer in one
		// go, past any limit put on the reader.
		if err := zr.Reset(bytes.NewReader(src)); err != nil {
			return nil, false, fmt.Errorf("zstd: %w", err)
		}
		r = zr
	default:
		return nil, false, fmt.Errorf("%w %d", errUnknownCodec, codec)
	}
	if _, err := buf.ReadFrom(io.LimitReader(r, int64(limit)+1)); err != nil {
		return nil, false, fmt.Errorf("%s: %w", codecName(codec), err)
	}
	out = buf.Bytes()
	if len(out) > limit {
		return out[:limit], true, nil
	}
	return out, false, nil
}

// snappyDecode decodes a raw snappy block or xerial-framed blocks, block by
// block, checking each block's declared length against the limit before
// decoding it.
func snappyDecode(src []byte, limit int, buf *bytes.Buffer) ([]byte, bool, error) {
	if !bytes.HasPrefix(src, xerialMagic) {
		n, err := snappy.DecodedLen(src)
		if err != nil {
			return nil, false, fmt.Errorf("snappy: %w", err)
		}
		if n > limit {
			return nil, true, nil
		}
		buf.Grow(n)
		out, err := snappy.Decode(buf.AvailableBuffer()[:n], src)
		if err != nil {
			return nil, false, fmt.Errorf("snappy: %w", err)
		}
		return out, false, nil
	}
	r := reader{bin.NewReader(src[len(xerialMagic):])}
	r.Int32() // version
	r.Int32() // compatible version
	for r.Ok() && r.Len() > 0 {
		block := r.Span(int(r.Int32()))
		if !r.Ok() {
			return nil, false, fmt.Errorf("snappy: xerial block runs past the data")
		}
		n, err := snappy.DecodedLen(block)
		if err != nil {
			return nil, false, fmt.Errorf("snappy: %w", err)
		}
		if buf.Len()+n > limit {
			return buf.Bytes(), true, nil
		}
		buf.Grow(n)
		out, err := snappy.Decode(buf.AvailableBuffer()[:n], block)
		if err != nil {
			return nil, false, fmt.Errorf("snappy: %w", err)
		}
		buf.Write(out)
	}
	return buf.Bytes(), false, nil
}
