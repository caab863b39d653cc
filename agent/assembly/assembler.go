package assembly

import (
	"bytes"
	"net/netip"
	"time"

	"github.com/sondehq/sonde/agent/packet"
	"github.com/sondehq/sonde/protocols"
)

// Assembler puts the segments of many TCP connections back in order and hands
// each connection's bytes to its Stream.
//
// An Assembler is not safe for concurrent use: shard by connection, so that
// both directions of a connection reach the same Assembler, and call every
// method from that shard's goroutine.
type Assembler struct {
	cfg   Config
	f     Factory
	conns map[tuple]*conn
	// lru links the open connections: lru.next is the most recently
	// active, lru.prev the least.
	lru conn
	// closed links the closed connections still tracked, closed.prev the
	// one closed first.
	closed conn
	// holders links the halves that hold out-of-order segments, in the order
	// their current hole appeared: holders.hnext has waited longest.
	holders half
	held    int // bytes charged for held segments, all connections
	nheld   int // held segments, all connections
	open    int // connections whose stream is not closed
	scratch []piece
	stats   Stats
}

// tuple is a connection's two endpoints in a canonical order, so that both
// directions find the connection with one map lookup. It holds no pointers,
// which keeps hashing it cheap and the map out of the garbage collector's way.
type tuple struct {
	lo, hi         [16]byte
	loPort, hiPort uint16
}

func tupleOf(src, dst netip.AddrPort) tuple {
	s, d := src.Addr().As16(), dst.Addr().As16()
	sp, dp := src.Port(), dst.Port()
	if c := bytes.Compare(s[:], d[:]); c > 0 || c == 0 && sp > dp {
		return tuple{d, s, dp, sp}
	}
	return tuple{s, d, sp, dp}
}

// conn is one tracked connection. Once its stream is closed it stays tracked
// for closedLinger, without a stream, so that its last ACKs and
// retransmissions are recognised instead of opening a new stream.
type conn struct {
	key        tuple
	a, b       netip.AddrPort // the endpoints of SideA and SideB
	stream     Stream         // nil once closed
	last       time.Time      // capture time of the newest segment
	prev, next *conn          // Assembler.lru while open, Assembler.closed after
	half       [2]half        // indexed by Side
	held       int            // bytes charged for held segments, both halves
	nheld      int
}

func (c *conn) sideOf(src netip.AddrPort) Side {
	if src == c.a {
		return SideA
	}
	return SideB
}

// closing says whether either side has sent a FIN.
func (c *conn) closing() bool { return c.half[SideA].finSeen || c.half[SideB].finSeen }

func (c *conn) done() bool { return c.half[SideA].finished() && c.half[SideB].finished() }

// reusedBy says whether a SYN without ACK from src with sequence number seq
// starts a new connection on c's 4-tuple, rather than repeating c's own SYN.
func (c *conn) reusedBy(src netip.AddrPort, seq uint32) bool {
	if c.stream == nil || c.closing() {
		return true
	}
	h := &c.half[c.sideOf(src)]
	return h.started && !(h.syn && seq == h.isn)
}

// New returns an Assembler that makes a Stream with f for each connection.
// Fields of cfg that are zero or negative take DefaultConfig's value.
func New(cfg Config, f Factory) *Assembler {
	d := DefaultConfig()
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = d.MaxConns
	}
	if cfg.MaxBufferedPerConn <= 0 {
		cfg.MaxBufferedPerConn = d.MaxBufferedPerConn
	}
	if cfg.MaxBufferedTotal <= 0 {
		cfg.MaxBufferedTotal = d.MaxBufferedTotal
	}
	if cfg.MaxSegmentsPerConn <= 0 {
		cfg.MaxSegmentsPerConn = d.MaxSegmentsPerConn
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = d.IdleTimeout
	}
	a := &Assembler{cfg: cfg, f: f, conns: make(map[tuple]*conn)}
	a.lru.prev, a.lru.next = &a.lru, &a.lru
	a.closed.prev, a.closed.next = &a.closed, &a.closed
	a.holders.hprev, a.holders.hnext = &a.holders, &a.holders
	return a
}

