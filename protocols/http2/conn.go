package http2

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"golang.org/x/net/http2"

	"github.com/sondehq/sonde/protocols"
)

// Warnings put on entries, in words a user can act on.
const (
	warnJoined      = "headers not decodable: connection joined mid-stream"
	warnHeaderList  = "headers truncated: header list larger than 256 KiB"
	warnOpenAtClose = "stream still open when the connection ended"
	warnEvicted     = "stream evicted: too many streams open at once"
	warnGoAway      = "not processed: the server sent GOAWAY before this stream"
	warnBudgetCut   = "cut short: the agent's memory for held messages was spent"
	warnBudgetEvict = "emitted before its end: the agent's memory for held messages was spent"
	warnBudgetHdrs  = "header fields left out: the agent's memory for held messages was spent"
	// A peer that accepts such a frame (RFC 9113 §4.2 lets it refuse) shows
	// what it got; Sonde does too, up to maxFrameSize.
	warnFrameSize = "frame larger than the receiver's SETTINGS_MAX_FRAME_SIZE"
)

// recentDone is how many finished stream IDs a connection remembers, so that
// frames still in flight for them do not open new entries when the
// connection's history is incomplete (otherwise stream IDs tell).
const recentDone = 256

// resetLinger bounds, in capture time, how long a stream reset by one side
// waits for frames the other side sent before the reset reached it.
const resetLinger = time.Second

type conn struct {
	opts    protocols.Options
	emit    protocols.EmitFunc
	dirs    [2]*direction
	streams map[uint32]*stream
	seq     uint64
	done    idRing
	// joined is true when part of the connection's history was not seen:
	// streams may then show up without their start.
	joined bool
	// firstSeen is the first client stream seen opening since the history
	// was last lost; lower ones may have opened unseen.
	firstSeen, firstPush uint32
	maxClient, maxPush   uint32
	// lingering counts the reset streams still waiting, by the side that
	// reset them; lingerUntil is when the first of them stops waiting.
	lingering   [2]int
	lingerUntil time.Time
	err         error
	counts      *protocols.CounterSet
}

// Counters returns how often this connection hit each cap, by stable name.
func (c *conn) Counters() map[string]uint64 { return c.counts.Counters() }

func (dissector) NewConn(info protocols.ConnInfo, emit protocols.EmitFunc) protocols.Conn {
	c := &conn{
		opts:    info.Options,
		emit:    emit,
		streams: make(map[uint32]*stream),
		joined:  info.MidStream,
		counts:  counterNames.New(),
	}
	c.opts.BodyCap = max(c.opts.BodyCap, 0)
	c.opts.DecodedCap = max(c.opts.DecodedCap, 0)
	c.opts.MaxPending = max(c.opts.MaxPending, 1)
	for i := range c.dirs {
		d := &direction{dir: protocols.Direction(i), maxFrame: defaultMaxFrameSize}
		d.newFramer()
		d.hd = newHeaderDecoder(!info.MidStream)
		if info.MidStream {
			// The receiver may have announced larger frames before Sonde
			// joined, and the side that detection did not look at may start
			// inside a frame: it is resynchronised like after a gap.
			d.maxFrame = maxFrameSize
			d.resync, d.resyncAtGap = true, true
		}
		c.dirs[i] = d
	}
	c.dirs[protocols.ClientToServer].preface = prefaceRequired
	if info.MidStream {
		c.dirs[protocols.ClientToServer].preface = prefaceOptional
	}
	if up := info.Upgrade; up != nil {
		// RFC 7540 §3.2 (h2c, dropped from RFC 9113 but still spoken): the
		// request that asked for the upgrade is stream 1, half-closed by the
		// client.
		s := c.open(1, up.Start)
		s.upgradeFrom(up)
		c.maxClient = 1
	}
	return c
}

