package http2

import (
	"github.com/sondehq/sonde/protocols"
)

// clientPreface opens every HTTP/2 connection (RFC 9113 §3.4).
const clientPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

// Frame types and flags, as numbered by RFC 9113 §6.
const (
	frameHeaderLen = 9

	typeData         = 0x0
	typeHeaders      = 0x1
	typePriority     = 0x2
	typeRSTStream    = 0x3
	typeSettings     = 0x4
	typePushPromise  = 0x5
	typePing         = 0x6
	typeGoAway       = 0x7
	typeWindowUpdate = 0x8
	typeContinuation = 0x9

	flagAck        = 0x1
	flagEndStream  = 0x1
	flagEndHeaders = 0x4
	flagPadded     = 0x8
	flagPriority   = 0x20
)

const (
	// defaultMaxFrameSize is SETTINGS_MAX_FRAME_SIZE until the receiver
	// announces more (RFC 9113 §6.5.2). Larger frames are shown with a
	// warning, since their receiver may have accepted them.
	defaultMaxFrameSize = 16384
	// maxFrameSize is the largest frame Sonde buffers, whatever a peer
	// announces: frames are parsed whole, and the pipeline keeps at most
	// 1 MiB of unconsumed bytes per direction. Larger ones end the connection.
	maxFrameSize = 1<<20 - frameHeaderLen
	// detectLimit is how many bytes Detect looks at before it gives up.
	detectLimit = 64 << 10
)

type dissector struct{}

// New returns the HTTP/2 dissector. Its connections emit HTTP/2 entries and,
// for streams whose content-type is application/grpc*, gRPC entries.
func New() protocols.Dissector { return dissector{} }

func (dissector) Protocol() protocols.Protocol { return protocols.HTTP2 }

// LossCounters names the counters that count loss (protocols.LossCounters).
func (dissector) LossCounters() []string { return counterNames.Loss() }

// Detect recognises the client preface, or, on a connection whose start was
// not captured (or whose server spoke first), a run of frame headers that a
// real peer would send. It prefers NoMatch to a guess.
func (dissector) Detect(prefix []byte, ports protocols.Ports) protocols.Detection {
	n := min(len(prefix), len(clientPreface))
	if string(prefix[:n]) == clientPreface[:n] {
		if n < len(clientPreface) {
			return protocols.Detection{Verdict: protocols.NeedMore}
		}
		return protocols.Detection{Verdict: protocols.Match, FromClient: true}
	}
	return detectFrames(prefix, ports)
}

// role is what a frame tells about its sender.
type role uint8

const (
	roleUnknown role = iota
	roleClient
	roleServer
)

func detectFrames(p []byte, ports protocols.Ports) protocols.Detection {
	frames, off := 0, 0
	hint, settingsFirst := roleUnknown, false
	for {
		if len(p)-off < frameHeaderLen {
			if !partialHeaderPlausible(p[off:]) {
				return protocols.Detection{Verdict: protocols.NoMatch}
			}
			break
		}
		h := p[off : off+frameHeaderLen]
		length, ok := plausibleHeader(h, defaultMaxFrameSize)
		if !ok || (frames == 0 && h[3] == typeContinuation) {
			return protocols.Detection{Verdict: protocols.NoMatch}
		}
		end := off + frameHeaderLen + int(length)
		if end > len(p) {
			break
		}
		payload := p[off+frameHeaderLen : end]
		if frames == 0 && h[3] == typeSettings && h[4]&flagAck == 0 {
			settingsFirst = true
		}
		if hint == roleUnknown {
			hint = frameRole(h, payload)
		}
		frames++
		off = end
	}
	// One frame is enough when it is a server's opening SETTINGS, or a
	// header block whose first field names its sender and whose frame ends
	// exactly with the prefix.
	strong := frames >= 2 || (frames == 1 && (settingsFirst || (hint != roleUnknown && off == len(p))))
	if !strong {
		if len(p) >= detectLimit {
			return protocols.Detection{Verdict: protocols.NoMatch}
		}
		return protocols.Detection{Verdict: protocols.NeedMore}
	}
	fromClient := ports.Src > ports.Dst
	switch {
	case hint == roleClient:
		fromClient = true
	case hint == roleServer:
		fromClient = false
	case settingsFirst:
		// Without the preface, a SETTINGS frame first is the server's.
		fromClient = false
	}
	return protocols.Detection{Verdict: protocols.Match, FromClient: fromClient}
}

