package amqp

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/sondehq/sonde/protocols"
)

// Frame types (0-9-1 §4.2.3; the spec's XML and RabbitMQ number the
// heartbeat frame 8).
const (
	frameMethod    = 1
	frameHeader    = 2
	frameBody      = 3
	frameHeartbeat = 8
	// frameEnd closes every frame: "If the frame-end octet is not
	// frame-end, the peer MUST treat this as a fatal error" (§4.2.3).
	frameEnd = 0xCE
	// frameHeaderLen is type (1), channel (2) and payload size (4).
	frameHeaderLen = 7
	// frameOverhead is what a frame adds to its payload on the wire.
	frameOverhead = frameHeaderLen + 1
)

// protocolHeader opens every AMQP 0-9-1 connection (§4.2.2).
var protocolHeader = []byte("AMQP\x00\x00\x09\x01")

// Caps on frames, channels and waits.
const (
	// defaultFrameMax bounds frames (header and end included) until
	// connection.tune says otherwise. The spec lets peers send only
	// frame-min-size (4096) octets before Tune, but RabbitMQ's and most
	// clients' default frame_max is 131072, and a handshake never needs more.
	defaultFrameMax = 128 << 10
	// maxBufferedFrame bounds method and content header frames, which are
	// parsed whole, whatever frame_max the peers agreed on; body frames are
	// streamed and bounded by frame_max alone. It is also the frame cap of a
	// connection joined mid-stream, whose Tune was not seen.
	maxBufferedFrame = 1 << 20
	// maxChannels bounds the channels tracked per connection, twice
	// RabbitMQ's default channel_max (2047).
	maxChannels = 4096
	// confirmWait is how long a publish on a channel in confirm mode waits
	// for the broker's basic.ack or basic.nack before it is emitted unmatched.
	confirmWait = 30 * time.Second
)

// side is the frame reader of one direction.
type side struct {
	dir protocols.Direction
	// synced is false while the reader looks for a frame boundary it can
	// trust (joined mid-stream, or after a gap it could not bridge).
	synced bool
	// wantHeader: the client's protocol header comes first.
	wantHeader bool
	// mayHeader: the server may answer with its own protocol header (it
	// does not speak the client's version) instead of connection.start.
	mayHeader bool

	// The frame being read.
	inFrame bool
	typ     byte
	ch      uint16
	size    uint32
	left    uint32 // payload bytes not yet consumed
	// damaged: part of this frame's payload was lost to a gap (or it is a
	// body frame nobody expects), so it is skipped.
	damaged bool
	// buf collects a method or content header payload that arrived in
	// pieces; bounded by maxBufferedFrame.
	buf []byte
	// lastLeft is what the last Feed left unconsumed, which a gap discards.
	lastLeft int
}

