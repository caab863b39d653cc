package http1

import (
	"bytes"
	"fmt"
	"time"

	"github.com/sondehq/sonde/protocols"
)

// state is where a direction's parser is in its stream.
type state uint8

const (
	stStart      state = iota // before a start line
	stLength                  // in a body of known remaining length
	stChunkSize               // before a chunk-size line
	stChunkData               // in a chunk
	stChunkEnd                // before the CRLF that ends a chunk
	stTrailers                // before the trailer section that ends a chunked body
	stUntilClose              // in a response body delimited by the end of the connection
	stSync                    // discarding bytes until something starts a message
)

// syncReason says why a direction is resynchronising.
type syncReason uint8

const (
	syncGarbage syncReason = iota
	syncGap
	syncMidStream
)

// exchange is one request and its response as they are being parsed. Either
// half may be missing: a response without its request (joined mid-stream),
// or a placeholder for a request lost in a gap, which keeps FIFO pairing.
type exchange struct {
	entry *protocols.Entry
	req   *protocols.HTTPRequest
	resp  *protocols.HTTPResponse
	// info holds the 1xx codes seen before the final response.
	info              []int
	reqDone, respDone bool
	reqEnd, respStart time.Time
	respEnd           time.Time
	http09            bool
	// upgrade is the request's Upgrade field. blocks is set for a request
	// after which the client's bytes may belong to another protocol
	// (Upgrade, CONNECT) until the response says whether they do.
	upgrade string
	blocks  bool
	// held is what the exchange has reserved of Options.Budget: the body
	// bytes it keeps, released when it is emitted.
	held int
	// bodies wait to be decoded and redacted until the exchange is
	// finished, so that a request waiting for its response holds its body
	// as sent (at most BodyCap) rather than inflated (up to DecodedCap).
	bodies []heldBody
}

// heldBody is a body kept as sent, with what finish needs to show it.
type heldBody struct {
	body        *protocols.Body
	coding      string
	contentType string
}

// side is the parser of one direction.
type side struct {
	dir   protocols.Direction
	state state
	// start is when the current message's first byte was seen; last is the
	// time of the newest bytes fed.
	start, last time.Time
	// scan is how far the search for the end of the start line or of the
	// header block got, so that a block arriving in small pieces is scanned
	// once. lineEnd is the length of the start line with its LF once it has
	// arrived; parsed says that line was parsed into rl or sl.
	scan, lineEnd int
	parsed        bool
	rl            requestLine
	sl            statusLine

	// The message in progress, once its header block is parsed.
	ex       *exchange
	body     *protocols.Body
	trailers *protocols.Headers
	size     *int64
	coding   string
	remain   int64
	// lost is set when a gap hit the body: it is counted, no longer kept.
	lost bool

	sync      syncReason
	lineStart bool
	// syncSkipped counts bytes discarded by the current resynchronisation,
	// skipped those not yet reported in a message's warnings.
	syncSkipped, skipped int64
}

type conn struct {
	opts  protocols.Options
	emit  protocols.EmitFunc
	sides [2]side
	// queue holds exchanges in request order until they are emitted.
	queue []*exchange
	// blocked is the request whose response decides what the client's next
	// bytes are; the client side consumes nothing while it is set.
	blocked *exchange
	now     time.Time
	// err is sticky: after it, the Conn consumes and emits nothing.
	err    error
	counts *protocols.CounterSet
}

// Counters returns how often this connection hit each cap, by stable name.
func (c *conn) Counters() map[string]uint64 { return c.counts.Counters() }

func newConn(info protocols.ConnInfo, emit protocols.EmitFunc) *conn {
	c := &conn{opts: info.Options, emit: emit, counts: counterNames.New()}
	if c.opts.MaxPending <= 0 {
		c.opts.MaxPending = protocols.DefaultOptions().MaxPending
	}
	for i := range c.sides {
		c.sides[i].dir = protocols.Direction(i)
		if info.MidStream {
			c.enterSync(&c.sides[i], syncMidStream)
		}
	}
	return c
}

