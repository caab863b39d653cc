package redis

import (
	"bytes"
	"fmt"
	"strings"
	"time"

	"github.com/sondehq/sonde/protocols"
)

// Warnings, in words a user reads on an entry.
const (
	warnAfterGap    = "paired after bytes were lost: the pairing may be off"
	warnMidStream   = "connection joined mid-stream: the pairing may be off"
	warnPendingCap  = "more commands waited for replies than the cap allows"
	warnReplyCut    = "reply incomplete when the connection ended"
	warnCommandCut  = "command incomplete when the connection ended"
	warnCommandGap  = "command cut short by lost bytes"
	warnConfirmLess = "fewer subscription confirmations than channels"
	warnBudgetCut   = "cut short: the agent's memory for held messages was spent"
	warnBudgetEvict = "reply no longer awaited: the agent's memory for held messages was spent"
)

// maxOrphanRun is how many replies without a command, in a row, are shown
// one by one after a gap or a mid-stream start; the rest of the run (the
// tail of a large reply, read as separate values) is folded into one entry.
const maxOrphanRun = 8

// maxTracked bounds the subscriptions followed by name.
const maxTracked = 4096

// unsure says why pairing may be off.
type unsure uint8

const (
	sure unsure = iota
	unsureGap
	unsureMidStream
)

// exchange is a command and, once it came, its reply.
type exchange struct {
	e *protocols.Entry
	// name is the command's name; arg1 its first argument (HELLO's
	// version), kept rather than the arguments, which the entry shows.
	name, arg1 string
	// configGet marks CONFIG GET, whose reply holds secrets.
	configGet bool
	// confirms is the subscription confirmation kind ("subscribe") that
	// answers this command, one per channel; expect is how many (-1: as
	// many as come), got how many came.
	confirms    string
	expect, got int
	noReply     bool
	inMulti     bool
	// held is what the waiting command holds of Options.Budget: its
	// arguments, as the entry keeps them.
	held int
}

// conn follows one connection: the commands the client sent, paired in
// order with the replies the server sent, and the one-way pushes between.
type conn struct {
	opts protocols.Options
	emit protocols.EmitFunc
	dec  [2]decoder

	queue []*exchange
	// owed counts replies still due to commands that the MaxPending cap
	// pushed out of the queue: they are skipped to keep pairing aligned.
	owed int

	// State that the client's stream sets, in the order the server reads it.
	multi              bool // between MULTI and EXEC/DISCARD/RESET
	replyOff, skipNext bool // CLIENT REPLY OFF / SKIP

	// State that the server's replies confirm.
	resp3   bool // HELLO 3 succeeded: pub/sub messages come as pushes
	monitor bool // MONITOR succeeded: the server streams what it runs
	// replication: PSYNC succeeded, the server (a master) streams the
	// commands it runs and the client (a replica) acknowledges them.
	replication bool
	subs        subscriptions

	unsure    unsure
	orphanRun int
	folded    *protocols.Entry
	foldedN   int

	err    error
	closed bool
	counts *protocols.CounterSet
}

// Counters returns how often this connection hit each cap, by stable name.
func (c *conn) Counters() map[string]uint64 { return c.counts.Counters() }

func newConn(info protocols.ConnInfo, emit protocols.EmitFunc) *conn {
	opts := info.Options
	if opts.BodyCap == 0 {
		opts = protocols.DefaultOptions()
	}
	c := &conn{opts: opts, emit: emit, counts: counterNames.New()}
	c.dec[protocols.ClientToServer] = decoder{client: true, keepCap: opts.BodyCap, budget: opts.Budget}
	c.dec[protocols.ServerToClient] = decoder{keepCap: opts.BodyCap, budget: opts.Budget}
	c.subs.reset()
	if info.MidStream {
		for i := range c.dec {
			c.dec[i].resync, c.dec[i].lineStart = true, true
		}
		c.dec[protocols.ClientToServer].inlineOK = true
		c.unsure = unsureMidStream
		c.subs.known = false
	}
	return c
}

func (c *conn) replyCap() int { return min(c.opts.BodyCap, replyCap) }

