package kafka

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sondehq/sonde/protocols"
	"github.com/sondehq/sonde/protocols/internal/bin"
)

// half is the state of one direction.
type half struct {
	// buf collects the frame being read when it did not arrive in one
	// piece: its 4-byte length, then up to want bytes in all.
	buf  []byte
	want int
	// size is the frame's length on the wire, length field included.
	size int
	// skip counts bytes of the current frame still to pass over unread:
	// the part of an oversized frame beyond keepPrefix, or the part after
	// a gap.
	skip  int
	over  bool
	gap   bool
	start time.Time
	// lost is set when the parser does not know where the next frame
	// starts (joined mid-stream, or after a gap of unknown size).
	lost bool
	// budget is Options.Budget, which buf's capacity beyond keepPrefix is
	// drawn from (held); starved says the frame was passed over because
	// the budget was spent.
	budget  *protocols.Budget
	held    int
	starved bool
}

func (h *half) reset() {
	h.buf = h.buf[:0]
	if cap(h.buf) > keepPrefix {
		h.buf = nil // do not hold a large frame's buffer between frames
		h.budget.Release(h.held)
		h.held = 0
	}
	h.want, h.size, h.skip = 0, 0, 0
	h.over, h.gap, h.starved = false, false, false
}

// grow makes room in buf for need bytes, drawing what goes beyond
// keepPrefix from the budget; false when the budget cannot give it.
func (h *half) grow(need int) bool {
	if need <= cap(h.buf) {
		return true
	}
	grown := min(max(2*cap(h.buf), need, 512), h.want)
	extra := max(grown-keepPrefix, 0) - h.held
	if !h.budget.Reserve(extra) {
		return false
	}
	h.held += max(extra, 0)
	h.buf = append(make([]byte, 0, grown), h.buf...)
	return true
}

// collect adds the front of p to the frame being collected and reports how
// many bytes it took and whether the frame is now complete.
func (c *conn) collect(dir protocols.Direction, h *half, p []byte) (int, bool, error) {
	n := 0
	if h.want == 0 {
		n = min(4-len(h.buf), len(p))
		h.buf = append(h.buf, p[:n]...)
		if len(h.buf) < 4 {
			return n, false, nil
		}
		size := int(binary.BigEndian.Uint32(h.buf))
		if err := c.checkSize(dir, size); err != nil {
			h.reset()
			if c.trusted {
				return n, false, err
			}
			h.lost = true
			return n, false, nil
		}
		keep := size
		if size > decodeCap {
			keep = keepPrefix
			h.over = true
			c.d.count(CountFrameOverCap)
		}
		h.size = 4 + size
		h.want = 4 + keep
		// buf grows as bytes arrive, not to what the length claims.
		h.skip = size - keep
	}
	if len(h.buf) < h.want {
		take := min(h.want-len(h.buf), len(p)-n)
		for !h.grow(len(h.buf) + take) {
			// A response answers the oldest waiting request: only a
			// request makes room by giving up older ones.
			if dir == protocols.ClientToServer && c.evictForBudget() {
				continue
			}
			// Nothing here to give up: the frame is passed over, and
			// shown from what was collected of it.
			c.d.count(CountBudgetCut)
			h.starved = true
			h.skip += h.want - len(h.buf)
			h.want = len(h.buf)
			take = 0
			break
		}
		h.buf = append(h.buf, p[n:n+take]...)
		n += take
		if len(h.buf) < h.want {
			return n, false, nil
		}
	}
	take := min(h.skip, len(p)-n)
	h.skip -= take
	n += take
	return n, h.skip == 0, nil
}

// partial says why the collected frame cannot be decoded, or "" when it can.
func (h *half) partial() string {
	switch {
	case h.gap:
		return partialGap
	case h.starved:
		return partialBudget
	case h.over:
		return fmt.Sprintf("not decoded: its %d bytes exceed the %d MiB decode cap", h.size, decodeCap>>20)
	}
	return ""
}

// overMessageCap says why a frame is not decoded when it exceeds messageCap
// and carries no records, or returns "".
func (c *conn) overMessageCap(key int16, size int, response bool) string {
	if size <= messageCap || carriesRecords(key, response) {
		return ""
	}
	c.d.count(CountFrameOverCap)
	return fmt.Sprintf("not decoded: its %d bytes exceed the %d MiB cap for messages without records", size, messageCap>>20)
}

