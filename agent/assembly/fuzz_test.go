package assembly

import (
	"cmp"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sondehq/sonde/agent/packet"
	"github.com/sondehq/sonde/protocols"
)

// FuzzAssembler cuts the input into the two directions of a few connections,
// sends each as segments of random sizes, in random order, with duplicates,
// overlaps, corrupted copies, keep-alives, bytes cut off by a snap length,
// resets, idle expiry and small caps, all chosen by seed. Every byte a stream
// receives must be the first copy of that byte that reached the assembler; a
// gap may only cover bytes that had not arrived (or whose first copy was not
// captured); at close a stream must have been given every byte up to the
// furthest one that arrived; and the buffers never pass their caps.
func FuzzAssembler(f *testing.F) {
	f.Add([]byte("GET / HTTP/1.1\r\nHost: example\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"), int64(1))
	f.Add([]byte("*1\r\n$4\r\nPING\r\n+PONG\r\n"), int64(7))
	f.Add(make([]byte, 5000), int64(42))
	f.Add([]byte{}, int64(3))
	// Without -fuzz these run as a test: every mode the seed picks, on a
	// stream long enough to be cut many ways.
	text := []byte(strings.Repeat("GET /items/42 HTTP/1.1\r\nHost: shop\r\n\r\n", 40))
	for seed := range int64(200) {
		f.Add(text[:int(seed)*7%len(text)], seed)
	}
	f.Fuzz(func(t *testing.T, data []byte, seed int64) {
		if len(data) > 1<<16 {
			data = data[:1<<16]
		}
		fuzzOnce(t, data, uint64(seed))
	})
}

// fseg is a segment with what the test knows of it: whose, and at which
// offset of that side's bytes it starts (-1: a SYN).
type fseg struct {
	conn, side int
	off        int
	seg        packet.Segment
}

type fconn struct {
	addr   [2]netip.AddrPort // client, server
	data   [2][]byte
	isn    [2]uint32
	stream *fstream // the live stream of the 4-tuple, if any
}

// fstream is a Stream that checks what it receives against the arrivals.
type fstream struct {
	t      *testing.T
	h      *fharness
	conn   int
	sideOf [2]int // Side -> client (0) or server (1)
	closed bool
	sides  [2]fside // by client/server
}

type fside struct {
	started bool
	start   int
	pos     int   // next offset the stream expects
	maxEnd  int   // end of the furthest bytes (or FIN) that arrived
	first   []int // first copy of each byte from start on: unseen, notCaptured, or the byte
}

func (f *fside) firstAt(o int) int {
	if o < f.start || o-f.start >= len(f.first) {
		return unseen
	}
	return f.first[o-f.start]
}

func (f *fside) setFirst(o, v int) {
	for o-f.start >= len(f.first) {
		f.first = append(f.first, unseen)
	}
	f.first[o-f.start] = v
}

const (
	unseen      = -1
	notCaptured = 256
)

type fharness struct {
	t     *testing.T
	conns []*fconn
	cur   *fseg
	total int // bytes the streams received as data or gaps
}

func (h *fharness) NewStream(key Key, sawSYN bool, ts time.Time) Stream {
	fs := h.cur
	c := h.conns[fs.conn]
	if c.stream != nil && !c.stream.closed {
		h.t.Fatalf("conn %d: new stream while the last one is open", fs.conn)
	}
	s := &fstream{t: h.t, h: h, conn: fs.conn}
	switch key.A {
	case c.addr[0]:
		s.sideOf = [2]int{0, 1}
	case c.addr[1]:
		s.sideOf = [2]int{1, 0}
	default:
		h.t.Fatalf("stream key %v is not conn %d's", key, fs.conn)
	}
	c.stream = s
	s.arrive(fs)
	return s
}

// arrive records a segment of the stream's connection, mirroring when the
// assembler starts each side.
func (s *fstream) arrive(fs *fseg) {
	g := &fs.seg
	if g.Flags&packet.RST != 0 {
		return
	}
	side := &s.sides[fs.side]
	n := len(g.Payload) + g.Missing
	switch {
	case g.Flags&packet.SYN != 0:
		side.begin(0)
		if g.Flags&packet.ACK != 0 {
			s.sides[1-fs.side].begin(0)
		}
		return
	case !side.started && (n > 0 || g.Flags&packet.FIN != 0):
		side.begin(fs.off)
	case !side.started:
		return
	}
	for i := range n {
		o := fs.off + i
		if o < side.start || side.firstAt(o) != unseen {
			continue
		}
		if i < len(g.Payload) {
			side.setFirst(o, int(g.Payload[i]))
		} else {
			side.setFirst(o, notCaptured)
		}
	}
	if n > 0 || g.Flags&packet.FIN != 0 {
		side.maxEnd = max(side.maxEnd, fs.off+n)
	}
}