// Feed parses the whole frames in data and returns the bytes they took.
func (c *conn) Feed(dir protocols.Direction, data []byte, ts time.Time) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	if c.lingering[0]+c.lingering[1] > 0 && !ts.Before(c.lingerUntil) {
		c.settleResets(func(s *stream) bool { return !ts.Before(s.resetAt.Add(resetLinger)) })
	}
	d := c.dirs[dir]
	off := 0
	if d.preface != prefaceDone {
		n, more, err := d.consumePreface(data)
		if err != nil {
			return 0, c.fail(err)
		}
		if more {
			return 0, nil
		}
		off = n
	}
	if d.skip > 0 {
		k := min(d.skip, len(data)-off)
		off += k
		d.skip -= k
		if d.skip > 0 {
			return off, nil
		}
	}
	if d.resync && d.resyncAtGap {
		// Segments after a loss tend to start with a frame: a plausible
		// header right where the gap ended is taken as is.
		if len(data)-off < frameHeaderLen {
			return off, nil
		}
		d.resyncAtGap = false
		h := data[off : off+frameHeaderLen]
		if _, ok := plausibleHeader(h, min(d.maxFrame, resyncMaxFrame)); ok && h[3] != typeContinuation {
			d.resync = false
		}
	}
	if d.resync {
		n, found := findFrameBoundary(data[off:], min(d.maxFrame, resyncMaxFrame))
		off += n
		if !found {
			return off, nil
		}
		d.resync = false
	}
	d.partial = partialFrame{}
	for len(data)-off >= frameHeaderLen {
		h := data[off : off+frameHeaderLen]
		length := uint32(h[0])<<16 | uint32(h[1])<<8 | uint32(h[2])
		if length > maxFrameSize {
			// Refused before a byte of it is buffered.
			return off, c.fail(tooLarge(codeFrameTooLarge,
				fmt.Sprintf("%s frame of %d bytes, limit %d", http2.FrameType(h[3]), length, maxFrameSize)))
		}
		end := off + frameHeaderLen + int(length)
		if end > len(data) {
			d.partial = partialFrame{
				total: end - off, have: len(data) - off, typ: h[3], flags: h[4],
				stream: (uint32(h[5])<<24 | uint32(h[6])<<16 | uint32(h[7])<<8 | uint32(h[8])) & (1<<31 - 1),
			}
			break
		}
		d.rd.Reset(data[off:end])
		f, err := d.fr.ReadFrame()
		if err != nil {
			if err := c.frameError(d, h, err, ts); err != nil {
				return end, c.fail(err)
			}
			off = end
			continue
		}
		if err := c.frame(d, f, int64(end-off), ts); err != nil {
			return end, c.fail(err)
		}
		if length > retainFrameBuf && !d.block.active {
			// The framer keeps a read buffer as large as the largest frame
			// it read; a fresh one lets a rare large frame's go.
			d.newFramer()
		}
		off = end
	}
	return off, nil
}

func (c *conn) fail(err error) error {
	c.err = err
	return err
}

// frame handles one valid frame of size bytes (header included).
func (c *conn) frame(d *direction, f http2.Frame, size int64, ts time.Time) error {
	if id := f.Header().StreamID; id != 0 {
		c.movedOn(d.dir, id)
	}
	switch f := f.(type) {
	case *http2.DataFrame:
		if s := c.streamFor(f.StreamID, d.dir, false, ts); s != nil {
			s.touch(ts)
			if f.Length > d.maxFrame {
				s.warn(warnFrameSize)
			}
			c.holdData(s, d.dir, len(f.Data()))
			s.data(d.dir, f.Data(), size, &c.opts)
			if f.StreamEnded() {
				c.ended(s, d.dir)
			}
		}
	case *http2.HeadersFrame:
		d.block = blockState{active: true, stream: f.StreamID, endStream: f.StreamEnded()}
		return c.fragment(d, f.HeaderBlockFragment(), f.HeadersEnded(), size, ts)
	case *http2.PushPromiseFrame:
		d.block = blockState{active: true, push: true, stream: f.StreamID, promised: f.PromiseID}
		return c.fragment(d, f.HeaderBlockFragment(), f.HeadersEnded(), size, ts)
	case *http2.ContinuationFrame:
		// The framer has checked that it continues the block in progress.
		return c.fragment(d, f.HeaderBlockFragment(), f.HeadersEnded(), size, ts)
	case *http2.RSTStreamFrame:
		if s := c.streams[f.StreamID]; s != nil {
			c.resetStream(s, d.dir, f.ErrCode, size, ts)
		}
	case *http2.SettingsFrame:
		if f.IsAck() {
			return nil
		}
		peer := c.dirs[d.dir.Reverse()]
		return f.ForeachSetting(func(st http2.Setting) error {
			switch st.ID {
			case http2.SettingHeaderTableSize:
				peer.hd.setAllowed(c.tableSize(peer, st.Val))
			case http2.SettingMaxFrameSize:
				// The framer has checked the range (RFC 9113 §6.5.2).
				peer.maxFrame = min(max(st.Val, defaultMaxFrameSize), maxFrameSize)
			}
			return nil
		})
	case *http2.GoAwayFrame:
		c.goAway(d.dir, f.LastStreamID)
	}
	// PING, WINDOW_UPDATE, PRIORITY and unknown types show nothing.
	return nil
}

