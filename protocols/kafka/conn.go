package kafka

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sondehq/sonde/protocols"
	"github.com/sondehq/sonde/protocols/internal/bin"
)

// Reasons a frame's body was not decoded; they end up in entry warnings.
const (
	partialGap    = "not decoded: bytes of it were not captured"
	partialClosed = "not decoded: cut off when the connection closed"
	partialBudget = "not decoded: the agent's memory for held messages was spent"
	// warnBudgetEvicted is on a request given up to make room.
	warnBudgetEvicted = "response no longer awaited: the agent's memory for held messages was spent"
	// warnBudgetRecords is on a request that let go of its records.
	warnBudgetRecords = "records not kept while the response was awaited: the agent's memory for held messages was spent"
)

// conn parses one Kafka connection. Requests wait in pending, keyed by
// correlation ID, until the response that carries the same ID arrives: the
// response's layout depends on the request's API key and version, which
// the response does not repeat.
type conn struct {
	d    *Dissector
	opts protocols.Options
	emit protocols.EmitFunc

	halves [2]half
	// pending holds requests waiting for their responses, queue the same
	// in the order they were sent (with answered ones not yet popped).
	pending map[int32]*exchange
	queue   []*exchange
	// trusted is true while the connection has been followed from its
	// first byte without loss: a framing error then means the bytes are not
	// Kafka, and the connection becomes opaque. Otherwise it means the
	// parser lost its place, and it looks for the next frame.
	trusted bool
	// rawSASL is set by a SaslHandshake v0 request: the SASL tokens that
	// follow it are framed by a length only, without a Kafka header.
	rawSASL  bool
	rawToken *protocols.Entry
}

// exchange is a request waiting for its response.
type exchange struct {
	e        *protocols.Entry
	key      int16
	version  int16
	flexible bool
	done     bool
	// held is what the waiting request's entry holds of Options.Budget.
	held int
}

func newConn(d *Dissector, info protocols.ConnInfo, emit protocols.EmitFunc) *conn {
	opts := info.Options
	def := protocols.DefaultOptions()
	if opts.BodyCap <= 0 {
		opts.BodyCap = def.BodyCap
	}
	if opts.DecodedCap <= 0 {
		opts.DecodedCap = def.DecodedCap
	}
	if opts.MaxPending <= 0 {
		opts.MaxPending = def.MaxPending
	}
	c := &conn{
		d:       d,
		opts:    opts,
		emit:    emit,
		pending: make(map[int32]*exchange),
		trusted: !info.MidStream,
	}
	for i := range c.halves {
		c.halves[i].budget = opts.Budget
		c.halves[i].lost = info.MidStream
	}
	return c
}

// Feed implements protocols.Conn. It consumes everything it is given except,
// while looking for a frame after a loss, fewer bytes than a header needs.
// A frame that arrives whole is decoded where it lies; one that arrives in
// pieces is collected in the direction's buffer.
func (c *conn) Feed(dir protocols.Direction, data []byte, ts time.Time) (int, error) {
	dir &= 1
	h := &c.halves[dir]
	i := 0
	for i < len(data) {
		if h.lost {
			n, found := c.scan(dir, data[i:])
			i += n
			if !found {
				return i, nil
			}
			h.lost = false
			c.d.count(CountResync)
		}
		if h.want == 0 && len(h.buf) == 0 {
			h.start = ts
			if rest := data[i:]; len(rest) >= 4 {
				size := int(binary.BigEndian.Uint32(rest))
				if err := c.checkSize(dir, size); err != nil {
					if c.trusted {
						return i, err
					}
					h.lost = true
					i++
					continue
				}
				if size <= decodeCap && 4+size <= len(rest) {
					if err := c.frame(dir, rest[4:4+size], 4+size, ts, ts, false, ""); err != nil {
						return i, err
					}
					i += 4 + size
					continue
				}
			}
		}
		n, complete, err := c.collect(dir, h, data[i:])
		i += n
		if err != nil {
			return i, err
		}
		if h.lost {
			continue
		}
		if !complete {
			break
		}
		err = c.frame(dir, h.buf[4:], h.size, h.start, ts, h.gap, h.partial())
		h.reset()
		if err != nil {
			return i, err
		}
	}
	return i, nil
}