// Stats returns the counters so far.
func (a *Assembler) Stats() Stats {
	s := a.stats
	s.ConnsOpen = a.open
	s.BufferedBytes = a.held
	s.HeldSegments = a.nheld
	return s
}

// closedLinger is how long a closed connection stays tracked (at most
// IdleTimeout): Linux's TIME_WAIT, in which the peers' last segments arrive.
const closedLinger = 60 * time.Second

// maxMissing bounds Segment.Missing, far above any real segment, so that
// offsets cannot overflow whatever a capture claims.
const maxMissing = 1 << 24

// Add processes one segment, captured at seg.Time. seg and its Payload are
// not used after Add returns.
func (a *Assembler) Add(seg *packet.Segment) {
	missing := min(max(seg.Missing, 0), maxMissing)
	a.stats.Segments++
	a.stats.PayloadBytes += uint64(len(seg.Payload))
	a.stats.MissingBytes += uint64(missing)

	syn := seg.Flags&packet.SYN != 0
	ack := seg.Flags&packet.ACK != 0
	k := tupleOf(seg.Src, seg.Dst)
	c := a.conns[k]
	if c != nil && syn && (c.stream == nil || !ack && c.reusedBy(seg.Src, seg.Seq)) {
		// The port was reused: a SYN on a 4-tuple whose connection ended.
		a.stats.PortReuses++
		a.end(c, a.reason(c, protocols.ClosedIdle), seg.Time)
		a.drop(c)
		c = nil
	}
	if c == nil {
		if !syn && (len(seg.Payload)+missing == 0 || seg.Flags&packet.RST != 0) {
			// An ACK, FIN or RST of a connection we never saw carrying
			// data: nothing to reassemble, and no reason to track it.
			a.stats.Unattached++
			return
		}
		c = a.track(k, seg)
	}
	if c.stream == nil {
		a.stats.LateBytes += uint64(len(seg.Payload))
		return
	}
	a.touch(c, seg.Time)
	if seg.Flags&packet.RST != 0 {
		a.end(c, protocols.ClosedRST, seg.Time)
		return
	}

	side := c.sideOf(seg.Src)
	h := &c.half[side]
	seq := seg.Seq
	if syn {
		seq++ // the SYN takes one sequence number before the data
		if !h.started {
			h.start(seq, true)
		}
		// A SYN-ACK also says where the other side's data starts.
		if o := &c.half[1-side]; ack && !o.started {
			o.start(seg.Ack, true)
		}
	} else if !h.started {
		// First seen mid-stream: this side starts with this segment. A bare
		// ACK does not start it, for it may be a keep-alive one byte behind.
		if len(seg.Payload)+missing == 0 && seg.Flags&packet.FIN == 0 {
			return
		}
		h.start(seq, false)
	}
	off := h.offset(seq)
	a.place(h, off, seg.Payload, missing, seg.Time)
	if seg.Flags&packet.FIN != 0 {
		a.fin(h, off+int64(len(seg.Payload)+missing))
	}
	if c.done() {
		a.end(c, protocols.ClosedFIN, seg.Time)
	}
}

// Expire closes the connections that have seen no segment since
// now - IdleTimeout, with reason protocols.ClosedIdle, and gives up waiting
// for holes that have been open as long. now is in capture time.
func (a *Assembler) Expire(now time.Time) {
	cutoff := now.Add(-a.cfg.IdleTimeout)
	for c := a.lru.prev; c != &a.lru && c.last.Before(cutoff); c = a.lru.prev {
		a.stats.ConnsExpired++
		a.end(c, protocols.ClosedIdle, now)
		a.drop(c)
	}
	lingered := now.Add(-min(a.cfg.IdleTimeout, closedLinger))
	for c := a.closed.prev; c != &a.closed && c.last.Before(lingered); c = a.closed.prev {
		a.drop(c)
	}
	// A connection kept alive by keep-alives or by its other direction can
	// wait forever for a segment that was never captured.
	for h := a.holders.hnext; h != &a.holders && h.since.Before(cutoff); h = a.holders.hnext {
		a.stats.HoleTimeouts++
		a.giveUpHole(h, now) // moves h to the back, or out of the list
		a.closeIfDone(h.c, now)
	}
}