func (c *conn) Feed(dir protocols.Direction, data []byte, ts time.Time) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	c.now = ts
	s := &c.sides[dir]
	if len(data) > 0 {
		s.last = ts
	}
	off := 0
	for off < len(data) {
		before := s.state
		n, err := c.step(s, data[off:])
		off += n
		if err != nil {
			if c.err == nil {
				c.fail(err)
			}
			return off, err
		}
		if n > 0 {
			s.rescan()
		} else if s.state == before {
			break
		}
	}
	c.flush()
	return off, nil
}

// step parses what it can of data in the side's current state and returns
// how much it consumed. Zero with an unchanged state means it needs more.
func (c *conn) step(s *side, data []byte) (int, error) {
	switch s.state {
	case stStart:
		if s.dir == protocols.ClientToServer {
			return c.readRequest(s, data)
		}
		return c.readResponse(s, data)
	case stLength, stChunkData:
		n := int(min(int64(len(data)), s.remain))
		c.consumeBody(s, data[:n])
		s.remain -= int64(n)
		if s.remain == 0 {
			if s.state == stLength {
				c.endMessage(s)
			} else {
				s.state = stChunkEnd
			}
		}
		return n, nil
	case stChunkSize:
		return readChunkSize(s, data)
	case stChunkEnd:
		return readChunkEnd(s, data)
	case stTrailers:
		return c.readTrailers(s, data)
	case stUntilClose:
		c.consumeBody(s, data)
		return len(data), nil
	default:
		return c.resync(s, data)
	}
}

func (c *conn) readRequest(s *side, data []byte) (int, error) {
	if c.blocked != nil {
		return 0, nil
	}
	if s.start.IsZero() {
		s.start = c.now
	}
	end, err := s.startLine(data)
	if end == 0 {
		return 0, err
	}
	if end <= 2 && len(trimCR(data[:end-1])) == 0 {
		// RFC 9112 §2.2: empty lines before a request line are ignored.
		s.start = time.Time{}
		return end, nil
	}
	if !s.parsed {
		var ok bool
		if s.rl, ok = splitRequestLine(trimCR(data[:end-1])); !ok {
			c.enterSync(s, syncGarbage)
			return 0, nil
		}
		s.parsed = true
	}
	rl, lineEnd := s.rl, end
	http09 := rl.versionStart == rl.vEnd
	if !http09 {
		if end, err = s.headerEnd(data, lineEnd); end < 0 {
			return 0, err
		}
	}
	block := string(data[:end])
	ex := c.newExchange(s)
	req := &protocols.HTTPRequest{
		Method:  block[:rl.methodEnd],
		Target:  block[rl.targetStart:rl.tEnd],
		Version: block[rl.versionStart:rl.vEnd],
	}
	var f framing
	if !http09 {
		if req.Headers, err = parseFields(block[lineEnd:end], ex.entry.Warn); err != nil {
			return 0, err
		}
		if f, err = readFraming(req.Headers); err != nil {
			return 0, err
		}
		// RFC 9112 §6.3: a request whose final transfer coding is not
		// chunked has no reliable length; a server answers 400 and closes.
		if f.transferEncoding && !f.chunked {
			return 0, protocols.Malformed(protocols.HTTP1, codeBadTransferEncoding, "final coding is not chunked")
		}
	}
	if c.opts.Redact {
		var changed bool
		req.Target, changed = c.opts.Secrets.RedactTarget(req.Target)
		if c.opts.Secrets.RedactHeaders(req.Headers) || changed {
			ex.entry.Redacted = true
		}
	}
	req.Scheme, req.Authority, req.Path = splitTarget(req.Target)
	if req.Authority == "" {
		req.Authority = f.host
	}
	ex.req, ex.entry.HTTP.Request = req, req
	ex.entry.Start = s.start
	ex.entry.RequestSize = int64(end)
	ex.http09 = http09
	ex.upgrade = f.upgrade
	ex.blocks = req.Method == "CONNECT" || f.upgrade != ""
	c.enqueue(ex)
	s.begin(ex, &req.Body, &req.Trailers, &ex.entry.RequestSize, f.coding)
	switch {
	case f.chunked:
		s.state = stChunkSize
	case f.length > 0:
		c.expectLength(s, f.length)
	default:
		c.endMessage(s)
	}
	return end, nil
}