func (c *conn) Feed(dir protocols.Direction, data []byte, ts time.Time) (int, error) {
	if c.err != nil || c.closed {
		return 0, c.err
	}
	d := &c.dec[dir]
	n := 0
	for n < len(data) {
		k, m, err := d.next(data[n:], ts)
		n += k
		if err != nil {
			c.fail(err)
			return n, err
		}
		if m == nil {
			break
		}
		if m.budgetCut {
			c.counts.Add(countBudgetCut, 1)
		}
		if dir == protocols.ClientToServer {
			c.request(m)
		} else {
			c.reply(m, ts)
		}
		// The entry made of the message copied what it shows.
		c.opts.Budget.Release(m.held)
	}
	return n, nil
}

func (c *conn) Gap(dir protocols.Direction, n int, ts time.Time) {
	if c.err != nil || c.closed {
		return
	}
	d := &c.dec[dir]
	if d.skip(n) {
		return
	}
	if p := d.partial(); p != nil && dir == protocols.ClientToServer && len(p.elems) > 0 {
		_, e := parseCommand(&message{v: p, start: d.start, wire: d.wire}, &c.opts)
		e.Unmatched, e.Gap = protocols.MissingResponse, true
		e.Warn(warnCommandGap)
		c.emit(e)
	}
	d.reset()
	d.resync, d.lineStart = true, true
	if d.rdb != rdbNone {
		// The snapshot's end is lost: what follows is commands.
		d.rdb, d.rdbMark, d.rdbTail, d.client = rdbNone, nil, nil, true
	}
	// Replies may have been lost, or commands whose replies will now seem
	// to answer later ones: what waits cannot be paired reliably.
	c.flushQueue(func(e *protocols.Entry) {
		e.Gap = true
		e.Warn(fmt.Sprintf("%d bytes lost in the %s stream", n, dir))
	})
	c.owed = 0
	c.unsure = unsureGap
	c.subs.known = false
	c.orphanRun = 0
}

func (c *conn) Close(reason protocols.CloseReason, ts time.Time) {
	if c.err != nil || c.closed {
		return
	}
	c.closed = true
	cd := &c.dec[protocols.ClientToServer]
	sd := &c.dec[protocols.ServerToClient]
	if p := sd.partial(); p != nil {
		m := &message{v: p, start: sd.start, wire: sd.wire, budgetCut: sd.budgetCut}
		if m.budgetCut {
			c.counts.Add(countBudgetCut, 1)
		}
		p.cut = true
		switch head := c.head(); {
		case c.owed > 0:
			// The reply of a command the pending cap already let go.
		case head != nil:
			head.e.Warn(warnReplyCut)
			c.pair(head, m, ts)
		default:
			c.orphan(m, ts, warnReplyCut)
		}
	}
	c.endConfirmations()
	c.flushQueue(nil)
	if p := cd.partial(); p != nil && len(p.elems) > 0 {
		p.cut = true
		_, e := parseCommand(&message{v: p, start: cd.start, wire: cd.wire}, &c.opts)
		if cd.budgetCut {
			c.counts.Add(countBudgetCut, 1)
			e.Warn(warnBudgetCut)
		}
		e.Unmatched = protocols.MissingResponse
		e.Warn(warnCommandCut)
		c.emit(e)
	}
	c.flushFolded()
	c.letGo()
}

// letGo gives back what the messages being read hold of the budget.
func (c *conn) letGo() {
	for i := range c.dec {
		c.dec[i].budget.Release(c.dec[i].held)
		c.dec[i].held = 0
	}
}

// fail makes the connection opaque after a protocol error, emitting first
// what it still holds.
func (c *conn) fail(err error) {
	c.endConfirmations()
	c.flushQueue(func(e *protocols.Entry) { e.Warn("no reply readable: " + err.Error()) })
	c.flushFolded()
	c.letGo()
	c.err = err
}

func (c *conn) head() *exchange {
	if len(c.queue) == 0 {
		return nil
	}
	return c.queue[0]
}