// fragment adds a piece of a header block and finishes the block at END_HEADERS.
func (c *conn) fragment(d *direction, frag []byte, end bool, size int64, ts time.Time) error {
	d.block.wire += size
	d.block.oversized = d.block.oversized || size-frameHeaderLen > int64(d.maxFrame)
	if d.block.wire > maxHeaderBlock {
		return tooLarge(codeHeaderBlockTooLarge,
			fmt.Sprintf("header block on stream %d exceeds %d bytes", d.block.stream, maxHeaderBlock))
	}
	if err := d.hd.write(frag); err != nil {
		return hpackError(err)
	}
	if !end {
		return nil
	}
	blk := d.block
	d.block = blockState{}
	db, err := d.hd.finish()
	if err != nil {
		return hpackError(err)
	}
	c.headerBlock(d.dir, blk, db, ts)
	return nil
}

// headerBlock applies a decoded header block to its stream. Every block is
// decoded, whether or not its stream is shown, to keep HPACK in step.
func (c *conn) headerBlock(dir protocols.Direction, blk blockState, db decodedBlock, ts time.Time) {
	if blk.push {
		// RFC 9113 §8.4: the promised request, sent by the server.
		s := c.streamFor(blk.promised, protocols.ClientToServer, true, ts)
		if s == nil {
			return
		}
		c.holdHeaders(s, &db)
		s.touch(ts)
		s.sizes[protocols.ClientToServer] += blk.wire
		s.headers(protocols.ClientToServer, db, &c.opts)
		s.ended[protocols.ClientToServer] = true
		return
	}
	s := c.streamFor(blk.stream, dir, true, ts)
	if s == nil {
		return
	}
	c.holdHeaders(s, &db)
	s.touch(ts)
	if blk.oversized {
		s.warn(warnFrameSize)
	}
	s.sizes[dir] += blk.wire
	s.headers(dir, db, &c.opts)
	if blk.endStream {
		c.ended(s, dir)
	}
}

// resetStream handles a RST_STREAM that dir sent on s. RFC 9113 §5.4.2:
// the other side may have sent frames before the reset reached it, and
// those show what it answered, so s waits for them unless that side's half
// is over already. It stops waiting when that side ends its half or resets
// too, sends on another stream, or resetLinger has passed; frames the
// resetting side sends on s after the reset are ignored.
func (c *conn) resetStream(s *stream, dir protocols.Direction, code http2.ErrCode, size int64, ts time.Time) {
	if s.lingers && dir == s.resetBy {
		return
	}
	s.touch(ts)
	s.sizes[dir] += size
	if s.lingers || s.ended[dir.Reverse()] {
		if s.reset == "" {
			s.reset = code.String()
		}
		c.finish(s, s.missing())
		return
	}
	s.reset, s.resetBy, s.resetAt, s.lingers = code.String(), dir, ts, true
	until := ts.Add(resetLinger)
	if c.lingering[0]+c.lingering[1] == 0 || until.Before(c.lingerUntil) {
		c.lingerUntil = until
	}
	c.lingering[dir]++
}

// movedOn ends the wait of the streams that the side other than dir reset,
// except stream id: dir, sending on another stream, is past what was in
// flight for them. Most often nothing waits.
func (c *conn) movedOn(dir protocols.Direction, id uint32) {
	resetter := dir.Reverse()
	n := c.lingering[resetter]
	if n == 0 {
		return
	}
	if s := c.streams[id]; n == 1 && s != nil && s.lingers && s.resetBy == resetter {
		return
	}
	c.settleResets(func(s *stream) bool { return s.resetBy == resetter && s.id != id })
}

// settleResets emits the waiting reset streams that done says are done, in
// the order they opened.
func (c *conn) settleResets(done func(*stream) bool) {
	var next time.Time
	for _, s := range c.sortedStreams() {
		if !s.lingers {
			continue
		}
		if done(s) {
			c.finish(s, s.missing())
			continue
		}
		if until := s.resetAt.Add(resetLinger); next.IsZero() || until.Before(next) {
			next = until
		}
	}
	c.lingerUntil = next
}