func (f *fside) begin(off int) {
	if !f.started {
		f.started, f.start, f.pos, f.maxEnd = true, off, off, off
	}
}

func (s *fstream) side(sd Side) *fside {
	if s.closed {
		s.t.Fatalf("conn %d: a call after Close", s.conn)
	}
	f := &s.sides[s.sideOf[sd]]
	if !f.started {
		s.t.Fatalf("conn %d: bytes for side %d, which has not started", s.conn, s.sideOf[sd])
	}
	return f
}

func (s *fstream) Data(sd Side, data []byte, ts time.Time) {
	f := s.side(sd)
	if len(data) == 0 {
		s.t.Fatalf("conn %d: empty Data", s.conn)
	}
	for i, b := range data {
		o := f.pos + i
		if f.firstAt(o) != int(b) {
			s.t.Fatalf("conn %d side %d: delivered %q at offset %d, first copy there is %v",
				s.conn, s.sideOf[sd], b, o, f.firstAt(o))
		}
	}
	f.pos += len(data)
	s.h.total += len(data)
}

func (s *fstream) Gap(sd Side, n int, ts time.Time) {
	f := s.side(sd)
	if n <= 0 {
		s.t.Fatalf("conn %d: Gap(%d)", s.conn, n)
	}
	if f.pos+n > f.maxEnd {
		s.t.Fatalf("conn %d side %d: gap of %d at %d passes the furthest byte that arrived, %d", s.conn, s.sideOf[sd], n, f.pos, f.maxEnd)
	}
	for o := f.pos; o < f.pos+n; o++ {
		if v := f.firstAt(o); v != unseen && v != notCaptured {
			s.t.Fatalf("conn %d side %d: gap of %d at %d covers offset %d, which arrived", s.conn, s.sideOf[sd], n, f.pos, o)
		}
	}
	f.pos += n
	s.h.total += n
}

func (s *fstream) Close(reason protocols.CloseReason, ts time.Time) {
	for i := range s.sides {
		if f := &s.sides[i]; f.started && f.pos != f.maxEnd {
			s.t.Fatalf("conn %d side %d closed (%v) at offset %d; bytes arrived up to %d", s.conn, i, reason, f.pos, f.maxEnd)
		}
	}
	s.closed = true
}

func fuzzOnce(t *testing.T, data []byte, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, uint64(len(data))))
	cfg := Config{
		MaxConns:           pick(rng, 0, 1, 2, 3),
		MaxBufferedPerConn: pick(rng, 0, 1+rng.IntN(2048), SegmentOverhead+rng.IntN(256)),
		MaxBufferedTotal:   pick(rng, 0, 1+rng.IntN(4096), 2*SegmentOverhead+rng.IntN(256)),
		MaxSegmentsPerConn: pick(rng, 0, 1+rng.IntN(8)),
		IdleTimeout:        time.Duration(pick(rng, 0, 20+rng.IntN(200))) * time.Millisecond,
	}
	h := &fharness{t: t}
	var arrivals [][]fseg
	for i := range 1 + rng.IntN(3) {
		c := &fconn{
			addr: [2]netip.AddrPort{
				netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, 0, 1}), uint16(40000+i)),
				netip.MustParseAddrPort("10.0.0.2:80"),
			},
		}
		split := rng.IntN(len(data) + 1)
		c.data = [2][]byte{data[:split], data[split:]}
		for s := range c.isn {
			c.isn[s] = rng.Uint32()
			if rng.IntN(3) == 0 {
				c.isn[s] = -uint32(1 + rng.IntN(64)) // wraps within the stream
			}
		}
		h.conns = append(h.conns, c)
		arrivals = append(arrivals, fuzzConn(rng, i, c))
	}
	// Interleave the connections, each keeping its own order.
	var all []fseg
	for {
		var open []int
		for i, a := range arrivals {
			if len(a) > 0 {
				open = append(open, i)
			}
		}
		if len(open) == 0 {
			break
		}
		i := open[rng.IntN(len(open))]
		all = append(all, arrivals[i][0])
		arrivals[i] = arrivals[i][1:]
	}

	a := New(cfg, h)
	now := t0
	for i := range all {
		fs := &all[i]
		now = now.Add(time.Duration(rng.IntN(10)) * time.Millisecond)
		fs.seg.Time = now
		c := h.conns[fs.conn]
		if c.stream != nil && !c.stream.closed {
			c.stream.arrive(fs)
		}
		h.cur = fs
		a.Add(&fs.seg)
		checkHeld(t, a)
		if rng.IntN(8) == 0 {
			a.Expire(now)
			checkHeld(t, a)
		}
	}
	a.CloseAll(protocols.ClosedEnd, now)
	checkHeld(t, a)
	st := a.Stats()
	if st.ConnsOpen != 0 || st.BufferedBytes != 0 || st.HeldSegments != 0 {
		t.Fatalf("after CloseAll: %+v", st)
	}
	if got := st.DeliveredBytes + st.GapBytes; got != uint64(h.total) {
		t.Fatalf("stats count %d bytes delivered or gapped, the streams got %d", got, h.total)
	}
}