func (c *conn) readResponse(s *side, data []byte) (int, error) {
	if s.start.IsZero() {
		s.start = c.now
	}
	target := c.awaiting()
	if target != nil && target.http09 && !hasPrefixFold(data, "HTTP/") {
		if len(data) < len("HTTP/") && hasPrefixFold("HTTP/", string(data)) {
			return 0, nil
		}
		// An HTTP/0.9 response is the body alone, up to the end of the connection.
		resp := &protocols.HTTPResponse{Version: "HTTP/0.9"}
		c.beginResponse(s, target, resp, 0, "")
		s.state = stUntilClose
		return 0, nil
	}
	lineEnd, err := s.startLine(data)
	if lineEnd == 0 {
		return 0, err
	}
	if lineEnd <= 2 && len(trimCR(data[:lineEnd-1])) == 0 {
		// Stray line ends after a body are common (a CRLF after a
		// Content-Length body); they belong to no message.
		s.start = time.Time{}
		return lineEnd, nil
	}
	if !s.parsed {
		var ok bool
		if s.sl, ok = parseStatusLine(trimCR(data[:lineEnd-1])); !ok {
			c.enterSync(s, syncGarbage)
			return 0, nil
		}
		s.parsed = true
	}
	sl := s.sl
	end, err := s.headerEnd(data, lineEnd)
	if end < 0 {
		return 0, err
	}
	block := string(data[:end])
	var warnings []string
	headers, err := parseFields(block[lineEnd:end], func(w string) { warnings = append(warnings, w) })
	if err != nil {
		return 0, err
	}
	f, err := readFraming(headers)
	if err != nil {
		return 0, err
	}
	informational := sl.code/100 == 1 && sl.code != 101
	if target == nil {
		if informational {
			// A 1xx to a request that was not seen says nothing.
			s.start = time.Time{}
			return end, nil
		}
		target = c.newExchange(s)
		target.reqDone = true
		c.enqueue(target)
	}
	c.reportSkipped(s, target)
	for _, w := range warnings {
		target.entry.Warn(w)
	}
	if informational {
		if len(target.info) < maxInformational {
			target.info = append(target.info, sl.code)
		}
		if target.respStart.IsZero() {
			target.respStart = s.start
		}
		target.entry.ResponseSize += int64(end)
		s.start = time.Time{}
		return end, nil
	}
	resp := &protocols.HTTPResponse{
		Version:       block[:sl.versionEnd],
		StatusCode:    sl.code,
		Reason:        block[sl.reasonStart:sl.reasonEnd],
		Headers:       headers,
		Informational: target.info,
	}
	if c.opts.Redact && c.opts.Secrets.RedactHeaders(resp.Headers) {
		target.entry.Redacted = true
	}
	c.beginResponse(s, target, resp, end, f.coding)
	if c.blocked == target {
		c.blocked = nil
	}
	method := ""
	if target.req != nil {
		method = target.req.Method
	}
	switch {
	case sl.code == 101:
		up := f.upgrade
		if up == "" {
			up = target.upgrade
		}
		return end, c.upgrade(s, target, upgradeToken(up))
	case method == "CONNECT" && sl.code/100 == 2:
		return end, c.upgrade(s, target, string(Tunnel))
	// RFC 9112 §6.3: these responses end with their header section.
	case method == "HEAD" || sl.code == 204 || sl.code == 304:
		c.endMessage(s)
	case f.chunked:
		s.state = stChunkSize
	case f.transferEncoding:
		s.state = stUntilClose
	case f.length > 0:
		c.expectLength(s, f.length)
	case f.length == 0:
		c.endMessage(s)
	default:
		s.state = stUntilClose
	}
	return end, nil
}