// streamFor finds the stream a frame belongs to, opening it when the frame
// can start one. It returns nil for frames of streams that are over or that
// Sonde has no business showing.
func (c *conn) streamFor(id uint32, dir protocols.Direction, headers bool, ts time.Time) *stream {
	if s, ok := c.streams[id]; ok {
		if s.lingers && dir == s.resetBy {
			// RFC 9113 §6.4: nothing more after a RST_STREAM.
			return nil
		}
		return s
	}
	if c.done.has(id) {
		return nil
	}
	clientStream := id%2 == 1
	if clientStream && headers && dir == protocols.ClientToServer && id > c.maxClient {
		// RFC 9113 §5.1.1: a new stream's ID is larger than all before it.
		c.maxClient = id
		if c.firstSeen == 0 {
			c.firstSeen = id
		}
		return c.open(id, ts)
	}
	if !clientStream && headers && dir == protocols.ClientToServer && id > c.maxPush {
		// A PUSH_PROMISE, handed over as the promised stream's request.
		c.maxPush = id
		if c.firstPush == 0 {
			c.firstPush = id
		}
		return c.open(id, ts)
	}
	if !c.joined {
		return nil
	}
	// Part of the history is missing: a stream below the first one seen
	// opening may have opened unseen.
	first := c.firstSeen
	if !clientStream {
		first = c.firstPush
	}
	if first != 0 && id >= first {
		return nil
	}
	s := c.open(id, ts)
	s.joined = true
	return s
}

// open starts tracking a stream, evicting the oldest one beyond MaxPending.
func (c *conn) open(id uint32, ts time.Time) *stream {
	if len(c.streams) >= c.opts.MaxPending {
		var oldest *stream
		for _, s := range c.streams {
			if oldest == nil || s.seq < oldest.seq {
				oldest = s
			}
		}
		oldest.warn(warnEvicted)
		c.counts.Add(countPendingEvicted, 1)
		c.finish(oldest, oldest.missing())
	}
	c.seq++
	s := newStream(id, c.seq, ts)
	c.streams[id] = s
	return s
}

// ended records END_STREAM from dir and emits the stream once both sides ended.
func (c *conn) ended(s *stream, dir protocols.Direction) {
	s.ended[dir] = true
	// A stream that opened unseen may never show its request's end.
	unseenRequest := s.joined && !s.half[protocols.ClientToServer].seen && dir == protocols.ServerToClient
	if s.ended[0] && s.ended[1] || unseenRequest || s.lingers {
		c.finish(s, s.missing())
	}
}

func (c *conn) finish(s *stream, u protocols.Unmatched) {
	if s.lingers {
		s.lingers = false
		c.lingering[s.resetBy]--
	}
	delete(c.streams, s.id)
	c.done.add(s.id)
	c.opts.Budget.Release(s.held)
	s.held = 0
	c.emit(s.entry(u, &c.opts))
}

// reserve takes n bytes of the budget for s. When the budget is spent, the
// oldest other stream open on the connection is emitted as it stands to
// make room, as often as that helps; false when nothing could.
func (c *conn) reserve(s *stream, n int) bool {
	for !c.opts.Budget.Reserve(n) {
		var oldest *stream
		for _, o := range c.streams {
			if o != s && o.held > 0 && (oldest == nil || o.seq < oldest.seq) {
				oldest = o
			}
		}
		if oldest == nil {
			return false
		}
		c.counts.Add(countBudgetEvicted, 1)
		oldest.warn(warnBudgetEvict)
		c.finish(oldest, oldest.missing())
	}
	s.held += n
	return true
}

// holdData reserves what n payload bytes that dir sent on s may keep: at
// most the body cap per side in all, whether as a body or as gRPC
// messages. Once the budget refuses, that side keeps nothing more.
func (c *conn) holdData(s *stream, dir protocols.Direction, n int) {
	h := &s.half[dir]
	n = min(n, c.opts.BodyCap-h.reserved)
	if h.starved || n <= 0 {
		return
	}
	if !c.reserve(s, n) {
		c.counts.Add(countBudgetCut, 1)
		h.starved = true
		s.warn(warnBudgetCut)
		return
	}
	h.reserved += n
}

// holdHeaders reserves what a decoded header block keeps; when the
// budget refuses, only its pseudo-header fields are kept.
func (c *conn) holdHeaders(s *stream, db *decodedBlock) {
	const fieldOverhead = 40
	n := 0
	for _, f := range db.fields {
		n += len(f.Name) + len(f.Value) + fieldOverhead
	}
	if c.reserve(s, n) {
		return
	}
	c.counts.Add(countBudgetCut, 1)
	s.warn(warnBudgetHdrs)
	pseudo := db.fields[:0:0]
	for _, f := range db.fields {
		if strings.HasPrefix(f.Name, ":") {
			pseudo = append(pseudo, f)
		}
	}
	db.fields = pseudo
}