// fuzzConn makes the segments of one connection in the order they arrive.
func fuzzConn(rng *rand.Rand, ci int, c *fconn) []fseg {
	maxSeg := 1 + rng.IntN(64)
	mk := func(side, off int, payload []byte, missing int, flags packet.Flags) fseg {
		g := packet.Segment{
			Src: c.addr[side], Dst: c.addr[1-side],
			Seq: c.isn[side] + 1 + uint32(off), Ack: c.isn[1-side] + 1,
			Flags: flags | packet.ACK, Payload: payload, Missing: missing,
		}
		return fseg{conn: ci, side: side, off: off, seg: g}
	}
	// Each side's segments in the order that side sent them.
	var sent [2][]fseg
	for side := range 2 {
		d := c.data[side]
		for pos := 0; pos < len(d); {
			n := min(1+rng.IntN(maxSeg), len(d)-pos)
			payload, missing := d[pos:pos+n], 0
			if rng.IntN(8) == 0 { // a snap length cut it short
				k := rng.IntN(n + 1)
				payload, missing = payload[:k], n-k
			}
			sent[side] = append(sent[side], mk(side, pos, payload, missing, 0))
			pos += n
			switch rng.IntN(12) {
			case 0, 1: // a retransmission of any range sent so far
				from := rng.IntN(pos)
				to := from + 1 + rng.IntN(min(pos-from, 2*maxSeg))
				dup := d[from:to]
				if rng.IntN(3) == 0 { // with different bytes
					dup = slices.Clone(dup)
					for i := range dup {
						dup[i] ^= byte(1 + rng.IntN(255))
					}
				}
				sent[side] = append(sent[side], mk(side, from, dup, 0, 0))
			case 2: // a keep-alive, maybe with its garbage byte
				ka := mk(side, pos-1, nil, 0, 0)
				if rng.IntN(2) == 0 {
					ka.seg.Payload = []byte{0}
				}
				sent[side] = append(sent[side], ka)
			case 3: // a bare ACK
				sent[side] = append(sent[side], mk(side, pos, nil, 0, 0))
			}
		}
		switch rng.IntN(4) {
		case 0: // no FIN
		case 1:
			sent[side] = append(sent[side], mk(side, len(d), nil, 0, packet.FIN))
		default:
			if k := len(sent[side]) - 1; k >= 0 && sent[side][k].off+len(sent[side][k].seg.Payload)+sent[side][k].seg.Missing == len(d) {
				sent[side][k].seg.Flags |= packet.FIN
			} else {
				sent[side] = append(sent[side], mk(side, len(d), nil, 0, packet.FIN))
			}
		}
	}
	// Both sides in one sending order, then displaced by up to window places.
	var order []fseg
	for len(sent[0])+len(sent[1]) > 0 {
		side := rng.IntN(2)
		if len(sent[side]) == 0 {
			side = 1 - side
		}
		order = append(order, sent[side][0])
		sent[side] = sent[side][1:]
	}
	window := float64(pick(rng, 0, 1, 3, 10, len(order)))
	keys := make([]float64, len(order))
	for i := range keys {
		keys[i] = float64(i) + rng.Float64()*window
	}
	idx := make([]int, len(order))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(x, y int) int { return cmp.Compare(keys[x], keys[y]) })
	arrivals := make([]fseg, 0, len(order)+3)
	switch rng.IntN(3) {
	case 0: // the handshake
		syn := mk(0, -1, nil, 0, packet.SYN)
		syn.seg.Flags &^= packet.ACK
		arrivals = append(arrivals, syn, mk(1, -1, nil, 0, packet.SYN))
	case 1: // only the SYN-ACK
		arrivals = append(arrivals, mk(1, -1, nil, 0, packet.SYN))
	}
	for _, i := range idx {
		arrivals = append(arrivals, order[i])
	}
	if rng.IntN(8) == 0 {
		side := rng.IntN(2)
		rst := mk(side, 0, nil, 0, packet.RST)
		arrivals = slices.Insert(arrivals, rng.IntN(len(arrivals)+1), rst)
	}
	return arrivals
}

func pick(rng *rand.Rand, choices ...int) int { return choices[rng.IntN(len(choices))] }
