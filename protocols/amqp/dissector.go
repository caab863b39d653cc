package amqp

import (
	"bytes"
	"encoding/binary"

	"github.com/sondehq/sonde/protocols"
)

// amqpPort is the IANA port of AMQP, used only to tell the peers apart when
// the bytes cannot.
const amqpPort = 5672

// maxDetectFrames is how many frames Detect reads looking for a method that
// only one peer sends.
const maxDetectFrames = 8

type dissector struct{}

// New returns the AMQP 0-9-1 dissector.
func New() protocols.Dissector { return dissector{} }

func (dissector) Protocol() protocols.Protocol { return protocols.AMQP }

// LossCounters names the counters that count loss (protocols.LossCounters).
func (dissector) LossCounters() []string { return counterNames.Loss() }

func (dissector) NewConn(info protocols.ConnInfo, emit protocols.EmitFunc) protocols.Conn {
	return newConn(info, emit)
}

// Detect matches the protocol header a client opens with, or, on a
// connection joined mid-stream, whole frames: a known frame type, a size
// within the default frame_max, frame-end at the offset the size gives, and
// for method frames a known class and method whose arguments decode. The
// first method that only one peer sends (connection.start is the server's,
// basic.publish the client's) says who wrote the bytes.
func (dissector) Detect(prefix []byte, ports protocols.Ports) protocols.Detection {
	need := protocols.Detection{Verdict: protocols.NeedMore}
	no := protocols.Detection{Verdict: protocols.NoMatch}
	if len(prefix) == 0 {
		return need
	}
	if prefix[0] == 'A' {
		n := min(len(prefix), len(protocolHeader))
		switch {
		case !bytes.Equal(prefix[:n], protocolHeader[:n]):
			return no
		case n < len(protocolHeader):
			return need
		}
		return protocols.Detection{Verdict: protocols.Match, FromClient: true}
	}
	p := prefix
	for range maxDetectFrames {
		if len(p) < frameHeaderLen {
			if len(p) == 0 && ports.Src != ports.Dst && (ports.Src == amqpPort || ports.Dst == amqpPort) {
				return protocols.Detection{Verdict: protocols.Match, FromClient: ports.Dst == amqpPort}
			}
			return need
		}
		typ := p[0]
		size := binary.BigEndian.Uint32(p[3:7])
		if uint64(size)+frameOverhead > defaultFrameMax {
			return no
		}
		switch typ {
		case frameMethod:
			if size < 4 {
				return no
			}
			if len(p) >= frameHeaderLen+4 && lookup(binary.BigEndian.Uint16(p[7:]), binary.BigEndian.Uint16(p[9:])) == nil {
				return no
			}
		case frameHeader:
			if size < 14 {
				return no
			}
			if len(p) >= frameHeaderLen+4 && (binary.BigEndian.Uint16(p[7:]) != classBasic || binary.BigEndian.Uint16(p[9:]) != 0) {
				return no
			}
		case frameBody:
		case frameHeartbeat:
			if size != 0 || p[1] != 0 || p[2] != 0 {
				return no
			}
		default:
			return no
		}
		end := frameHeaderLen + int(size)
		if len(p) <= end {
			return need
		}
		if p[end] != frameEnd {
			return no
		}
		if typ == frameMethod {
			m := lookup(binary.BigEndian.Uint16(p[7:]), binary.BigEndian.Uint16(p[9:]))
			if _, err := decodeArgs(m, p[frameHeaderLen+4:end], newLimits(), nil); err != nil {
				return no
			}
			switch m.from {
			case byClient:
				return protocols.Detection{Verdict: protocols.Match, FromClient: true}
			case byServer:
				return protocols.Detection{Verdict: protocols.Match, FromClient: false}
			}
		}
		p = p[end+1:]
	}
	// Frames either peer sends (heartbeats, basic.ack, channel.close, ...)
	// and nothing else: the bytes are AMQP, the port says whose they are.
	return protocols.Detection{Verdict: protocols.Match, FromClient: ports.Src != amqpPort}
}