// request handles a command from the client.
func (c *conn) request(m *message) {
	cmd, e := parseCommand(m, &c.opts)
	e.Gap = m.gap
	if m.budgetCut {
		e.Warn(warnBudgetCut)
	}
	x := &exchange{e: e, name: cmd.name, inMulti: c.multi, configGet: cmd.name == "CONFIG" && cmd.sub == "GET"}
	if cmd.name == "HELLO" {
		x.arg1 = cmd.arg(1)
	}

	// CLIENT REPLY ON is always answered; OFF and SKIP never are, and they
	// silence what follows (Redis's CLIENT_REPLY_OFF and _SKIP flags).
	replyMode := ""
	if cmd.name == "CLIENT" && cmd.sub == "REPLY" && !c.multi {
		replyMode = cmd.arg(2)
	}
	if !c.replication && c.unsure == unsureMidStream && cmd.name == "REPLCONF" && cmd.arg(1) == "ACK" {
		// Only a replica acknowledges, and only once it is in sync.
		c.replication, c.dec[protocols.ServerToClient].client = true, true
	}
	switch {
	case c.replication:
		// REPLCONF ACK and the like: a master does not answer.
		x.noReply = true
	case replyMode == "ON":
		c.replyOff, c.skipNext = false, false
	case replyMode == "OFF":
		x.noReply, c.replyOff = true, true
	case replyMode == "SKIP":
		x.noReply, c.skipNext = true, !c.replyOff
	case c.replyOff:
		x.noReply = true
	case c.skipNext:
		x.noReply, c.skipNext = true, false
	}

	switch cmd.name {
	case "MULTI":
		c.multi = true
	case "EXEC", "DISCARD":
		c.multi = false
	case "RESET":
		c.multi, c.replyOff, c.skipNext = false, false, false
	case "SUBSCRIBE", "PSUBSCRIBE", "SSUBSCRIBE", "UNSUBSCRIBE", "PUNSUBSCRIBE", "SUNSUBSCRIBE":
		// Inside MULTI they answer QUEUED; their confirmations come in
		// EXEC's reply.
		if c.multi {
			break
		}
		x.confirms = string(bytes.ToLower([]byte(cmd.name)))
		x.expect = int(cmd.argc - 1)
		if x.expect == 0 {
			if !isUnsubscribe(x.confirms) {
				// SUBSCRIBE without a channel is an arity error.
				x.confirms = ""
			} else {
				// Every subscription of its kind is dropped, one
				// confirmation each: how many is known when they come.
				x.expect = -1
			}
		}
	}
	e.Redis.NoReply = x.noReply

	c.queue = append(c.queue, x)
	if c.opts.MaxPending > 0 && len(c.queue) > c.opts.MaxPending {
		c.counts.Add(countPendingEvicted, 1)
		c.evict(warnPendingCap)
	}
	c.hold(x)
	c.drainNoReply()
}

// evict gives up on the oldest waiting command: it is emitted unmatched,
// and its reply, when it comes, is skipped to keep pairing aligned.
func (c *conn) evict(why string) {
	old := c.queue[0]
	c.queue = c.queue[1:]
	if !old.noReply {
		c.owed++
		if old.expect > 1 {
			c.owed += old.expect - old.got - 1
		}
		old.e.Unmatched = protocols.MissingResponse
		old.e.Warn(why)
	}
	c.send(old)
}

// hold reserves what x, the newest waiting command, keeps of the budget.
// When the budget is spent, the oldest commands waiting on this connection
// are given up to make room, x itself last.
func (c *conn) hold(x *exchange) {
	n := heldSize(x.e)
	for !c.opts.Budget.Reserve(n) {
		if len(c.queue) == 0 || c.queue[len(c.queue)-1] != x {
			return // x was given up already
		}
		c.counts.Add(countBudgetEvicted, 1)
		c.evict(warnBudgetEvict)
		if len(c.queue) == 0 {
			return
		}
	}
	x.held = n
}

// heldSize estimates what a waiting command's entry keeps in memory: its
// arguments and the strings and headers around them.
func heldSize(e *protocols.Entry) int {
	const entryOverhead, stringOverhead = 512, 16
	n := entryOverhead + len(e.Redis.Key) + len(e.Redis.Command)
	for _, a := range e.Redis.Args {
		n += len(a) + stringOverhead
	}
	return n
}

// send emits a command that waited, giving back what it held.
func (c *conn) send(x *exchange) {
	c.opts.Budget.Release(x.held)
	x.held = 0
	c.emit(x.e)
}