// Gap implements protocols.Conn. A gap of known size inside a frame whose
// length is known costs only that frame's body; otherwise the parser looks
// for the next frame.
func (c *conn) Gap(dir protocols.Direction, n int, ts time.Time) {
	dir &= 1
	if n == 0 {
		return
	}
	c.trusted = false
	if dir == protocols.ServerToClient {
		// The responses of waiting requests may have been in the gap.
		for _, ex := range c.queue {
			if !ex.done {
				ex.e.Gap = true
			}
		}
	}
	h := &c.halves[dir]
	switch {
	case h.lost:
	case h.want > 0:
		c.d.count(CountGapInFrame)
		h.gap = true
		left := h.want - len(h.buf) + h.skip
		if n > 0 && n < left {
			h.want = len(h.buf)
			h.skip = left - n
			return
		}
		// The frame ended inside the gap: show what is known of it.
		_ = c.frame(dir, h.buf[4:], h.size, h.start, ts, true, partialGap)
		h.reset()
		h.lost = n != left
	default:
		h.reset()
		h.lost = true
	}
}

// Close implements protocols.Conn: frames cut off and requests still
// waiting are emitted with what is known of them.
func (c *conn) Close(reason protocols.CloseReason, ts time.Time) {
	for dir := range c.halves {
		h := &c.halves[dir]
		if !h.lost && h.want > 0 {
			why := partialClosed
			if h.starved {
				why = partialBudget
			}
			_ = c.frame(protocols.Direction(dir), h.buf[4:], h.size, h.start, ts, true, why)
		}
		h.reset()
		h.budget.Release(h.held)
		h.held = 0
	}
	for _, ex := range c.queue {
		if !ex.done {
			c.unmatch(ex)
		}
	}
	c.queue = nil
	if c.rawToken != nil {
		c.rawToken.Unmatched = protocols.MissingResponse
		c.finish(c.rawToken)
		c.rawToken = nil
	}
}

// frame handles one frame's body (without its length field). partial says
// why the body is incomplete, or is empty when it is whole.
func (c *conn) frame(dir protocols.Direction, body []byte, size int, start, end time.Time, gap bool, partial string) error {
	if dir == protocols.ClientToServer {
		return c.request(body, size, start, gap, partial)
	}
	c.response(body, size, start, end, gap, partial)
	return nil
}

func (c *conn) request(body []byte, size int, start time.Time, gap bool, partial string) error {
	h, ok := c.d.parseRequestHeader(body)
	if !ok {
		switch {
		case c.rawSASL && partial == "":
			c.rawSASLToken(body, size, start, gap)
		case partial != "":
			// The header itself was lost: nothing to show.
			c.d.count(CountRequestUndecoded)
		case c.trusted:
			return protocols.Malformed(protocols.Kafka, codeRequestHeader,
				fmt.Sprintf("no known API key and version in a %d-byte request", size))
		default:
			// The frame boundary found after a loss was wrong.
			c.halves[protocols.ClientToServer].lost = true
		}
		return nil
	}
	c.rawSASL = h.key == 17 && h.version == 0
	if partial == "" {
		partial = c.overMessageCap(h.key, size, false)
	}
	rec := &protocols.KafkaRecord{
		APIKey:        h.key,
		API:           kmsg.NameForKey(h.key),
		APIVersion:    h.version,
		CorrelationID: h.corr,
		ClientID:      h.clientID,
	}
	e := &protocols.Entry{Protocol: protocols.Kafka, Start: start, RequestSize: int64(size), Gap: gap, Kafka: rec}
	oneWay := false
	if partial != "" {
		e.Warn("request body " + partial)
	} else if err := c.decode(h.req, body[h.n:]); err != nil {
		c.d.count(CountRequestUndecoded)
		e.Warn(fmt.Sprintf("request body not decodable as %s v%d: %v", rec.API, h.version, err))
	} else {
		c.describe(e, h.req, false)
		if p, ok := h.req.(*kmsg.ProduceRequest); ok && p.Acks == 0 {
			oneWay = true
		}
	}
	if oneWay {
		// acks=0: the broker never answers, so the request is the whole exchange.
		c.finish(e)
		return nil
	}
	c.await(&exchange{e: e, key: h.key, version: h.version, flexible: h.req.IsFlexible()})
	return nil
}

// await adds a request to pending, within MaxPending.
func (c *conn) await(ex *exchange) {
	corr := ex.e.Kafka.CorrelationID
	if old := c.pending[corr]; old != nil {
		// A client reuses an ID only once its request is over.
		c.unmatch(old)
	}
	for len(c.pending) >= c.opts.MaxPending {
		c.popDone()
		c.d.count(CountPendingEvicted)
		c.unmatch(c.queue[0])
	}
	c.popDone()
	c.hold(ex)
	c.pending[corr] = ex
	c.queue = append(c.queue, ex)
}

