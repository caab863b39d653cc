package amqp

import (
	"encoding/binary"
	"slices"
	"strconv"
	"time"

	"github.com/sondehq/sonde/protocols"
)

// stage is where a message's content assembly stands.
type stage uint8

const (
	// stageNone: no content expected, or the content is complete.
	stageNone stage = iota
	// stageHeader: the method was seen, its content header is next.
	stageHeader
	// stageBody: body frames are next, contentLeft bytes of them.
	stageBody
	// stageBodyUnknown: the content header was lost to a gap; body frames
	// are taken until the next method on the channel.
	stageBodyUnknown
)

// message is one entry in the making: a method, its content, its reply.
// The entry and its record live in the message, so that one allocation
// makes all three; the emitted entry keeps the small rest alive.
type message struct {
	seq      uint64
	ch       uint16
	dir      protocols.Direction // the sender of the method
	entry    *protocols.Entry
	rec      *protocols.AMQPRecord
	m        *method
	entryVal protocols.Entry
	recVal   protocols.AMQPRecord
	// status and target override what the summary would otherwise say.
	status, target string

	stage       stage
	inReply     bool                // the content is the reply's (basic.get-ok)
	contentDir  protocols.Direction // the sender of the content
	contentLeft uint64
	hole        bool // body bytes were lost: Data stops before the hole

	// tag is the publish sequence number on a channel in confirm mode;
	// awaitConfirm is true while the broker's ack or nack is outstanding.
	tag          uint64
	awaitConfirm bool
	emitted      bool
	// held is what the message's body holds of Options.Budget; starved
	// says the budget was spent and the rest of the body is not kept.
	held    int
	starved bool
}

func (m *message) content() *protocols.AMQPContent {
	if m.inReply {
		return m.rec.Reply.Content
	}
	return m.rec.Content
}

func (m *message) addSize(n int) {
	if m.inReply {
		m.entry.ResponseSize += int64(n)
	} else {
		m.entry.RequestSize += int64(n)
	}
}

// channel is the state of one AMQP channel.
type channel struct {
	// waiting holds the synchronous requests each peer sent and that wait
	// for their reply, oldest first. "The peer that sends a synchronous
	// request MUST NOT send another synchronous request on the same channel
	// before receiving the corresponding reply" (§2.2.2), so a reply answers
	// the oldest request it can answer.
	waiting [2][]*message
	// content is the message whose content each peer is sending.
	content [2]*message
	// confirm: confirm.select was sent; publishes are numbered from 1.
	confirm     bool
	publishSeq  uint64
	unconfirmed []*message // in tag order
}

func (c *conn) channel(id uint16) (*channel, error) {
	if ch, ok := c.chans[id]; ok {
		return ch, nil
	}
	if len(c.chans) >= maxChannels {
		return nil, malformed(codeChannels, "more than %d channels", maxChannels)
	}
	ch := &channel{}
	c.chans[id] = ch
	return ch, nil
}