// CloseAll ends every connection: the bytes still held are delivered, with a
// Gap for each hole, and every stream is closed with reason, or with
// protocols.ClosedFIN when either side had sent a FIN. Use it at the end of a
// capture; the Assembler is empty, and usable, afterwards.
func (a *Assembler) CloseAll(reason protocols.CloseReason, ts time.Time) {
	for c := a.lru.prev; c != &a.lru; c = a.lru.prev {
		a.end(c, a.reason(c, reason), ts)
		a.drop(c)
	}
	for c := a.closed.prev; c != &a.closed; c = a.closed.prev {
		a.drop(c)
	}
}

// reason is why c ends when nothing more specific is known: a connection
// that one side had finished ended with a FIN.
func (a *Assembler) reason(c *conn, otherwise protocols.CloseReason) protocols.CloseReason {
	if c.closing() {
		return protocols.ClosedFIN
	}
	return otherwise
}

// track starts tracking the connection seg belongs to. When MaxConns are
// tracked it forgets the connection closed first or, if none is closed,
// evicts the least recently active.
func (a *Assembler) track(k tuple, seg *packet.Segment) *conn {
	var c *conn
	if len(a.conns) >= a.cfg.MaxConns {
		if c = a.closed.prev; c == &a.closed {
			c = a.lru.prev
			a.stats.ConnsEvicted++
			a.end(c, protocols.ClosedIdle, seg.Time)
		}
		a.drop(c)
		*c = conn{} // reuse it: a flood of new connections allocates nothing here
	} else {
		c = new(conn)
	}
	c.key = k
	syn := seg.Flags&packet.SYN != 0
	if syn && seg.Flags&packet.ACK != 0 {
		// The SYN was not captured: its sender is the SYN-ACK's receiver.
		c.a, c.b = seg.Dst, seg.Src
	} else {
		c.a, c.b = seg.Src, seg.Dst
	}
	for i := range c.half {
		c.half[i].c = c
		c.half[i].side = Side(i)
	}
	a.conns[k] = c
	a.link(&a.lru, c)
	a.open++
	a.stats.Conns++
	c.stream = a.f.NewStream(Key{A: c.a, B: c.b}, syn, seg.Time)
	return c
}

// touch marks the open connection c as the most recently active.
func (a *Assembler) touch(c *conn, ts time.Time) {
	c.last = ts
	if a.lru.next != c {
		unlink(c)
		a.link(&a.lru, c)
	}
}

// link puts c at the front of list.
func (a *Assembler) link(list, c *conn) {
	c.prev, c.next = list, list.next
	list.next.prev = c
	list.next = c
}

func unlink(c *conn) {
	c.prev.next, c.next.prev = c.next, c.prev
	c.prev, c.next = nil, nil
}

// end delivers what c still holds, with a Gap for each hole, and closes its
// stream. c stays tracked, closed, from ts on.
func (a *Assembler) end(c *conn, reason protocols.CloseReason, ts time.Time) {
	if c.stream == nil {
		return
	}
	for i := range c.half {
		a.flush(&c.half[i], ts)
	}
	s := c.stream
	c.stream = nil
	a.open--
	c.last = ts
	unlink(c)
	a.link(&a.closed, c)
	s.Close(reason, ts)
}

// closeIfDone closes c once both sides have delivered their FIN.
func (a *Assembler) closeIfDone(c *conn, ts time.Time) {
	if c.stream != nil && c.done() {
		a.end(c, protocols.ClosedFIN, ts)
	}
}

// drop stops tracking c, which end has closed.
func (a *Assembler) drop(c *conn) {
	unlink(c)
	delete(a.conns, c.key)
}