// goAway ends the streams the sender says it never processed (RFC 9113 §6.8).
func (c *conn) goAway(from protocols.Direction, last uint32) {
	// The sender's peer initiated the streams the GOAWAY is about.
	peerOdd := from == protocols.ServerToClient
	for _, s := range c.sortedStreams() {
		if s.id > last && (s.id%2 == 1) == peerOdd {
			s.warn(warnGoAway)
			c.finish(s, s.missing())
		}
	}
}

func (c *conn) sortedStreams() []*stream {
	out := make([]*stream, 0, len(c.streams))
	for _, s := range c.streams {
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b *stream) int { return cmp.Compare(a.seq, b.seq) })
	return out
}

// Gap records missing bytes. When the gap only cut a frame that carries no
// header block, the frame boundary is found again by arithmetic and only
// that stream is affected; otherwise the boundary is searched for and the
// direction's HPACK state is unknown from then on.
func (c *conn) Gap(dir protocols.Direction, n int, ts time.Time) {
	if c.err != nil {
		return
	}
	d := c.dirs[dir]
	d.preface = prefaceDone
	p := d.partial
	d.partial = partialFrame{}
	if n >= 0 && p.total > 0 && !d.resync && !d.block.active && n <= p.total-p.have &&
		p.typ != typeHeaders && p.typ != typePushPromise && p.typ != typeContinuation {
		d.skip = p.total - p.have - n
		if s := c.streams[p.stream]; s != nil {
			s.touch(ts)
			s.lost(dir)
			if p.typ == typeData && p.flags&flagEndStream != 0 {
				c.ended(s, dir)
			}
		}
		return
	}
	d.skip, d.resync, d.resyncAtGap = 0, true, true
	d.block = blockState{}
	d.newFramer()
	d.hd.lose()
	c.joined = true
	if dir == protocols.ClientToServer {
		c.firstSeen = 0
	} else {
		c.firstPush = 0
	}
	for _, s := range c.streams {
		s.lost(dir)
	}
}

// Close emits the streams still open, in the order they opened. After a
// parse error the connection is opaque and emits nothing more.
func (c *conn) Close(reason protocols.CloseReason, ts time.Time) {
	for _, d := range c.dirs {
		c.opts.Budget.Release(d.tableHeld)
		d.tableHeld = 0
	}
	if c.err != nil {
		for _, s := range c.streams {
			c.opts.Budget.Release(s.held)
			s.held = 0
		}
		return
	}
	for _, s := range c.sortedStreams() {
		u := s.missing()
		if u == protocols.Matched && s.reset == "" {
			s.warn(warnOpenAtClose + " (" + reason.String() + ")")
		}
		c.finish(s, u)
	}
}

// tableSize is the header table size d's decoder may follow when its
// receiver announced announced: at most maxTableSize, and what goes beyond
// the default drawn from Options.Budget, so that many connections with large
// tables stay within the agent's memory. A size it cannot have is counted;
// the table stays as it was.
func (c *conn) tableSize(d *direction, announced uint32) uint32 {
	want := min(announced, maxTableSize)
	if announced > maxTableSize {
		c.counts.Add(countTableSizeCapped, 1)
	}
	extra := max(int(want)-defaultTableSize, 0) - d.tableHeld
	switch {
	case extra > 0 && !c.opts.Budget.Reserve(extra):
		c.counts.Add(countTableSizeCapped, 1)
		return uint32(defaultTableSize + d.tableHeld)
	case extra < 0:
		c.opts.Budget.Release(-extra)
	}
	d.tableHeld += extra
	return want
}

// idRing remembers the last recentDone finished stream IDs.
type idRing struct {
	ids  []uint32
	next int
	set  map[uint32]struct{}
}

func (r *idRing) add(id uint32) {
	if r.set == nil {
		r.set = make(map[uint32]struct{})
	}
	if len(r.ids) < recentDone {
		r.ids = append(r.ids, id)
	} else {
		delete(r.set, r.ids[r.next])
		r.ids[r.next] = id
		r.next = (r.next + 1) % recentDone
	}
	r.set[id] = struct{}{}
}

func (r *idRing) has(id uint32) bool {
	_, ok := r.set[id]
	return ok
}