// drainNoReply emits the commands at the head of the queue that get no reply.
func (c *conn) drainNoReply() {
	for len(c.queue) > 0 && c.queue[0].noReply {
		x := c.queue[0]
		c.queue = c.queue[1:]
		c.send(x)
	}
}

// reply handles a value from the server: a reply, the confirmation of a
// subscription, or a push.
func (c *conn) reply(m *message, ts time.Time) {
	v := m.v
	if c.replication && c.dec[protocols.ServerToClient].client || v.kind == 'R' {
		c.replicated(m)
		return
	}
	kind := pushKind(v)
	confirmation := isConfirmation(v, kind)
	for {
		head := c.head()
		if head == nil || head.confirms == "" || c.owed > 0 {
			break
		}
		if confirmation && kind == head.confirms && !(head.expect < 0 && head.got > 0 && v.elems[1].isNull()) {
			c.confirm(head, m, ts)
			return
		}
		if head.got == 0 || !confirmation && c.isPush(v, kind) {
			break
		}
		// An open-ended UNSUBSCRIBE ends where something else begins.
		if head.expect > 0 {
			head.e.Warn(warnConfirmLess)
		}
		c.finish(head)
	}
	if confirmation {
		c.subs.track(kind, v)
	}
	if c.isPush(v, kind) {
		if v.kind == '+' {
			kind = "monitor"
		}
		c.push(m, kind)
		return
	}
	if c.owed > 0 {
		c.owed--
		return
	}
	if head := c.head(); head != nil {
		c.pair(head, m, ts)
		return
	}
	c.orphan(m, ts, "")
}

// isPush says whether a server value is a one-way message rather than a reply.
func (c *conn) isPush(v *value, kind string) bool {
	switch {
	case v.kind == '>':
		return true
	case v.kind == '*' && !c.resp3 && isMessage(v, kind):
		// In RESP2 a subscribed connection receives messages as arrays;
		// one that nothing waits on cannot be a reply either.
		return c.subs.active() || c.head() == nil && c.owed == 0
	case v.kind == '+' && c.monitor:
		return isMonitorLine(v.text)
	}
	return false
}

// pair gives the head of the queue its reply.
func (c *conn) pair(x *exchange, m *message, ts time.Time) {
	if x.configGet && c.opts.Redact && redactConfigReply(m.v, c.opts.Secrets) {
		x.e.Redacted = true
	}
	c.setReply(x, m, ts)
	v := m.v
	if !v.isError() {
		switch x.name {
		case "HELLO":
			switch x.arg1 {
			case "2":
				c.resp3 = false
			case "3":
				c.resp3 = true
			}
		case "MONITOR":
			c.monitor = !x.inMulti
		case "RESET":
			c.resp3, c.monitor = false, false
			c.subs.reset()
		case "PSYNC":
			c.startReplication(v)
		}
		if x.inMulti && v.kind == '+' && string(v.text) == "QUEUED" {
			x.e.Redis.Queued = true
		}
	}
	c.finish(x)
}

// startReplication follows a replica's PSYNC: after +FULLRESYNC a
// snapshot, then commands; after +CONTINUE, commands at once.
func (c *conn) startReplication(v *value) {
	d := &c.dec[protocols.ServerToClient]
	switch {
	case v.kind != '+':
	case bytes.HasPrefix(v.text, []byte("FULLRESYNC")):
		c.replication, d.rdb = true, rdbHeader
	case bytes.HasPrefix(v.text, []byte("CONTINUE")):
		c.replication, d.client = true, true
	}
}

// replicated emits what a master streams to its replica: the snapshot,
// then each command, as one-way entries.
func (c *conn) replicated(m *message) {
	if m.v.kind == 'R' {
		rec := &protocols.RedisRecord{PushKind: "rdb", ReplyType: "rdb", Reply: fmt.Sprintf("snapshot of %d bytes", m.v.size)}
		e := &protocols.Entry{Protocol: protocols.Redis, Start: m.start, ResponseSize: m.wire, Redis: rec, Gap: m.gap}
		e.Summary.Method = "rdb"
		c.emit(e)
		return
	}
	_, e := parseCommand(m, &c.opts)
	e.RequestSize, e.ResponseSize = 0, m.wire
	e.Gap = m.gap
	e.Redis.PushKind, e.Redis.NoReply = "replication", true
	c.emit(e)
}