// hold reserves what ex's entry keeps while it waits. When the budget is
// spent, the oldest requests waiting on this connection are given up to
// make room; when none is left, ex keeps its request without the records.
func (c *conn) hold(ex *exchange) {
	n := heldSize(ex.e.Kafka)
	for !c.opts.Budget.Reserve(n) {
		if c.evictForBudget() {
			continue
		}
		if rec := ex.e.Kafka; len(rec.Batches) > 0 {
			c.d.count(CountBudgetCut)
			for i := range rec.Batches {
				if rec.Batches[i].Records != nil {
					rec.Batches[i].Records, rec.Batches[i].Truncated = nil, true
				}
			}
			ex.e.Warn(warnBudgetRecords)
			if m := heldSize(rec); m < n {
				n = m
				continue
			}
		}
		// Even the request's header does not fit: it waits unaccounted,
		// one per connection at most, since the next one evicts it.
		return
	}
	ex.held = n
}

// evictForBudget emits the oldest request waiting on the connection as
// unmatched, to give back what it holds; false when none waits.
func (c *conn) evictForBudget() bool {
	c.popDone()
	if len(c.queue) == 0 {
		return false
	}
	ex := c.queue[0]
	c.d.count(CountBudgetEvicted)
	ex.e.Warn(warnBudgetEvicted)
	c.unmatch(ex)
	c.popDone()
	return true
}

// heldSize estimates what a waiting request's record keeps in memory.
func heldSize(rec *protocols.KafkaRecord) int {
	const overhead, part = 1024, 64
	n := overhead + len(rec.ClientID) + len(rec.GroupID) + len(rec.TransactionalID)
	for _, t := range rec.Topics {
		n += part + len(t.Name) + len(t.ID) + 4*len(t.Partitions)
	}
	n += part * len(rec.Errors)
	body := func(b *protocols.Body) int {
		if b == nil {
			return 0
		}
		return part + len(b.Data)
	}
	for _, b := range rec.Batches {
		n += part + len(b.Topic)
		for _, m := range b.Records {
			n += part + body(m.Key) + body(m.Value)
			for _, h := range m.Headers {
				n += part + len(h.Name) + body(h.Value)
			}
		}
	}
	return n + body(rec.SASLAuth)
}

func (c *conn) popDone() {
	for len(c.queue) > 0 && c.queue[0].done {
		c.queue[0] = nil
		c.queue = c.queue[1:]
	}
}

// unmatch emits a request whose response will not come.
func (c *conn) unmatch(ex *exchange) {
	c.letGo(ex)
	ex.done = true
	if c.pending[ex.e.Kafka.CorrelationID] == ex {
		delete(c.pending, ex.e.Kafka.CorrelationID)
	}
	ex.e.Unmatched = protocols.MissingResponse
	c.finish(ex.e)
}

