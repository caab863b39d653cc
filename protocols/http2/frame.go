package http2

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"time"

	"golang.org/x/net/http2"

	"github.com/sondehq/sonde/protocols"
)

// retainFrameBuf is the largest frame buffer a direction keeps between frames.
const retainFrameBuf = 64 << 10

// resyncMaxFrame bounds the frames accepted as a boundary when looking for
// one after a gap: a real peer's frames are this small unless it announced
// more, and a bogus large length must not make Sonde wait for megabytes.
const resyncMaxFrame = defaultMaxFrameSize

type prefaceState uint8

const (
	prefaceDone prefaceState = iota
	// prefaceRequired: the client side of a connection seen from its start.
	prefaceRequired
	// prefaceOptional: a client side joined mid-stream, which may still
	// happen to start with the preface.
	prefaceOptional
)

// direction is the state of one direction of a connection.
type direction struct {
	dir      protocols.Direction
	rd       bytes.Reader
	fr       *http2.Framer
	maxFrame uint32
	preface  prefaceState
	hd       *headerDecoder
	// tableHeld is what the header table beyond its default size holds of
	// Options.Budget.
	tableHeld int
	block     blockState
	// skip is how many bytes still belong to a frame cut by a gap.
	skip int
	// resync is true when the frame boundary was lost; resyncAtGap until
	// the bytes right after the gap were tried as a frame header.
	resync, resyncAtGap bool
	// partial is the frame left incomplete at the end of the last Feed, so
	// that a gap of known size can be skipped without losing the boundary.
	partial partialFrame
}

type partialFrame struct {
	total, have int
	typ, flags  byte
	stream      uint32
}

// blockState is a header block in progress: a HEADERS or PUSH_PROMISE frame
// without END_HEADERS, waiting for CONTINUATION frames.
type blockState struct {
	active    bool
	push      bool
	stream    uint32
	promised  uint32
	endStream bool
	wire      int64
	// oversized is true when a frame of the block exceeded the receiver's
	// SETTINGS_MAX_FRAME_SIZE.
	oversized bool
}

func (d *direction) newFramer() {
	d.fr = http2.NewFramer(nil, &d.rd)
	d.fr.SetMaxReadFrameSize(maxFrameSize)
}

// consumePreface reads the client connection preface (RFC 9113 §3.4).
func (d *direction) consumePreface(data []byte) (n int, more bool, err error) {
	k := min(len(data), len(clientPreface))
	if string(data[:k]) != clientPreface[:k] {
		if d.preface == prefaceOptional {
			d.preface = prefaceDone
			return 0, false, nil
		}
		return 0, false, protocols.Malformed(protocols.HTTP2, codeBadPreface, fmt.Sprintf("%q", data[:k]))
	}
	if k < len(clientPreface) {
		return 0, true, nil
	}
	if d.preface == prefaceOptional {
		// The capture missed the handshake but not the client's first bytes:
		// what it sends is known from the start.
		d.hd = newHeaderDecoder(true)
	}
	d.preface = prefaceDone
	return len(clientPreface), false, nil
}

// frameError handles an error from the framer. Stream errors cost the stream
// its entry's completeness; anything else ends the connection.
func (c *conn) frameError(d *direction, h []byte, err error, ts time.Time) error {
	var se http2.StreamError
	if errors.As(err, &se) && h[3] != typeHeaders && h[3] != typePushPromise {
		if s := c.streams[se.StreamID]; s != nil {
			s.touch(ts)
			s.warn(fmt.Sprintf("%s frame refused: %s", http2.FrameType(h[3]), se.Code))
		}
		return nil
	}
	code := codeFrame
	var ce http2.ConnectionError
	switch {
	case errors.As(err, &ce):
		code = codeFrame + "_" + strings.ToLower(http2.ErrCode(ce).String())
	case errors.As(err, &se):
		// A header block that cannot be read leaves the HPACK state unknown:
		// RFC 9113 §4.3 makes that a connection error.
		code = codeFrame + "_" + strings.ToLower(se.Code.String())
	}
	detail := err.Error()
	if d.fr.ErrorDetail() != nil {
		detail = d.fr.ErrorDetail().Error()
	}
	return protocols.Malformed(protocols.HTTP2, code, fmt.Sprintf("%s frame on stream %d: %s",
		http2.FrameType(h[3]), uint32(h[5]&0x7f)<<24|uint32(h[6])<<16|uint32(h[7])<<8|uint32(h[8]), detail))
}

// findFrameBoundary looks for two plausible frame headers in a row. (A
// frame that ends where a segment does would be a hint too, but results
// must not depend on how the stream was cut into segments.) It returns how many bytes precede the boundary
// (to be dropped) and whether it found one; when not, the bytes returned can
// be dropped and the search goes on with more data.
func findFrameBoundary(data []byte, maxLen uint32) (int, bool) {
	for i := 0; i+frameHeaderLen <= len(data); i++ {
		l, ok := plausibleHeader(data[i:i+frameHeaderLen], maxLen)
		if !ok || data[i+3] == typeContinuation {
			continue
		}
		next := i + frameHeaderLen + int(l)
		if next+frameHeaderLen > len(data) {
			// Not confirmed yet: wait for more from here.
			return i, false
		}
		if _, ok := plausibleHeader(data[next:next+frameHeaderLen], maxLen); ok {
			return i, true
		}
	}
	return max(0, len(data)-frameHeaderLen+1), false
}
