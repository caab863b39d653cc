package assembly

import (
	"bytes"
	"slices"
	"time"
)

// SegmentOverhead is what each held segment is charged beyond its payload
// against MaxBufferedPerConn and MaxBufferedTotal: its bookkeeping and the
// allocator's rounding.
const SegmentOverhead = 64

// keepPieces is the capacity of a drained piece list that is kept for reuse;
// a larger one is released so that an idle connection does not pin it.
const keepPieces = 16

// half is one direction of a connection: the bytes one side sent.
//
// Positions are offsets from the first byte this side was seen sending, in 64
// bits, so that ordering survives sequence number wraparound (see offset).
type half struct {
	c    *conn
	side Side
	// started: the sequence number of the first byte (base) is known.
	started bool
	// syn: base came from a SYN (or a SYN-ACK's acknowledgement), isn is the
	// SYN's sequence number.
	syn  bool
	isn  uint32
	base uint32
	// next is the offset of the next byte to deliver: everything before it
	// was delivered or reported as a gap.
	next int64
	// finSeen: a FIN was seen; finOff is its offset, the end of this side.
	finSeen bool
	finOff  int64
	// pieces are the held out-of-order bytes: sorted, disjoint, each after next.
	pieces []piece
	// since is when the hole before pieces[0] started waiting.
	since        time.Time
	hprev, hnext *half // Assembler.holders, while pieces is not empty
}

// piece is a run of held bytes: captured data, or, when data is nil, n bytes
// that were on the wire but not captured.
type piece struct {
	off  int64
	n    int
	data []byte
}

func (p *piece) end() int64 { return p.off + int64(p.n) }

// cost is what p is charged against the buffer caps.
func (p *piece) cost() int { return len(p.data) + SegmentOverhead }

func (h *half) start(seq uint32, syn bool) {
	h.started, h.syn, h.base = true, syn, seq
	h.isn = seq - 1
}

// offset converts a sequence number to an offset, taking the nearer of its
// two readings around next: numbers up to 2^31 ahead of next are ahead.
func (h *half) offset(seq uint32) int64 {
	nextSeq := h.base + uint32(h.next)
	return h.next + int64(int32(seq-nextSeq))
}

func (h *half) finished() bool { return h.finSeen && h.next >= h.finOff }

func (h *half) other() *half { return &h.c.half[1-h.side] }

// place takes the bytes of one segment that start at offset off: data, then
// missing bytes that were not captured.
func (a *Assembler) place(h *half, off int64, data []byte, missing int, ts time.Time) {
	n := int64(len(data) + missing)
	if n == 0 {
		if off == h.next-1 {
			a.stats.KeepAlives++
		}
		return
	}
	end := off + n
	if h.finSeen && end > h.finOff {
		if off >= h.finOff {
			a.stats.LateBytes += uint64(len(data))
			return
		}
		over := int(end - h.finOff)
		om := min(over, missing)
		missing -= om
		over -= om
		a.stats.LateBytes += uint64(over)
		data = data[:len(data)-over]
		end = h.finOff
	}
	if n == 1 && off == h.next-1 {
		a.stats.KeepAlives++
		return
	}
	for {
		if end <= h.next {
			a.stats.RetransmittedBytes += uint64(len(data))
			return
		}
		if off < h.next {
			t := int(h.next - off)
			a.stats.RetransmittedBytes += uint64(min(t, len(data)))
			data, missing = cut(data, missing, t)
			off = h.next
		}
		if off == h.next {
			a.advance(h, data, missing, ts)
			return
		}
		if a.hold(h, off, data, missing, ts) {
			return
		}
		// A cap gave up on a hole and next moved: place the bytes again.
	}
}

// cut drops the first k bytes of data followed by missing bytes.
func cut(data []byte, missing, k int) ([]byte, int) {
	if k <= len(data) {
		return data[k:], missing
	}
	return nil, missing - (k - len(data))
}

// advance delivers bytes that start at next, where they meet the held pieces
// the first copy wins, then the held pieces that became contiguous.
func (a *Assembler) advance(h *half, data []byte, missing int, ts time.Time) {
	i := 0 // pieces before i are delivered
	for len(data)+missing > 0 {
		n := len(data) + missing
		if i == len(h.pieces) || h.pieces[i].off >= h.next+int64(n) {
			a.emit(h, data, missing, ts)
			break
		}
		p := &h.pieces[i]
		k := int(p.off - h.next)
		a.emit(h, data[:min(k, len(data))], max(k-len(data), 0), ts)
		data, missing = cut(data, missing, k)
		ov := min(len(data)+missing, p.n)
		a.overlap(p.data, data[:min(ov, len(data))])
		data, missing = cut(data, missing, ov)
		a.emitPiece(h, p, ts)
		i++
	}
	a.forget(h, a.emitRun(h, i, ts), ts)
}