// confirm gives a SUBSCRIBE-like command one of its confirmations.
func (c *conn) confirm(x *exchange, m *message, ts time.Time) {
	if x.got == 0 {
		if x.expect < 0 && c.subs.known {
			x.expect = max(1, c.subs.count(x.confirms))
		}
		c.setReply(x, m, ts)
	} else {
		rec := x.e.Redis
		if s, cut := render(m.v, c.replyCap()-len(rec.Reply)); len(rec.Reply) < c.replyCap() {
			rec.Reply += " " + s
			rec.ReplyTruncated = rec.ReplyTruncated || cut
		} else {
			rec.ReplyTruncated = true
		}
		x.e.ResponseSize += m.wire
		x.e.Duration = ts.Sub(x.e.Start)
	}
	c.subs.track(x.confirms, m.v)
	x.got++
	if x.expect > 0 && x.got >= x.expect {
		c.finish(x)
	}
}

// endConfirmations ends an open-ended UNSUBSCRIBE that got confirmations.
func (c *conn) endConfirmations() {
	if head := c.head(); head != nil && head.confirms != "" && head.got > 0 {
		c.finish(head)
	}
}

func (c *conn) setReply(x *exchange, m *message, ts time.Time) {
	e := x.e
	if m.budgetCut {
		e.Warn(warnBudgetCut)
	}
	e.Summary.Status = describe(e.Redis, m.v, c.replyCap())
	e.ResponseSize = m.wire
	e.Duration = ts.Sub(e.Start)
	e.Gap = e.Gap || m.gap
	switch c.unsure {
	case unsureGap:
		e.Gap = true
		e.Warn(warnAfterGap)
	case unsureMidStream:
		e.Warn(warnMidStream)
	}
}

// finish emits the head of the queue, which has its reply.
func (c *conn) finish(x *exchange) {
	c.flushFolded()
	c.orphanRun = 0
	c.queue = c.queue[1:]
	c.send(x)
	c.drainNoReply()
	if len(c.queue) == 0 && c.owed == 0 {
		c.unsure = sure
	}
}

// flushQueue emits every command still waiting, as unmatched unless it
// gets no reply by design.
func (c *conn) flushQueue(mark func(*protocols.Entry)) {
	for _, x := range c.queue {
		if !x.noReply {
			x.e.Unmatched = protocols.MissingResponse
			if mark != nil {
				mark(x.e)
			}
		}
		c.send(x)
	}
	c.queue = c.queue[:0]
}

// push emits a one-way message.
func (c *conn) push(m *message, kind string) {
	v := m.v
	rec := &protocols.RedisRecord{PushKind: kind}
	e := &protocols.Entry{Protocol: protocols.Redis, Start: m.start, ResponseSize: m.wire, Redis: rec, Gap: m.gap}
	describe(rec, v, c.replyCap())
	if m.budgetCut {
		e.Warn(warnBudgetCut)
	}
	str := func(i int) string {
		if i >= len(v.elems) {
			return ""
		}
		if s, ok := v.elems[i].str(); ok {
			s, _ = display([]byte(s), argCap)
			return s
		}
		return ""
	}
	switch kind {
	case "monitor":
		// The line is the whole message.
	case "pmessage":
		rec.Pattern, rec.Channel = str(1), str(2)
		e.Summary.Target = rec.Channel
	case "invalidate":
		// [invalidate, [key, ...]] or [invalidate, null] after a flush.
		if len(v.elems) > 1 && len(v.elems[1].elems) > 0 {
			if s, ok := v.elems[1].elems[0].str(); ok {
				rec.Key, _ = display([]byte(s), argCap)
			}
		}
		e.Summary.Target = rec.Key
	default:
		rec.Channel = str(1)
		e.Summary.Target = rec.Channel
	}
	e.Summary.Method = kind
	c.emit(e)
}