func (c *conn) feed(s *side, data []byte, ts time.Time) (int, error) {
	n := 0
	for n < len(data) {
		p := data[n:]
		switch {
		case !s.synced:
			skip, ok := c.resync(s, p)
			c.count(countResync, skip)
			n += skip
			if !ok {
				return n, nil
			}
		case s.wantHeader:
			// Judged byte by byte, so that the verdict and its detail do not
			// depend on how the bytes were cut.
			k := min(len(p), len(protocolHeader))
			for i := range k {
				if p[i] != protocolHeader[i] {
					return n, malformed(codeProtocolHeader, "%q", p[:i+1])
				}
			}
			if k < len(protocolHeader) {
				return n, nil
			}
			c.header = formatHeader(p)
			s.wantHeader = false
			n += len(protocolHeader)
		case s.mayHeader:
			if k := min(len(p), 4); !bytes.Equal(p[:k], protocolHeader[:k]) {
				s.mayHeader = false
				continue
			}
			if len(p) < len(protocolHeader) {
				return n, nil
			}
			c.rejected(p[:len(protocolHeader)], ts)
			s.mayHeader = false
			n += len(protocolHeader)
		case !s.inFrame:
			if len(p) < frameHeaderLen {
				return n, nil
			}
			if err := c.frameStart(s, p); err != nil {
				return n, err
			}
			n += frameHeaderLen
			// A whole method or header frame is parsed where it lies.
			if s.typ != frameBody && uint64(len(p)-frameHeaderLen) > uint64(s.size) {
				end := frameHeaderLen + int(s.size)
				if p[end] != frameEnd {
					return n, malformed(codeFrameEnd, "0x%02x after a %d-byte frame of type %d", p[end], s.size, s.typ)
				}
				n += int(s.size) + 1
				s.inFrame = false
				if err := c.frameDone(s, p[frameHeaderLen:end], ts); err != nil {
					return n, err
				}
			}
		case s.left > 0:
			take := len(p)
			if uint64(take) > uint64(s.left) {
				take = int(s.left)
			}
			switch {
			case s.damaged:
			case s.typ == frameBody:
				c.body(s, p[:take])
			default:
				s.buf = append(s.buf, p[:take]...)
			}
			s.left -= uint32(take)
			n += take
		default:
			if p[0] != frameEnd {
				return n, malformed(codeFrameEnd, "0x%02x after a %d-byte frame of type %d", p[0], s.size, s.typ)
			}
			n++
			s.inFrame = false
			err := c.frameDone(s, s.buf, ts)
			s.buf = s.buf[:0]
			if err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

// frameStart reads a frame header and checks it before anything of the
// payload is kept.
func (c *conn) frameStart(s *side, p []byte) error {
	typ := p[0]
	size := binary.BigEndian.Uint32(p[3:7])
	switch typ {
	case frameMethod, frameHeader, frameBody:
	case frameHeartbeat:
		// "Heartbeat frames ... have no payload" (§4.2.7).
		if size != 0 {
			return malformed(codeHeartbeat, "%d bytes", size)
		}
	default:
		return malformed(codeFrameType, "type %d", typ)
	}
	if c.frameMax > 0 && uint64(size)+frameOverhead > uint64(c.frameMax) {
		return malformed(codeFrameSize, "%d-byte payload, frame_max %d", size, c.frameMax)
	}
	if typ != frameBody && size > maxBufferedFrame {
		return malformed(codeFrameSize, "%d-byte payload in a frame of type %d", size, typ)
	}
	s.inFrame, s.typ, s.size, s.left, s.damaged = true, typ, size, size, false
	s.ch = binary.BigEndian.Uint16(p[1:3])
	if typ == frameBody {
		return c.bodyStart(s)
	}
	return nil
}

// frameDone handles a frame whose frame-end octet was checked.
func (c *conn) frameDone(s *side, payload []byte, ts time.Time) error {
	if s.damaged {
		if s.typ != frameBody {
			c.count(countLostFrame, 1)
			c.headerLost(s)
		}
		return nil
	}
	switch s.typ {
	case frameMethod:
		return c.onMethod(s.dir, s.ch, payload, ts)
	case frameHeader:
		return c.onContentHeader(s.dir, s.ch, payload, ts)
	case frameBody:
		c.bodyEnd(s, ts)
	case frameHeartbeat:
		c.count(countHeartbeat, 1)
	}
	return nil
}

// resync looks for the next frame that can be trusted: a method frame of a
// known class and method, a basic content header or a heartbeat, each
// followed by frame-end at the offset its size gives. It returns how many
// bytes to skip and whether a frame starts there; otherwise the caller keeps
// the bytes from the skip on and waits for more. A protocol header counts
// too (a capture that missed the SYN may still hold the connection's start).
func (c *conn) resync(s *side, p []byte) (int, bool) {
	// Frames this large are not trusted as anchors: waiting for the end of a
	// bogus candidate must stay cheap.
	const maxAnchor = 16 << 10
	for i := 0; i < len(p); i++ {
		h := p[i:]
		if h[0] == 'A' && s.dir == protocols.ClientToServer {
			n := min(len(h), len(protocolHeader))
			if bytes.Equal(h[:n], protocolHeader[:n]) {
				if n < len(protocolHeader) {
					return i, false
				}
				s.synced, s.wantHeader = true, true
				return i, true
			}
		}
		if len(h) < frameHeaderLen+4 {
			return i, false
		}
		size := binary.BigEndian.Uint32(h[3:7])
		switch h[0] {
		case frameMethod:
			if size < 4 || size > maxAnchor || lookup(binary.BigEndian.Uint16(h[7:]), binary.BigEndian.Uint16(h[9:])) == nil {
				continue
			}
		case frameHeader:
			if size < 14 || size > maxAnchor || binary.BigEndian.Uint16(h[7:]) != classBasic || binary.BigEndian.Uint16(h[9:]) != 0 {
				continue
			}
		case frameHeartbeat:
			if size != 0 || h[1] != 0 || h[2] != 0 {
				continue
			}
		default:
			continue
		}
		end := frameHeaderLen + int(size)
		if len(h) <= end {
			return i, false
		}
		if h[end] != frameEnd {
			continue
		}
		s.synced = true
		return i, true
	}
	return len(p), false
}

// formatHeader renders a protocol header: "AMQP" 0 major minor revision.
func formatHeader(h []byte) string {
	if h[4] == 0 {
		return fmt.Sprintf("AMQP %d-%d-%d", h[5], h[6], h[7])
	}
	return fmt.Sprintf("AMQP %d.%d.%d (protocol id %d)", h[5], h[6], h[7], h[4])
}

// rejected emits the server's protocol header: "If the server cannot
// support the protocol specified in the protocol header, it MUST respond
// with a valid protocol header and then close the socket" (§4.2.2).
func (c *conn) rejected(h []byte, ts time.Time) {
	rec := &protocols.AMQPRecord{Method: "protocol-header", Sender: "server", ProtocolHeader: formatHeader(h)}
	e := &protocols.Entry{Protocol: protocols.AMQP, Start: ts, ResponseSize: int64(len(h)), AMQP: rec}
	e.Summary = protocols.Summary{Method: rec.Method, Target: c.header, Status: "rejected"}
	c.emit(e)
}