// channelIDs lists the channels in order, so that what is emitted from
// several channels at once comes out the same way every time.
func (c *conn) channelIDs() []uint16 {
	ids := make([]uint16, 0, len(c.chans))
	for id := range c.chans {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

func senderName(dir protocols.Direction) string {
	if dir == protocols.ClientToServer {
		return "client"
	}
	return "server"
}

// newMessage starts an entry for method m that dir sent on channel ch.
func (c *conn) newMessage(ch uint16, dir protocols.Direction, m *method, ts time.Time) *message {
	c.seq++
	msg := &message{
		seq:      c.seq,
		ch:       ch,
		dir:      dir,
		m:        m,
		recVal:   protocols.AMQPRecord{Channel: ch, Method: m.name, ClassID: m.class, MethodID: m.id, Sender: senderName(dir)},
		entryVal: protocols.Entry{Protocol: protocols.AMQP, Start: ts},
	}
	msg.rec, msg.entry = &msg.recVal, &msg.entryVal
	msg.entry.AMQP = msg.rec
	return msg
}

// arguments renders decoded arguments into the record, with credentials
// redacted and the caps that were hit counted and told.
func (c *conn) arguments(msg *message, m *method, vals []argValue, l *limits) []protocols.AMQPField {
	fields := toFields(vals, l)
	if c.opts.Redact && redact(m, fields, vals) {
		msg.entry.Redacted = true
	}
	c.hits(msg, l)
	return fields
}

func (c *conn) hits(msg *message, l *limits) {
	for _, h := range l.hits {
		c.count(h, 1)
		msg.entry.Warn(hitWarnings[h])
	}
}

func (c *conn) onMethod(dir protocols.Direction, id uint16, payload []byte, ts time.Time) error {
	if len(payload) < 4 {
		return malformed(codeMethodArgs, "%d-byte method frame", len(payload))
	}
	class, mid := binary.BigEndian.Uint16(payload), binary.BigEndian.Uint16(payload[2:])
	m := lookup(class, mid)
	if m == nil {
		return malformed(codeMethod, "class %d method %d", class, mid)
	}
	l := newLimits()
	vals, err := decodeArgs(m, payload[4:], l, c.scratch)
	c.scratch = vals
	if err != nil {
		return malformed(codeMethodArgs, "%s: %v", m.name, err)
	}
	ch, err := c.channel(id)
	if err != nil {
		return err
	}
	// "A peer MUST NOT ... send a method frame before the content of the
	// previous content-bearing method is complete" on that channel; when it
	// seems to, the content's end was lost.
	if prev := ch.content[dir]; prev != nil {
		c.contentIncomplete(prev, ts)
	}
	size := len(payload) + frameOverhead
	if m.answers != 0 {
		c.onReply(ch, id, dir, m, vals, l, size, ts)
	} else {
		c.onRequest(ch, id, dir, m, vals, l, size, ts)
	}
	// The values alias the caller's bytes, valid only during Feed.
	clear(vals)
	return nil
}

// onRequest handles a method that is not a reply: a synchronous request,
// or an asynchronous method.
func (c *conn) onRequest(ch *channel, id uint16, dir protocols.Direction, m *method, vals []argValue, l *limits, size int, ts time.Time) {
	if m.class == classChannel && m.id == channelOpen {
		// A channel number is reused only after close-ok; state left on it
		// belongs to a channel whose end was not seen.
		c.flushChannel(id, ts)
		ch, _ = c.channel(id)
	}
	msg := c.newMessage(id, dir, m, ts)
	msg.entry.RequestSize = int64(size)
	msg.rec.Arguments = c.arguments(msg, m, vals, l)
	fill(msg.rec, vals, msg.rec.Arguments)

	switch {
	case m.class == classConnection && m.id == connectionStart:
		msg.rec.ProtocolHeader = c.header
	case m.class == classConnection && m.id == connectionTune:
		c.setFrameMax(find(vals, "frame-max").num)
	case m.class == classConnection && m.id == 40:
		msg.target = string(find(vals, "virtual-host").str)
	case m.class == classExchange && (m.id == 30 || m.id == 40):
		msg.target = string(find(vals, "destination").str)
	case m.class == classConfirm && m.id == confirmSelect && dir == protocols.ClientToServer:
		ch.confirm, ch.publishSeq = true, 0
	case m.class == classConnection && m.id == connectionClose || m.class == classChannel && m.id == channelClose:
		msg.status = closeStatus(msg.rec.ReplyCode, msg.rec.ReplyText)
		if blamed := lookup(uint16(find(vals, "class-id").num), uint16(find(vals, "method-id").num)); blamed != nil {
			msg.target = blamed.name
		}
		c.closeAnswers(id, dir, msg, m.class == classConnection, size, ts)
	case m.class == classBasic && m.id == 50: // return
		msg.status = closeStatus(msg.rec.ReplyCode, msg.rec.ReplyText)
	case m.class == classBasic && (m.id == basicAck || m.id == basicNack) && dir == protocols.ServerToClient:
		c.onConfirm(ch, msg, vals, size, ts)
		return
	}

	switch {
	case m.content:
		msg.rec.Content = &protocols.AMQPContent{}
		msg.stage, msg.contentDir = stageHeader, dir
		ch.content[dir] = msg
		if m.id == basicPublish && ch.confirm && dir == protocols.ClientToServer {
			ch.publishSeq++
			msg.tag, msg.awaitConfirm = ch.publishSeq, true
			ch.unconfirmed = append(ch.unconfirmed, msg)
			c.unconfirmed++
			c.addPending(ts)
		}
	case m.replies != nil && !m.nowait(vals):
		ch.waiting[dir] = append(ch.waiting[dir], msg)
		c.addPending(ts)
	default:
		c.finish(msg, ts)
	}
}

// onReply pairs a reply with the oldest request on its channel that it can
// answer. Older requests it passes over never got their reply.
func (c *conn) onReply(ch *channel, id uint16, dir protocols.Direction, m *method, vals []argValue, l *limits, size int, ts time.Time) {
	q := ch.waiting[dir.Reverse()]
	idx := slices.IndexFunc(q, func(w *message) bool { return w.m.class == m.class && slices.Contains(w.m.replies, m.id) })
	var msg *message
	if idx < 0 {
		msg = c.newMessage(id, dir.Reverse(), lookup(m.class, m.answers), ts)
		msg.entry.Unmatched = protocols.MissingRequest
	} else {
		for _, w := range q[:idx] {
			c.unanswered(w, "no reply seen")
		}
		msg = q[idx]
		clear(q[:idx+1])
		ch.waiting[dir.Reverse()] = q[idx+1:]
		c.pending -= idx + 1
	}
	msg.rec.Reply = &protocols.AMQPReply{Method: m.name, ClassID: m.class, MethodID: m.id, Arguments: c.arguments(msg, m, vals, l)}
	fill(msg.rec, vals, msg.rec.Reply.Arguments)
	msg.entry.ResponseSize += int64(size)

	switch {
	case m.class == classConnection && m.id == connectionTuneOk:
		c.setFrameMax(find(vals, "frame-max").num)
	case m.class == classBasic && m.id == 72:
		msg.status = "empty"
	case m.content:
		msg.rec.Reply.Content = &protocols.AMQPContent{}
		msg.stage, msg.contentDir, msg.inReply = stageHeader, dir, true
		ch.content[dir] = msg
		return
	}
	c.finish(msg, ts)
	if m.class == classChannel && m.id == channelCloseOk {
		c.flushChannel(id, ts)
	}
}

// closeAnswers completes what the closing peer's counterpart was waiting
// for on the closed channel (or on every channel, for connection.close):
// "After sending [Close] any received methods except Close and Close-OK
// MUST be discarded", so the Close is the only answer they will get.
// When the server closes, the publishes waiting for a confirm get it too:
// a publish to a missing exchange is answered by channel.close 404.
func (c *conn) closeAnswers(id uint16, closer protocols.Direction, cl *message, connection bool, size int, ts time.Time) {
	ids := []uint16{id}
	if connection {
		ids = c.channelIDs()
	}
	for _, cid := range ids {
		ch := c.chans[cid]
		if ch == nil {
			continue
		}
		answered := ch.waiting[closer.Reverse()]
		ch.waiting[closer.Reverse()] = nil
		if closer == protocols.ServerToClient {
			answered = append(answered, ch.unconfirmed...)
			c.unconfirmed -= len(ch.unconfirmed)
			ch.unconfirmed = nil
		}
		c.pending -= len(answered)
		for _, w := range answered {
			w.rec.Reply = &protocols.AMQPReply{Method: cl.rec.Method, ClassID: cl.rec.ClassID, MethodID: cl.rec.MethodID, Arguments: slices.Clone(cl.rec.Arguments)}
			w.rec.ReplyCode, w.rec.ReplyText = cl.rec.ReplyCode, cl.rec.ReplyText
			w.status = cl.status
			w.entry.ResponseSize += int64(size)
			w.awaitConfirm = false
			if w.stage == stageNone {
				c.finish(w, ts)
			}
		}
	}
}

// onConfirm links the broker's basic.ack or basic.nack on a channel in
// confirm mode to the publishes it confirms: "the broker ... sets the
// multiple field to indicate that all previous messages up to and including
// the delivery tag are confirmed" (RabbitMQ's confirm extension); tag 0 with
// multiple confirms every outstanding publish.
func (c *conn) onConfirm(ch *channel, ack *message, vals []argValue, size int, ts time.Time) {
	tag := find(vals, "delivery-tag").num
	multiple := find(vals, "multiple").num != 0
	status := "ack"
	if ack.m.id == basicNack {
		status = "nack"
	}
	ack.status = status
	var confirmed []*message
	if multiple {
		n := len(ch.unconfirmed)
		if tag != 0 {
			n, _ = slices.BinarySearchFunc(ch.unconfirmed, tag+1, func(p *message, t uint64) int { return cmpUint(p.tag, t) })
		}
		confirmed = slices.Clone(ch.unconfirmed[:n])
		// Let the collector have what the slice no longer holds.
		clear(ch.unconfirmed[:n])
		ch.unconfirmed = ch.unconfirmed[n:]
	} else if i, ok := slices.BinarySearchFunc(ch.unconfirmed, tag, func(p *message, t uint64) int { return cmpUint(p.tag, t) }); ok {
		confirmed = []*message{ch.unconfirmed[i]}
		ch.unconfirmed = slices.Delete(ch.unconfirmed, i, i+1)
	}
	if len(confirmed) == 0 {
		// Joined mid-stream after confirm.select, or the publish was given
		// up on by a cap: nothing to link to.
		c.count(countConfirmUnlinked, 1)
		ack.entry.Unmatched = protocols.MissingRequest
		ack.entry.Warn("publisher confirm for publishes not seen")
		c.finish(ack, ts)
		return
	}
	c.pending -= len(confirmed)
	c.unconfirmed -= len(confirmed)
	for i, p := range confirmed {
		p.rec.Confirm = &protocols.AMQPConfirm{DeliveryTag: p.tag, Status: status, Multiple: multiple}
		p.status = status
		p.awaitConfirm = false
		// The ack's bytes are counted once, on the last publish it confirms.
		if i == len(confirmed)-1 {
			p.entry.ResponseSize += int64(size)
		}
		if p.stage == stageNone {
			c.finish(p, ts)
		}
	}
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (c *conn) setFrameMax(v uint64) {
	// "Zero means that the client/server does not impose any specific
	// limit"; the buffered-frame cap still holds.
	c.frameMax = uint32(v)
}

// addPending counts one more message waiting for an answer; past
// MaxPending the oldest one stops waiting and is emitted unmatched.
func (c *conn) addPending(ts time.Time) {
	c.pending++
	if c.opts.MaxPending <= 0 || c.pending <= c.opts.MaxPending {
		return
	}
	var oldest *message
	for _, ch := range c.chans {
		for _, q := range [][]*message{ch.waiting[0], ch.waiting[1], ch.unconfirmed} {
			if len(q) > 0 && (oldest == nil || q[0].seq < oldest.seq) {
				oldest = q[0]
			}
		}
	}
	if oldest == nil {
		return
	}
	c.count(countPendingCap, 1)
	c.stopWaiting(oldest)
	c.unanswered(oldest, "more than "+strconv.Itoa(c.opts.MaxPending)+" messages waiting for an answer: gave up on this one")
}

// stopWaiting takes msg off its channel's waiting lists.
func (c *conn) stopWaiting(msg *message) {
	ch := c.chans[msg.ch]
	remove := func(q []*message) []*message {
		if i := slices.Index(q, msg); i >= 0 {
			c.pending--
			return slices.Delete(q, i, i+1)
		}
		return q
	}
	ch.waiting[0] = remove(ch.waiting[0])
	ch.waiting[1] = remove(ch.waiting[1])
	if i := slices.Index(ch.unconfirmed, msg); i >= 0 {
		c.pending--
		c.unconfirmed--
		ch.unconfirmed = slices.Delete(ch.unconfirmed, i, i+1)
	}
}

// expireConfirms gives up on publishes that waited confirmWait for their
// confirm.
func (c *conn) expireConfirms(ts time.Time) {
	if c.unconfirmed == 0 {
		return
	}
	deadline := ts.Add(-confirmWait)
	var expired []*message
	for _, id := range c.channelIDs() {
		ch := c.chans[id]
		n := 0
		for n < len(ch.unconfirmed) && ch.unconfirmed[n].entry.Start.Before(deadline) {
			n++
		}
		expired = append(expired, ch.unconfirmed[:n]...)
		clear(ch.unconfirmed[:n])
		ch.unconfirmed = ch.unconfirmed[n:]
	}
	c.pending -= len(expired)
	c.unconfirmed -= len(expired)
	slices.SortFunc(expired, func(a, b *message) int { return cmpUint(a.seq, b.seq) })
	for _, p := range expired {
		c.count(countConfirmTimeout, 1)
		c.unanswered(p, "no publisher confirm within "+confirmWait.String())
	}
}

// unanswered emits a message whose reply or confirm will not be linked to
// it, or keeps it for its content when that is still arriving.
func (c *conn) unanswered(msg *message, why string) {
	msg.awaitConfirm = false
	msg.entry.Unmatched = protocols.MissingResponse
	msg.entry.Warn(why)
	if msg.stage == stageNone {
		c.finish(msg, time.Time{})
	}
}

// markGap flags every message in the making: bytes inside its span are lost.
func (c *conn) markGap() {
	for _, ch := range c.chans {
		for _, q := range [][]*message{ch.waiting[0], ch.waiting[1], ch.unconfirmed, ch.content[:]} {
			for _, m := range q {
				if m != nil {
					m.entry.Gap = true
				}
			}
		}
	}
}

// flushChannel emits what a channel still holds and forgets it.
func (c *conn) flushChannel(id uint16, ts time.Time) {
	ch := c.chans[id]
	if ch == nil {
		return
	}
	delete(c.chans, id)
	c.drain([]*channel{ch}, ts, "")
}

// flush emits everything the connection still holds, at its end or when
// it turns opaque.
func (c *conn) flush(ts time.Time, why string) {
	var chans []*channel
	for _, id := range c.channelIDs() {
		chans = append(chans, c.chans[id])
	}
	clear(c.chans)
	c.drain(chans, ts, why)
}

func (c *conn) drain(chans []*channel, ts time.Time, why string) {
	var all []*message
	for _, ch := range chans {
		all = append(all, ch.waiting[0]...)
		all = append(all, ch.waiting[1]...)
		all = append(all, ch.unconfirmed...)
		c.pending -= len(ch.waiting[0]) + len(ch.waiting[1]) + len(ch.unconfirmed)
		c.unconfirmed -= len(ch.unconfirmed)
		for _, m := range ch.content {
			if m != nil && !slices.Contains(all, m) {
				all = append(all, m)
			}
		}
	}
	slices.SortFunc(all, func(a, b *message) int { return cmpUint(a.seq, b.seq) })
	for _, m := range all {
		if why != "" {
			m.entry.Warn(why)
		}
		if m.stage != stageNone {
			c.count(countIncomplete, 1)
			m.entry.Warn(incompleteWarning(m))
			m.stage = stageNone
		}
		if m.awaitConfirm {
			m.entry.Unmatched = protocols.MissingResponse
			m.entry.Warn("no publisher confirm seen")
		} else if m.m.replies != nil && m.rec.Reply == nil && m.entry.Unmatched == protocols.Matched {
			m.entry.Unmatched = protocols.MissingResponse
		}
		c.finish(m, time.Time{})
	}
}

type conn struct {
	opts protocols.Options
	emit protocols.EmitFunc

	sides [2]side
	chans map[uint16]*channel
	// frameMax bounds whole frames; 0 means no limit was negotiated.
	frameMax uint32
	// header is the client's protocol header, once seen.
	header string

	seq         uint64 // numbers messages in the order they started
	pending     int    // sync requests and publishes waiting for a reply or confirm
	unconfirmed int    // publishes waiting for a confirm
	lastTS      time.Time
	counts      *protocols.CounterSet
	err         error // the parse error that made the connection opaque
	closed      bool
	// scratch holds the decoded arguments of the method being handled.
	scratch []argValue
}

func newConn(info protocols.ConnInfo, emit protocols.EmitFunc) *conn {
	c := &conn{
		opts:     info.Options,
		emit:     emit,
		chans:    make(map[uint16]*channel),
		frameMax: defaultFrameMax,
		counts:   counterNames.New(),
	}
	c.sides[protocols.ClientToServer] = side{dir: protocols.ClientToServer, synced: !info.MidStream, wantHeader: !info.MidStream}
	c.sides[protocols.ServerToClient] = side{dir: protocols.ServerToClient, synced: !info.MidStream, mayHeader: !info.MidStream}
	if info.MidStream {
		c.frameMax = maxBufferedFrame
	}
	return c
}

// Counters returns how often each counted event happened on this
// connection: heartbeats, caps hit, frames skipped. The keys are stable.
func (c *conn) Counters() map[string]uint64 { return c.counts.Counters() }

func (c *conn) count(name string, n int) { c.counts.Add(name, n) }

func (c *conn) Feed(dir protocols.Direction, data []byte, ts time.Time) (int, error) {
	if c.err != nil || c.closed {
		return 0, c.err
	}
	// Confirms expire only when capture time moves on, before any of the
	// new bytes is read, so that how the bytes were cut cannot matter.
	if ts.After(c.lastTS) {
		c.expireConfirms(ts)
		c.lastTS = ts
	}
	s := &c.sides[dir]
	n, err := c.feed(s, data, ts)
	s.lastLeft = len(data) - n
	if err != nil {
		c.err = err
		c.flush(ts, "connection not followed further: "+err.Error())
	}
	return n, err
}

func (c *conn) Gap(dir protocols.Direction, n int, ts time.Time) {
	if c.err != nil || c.closed {
		return
	}
	c.markGap()
	s := &c.sides[dir]
	// A hole that ends inside the frame being read leaves the framing
	// intact: only that frame's payload is damaged.
	if s.synced && s.inFrame && s.lastLeft == 0 && n >= 0 && uint64(n) < uint64(s.left) {
		s.left -= uint32(n)
		if s.typ == frameBody && !s.damaged {
			c.bodyHole(s, n)
		} else {
			s.damaged = true
		}
		return
	}
	s.synced, s.inFrame, s.damaged, s.wantHeader, s.mayHeader = false, false, false, false, false
	s.buf = s.buf[:0]
	for _, id := range c.channelIDs() {
		if msg := c.chans[id].content[dir]; msg != nil {
			c.contentIncomplete(msg, ts)
		}
	}
}

func (c *conn) Close(reason protocols.CloseReason, ts time.Time) {
	if c.closed {
		return
	}
	c.closed = true
	if c.err == nil {
		c.flush(ts, "")
	}
}