// response pairs a response with its request and decodes it with the
// request's API key and version.
//
//	ResponseHeader v0 => correlation_id
//	ResponseHeader v1 => correlation_id TAG_BUFFER   (flexible versions,
//	                     except ApiVersions, whose response header is always v0)
func (c *conn) response(body []byte, size int, start, end time.Time, gap bool, partial string) {
	if c.rawToken != nil {
		e := c.rawToken
		c.rawToken = nil
		e.ResponseSize = int64(size)
		e.Duration = end.Sub(e.Start)
		e.Gap = e.Gap || gap
		c.finish(e)
		return
	}
	if len(body) < 4 {
		c.d.count(CountResponseUndecoded)
		return
	}
	corr := int32(binary.BigEndian.Uint32(body))
	ex := c.pending[corr]
	if ex == nil {
		c.d.count(CountUnmatchedResponse)
		e := &protocols.Entry{
			Protocol:     protocols.Kafka,
			Start:        start,
			Duration:     end.Sub(start),
			ResponseSize: int64(size),
			Unmatched:    protocols.MissingRequest,
			Gap:          gap,
			Kafka:        &protocols.KafkaRecord{APIKey: -1, APIVersion: -1, CorrelationID: corr},
		}
		e.Warn("request not captured: a response cannot be decoded without its request's API key and version")
		c.finish(e)
		return
	}
	// Kafka answers the requests of one connection in the order they were
	// sent, so those sent before this one and still waiting were not answered.
	for c.queue[0] != ex {
		if !c.queue[0].done {
			c.unmatch(c.queue[0])
		}
		c.popDone()
	}
	ex.done = true
	c.letGo(ex)
	delete(c.pending, corr)
	c.popDone()

	e := ex.e
	e.ResponseSize = int64(size)
	e.Duration = end.Sub(e.Start)
	e.Gap = e.Gap || gap
	if partial == "" {
		partial = c.overMessageCap(ex.key, size, true)
	}
	if partial != "" {
		e.Warn("response body " + partial)
		c.finish(e)
		return
	}
	r := reader{bin.NewReader(body[4:])}
	if ex.flexible && ex.key != 18 {
		r.skipTags()
	}
	resp := kmsg.ResponseForKey(ex.key)
	resp.SetVersion(ex.version)
	err := c.decode(resp, r.Rest())
	if err != nil && ex.key == 18 && ex.version > 0 {
		// A broker that does not support an ApiVersions request's version
		// answers in version 0 with UNSUPPORTED_VERSION (KIP-511).
		resp = kmsg.ResponseForKey(ex.key)
		if err0 := c.decode(resp, r.Rest()); err0 == nil {
			err = nil
		}
	}
	if !r.Ok() || err != nil {
		c.d.count(CountResponseUndecoded)
		if err == nil {
			err = errShortHeader
		}
		e.Warn(fmt.Sprintf("response body not decodable as %s v%d: %v", e.Kafka.API, ex.version, err))
	} else {
		c.describe(e, resp, true)
		if e.Kafka.Error == "" {
			e.Kafka.Error = "NONE"
		}
	}
	c.finish(e)
}

// decode runs kmsg's decoder. kmsg reads with bounds checks and refuses
// array counts larger than the bytes left; the recover is a last line of
// defence against a decoder bug on hostile bytes, counted when it fires.
func (c *conn) decode(m interface{ ReadFrom([]byte) error }, p []byte) (err error) {
	defer func() {
		if r := recover(); r != nil {
			c.d.count(CountDecoderPanic)
			err = fmt.Errorf("%w: decoder panic: %v", errUndecodable, r)
		}
	}()
	if u, ok := m.(kmsg.UnsafeReadFrom); ok {
		// Strings alias p; describe copies the ones it keeps.
		return u.UnsafeReadFrom(p)
	}
	return m.ReadFrom(p)
}

// rawSASLToken handles a SASL token sent after SaslHandshake v0, framed by a
// length only (KIP-43). It is shown as a SaslAuthenticate without version.
func (c *conn) rawSASLToken(body []byte, size int, start time.Time, gap bool) {
	c.d.count(CountRawSASL)
	if c.rawToken != nil {
		c.rawToken.Unmatched = protocols.MissingResponse
		c.finish(c.rawToken)
	}
	rec := &protocols.KafkaRecord{APIKey: 36, API: kmsg.NameForKey(36), APIVersion: -1, CorrelationID: -1}
	e := &protocols.Entry{Protocol: protocols.Kafka, Start: start, RequestSize: int64(size), Gap: gap, Kafka: rec}
	e.Warn("SASL token framed without a Kafka header (after SaslHandshake v0)")
	c.saslAuth(e, body)
	c.rawToken = e
}

// letGo gives back what ex held of the budget.
func (c *conn) letGo(ex *exchange) {
	c.opts.Budget.Release(ex.held)
	ex.held = 0
}

// finish fills the summary and emits.
func (c *conn) finish(e *protocols.Entry) {
	rec := e.Kafka
	if c.opts.Redact && redactRecords(rec, c.opts.Secrets) {
		e.Redacted = true
	}
	e.Summary = protocols.Summary{Target: target(rec), Status: rec.Error}
	if rec.APIKey >= 0 {
		e.Summary.Method = rec.API
	}
	c.emit(e)
}

// target is the topic a call is about, "N topics" for several, or else the
// group or transaction it is about.
func target(rec *protocols.KafkaRecord) string {
	switch {
	case rec.TopicCount == 1 && len(rec.Topics) == 1:
		if rec.Topics[0].Name != "" {
			return rec.Topics[0].Name
		}
		return rec.Topics[0].ID
	case rec.TopicCount > 1:
		return fmt.Sprintf("%d topics", rec.TopicCount)
	case rec.GroupID != "":
		return rec.GroupID
	}
	return rec.TransactionalID
}