// plausibleHeader checks a frame header against what RFC 9113 §6 allows
// each frame type (stream 0 or not, fixed lengths, defined flags), and
// returns its length. Frame types beyond §6 are refused: they are legal, but
// too weak a sign to recognise a connection or find a frame boundary by.
func plausibleHeader(h []byte, maxLen uint32) (uint32, bool) {
	length := uint32(h[0])<<16 | uint32(h[1])<<8 | uint32(h[2])
	typ, flags := h[3], h[4]
	if h[5]&0x80 != 0 || length > maxLen {
		return 0, false
	}
	stream := uint32(h[5])<<24 | uint32(h[6])<<16 | uint32(h[7])<<8 | uint32(h[8])
	onStream := stream != 0
	ok := false
	switch typ {
	case typeData:
		ok = onStream && flags&^(flagEndStream|flagPadded) == 0
	case typeHeaders:
		ok = onStream && flags&^(flagEndStream|flagEndHeaders|flagPadded|flagPriority) == 0
	case typePriority:
		ok = onStream && flags == 0 && length == 5
	case typeRSTStream:
		ok = onStream && flags == 0 && length == 4
	case typeSettings:
		ok = !onStream && flags&^flagAck == 0 && length%6 == 0 && (flags == 0 || length == 0)
	case typePushPromise:
		ok = onStream && flags&^(flagEndHeaders|flagPadded) == 0 && length >= 4
	case typePing:
		ok = !onStream && flags&^flagAck == 0 && length == 8
	case typeGoAway:
		ok = !onStream && flags == 0 && length >= 8
	case typeWindowUpdate:
		ok = flags == 0 && length == 4
	case typeContinuation:
		ok = onStream && flags&^flagEndHeaders == 0
	}
	return length, ok
}

// partialHeaderPlausible checks the first bytes of a frame header that is
// not complete yet.
func partialHeaderPlausible(h []byte) bool {
	if len(h) >= 3 && uint32(h[0])<<16|uint32(h[1])<<8|uint32(h[2]) > defaultMaxFrameSize {
		return false
	}
	if len(h) >= 4 && h[3] > typeContinuation {
		return false
	}
	if len(h) >= 6 && h[5]&0x80 != 0 {
		return false
	}
	return true
}

// frameRole tells from a frame who sent it, when it can: pushes and
// even-numbered streams are the server's; a header block that starts with a
// request pseudo-header is the client's, with :status the server's.
func frameRole(h, payload []byte) role {
	typ, flags := h[3], h[4]
	stream := uint32(h[5])<<24 | uint32(h[6])<<16 | uint32(h[7])<<8 | uint32(h[8])
	if typ == typePushPromise {
		return roleServer
	}
	if typ != typeHeaders {
		return roleUnknown
	}
	if stream%2 == 0 {
		return roleServer
	}
	if flags&flagPadded != 0 {
		if len(payload) == 0 {
			return roleUnknown
		}
		payload = payload[1:]
	}
	if flags&flagPriority != 0 {
		if len(payload) < 5 {
			return roleUnknown
		}
		payload = payload[5:]
	}
	for len(payload) > 0 && payload[0]&0xe0 == 0x20 {
		// Skip dynamic table size updates.
		var err error
		if _, payload, err = readInt(payload, 5); err != nil {
			return roleUnknown
		}
	}
	if len(payload) == 0 {
		return roleUnknown
	}
	var idx uint64
	var err error
	switch b := payload[0]; {
	case b&0x80 != 0:
		idx, _, err = readInt(payload, 7)
	case b&0xc0 == 0x40:
		idx, _, err = readInt(payload, 6)
	default:
		idx, _, err = readInt(payload, 4)
	}
	switch {
	case err != nil:
		return roleUnknown
	case idx >= 1 && idx <= 7: // :authority, :method, :path, :scheme
		return roleClient
	case idx >= 8 && idx <= 14: // :status
		return roleServer
	}
	return roleUnknown
}