// readTrailers reads the trailer section after the last chunk.
func (c *conn) readTrailers(s *side, data []byte) (int, error) {
	end, err := s.headerEnd(data, 0)
	if end < 0 {
		return 0, err
	}
	if t, err := parseFields(string(data[:end]), s.ex.entry.Warn); err != nil {
		return 0, err
	} else if len(t) > 0 {
		if c.opts.Redact && c.opts.Secrets.RedactHeaders(t) {
			s.ex.entry.Redacted = true
		}
		*s.trailers = t
	}
	*s.size += int64(end)
	c.endMessage(s)
	return end, nil
}

// resync discards bytes until a line start where a request line (client) or
// a status line (server) begins.
func (c *conn) resync(s *side, data []byte) (int, error) {
	p := 0
	for {
		if s.lineStart {
			var v protocols.Verdict
			if s.dir == protocols.ClientToServer {
				v = detectRequest(data[p:], detectWindow)
			} else {
				v = detectStatus(data[p:])
			}
			if v == protocols.Match {
				s.state = stStart
			}
			if v != protocols.NoMatch {
				break
			}
		}
		i := bytes.IndexByte(data[p:], '\n')
		if i < 0 {
			p, s.lineStart = len(data), false
			break
		}
		p += i + 1
		s.lineStart = true
		if p == len(data) {
			break
		}
	}
	s.skipped += int64(p)
	s.syncSkipped += int64(p)
	if s.sync == syncGarbage && s.syncSkipped > maxGarbage {
		return p, protocols.Malformed(protocols.HTTP1, codeLostSync, fmt.Sprintf("more than %d bytes without a message start", maxGarbage))
	}
	return p, nil
}

func (c *conn) enterSync(s *side, why syncReason) {
	s.reset()
	s.state, s.sync, s.syncSkipped = stSync, why, 0
	// Garbage is found at a line start that did not parse; after a gap or a
	// join the very next byte may start a message.
	s.lineStart = why != syncGarbage
}

func (s *side) reset() {
	*s = side{dir: s.dir, last: s.last, skipped: s.skipped, sync: s.sync}
}

// enqueue adds a request to the FIFO that responses pair with. Beyond
// MaxPending waiting requests, the oldest is given up as unanswered.
func (c *conn) enqueue(ex *exchange) {
	c.queue = append(c.queue, ex)
	if len(c.queue) <= c.opts.MaxPending {
		return
	}
	if old := c.queue[0]; old.reqDone && old.resp == nil {
		old.respDone = true
		c.counts.Add(countPendingEvicted, 1)
		old.entry.Warn(fmt.Sprintf("response no longer awaited: more than %d requests were waiting", c.opts.MaxPending))
		c.flush()
	}
}

// awaiting is the oldest exchange still waiting for its final response.
func (c *conn) awaiting() *exchange {
	for _, ex := range c.queue {
		if ex.resp == nil && !ex.respDone {
			return ex
		}
	}
	return nil
}

// begin makes ex's message the one s is parsing.
func (s *side) begin(ex *exchange, body *protocols.Body, trailers *protocols.Headers, size *int64, coding string) {
	s.ex, s.body, s.trailers, s.size, s.coding = ex, body, trailers, size, coding
}

func (c *conn) beginResponse(s *side, ex *exchange, resp *protocols.HTTPResponse, headerSize int, coding string) {
	ex.resp, ex.entry.HTTP.Response = resp, resp
	if ex.respStart.IsZero() {
		ex.respStart = s.start
	}
	ex.entry.ResponseSize += int64(headerSize)
	s.begin(ex, &resp.Body, &resp.Trailers, &ex.entry.ResponseSize, coding)
}