// overlap accounts for new bytes that arrived where bytes were held already,
// old being the held data at the same offsets (nil: held as not captured).
// The held copy is kept.
func (a *Assembler) overlap(old, dup []byte) {
	a.stats.RetransmittedBytes += uint64(len(dup))
	if old != nil && !bytes.Equal(old[:len(dup)], dup) {
		a.stats.OverlapConflicts++
	}
}

func (a *Assembler) emit(h *half, data []byte, missing int, ts time.Time) {
	if len(data) > 0 {
		h.next += int64(len(data))
		a.stats.DeliveredBytes += uint64(len(data))
		h.c.stream.Data(h.side, data, ts)
	}
	a.gap(h, missing, ts)
}

func (a *Assembler) gap(h *half, n int, ts time.Time) {
	if n <= 0 {
		return
	}
	h.next += int64(n)
	a.stats.Gaps++
	a.stats.GapBytes += uint64(n)
	h.c.stream.Gap(h.side, n, ts)
}

// emitPiece delivers the held piece p, which starts at next.
func (a *Assembler) emitPiece(h *half, p *piece, ts time.Time) {
	a.charge(h, -p.cost(), -1)
	if p.data != nil {
		a.emit(h, p.data, 0, ts)
	} else {
		a.gap(h, p.n, ts)
	}
}

// emitRun delivers the held pieces from index i on that follow one another
// from next, and returns the index after them.
func (a *Assembler) emitRun(h *half, i int, ts time.Time) int {
	for ; i < len(h.pieces) && h.pieces[i].off == h.next; i++ {
		a.emitPiece(h, &h.pieces[i], ts)
	}
	return i
}

// forget drops the first k held pieces, which were delivered: in one move,
// however many there were.
func (a *Assembler) forget(h *half, k int, ts time.Time) {
	if k == 0 {
		return
	}
	h.pieces = slices.Delete(h.pieces, 0, k)
	// The hole in front, if any, is a new one.
	a.unhold(h)
	if len(h.pieces) > 0 {
		a.holdSince(h, ts)
	} else if cap(h.pieces) > keepPieces {
		h.pieces = nil
	}
}

// charge adds cost bytes and count segments to what h holds.
func (a *Assembler) charge(h *half, cost, count int) {
	h.c.held += cost
	h.c.nheld += count
	a.held += cost
	a.nheld += count
}

// holdSince puts h at the back of the holders: its hole started waiting at ts.
func (a *Assembler) holdSince(h *half, ts time.Time) {
	h.since = ts
	h.hprev, h.hnext = a.holders.hprev, &a.holders
	a.holders.hprev.hnext = h
	a.holders.hprev = h
}

func (a *Assembler) unhold(h *half) {
	if h.hnext == nil {
		return
	}
	h.hprev.hnext, h.hnext.hprev = h.hnext, h.hprev
	h.hprev, h.hnext = nil, nil
}

// giveUpHole stops waiting for the bytes before the first held piece: they
// become a Gap, and the pieces that follow are delivered.
func (a *Assembler) giveUpHole(h *half, ts time.Time) {
	a.gap(h, int(h.pieces[0].off-h.next), ts)
	a.forget(h, a.emitRun(h, 0, ts), ts)
}

// flush delivers everything h holds, with a Gap for each hole and for the
// bytes missing before a FIN.
func (a *Assembler) flush(h *half, ts time.Time) {
	for len(h.pieces) > 0 {
		a.giveUpHole(h, ts)
	}
	if h.finSeen && h.next < h.finOff {
		a.gap(h, int(h.finOff-h.next), ts)
	}
}

// fin records h's FIN at offset off (the first one counts) and drops what
// was held beyond it.
func (a *Assembler) fin(h *half, off int64) {
	if h.finSeen {
		return
	}
	h.finSeen = true
	h.finOff = max(off, h.next)
	for len(h.pieces) > 0 {
		p := &h.pieces[len(h.pieces)-1]
		if p.end() <= h.finOff {
			break
		}
		if p.off >= h.finOff {
			a.stats.LateBytes += uint64(len(p.data))
			a.charge(h, -p.cost(), -1)
			*p = piece{}
			h.pieces = h.pieces[:len(h.pieces)-1]
			continue
		}
		keep := int(h.finOff - p.off)
		if p.data != nil {
			a.stats.LateBytes += uint64(p.n - keep)
			a.charge(h, keep-p.n, 0)
			p.data = p.data[:keep]
		}
		p.n = keep
	}
	if len(h.pieces) == 0 {
		a.unhold(h)
	}
}