// checkSize applies the spec's bounds to a frame's length field.
func (c *conn) checkSize(dir protocols.Direction, size int) error {
	lo := minRequest
	if dir == protocols.ServerToClient {
		lo = 4 // a correlation ID
		if c.rawToken != nil {
			lo = 0 // a raw SASL reply may be empty
		}
	}
	if size < lo || size > maxFrame {
		return protocols.Malformed(protocols.Kafka, codeFrameLength,
			fmt.Sprintf("%s frame length %d outside [%d, %d]", dir, size, lo, maxFrame))
	}
	return nil
}

// scan looks for the start of a frame after the parser lost its place. It
// returns how many bytes of p to drop and whether a frame starts there; when
// none does yet, it keeps the bytes from where one could still begin.
func (c *conn) scan(dir protocols.Direction, p []byte) (int, bool) {
	at := c.requestAt
	if dir == protocols.ServerToClient {
		at = c.responseAt
	}
	for i := range p {
		switch at(p[i:]) {
		case protocols.Match:
			return i, true
		case protocols.NeedMore:
			return i, false
		}
	}
	return len(p), false
}

// requestAt says whether a request starts at p[0], when the parser does not
// know where frames start. Kafka bodies are full of small big-endian
// integers that look like headers, so a candidate must decode and be
// followed by the end of the bytes at hand or by another candidate; it must
// have a client ID, which every client sends. Candidates longer than
// keepPrefix are not waited for.
func (c *conn) requestAt(p []byte) protocols.Verdict {
	if v := c.d.requestShape(p); v != protocols.Match {
		return v
	}
	if len(p) < requestProbe || int16(binary.BigEndian.Uint16(p[12:])) < 1 {
		return protocols.NoMatch
	}
	end := 4 + int(binary.BigEndian.Uint32(p))
	if end > len(p) {
		if end <= keepPrefix {
			return protocols.NeedMore
		}
		return protocols.NoMatch
	}
	h, ok := c.d.parseRequestHeader(p[4:end])
	if !ok || c.decode(h.req, p[4+h.n:end]) != nil {
		return protocols.NoMatch
	}
	if end == len(p) {
		return protocols.Match
	}
	return c.d.requestShape(p[end:])
}

// responseAt says whether a response starts at p[0], when the parser does
// not know where frames start. A correlation ID that a waiting request
// carries is convincing; without waiting requests, the frame must end
// exactly where the bytes at hand do or where another plausible response
// begins, since whole responses are written at once.
func (c *conn) responseAt(p []byte) protocols.Verdict {
	if v := responseShape(p); v != protocols.Match {
		return v
	}
	if len(c.pending) > 0 {
		if c.pending[int32(binary.BigEndian.Uint32(p[4:]))] != nil {
			return protocols.Match
		}
		return protocols.NoMatch
	}
	end := 4 + int(binary.BigEndian.Uint32(p))
	switch {
	case end == len(p):
		return protocols.Match
	case end > len(p):
		if end <= keepPrefix {
			return protocols.NeedMore
		}
		return protocols.NoMatch
	}
	return responseShape(p[end:])
}

// requestHeader is a parsed request header.
//
//	RequestHeader v0 => request_api_key request_api_version correlation_id
//	RequestHeader v1 => ... client_id (NULLABLE_STRING, never compact)
//	RequestHeader v2 => ... client_id TAG_BUFFER   (flexible versions, KIP-482)
type requestHeader struct {
	key, version int16
	corr         int32
	clientID     string
	// n is the header's length: the body starts there.
	n   int
	req kmsg.Request
}

func (d *Dissector) parseRequestHeader(p []byte) (requestHeader, bool) {
	var h requestHeader
	r := reader{bin.NewReader(p)}
	h.key, h.version, h.corr = r.Int16(), r.Int16(), r.Int32()
	if !r.Ok() || !d.knownVersion(h.key, h.version) {
		return h, false
	}
	h.req = kmsg.RequestForKey(h.key)
	h.req.SetVersion(h.version)
	if !headerV0(h.key, h.version) {
		if l := r.Int16(); l >= 0 {
			h.clientID = string(r.Span(int(l)))
		} else if l != -1 {
			return h, false
		}
		if h.req.IsFlexible() {
			r.skipTags()
		}
	}
	h.n = len(p) - r.Len()
	return h, r.Ok()
}