// expectLength starts a body of n bytes, with room for what will be kept of it.
func (c *conn) expectLength(s *side, n int64) {
	s.state, s.remain = stLength, n
	s.body.Data = make([]byte, 0, min(n, int64(max(c.opts.BodyCap, 0))))
}

func (c *conn) consumeBody(s *side, p []byte) {
	*s.size += int64(len(p))
	if s.lost {
		s.body.Size += int64(len(p))
		return
	}
	if keep := min(len(p), c.opts.BodyCap-len(s.body.Data)); keep > 0 && !c.reserve(s.ex, keep) {
		s.body.Size += int64(len(p))
		s.body.Truncated = true
		s.ex.entry.Warn(budgetCutWarning)
		return
	}
	s.body.Capture(p, c.opts.BodyCap)
}

// The warnings of an exchange that the memory budget cut short.
const (
	budgetCutWarning     = "body cut short: the agent's memory for held messages was spent"
	budgetEvictedWarning = "response no longer awaited: the agent's memory for held messages was spent"
)

// reserve takes n bytes of the budget for ex. When the budget is spent, the
// oldest request waiting on this connection is given up (emitted unmatched)
// to make room, as often as that helps; false when nothing could.
func (c *conn) reserve(ex *exchange, n int) bool {
	for !c.opts.Budget.Reserve(n) {
		if len(c.queue) == 0 {
			c.counts.Add(countBudgetCut, 1)
			return false
		}
		old := c.queue[0]
		if old == ex || !old.reqDone || old.resp != nil || old.respDone {
			c.counts.Add(countBudgetCut, 1)
			return false
		}
		old.respDone = true
		c.counts.Add(countBudgetEvicted, 1)
		old.entry.Warn(budgetEvictedWarning)
		c.flush()
	}
	ex.held += n
	return true
}

// release gives back what ex held of the budget.
func (c *conn) release(ex *exchange) {
	c.opts.Budget.Release(ex.held)
	ex.held = 0
}

// loseBody accounts for n body bytes that a gap took.
func (c *conn) loseBody(s *side, n int) {
	s.ex.entry.Gap = true
	s.lost = true
	s.body.Size += int64(n)
	s.body.Truncated = true
	*s.size += int64(n)
}

// endMessage completes the message s was parsing.
func (c *conn) endMessage(s *side) {
	ex := s.ex
	if s.body != nil {
		var h protocols.Headers
		if s.dir == protocols.ClientToServer && ex.req != nil {
			h = ex.req.Headers
		} else if s.dir == protocols.ServerToClient && ex.resp != nil {
			h = ex.resp.Headers
		}
		ct, _ := h.Get("Content-Type")
		ex.bodies = append(ex.bodies, heldBody{body: s.body, coding: s.coding, contentType: ct})
	}
	if s.dir == protocols.ClientToServer {
		ex.reqDone, ex.reqEnd = true, s.last
		if ex.blocks && ex.resp == nil {
			c.blocked = ex
		}
	} else {
		ex.respDone, ex.respEnd = true, s.last
	}
	s.reset()
	c.flush()
}

// upgrade ends HTTP/1 on this connection after a 101 (or a 2xx to CONNECT).
func (c *conn) upgrade(s *side, ex *exchange, token string) error {
	ex.entry.HTTP.Upgrade = token
	s.reset()
	ex.reqDone, ex.respDone, ex.respEnd = true, true, s.last
	err := &protocols.UpgradeError{To: protocols.Protocol(token)}
	if token == "h2c" {
		err.To = protocols.HTTP2
	}
	if token == "h2c" && ex.req != nil {
		// RFC 9113 §3.2 (RFC 7540 §3.2): the upgrade request becomes
		// stream 1, which the HTTP/2 parser completes with its response.
		for i, q := range c.queue {
			if q == ex {
				c.queue = append(c.queue[:i], c.queue[i+1:]...)
				break
			}
		}
		c.finish(ex)
		c.release(ex)
		ex.entry.HTTP.Response = nil
		ex.entry.Summary.Status = ""
		ex.entry.Unmatched = protocols.Matched
		err.Request = ex.entry
	}
	c.shutdown("connection switched to " + token + " before this message completed")
	c.err = err
	return err
}