// orphan emits a reply whose command was not seen.
func (c *conn) orphan(m *message, ts time.Time, warning string) {
	c.orphanRun++
	fold := c.unsure != sure && c.orphanRun > maxOrphanRun
	if fold && c.folded != nil {
		c.foldedN++
		c.folded.ResponseSize += m.wire
		c.folded.Duration = ts.Sub(c.folded.Start)
		return
	}
	rec := &protocols.RedisRecord{}
	e := &protocols.Entry{Protocol: protocols.Redis, Start: m.start, ResponseSize: m.wire, Redis: rec,
		Unmatched: protocols.MissingRequest, Gap: c.unsure == unsureGap || m.gap}
	e.Duration = ts.Sub(m.start)
	e.Summary.Status = describe(rec, m.v, c.replyCap())
	if m.budgetCut {
		e.Warn(warnBudgetCut)
	}
	if warning != "" {
		e.Warn(warning)
	}
	if fold {
		c.folded = e
		return
	}
	c.emit(e)
}

// flushFolded emits the entry that stands for a run of replies without
// commands.
func (c *conn) flushFolded() {
	if c.folded == nil {
		return
	}
	if c.foldedN > 0 {
		c.folded.Warn(fmt.Sprintf("%d more replies without a command follow this one, folded into it", c.foldedN))
	}
	c.emit(c.folded)
	c.folded, c.foldedN = nil, 0
}

// pushKind is the lower-cased first string of an array or a push: the kind
// of a pub/sub message or confirmation, or of a RESP3 push.
func pushKind(v *value) string {
	if (v.kind != '*' && v.kind != '>') || len(v.elems) == 0 {
		return ""
	}
	s, ok := v.elems[0].str()
	if !ok || len(s) > nameLimit {
		return ""
	}
	return string(bytes.ToLower([]byte(s)))
}

// isConfirmation: [subscribe, channel, count] and the like.
func isConfirmation(v *value, kind string) bool {
	switch kind {
	case "subscribe", "psubscribe", "ssubscribe", "unsubscribe", "punsubscribe", "sunsubscribe":
		return v.n == 3 && len(v.elems) == 3 && v.elems[2].kind == ':'
	}
	return false
}

// isMessage: [message, channel, payload], [pmessage, pattern, channel,
// payload], [smessage, channel, payload].
func isMessage(v *value, kind string) bool {
	switch kind {
	case "message", "smessage":
		return v.n == 3
	case "pmessage":
		return v.n == 4
	}
	return false
}

func isUnsubscribe(kind string) bool { return strings.Contains(kind, "unsubscribe") }

// isMonitorLine: "1700000000.123456 [0 127.0.0.1:50000] "GET" "k"".
func isMonitorLine(text []byte) bool {
	i := 0
	for i < len(text) && '0' <= text[i] && text[i] <= '9' {
		i++
	}
	return i > 0 && bytes.HasPrefix(text[i:], []byte(".")) && bytes.Contains(text[i:min(len(text), i+16)], []byte(" ["))
}

// subscriptions follows what the connection is subscribed to: the counts
// the server confirms, and, while they stay few and were all seen, the
// names, so that an UNSUBSCRIBE without arguments knows how many
// confirmations to wait for.
type subscriptions struct {
	n, shardN int64 // from the latest confirmations
	known     bool
	names     [3]map[string]struct{} // channels, patterns, shard channels
}

func (s *subscriptions) reset() {
	s.n, s.shardN, s.known = 0, 0, true
	for i := range s.names {
		s.names[i] = nil
	}
}

func (s *subscriptions) active() bool { return s.n > 0 || s.shardN > 0 }

func subsIndex(kind string) int {
	switch kind {
	case "psubscribe", "punsubscribe":
		return 1
	case "ssubscribe", "sunsubscribe":
		return 2
	}
	return 0
}

func (s *subscriptions) count(kind string) int { return len(s.names[subsIndex(kind)]) }

// track applies a confirmation [kind, channel, count].
func (s *subscriptions) track(kind string, v *value) {
	n, _ := v.elems[2].integer()
	if subsIndex(kind) == 2 {
		s.shardN = n
	} else {
		s.n = n
	}
	if !s.known {
		return
	}
	name, ok := v.elems[1].str()
	set := &s.names[subsIndex(kind)]
	switch {
	case !ok:
	case isUnsubscribe(kind):
		delete(*set, name)
	case len(*set) >= maxTracked || v.elems[1].cut:
		s.known = false
	default:
		if *set == nil {
			*set = make(map[string]struct{})
		}
		(*set)[name] = struct{}{}
	}
}
