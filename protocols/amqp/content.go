package amqp

import (
	"fmt"
	"time"

	"github.com/sondehq/sonde/protocols"
)

// Content travels as a content header frame and body frames on the
// method's channel: "Note that any non-content frame explicitly marks the
// end of the content" (§4.2.6). Frames of other channels may come between.

// contentMsg returns the message whose content dir is sending on channel
// id, or nil.
func (c *conn) contentMsg(dir protocols.Direction, id uint16) *message {
	if ch := c.chans[id]; ch != nil {
		return ch.content[dir]
	}
	return nil
}

func (c *conn) onContentHeader(dir protocols.Direction, id uint16, payload []byte, ts time.Time) error {
	msg := c.contentMsg(dir, id)
	if msg == nil || msg.stage != stageHeader {
		// The method was not seen: joined mid-stream, or lost to a gap.
		c.count(countOrphan, 1)
		return nil
	}
	l := newLimits()
	h, err := decodeContentHeader(payload, l)
	if err != nil {
		return malformed(codeContentHeader, "%s: %v", msg.rec.Method, err)
	}
	cnt := msg.content()
	cnt.ClassID, cnt.BodySize, cnt.Properties = h.class, h.bodySize, h.props
	if h.unknown {
		msg.entry.Warn(fmt.Sprintf("content header of class %d names properties Sonde cannot size: not shown", h.class))
	}
	c.hits(msg, l)
	msg.addSize(len(payload) + frameOverhead)
	msg.stage, msg.contentLeft = stageBody, h.bodySize
	if h.bodySize == 0 {
		c.contentComplete(msg, ts)
	}
	return nil
}

// bodyStart checks a body frame against the content it belongs to before
// any of it is read.
func (c *conn) bodyStart(s *side) error {
	msg := c.contentMsg(s.dir, s.ch)
	if msg == nil || msg.stage == stageHeader {
		c.count(countOrphan, 1)
		s.damaged = true
		return nil
	}
	// "The sum of the body frame sizes MUST equal the body size" declared
	// by the content header (§4.2.6.2).
	if msg.stage == stageBody && uint64(s.size) > msg.contentLeft {
		return malformed(codeBodySize, "%d-byte body frame, %d bytes of %s content left", s.size, msg.contentLeft, msg.rec.Method)
	}
	msg.addSize(int(s.size) + frameOverhead)
	return nil
}

// body takes the next bytes of a body frame; at most the body cap is kept.
func (c *conn) body(s *side, p []byte) {
	// The content's channel may have been closed under it by the peer.
	msg := c.contentMsg(s.dir, s.ch)
	if msg == nil {
		return
	}
	cnt := msg.content()
	if keep := min(len(p), c.opts.BodyCap-len(cnt.Body.Data)); !msg.hole && !msg.starved && keep > 0 && !c.reserve(msg, keep) {
		c.count(countBudgetCut, 1)
		msg.starved = true
		msg.entry.Warn(warnBudgetCut)
	}
	if msg.hole || msg.starved {
		cnt.Body.Size += int64(len(p))
		cnt.Body.Truncated = cnt.Body.Truncated || msg.starved
	} else {
		cnt.Body.Capture(p, c.opts.BodyCap)
	}
	if msg.stage == stageBody {
		msg.contentLeft -= uint64(len(p))
	}
}

// bodyHole accounts for n body bytes lost inside the frame being read. The
// kept data stops before the hole.
func (c *conn) bodyHole(s *side, n int) {
	msg := c.contentMsg(s.dir, s.ch)
	if msg == nil {
		return
	}
	cnt := msg.content()
	cnt.Body.Size += int64(n)
	cnt.Body.Truncated = true
	msg.hole = true
	msg.entry.Gap = true
	if msg.stage == stageBody {
		msg.contentLeft -= uint64(n)
	}
}

func (c *conn) bodyEnd(s *side, ts time.Time) {
	msg := c.contentMsg(s.dir, s.ch)
	if msg == nil {
		return
	}
	msg.content().BodyFrames++
	if msg.stage == stageBody && msg.contentLeft == 0 {
		c.contentComplete(msg, ts)
	}
}

// headerLost handles a method or content header frame that a gap damaged.
// A lost content header leaves the body's size unknown.
func (c *conn) headerLost(s *side) {
	if s.typ != frameHeader {
		return
	}
	if msg := c.contentMsg(s.dir, s.ch); msg != nil && msg.stage == stageHeader {
		msg.stage = stageBodyUnknown
		msg.entry.Gap = true
		msg.entry.Warn("content header lost")
	}
}

// contentComplete ends msg's content and emits msg, unless it still waits
// for its publisher confirm.
func (c *conn) contentComplete(msg *message, ts time.Time) {
	msg.stage = stageNone
	if ch := c.chans[msg.ch]; ch != nil && ch.content[msg.contentDir] == msg {
		ch.content[msg.contentDir] = nil
	}
	if !msg.awaitConfirm {
		c.finish(msg, ts)
	}
}

// contentIncomplete ends content that stopped before its declared size.
func (c *conn) contentIncomplete(msg *message, ts time.Time) {
	c.count(countIncomplete, 1)
	msg.entry.Warn(incompleteWarning(msg))
	c.contentComplete(msg, ts)
}

func incompleteWarning(msg *message) string {
	cnt := msg.content()
	switch msg.stage {
	case stageHeader:
		return "content header not seen"
	case stageBody:
		return fmt.Sprintf("content incomplete: %d of %d body bytes seen", cnt.Body.Size, cnt.BodySize)
	}
	return "content incomplete: its header was lost"
}

// The warnings of a message that the memory budget cut short.
const (
	warnBudgetCut     = "body cut short: the agent's memory for held messages was spent"
	warnBudgetEvicted = "answer no longer awaited: the agent's memory for held messages was spent"
)

// reserve takes n bytes of the budget for msg's body. When the budget is
// spent, the oldest message on the connection that waits only for its
// answer (its content complete) stops waiting and is emitted, to make
// room, as often as that helps; false when nothing could.
func (c *conn) reserve(msg *message, n int) bool {
	for !c.opts.Budget.Reserve(n) {
		var oldest *message
		for _, ch := range c.chans {
			for _, q := range [][]*message{ch.waiting[0], ch.waiting[1], ch.unconfirmed} {
				for _, m := range q {
					if m != msg && m.stage == stageNone && m.held > 0 && (oldest == nil || m.seq < oldest.seq) {
						oldest = m
					}
				}
			}
		}
		if oldest == nil {
			return false
		}
		c.count(countBudgetEvicted, 1)
		c.stopWaiting(oldest)
		c.unanswered(oldest, warnBudgetEvicted)
	}
	msg.held += n
	return true
}