// fail makes the connection opaque after a protocol error, emitting what
// it holds first.
func (c *conn) fail(err error) {
	why := "connection no longer parsed: " + err.Error()
	for _, ex := range c.queue {
		if (!ex.reqDone || !ex.respDone) && ex != c.sides[0].ex && ex != c.sides[1].ex {
			ex.entry.Warn(why)
		}
	}
	c.shutdown(why)
	c.err = err
}

// shutdown completes the messages in progress and emits every exchange.
func (c *conn) shutdown(why string) {
	for i := range c.sides {
		if s := &c.sides[i]; s.ex != nil {
			s.ex.entry.Warn(why)
			c.endMessage(s)
		}
	}
	for _, ex := range c.queue {
		ex.reqDone, ex.respDone = true, true
	}
	c.flush()
	c.queue = nil
	c.blocked = nil
}

// flush emits the exchanges at the front of the queue that are complete.
func (c *conn) flush() {
	for len(c.queue) > 0 {
		ex := c.queue[0]
		if !ex.reqDone || !ex.respDone {
			return
		}
		c.queue[0] = nil
		c.queue = c.queue[1:]
		c.release(ex)
		if ex.req == nil && ex.resp == nil {
			// A request lost in a gap whose response was lost too: nothing to show.
			continue
		}
		c.finish(ex)
		c.emit(ex.entry)
	}
}

func (c *conn) Gap(dir protocols.Direction, n int, ts time.Time) {
	if c.err != nil || n == 0 {
		return
	}
	c.now = ts
	s := &c.sides[dir]
	s.rescan()
	switch s.state {
	case stLength, stChunkData:
		if n > 0 && int64(n) <= s.remain {
			c.loseBody(s, n)
			s.remain -= int64(n)
			if s.remain == 0 {
				if s.state == stLength {
					c.endMessage(s)
				} else {
					s.state = stChunkEnd
				}
			}
			return
		}
	case stUntilClose:
		c.loseBody(s, max(n, 0))
		return
	case stSync:
		s.lineStart = true
		return
	}
	// The framing is lost: end what was in progress and look for the next message.
	switch {
	case s.ex != nil:
		s.ex.entry.Gap = true
		s.ex.entry.Warn(messageName(dir) + " cut short by a gap")
		c.endMessage(s)
	case dir == protocols.ClientToServer:
		// A request was lost, at least in part. Its response may still
		// come: hold its place so that it does not pair with the next one.
		ex := c.newExchange(s)
		ex.reqDone = true
		ex.entry.Gap = true
		c.enqueue(ex)
	default:
		// The response expected next was lost, at least in part.
		if ex := c.awaiting(); ex != nil {
			ex.respDone, ex.respEnd = true, ts
			ex.entry.Gap = true
		}
	}
	c.enterSync(s, syncGap)
	c.flush()
}

func (c *conn) Close(reason protocols.CloseReason, ts time.Time) {
	if c.err != nil {
		return
	}
	c.now = ts
	if s := &c.sides[protocols.ServerToClient]; s.state == stUntilClose {
		if reason != protocols.ClosedFIN {
			s.ex.entry.Warn("body delimited by the end of the connection, which ended by " + reason.String())
		}
		c.endMessage(s)
	}
	c.shutdown("message incomplete when the connection ended by " + reason.String())
	c.err = errClosed
}