// hold keeps bytes that arrived ahead of next, copying those not held yet.
// When that would pass a cap it gives up on a hole instead and reports false
// if the bytes must be placed again.
func (a *Assembler) hold(h *half, off int64, data []byte, missing int, ts time.Time) bool {
	end := off + int64(len(data)+missing)
	dataEnd := off + int64(len(data))
	first, _ := slices.BinarySearchFunc(h.pieces, off, func(p piece, off int64) int {
		if p.end() <= off {
			return -1
		}
		return 1
	})
	// The ranges not held yet, with data pointing into the segment for now.
	add := a.scratch[:0]
	cost := 0
	span := func(from, to int64) {
		if from < dataEnd {
			d := data[from-off : min(to, dataEnd)-off]
			add = append(add, piece{off: from, n: len(d), data: d})
			cost += len(d) + SegmentOverhead
		}
		if to > dataEnd {
			from = max(from, dataEnd)
			add = append(add, piece{off: from, n: int(to - from)})
			cost += SegmentOverhead
		}
	}
	last := first
	for cur := off; ; last++ {
		if last == len(h.pieces) || h.pieces[last].off >= end {
			if cur < end {
				span(cur, end)
			}
			break
		}
		p := &h.pieces[last]
		if p.off > cur {
			span(cur, p.off)
		}
		cur = max(cur, p.end())
	}
	a.scratch = add[:0]

	if len(add) > 0 {
		c := h.c
		switch {
		case c.held+cost > a.cfg.MaxBufferedPerConn:
			clear(add)
			a.stats.ConnBufferFull++
			return a.makeRoomInConn(h, off, data, missing, ts)
		case c.nheld+len(add) > a.cfg.MaxSegmentsPerConn:
			clear(add)
			a.stats.SegmentsFull++
			return a.makeRoomInConn(h, off, data, missing, ts)
		case a.held+cost > a.cfg.MaxBufferedTotal:
			clear(add)
			a.stats.TotalBufferFull++
			if o := a.holders.hnext; o != &a.holders && o != h {
				a.giveUpHole(o, ts)
				if o.c != c {
					a.closeIfDone(o.c, ts)
				}
				return false
			}
			return a.giveUpBefore(h, off, data, missing, ts)
		}
	}

	// Where the bytes meet held ones, the held copy wins.
	for i := first; i < last; i++ {
		p := &h.pieces[i]
		from, to := max(off, p.off), min(dataEnd, p.end())
		if from < to {
			var old []byte
			if p.data != nil {
				old = p.data[from-p.off:]
			}
			a.overlap(old, data[from-off:to-off])
		}
	}
	if len(add) == 0 {
		return true
	}
	a.stats.OutOfOrder++

	// One copy for all the new ranges of this segment.
	buf := make([]byte, 0, cost-len(add)*SegmentOverhead)
	for i := range add {
		if add[i].data != nil {
			buf = append(buf, add[i].data...)
			add[i].data = buf[len(buf)-add[i].n:]
		}
	}
	wasEmpty := len(h.pieces) == 0
	h.pieces = mergePieces(h.pieces, add)
	a.charge(h, cost, len(add))
	clear(add)
	if wasEmpty {
		a.holdSince(h, ts)
	}
	return true
}

// mergePieces merges add into the sorted pieces; they do not overlap.
func mergePieces(pieces, add []piece) []piece {
	i := len(pieces) - 1
	pieces = append(pieces, add...)
	for j, w := len(add)-1, len(pieces)-1; j >= 0; w-- {
		if i >= 0 && pieces[i].off > add[j].off {
			pieces[w] = pieces[i]
			i--
		} else {
			pieces[w] = add[j]
			j--
		}
	}
	return pieces
}

// makeRoomInConn gives up on a hole of h's connection to stay within its caps.
func (a *Assembler) makeRoomInConn(h *half, off int64, data []byte, missing int, ts time.Time) bool {
	if o := h.other(); len(h.pieces) == 0 && len(o.pieces) > 0 {
		a.giveUpHole(o, ts)
		return false
	}
	return a.giveUpBefore(h, off, data, missing, ts)
}

// giveUpBefore gives up on h's first hole. When the new bytes at off come
// before every held piece, the hole is the one in front of them, and they are
// delivered after the Gap.
func (a *Assembler) giveUpBefore(h *half, off int64, data []byte, missing int, ts time.Time) bool {
	if len(h.pieces) > 0 && h.pieces[0].off < off {
		a.giveUpHole(h, ts)
		return false
	}
	a.gap(h, int(off-h.next), ts)
	a.advance(h, data, missing, ts)
	return true
}
