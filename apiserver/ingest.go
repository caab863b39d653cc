package apiserver

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/sondehq/sonde/apiserver/enrich"
	"github.com/sondehq/sonde/apiserver/internal/entryjson"
	"github.com/sondehq/sonde/apiserver/internal/store"
	"github.com/sondehq/sonde/apiserver/internal/stream"
	"github.com/sondehq/sonde/protocols"
	"github.com/sondehq/sonde/protocols/wire"
)

// Websocket timing for agents.
const (
	// ingestWriteWait bounds writing one ack.
	ingestWriteWait = 10 * time.Second
	// ingestPongWait is how long an agent may stay silent (no message, no pong).
	ingestPongWait = 60 * time.Second
	// ingestPingPeriod must be shorter than ingestPongWait.
	ingestPingPeriod = ingestPongWait * 9 / 10
	// maxCloseReason is what fits in a close frame's reason.
	maxCloseReason = 123
)

var errNoHello = errors.New("the first message must be a hello")

// ingester takes entries into the hub: agent connections (ServeHTTP), the
// checking of their batches, and in-process loads (ingestEntries); it
// stores each batch and hands it, stored, to the live streams.
//
// Goroutines: each agent connection is served on its HTTP handler's
// goroutine, which stores batches and writes acks (the connection's only
// writer of data frames), plus one that reads and checks the next batch and
// one that pings; ingestEntries runs on its caller's. The ingester starts
// nothing else and owns nothing that outlives a connection but the agents'
// records. Safe for concurrent use.
type ingester struct {
	token      []byte
	resolver   enrich.Resolver
	maxMessage int64
	log        *slog.Logger
	store      *store.Store
	live       publisher
	conns      connTracker
	metrics    *metrics
	agents     *agents
	upgrader   *websocket.Upgrader
	lim        ingestLimits
}

// publisher takes each stored batch for the live streams, in sequence order
// (it is called under the store's write lock); it must not block.
type publisher interface {
	Publish(items []stream.Item)
}

// connTracker registers the websockets a hub shutdown must close (the HTTP
// server does not track hijacked connections); track is false once the hub
// is shutting down.
type connTracker interface {
	track(c *websocket.Conn) bool
	untrack(c *websocket.Conn)
}

// ingestEntries stores entries loaded in-process and shows them to live
// streams, in batches of inProcessBatch, setting their IDs. Each is encoded
// as an agent would send it, JSON and index record, and then named and
// stored as an agent's entries are.
func (in *ingester) ingestEntries(entries []*protocols.Entry) error {
	p := in.newPreparer("", "")
	for len(entries) > 0 {
		n := min(inProcessBatch, len(entries))
		ready := make([]prepared, n)
		for i, e := range entries[:n] {
			var err error
			if ready[i], err = p.encoded(e); err != nil {
				return fmt.Errorf("entry %d: %w", i, err)
			}
		}
		first, _, _, err := in.storeBatch("", 0, ready)
		if err != nil {
			return err
		}
		for i, e := range entries[:n] {
			e.ID = strconv.FormatUint(first+uint64(i), 10)
		}
		entries = entries[n:]
	}
	return nil
}

// inProcessBatch is how many in-process entries go into one stored batch.
const inProcessBatch = 1000

// authorized checks the bearer token in constant time (hashing first, so
// that not even the length is compared in variable time).
func (in *ingester) authorized(r *http.Request) bool {
	if len(in.token) == 0 {
		return false
	}
	got, ok := bearerToken(r)
	if !ok {
		return false
	}
	a, b := sha256.Sum256([]byte(got)), sha256.Sum256(in.token)
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1
}

// bearerToken returns the credentials of an "Authorization: Bearer" header.
// The scheme's name is case-insensitive (RFC 9110 §11.1).
func bearerToken(r *http.Request) (string, bool) {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	return strings.TrimLeft(token, " "), true
}

// ServeHTTP serves one agent connection (GET /api/v1/ingest): hello, then
// batches, each stored and then acknowledged.
func (in *ingester) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !in.authorized(r) {
		in.metrics.rejected.WithLabelValues(rejectUnauthorized).Inc()
		in.log.Warn("ingest refused: missing or wrong token", "remote", r.RemoteAddr)
		writeError(w, http.StatusUnauthorized, "missing or wrong bearer token")
		return
	}
	lim := in.limits()
	select {
	case lim.slots <- struct{}{}:
		defer func() { <-lim.slots }()
	default:
		in.metrics.rejected.WithLabelValues(rejectTooManyConns).Inc()
		in.log.Warn("ingest refused: too many agent connections", "remote", r.RemoteAddr, "max", lim.maxConns)
		writeError(w, http.StatusServiceUnavailable, fmt.Sprintf("the hub serves at most %d agent connections at once; try again later", lim.maxConns))
		return
	}
	c, err := in.upgrader.Upgrade(w, r, nil)
	if err != nil {
		in.metrics.rejected.WithLabelValues(rejectUpgrade).Inc()
		return
	}
	if !in.conns.track(c) {
		c.Close()
		return
	}
	defer in.conns.untrack(c)
	defer c.Close()
	c.SetReadLimit(in.maxMessage)
	c.SetReadDeadline(time.Now().Add(ingestPongWait))
	c.SetPongHandler(func(string) error { return c.SetReadDeadline(time.Now().Add(ingestPongWait)) })

	done := make(chan struct{})
	defer close(done)
	go func() {
		t := time.NewTicker(ingestPingPeriod)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				// WriteControl may run beside the handler's writes.
				if c.WriteControl(websocket.PingMessage, nil, time.Now().Add(ingestWriteWait)) != nil {
					return
				}
			}
		}
	}()

	// One goroutine reads and checks the next batch while this one stores
	// and acknowledges the previous: checking and storing use a core each.
	inbox := make(chan inbound, 1)
	bufs := msgBuffers{ch: make(chan *[]byte, msgBuffersHeld), mem: lim.mem}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go in.readIngest(ctx, c, inbox, done, bufs)
	// What this connection holds of the batch memory goes back when it
	// ends: the message being handled, those the reader still sends, and
	// the buffers kept for the next.
	var holding int64
	defer func() {
		cancel()
		c.Close() // ends the reader's read
		lim.mem.release(holding)
		for msg := range inbox {
			lim.mem.release(msg.charge)
		}
		bufs.drain()
	}()

	var a *agentState
	defer func() {
		if a != nil {
			in.agents.disconnected(a)
			in.metrics.agentConnected.Dec()
		}
	}()
	for msg := range inbox {
		holding = msg.charge
		switch {
		case msg.readErr != nil:
			if errors.Is(msg.readErr, websocket.ErrReadLimit) {
				// gorilla has already sent "message too big" (1009).
				in.metrics.rejected.WithLabelValues(rejectTooLarge).Inc()
				in.log.Warn("ingest message over the size limit", "remote", r.RemoteAddr, "limit", in.maxMessage)
			}
			return
		case msg.bad != nil:
			in.refuse(c, r, msg.bad.reason, msg.bad.code, msg.bad.text)
			return
		case msg.m.Type == wire.TypeHello:
			m := msg.m
			var other string
			if a, other = in.agents.connected(m.Hello, r.RemoteAddr); a == nil {
				in.refuse(c, r, rejectAgentConnected, websocket.ClosePolicyViolation,
					fmt.Sprintf("agent_id %s is already connected (from %s); try again once that connection ends", m.AgentID, other))
				return
			}
			in.metrics.agentConnected.Inc()
			in.log.Info("agent connected", "agent", m.AgentID, "node", m.Node, "version", m.Version, "remote", r.RemoteAddr)
		default: // a batch
			m := msg.m
			_, stored, dup, err := in.storeBatch(a.hello.AgentID, m.Seq, msg.entries)
			if errors.Is(err, store.ErrBatchAhead) || errors.Is(err, store.ErrBatchBehind) {
				reason := rejectBatchAhead
				if errors.Is(err, store.ErrBatchBehind) {
					reason = rejectBatchBehind
				}
				in.refuse(c, r, reason, websocket.ClosePolicyViolation,
					fmt.Sprintf("batch %d refused: more than %d from the last batch stored for this agent_id (%v)", m.Seq, store.BatchWindow, err))
				return
			}
			if errors.Is(err, store.ErrDiskFull) {
				// Not acknowledged: the agent keeps the batch and sends it
				// again when it reconnects.
				in.refuse(c, r, rejectDiskFull, websocket.CloseTryAgainLater,
					fmt.Sprintf("batch %d not stored: the hub's disk is full; try again later", m.Seq))
				return
			}
			if err != nil {
				in.metrics.rejected.WithLabelValues(rejectStoreFailed).Inc()
				in.log.Error("storing a batch", "agent", a.hello.AgentID, "err", err)
				c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseInternalServerErr, "store failed"), time.Now().Add(ingestWriteWait))
				return
			}
			if dropped := in.agents.batch(a, len(msg.entries), dup, m.Counters); dropped > 0 {
				in.metrics.agentDropped.Add(float64(dropped))
			}
			lim.mem.release(holding)
			holding = 0
			bufs.put(msg.buf)
			c.SetWriteDeadline(time.Now().Add(ingestWriteWait))
			if err := c.WriteJSON(wire.Ack{Type: wire.TypeAck, Seq: m.Seq, Stored: stored}); err != nil {
				return
			}
		}
	}
}

// inbound is one message from an agent, checked and made ready to store,
// or the reason the connection ends.
type inbound struct {
	m       wire.Message
	entries []prepared
	// buf holds the message, which entries may alias; release it once they
	// are stored.
	buf *[]byte
	// charge is what the message holds of the batch memory, to release
	// once its entries are stored.
	charge  int64
	bad     *refusal
	readErr error
}

// msgBuffers recycles the buffers one connection's messages are read into.
// A batch is around a megabyte, and reading each into a new buffer grown by
// doubling (as websocket.Conn.ReadMessage does) allocated and copied about
// three times that for every batch. A sync.Pool would not do: the
// collections that each batch's garbage brings about would empty it. Kept
// buffers are charged to the batch memory, when it has room for them.
type msgBuffers struct {
	ch  chan *[]byte
	mem *byteBudget
}

// msgBuffersHeld is how many buffers a connection keeps: the one being
// read, the one waiting, the one being stored.
const msgBuffersHeld = 3

// get returns a kept buffer, its charge released (the message read into
// it is charged in full), or a new one.
func (m msgBuffers) get() *[]byte {
	select {
	case b := <-m.ch:
		m.mem.release(int64(cap(*b)))
		return b
	default:
		return new([]byte)
	}
}

// put keeps b for the next message if it is not too large and the batch
// memory has room for it; otherwise it is left to the collector.
func (m msgBuffers) put(b *[]byte) {
	// Kept buffers may take only half the memory, so that the buffers of
	// idle connections never starve those that have batches to read.
	n := int64(cap(*b))
	if n > pooledBufferMax || m.mem.used.Load()+n > m.mem.size/2 || !m.mem.tryAcquire(n) {
		return
	}
	select {
	case m.ch <- b:
	default:
		m.mem.release(n)
	}
}

// drain gives back the kept buffers' charge.
func (m msgBuffers) drain() {
	for {
		select {
		case b := <-m.ch:
			m.mem.release(int64(cap(*b)))
		default:
			return
		}
	}
}

// readMessage reads a message from r into buf, growing it as needed, to at
// most limit+maxGrowthSlack bytes (the connection's read limit ends a
// longer message).
func readMessage(r io.Reader, buf []byte, limit int64) ([]byte, error) {
	buf = buf[:0]
	for {
		if len(buf) == cap(buf) {
			n := min(max(2*cap(buf), 32<<10), int(limit)+maxGrowthSlack)
			if n <= cap(buf) {
				n = cap(buf) + 4<<10
			}
			buf = append(make([]byte, 0, n), buf...)
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if errors.Is(err, io.EOF) {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

// refusal says why a message ends its connection.
type refusal struct {
	reason string
	code   int
	text   string
}

// readIngest reads an agent's messages in order and makes their entries
// ready to store, until the connection fails, a message is refused (the
// last thing sent), or done is closed. It reads into buffers from bufs; a
// batch's goes back there once the batch is stored.
func (in *ingester) readIngest(ctx context.Context, c *websocket.Conn, out chan<- inbound, done <-chan struct{}, bufs msgBuffers) {
	defer close(out)
	mem := bufs.mem
	var charge int64 // the message's, until sent on
	defer func() { mem.release(charge) }()
	send := func(msg inbound) bool {
		msg.charge, charge = charge, 0
		select {
		case out <- msg:
			return msg.readErr == nil && msg.bad == nil
		case <-done:
			mem.release(msg.charge)
			return false
		}
	}
	refuse := func(reason string, code int, text string) {
		send(inbound{bad: &refusal{reason: reason, code: code, text: text}})
	}
	var hello *wire.Message
	var prep *preparer
	for {
		typ, r, err := c.NextReader()
		if err != nil {
			send(inbound{readErr: err})
			return
		}
		// The whole of a message's share is taken at once, before reading,
		// so that connections waiting for room never each hold part of it.
		need := messageCharge(in.maxMessage)
		if err := mem.acquire(ctx, need); err != nil {
			send(inbound{readErr: err})
			return
		}
		charge = need
		buf := bufs.get()
		data, err := readMessage(r, *buf, in.maxMessage)
		*buf = data
		if err != nil {
			send(inbound{readErr: err})
			return
		}
		// Keep what the buffer and the store's copy of it take.
		held := int64(cap(data) + len(data))
		mem.release(charge - held)
		charge = held
		c.SetReadDeadline(time.Now().Add(ingestPongWait))
		header, body, _ := bytes.Cut(data, []byte{'\n'})
		var m wire.Message
		if err := json.Unmarshal(header, &m); err != nil {
			refuse(rejectMalformed, websocket.CloseUnsupportedData, "malformed message: "+err.Error())
			return
		}
		if len(body) > 0 && m.Type != wire.TypeBatch {
			refuse(rejectProtocol, websocket.ClosePolicyViolation, "only a batch has more than its header")
			return
		}
		switch {
		case hello == nil && m.Type != wire.TypeHello:
			refuse(rejectProtocol, websocket.ClosePolicyViolation, errNoHello.Error())
			return
		case m.Type == wire.TypeHello:
			if hello != nil || m.AgentID == "" || typ != websocket.TextMessage {
				refuse(rejectProtocol, websocket.ClosePolicyViolation, "one hello, a text message with an agent_id, first")
				return
			}
			hello = &m
			prep = in.newPreparer(m.Node, m.Source)
			mem.release(charge) // a hello's fields are copies
			charge = 0
			bufs.put(buf)
			if !send(inbound{m: m}) {
				return
			}
		case m.Type == wire.TypeBatch:
			if m.Seq == 0 {
				refuse(rejectProtocol, websocket.ClosePolicyViolation, "batch numbers start at 1")
				return
			}
			var entries []prepared
			var err error
			if typ == websocket.BinaryMessage {
				entries, err = prep.indexedBatch(body)
			} else {
				entries, err = prep.lineBatch(body)
			}
			if err != nil {
				refuse(rejectMalformed, websocket.CloseUnsupportedData, fmt.Sprintf("malformed message: batch %d: %v", m.Seq, err))
				return
			}
			if !send(inbound{m: m, entries: entries, buf: buf}) {
				return
			}
		default:
			refuse(rejectProtocol, websocket.ClosePolicyViolation, fmt.Sprintf("unknown message type %q", m.Type))
			return
		}
	}
}

// refuse counts a bad message and closes the connection saying why.
func (in *ingester) refuse(c *websocket.Conn, r *http.Request, reason string, code int, text string) {
	in.metrics.rejected.WithLabelValues(reason).Inc()
	in.log.Warn("ingest connection closed", "reason", reason, "detail", text, "remote", r.RemoteAddr)
	if len(text) > maxCloseReason {
		text = text[:maxCloseReason]
	}
	c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, text), time.Now().Add(ingestWriteWait))
}

const (
	// maxIDLen is the longest hub ID: a uint64 in decimal.
	maxIDLen = 20
	// namedGrowth is room for what naming adds to an index record's endpoints.
	namedGrowth = 160
	// overlayChunk is how many bytes of overlays a preparer allocates at a
	// time, and overlayRoom the least it starts an overlay with.
	overlayChunk = 16 << 10
	overlayRoom  = 256
)

// prepared is an entry ready to store: its JSON as the agent wrote it, the
// overlay of what the hub adds to it (see entryjson.Merge), and its index
// record without an ID. The hub gives the ID when it stores the entry, and
// then writes named endpoints into the record too, so that the record is
// written once.
type prepared struct {
	start time.Time
	// json may alias the message it came in.
	json, overlay, record []byte
	// named, when set, are the src and dst for the record.
	named *[2]protocols.Endpoint
}

// preparer makes the entries of one agent's batches ready to store: checked,
// named by the resolver, with the node and capture source of the agent's
// hello where an entry lacks them. Not safe for concurrent use.
type preparer struct {
	resolver     enrich.Resolver
	node, source string
	dec          *entryjson.EntryDecoder
	// overlays and ends hold what prepared entries point at, a chunk at a
	// time; a chunk is never written again where an entry points.
	overlays []byte
	ends     [][2]protocols.Endpoint
	check    indexCheck
	// mismatched counts an entry whose index record disagreed with its
	// JSON; nil counts nothing.
	mismatched func()
}

func (in *ingester) newPreparer(node, source string) *preparer {
	return &preparer{resolver: in.resolver, node: node, source: source, dec: entryjson.NewEntryDecoder(), mismatched: in.metrics.indexMismatch.Inc}
}

// indexedBatch prepares the entries of a binary batch: each its index record
// and its JSON (see wire).
func (p *preparer) indexedBatch(body []byte) ([]prepared, error) {
	var out []prepared
	for i := 0; len(body) > 0; i++ {
		rec, line, rest, err := wire.NextIndexed(body)
		if err != nil {
			return nil, fmt.Errorf("entry %d: %w", i, err)
		}
		body = rest
		e, err := p.indexed(rec, line)
		if err != nil {
			return nil, fmt.Errorf("entry %d: %w", i, err)
		}
		out = append(out, e)
	}
	return out, nil
}

// indexed prepares an entry that came with its index record. When the hub
// can use the record, the JSON is only scanned, not decoded: checked, and
// its ID and endpoints found. Otherwise it is decoded as a line batch's
// entry is.
func (p *preparer) indexed(rec, line []byte) (prepared, error) {
	r, current, err := wire.CheckIndex(rec)
	if err != nil {
		return prepared{}, err
	}
	if !current || !r.HasNode && p.node != "" || !r.HasSource && p.source != "" {
		return p.line(line)
	}
	at, err := p.dec.Scan(line) // checks the syntax of the whole line
	if err != nil {
		return prepared{}, err
	}
	if ok, err := p.check.agrees(&r, rec, line); err != nil {
		return prepared{}, err
	} else if !ok {
		if p.mismatched != nil {
			p.mismatched()
		}
		return p.line(line)
	}
	e := protocols.Entry{Start: r.Start}
	if p.resolver != nil { // what naming reads
		e.Src, e.Dst = r.Endpoints()
		if at.Via != (entryjson.Span{}) {
			e.Via = new(protocols.Endpoint)
			if err := json.Unmarshal(line[at.Via.Start:at.Via.End], e.Via); err != nil {
				return prepared{}, fmt.Errorf("via: %w", err)
			}
		}
	}
	return p.name(line, rec, &e, at, entryjson.Additions{})
}

// encoded prepares an entry loaded in-process, encoding it as an agent
// does. Its JSON, encoding/json's own, needs no check; it is scanned for
// its endpoints only when naming changes them.
func (p *preparer) encoded(e *protocols.Entry) (prepared, error) {
	line, err := json.Marshal(e)
	if err != nil {
		return prepared{}, fmt.Errorf("encoding entry: %w", err)
	}
	var at entryjson.Spans
	if id, ok := entryjson.LeadingID(line); ok {
		at.ID = id
	} else if at, err = p.dec.Scan(line); err != nil {
		return prepared{}, err
	}
	named := protocols.Entry{Start: e.Start, Src: e.Src, Dst: e.Dst} // naming leaves e as it is
	if e.Via != nil {
		via := *e.Via
		named.Via = &via
	}
	return p.name(line, wire.AppendIndex(nil, e), &named, at, entryjson.Additions{})
}

// lineBatch prepares the entries of a text batch: one JSON line each.
func (p *preparer) lineBatch(body []byte) ([]prepared, error) {
	var out []prepared
	for i := 0; len(body) > 0; i++ {
		var line []byte
		line, body, _ = bytes.Cut(body, []byte{'\n'})
		e, err := p.line(line)
		if err != nil {
			return nil, fmt.Errorf("entry %d: %w", i, err)
		}
		out = append(out, e)
	}
	return out, nil
}

// line prepares an entry from its JSON alone, decoding it for its index
// record.
func (p *preparer) line(line []byte) (prepared, error) {
	if bytes.Equal(line, []byte("null")) {
		return prepared{}, errors.New("null entry")
	}
	e := new(protocols.Entry)
	at, err := p.dec.Decode(line, e)
	if err != nil {
		return prepared{}, err
	}
	var add entryjson.Additions
	if e.Node == "" && p.node != "" {
		e.Node, add.Node = p.node, p.node
	}
	if e.Source == "" && p.source != "" {
		e.Source, add.Source = p.source, p.source
	}
	return p.name(line, wire.AppendIndex(nil, e), e, at, add)
}

// name is where every entry ends, checked: the resolver names its
// endpoints (e holds its start and endpoints, and may be changed), and what
// the hub adds (add, with the names) is written in its overlay, beside its
// JSON untouched. at is where the ID and endpoints are in line; only the
// ID's when the endpoints are to be found if named.
func (p *preparer) name(line, rec []byte, e *protocols.Entry, at entryjson.Spans, add entryjson.Additions) (prepared, error) {
	out := prepared{start: e.Start, json: line, record: rec}
	if p.resolver != nil {
		src, dst := e.Src, e.Dst
		var via protocols.Endpoint
		if e.Via != nil {
			via = *e.Via
		}
		if enrich.Entry(p.resolver, e) {
			// The overlay holds only the endpoints naming changed.
			if e.Src != src {
				add.Src = &e.Src
			}
			if e.Dst != dst {
				add.Dst = &e.Dst
			}
			if e.Via != nil && *e.Via != via {
				add.Via = e.Via
			}
			if at.Src == (entryjson.Span{}) && at.Dst == (entryjson.Span{}) {
				var err error
				if at, err = p.dec.Scan(line); err != nil {
					return prepared{}, err
				}
			}
			if len(p.ends) == cap(p.ends) {
				p.ends = make([][2]protocols.Endpoint, 0, 256)
			}
			p.ends = append(p.ends, [2]protocols.Endpoint{e.Src, e.Dst})
			out.named = &p.ends[len(p.ends)-1]
		}
	}
	if cap(p.overlays)-len(p.overlays) < overlayRoom {
		p.overlays = make([]byte, 0, overlayChunk)
	}
	add.At = at
	from := len(p.overlays)
	p.overlays = entryjson.AppendOverlay(p.overlays, &add)
	out.overlay = p.overlays[from:len(p.overlays):len(p.overlays)]
	return out, nil
}

// storeBatch stores and publishes entries under the next IDs, the first
// of which it returns, and says how many it stored (0 for a batch stored
// before: dup).
func (in *ingester) storeBatch(agentID string, batchSeq uint64, entries []prepared) (first uint64, stored int, dup bool, err error) {
	size, recSize := 0, 0 // of the batch's JSON and index records
	for _, e := range entries {
		size += len(e.json)
		recSize += len(e.record) + 1 + maxIDLen
		if e.named != nil {
			recSize += namedGrowth
		}
	}
	items := make([]stream.Item, len(entries))
	first, dup, err = in.store.Append(agentID, batchSeq, func(first uint64) ([]store.Record, error) {
		recs := make([]store.Record, len(entries))
		// One allocation holds the batch's JSON, copied out of the message
		// (whose buffer is reused), and one its index records: live streams
		// keep slices of both while they send them.
		all := make([]byte, 0, size)
		index := make([]byte, 0, recSize)
		var idBuf [maxIDLen]byte
		for i, e := range entries {
			seq := first + uint64(i)
			from := len(all)
			all = append(all, e.json...)
			line := all[from:len(all):len(all)]
			from = len(index)
			edits := wire.Edits{ID: string(strconv.AppendUint(idBuf[:0], seq, 10))}
			if e.named != nil {
				edits.Src, edits.Dst = &e.named[0], &e.named[1]
			}
			index = wire.AppendEdited(index, e.record, edits)
			rec := index[from:len(index):len(index)]
			recs[i] = store.Record{Start: e.start, JSON: line, Overlay: e.overlay, Index: rec}
			items[i] = stream.Item{Seq: seq, Index: rec, JSON: line, Overlay: e.overlay}
		}
		return recs, nil
	}, func() { in.live.Publish(items) })
	if err != nil || dup {
		if dup {
			in.metrics.duplicates.Inc()
		}
		return 0, 0, dup, err
	}
	in.metrics.batches.Inc()
	in.metrics.ingested.Add(float64(len(entries)))
	return first, len(entries), false, nil
}

// agents remembers every agent seen since the hub started.
type agents struct {
	mu sync.Mutex
	m  map[string]*agentState
}

type agentState struct {
	hello     wire.Hello
	remote    string
	connected bool
	// gone is closed when the connection that holds the agent_id ends.
	gone        chan struct{}
	connectedAt time.Time
	lastSeen    time.Time
	batches     uint64
	entries     uint64
	duplicates  uint64
	counters    map[string]uint64
	// countersRefused counts counters not kept (see maxAgentCounters).
	countersRefused uint64
}

func newAgents() *agents { return &agents{m: map[string]*agentState{}} }

// connected records an agent's hello. An agent_id already connected is
// not taken over: it returns nil and the remote address of the connection
// that holds it. Refusing the second connection, rather than replacing the
// first, keeps anyone holding the shared token from pushing an agent off
// the hub again and again; a genuine agent whose old connection the hub has
// not yet seen die (ingestPongWait at most) is refused until then, keeps
// buffering and reconnects, losing nothing. (A restarted agent has a new
// agent_id.)
func (g *agents) connected(h wire.Hello, remote string) (*agentState, string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	a := g.m[h.AgentID]
	if a != nil && a.connected {
		// An agent that reconnects at once may say hello before the hub
		// has read the end of its old connection: give that a moment.
		gone := a.gone
		g.mu.Unlock()
		select {
		case <-gone:
		case <-time.After(takeoverWait):
		}
		g.mu.Lock()
		if a.connected {
			return nil, a.remote
		}
	}
	if a == nil {
		a = &agentState{counters: map[string]uint64{}}
		g.m[h.AgentID] = a
	}
	a.hello, a.remote, a.connected = h, remote, true
	a.gone = make(chan struct{})
	a.connectedAt, a.lastSeen = time.Now(), time.Now()
	return a, ""
}

func (g *agents) disconnected(a *agentState) {
	g.mu.Lock()
	a.connected = false
	close(a.gone)
	g.mu.Unlock()
}

// takeoverWait is how long a hello waits for the connection that holds its
// agent_id to end before it is refused.
const takeoverWait = 2 * time.Second

// batch records a batch and the agent's counters; it returns by how much the
// agent's drop counter (wire.EmitDropped) grew, which the hub adds to
// sonde_hub_agent_dropped_entries_total.
func (g *agents) batch(a *agentState, n int, dup bool, counters map[string]uint64) uint64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	a.lastSeen = time.Now()
	a.batches++
	if dup {
		a.duplicates++
	} else {
		a.entries += uint64(n)
	}
	var grew uint64
	if v, ok := counters[wire.EmitDropped]; ok && v > a.counters[wire.EmitDropped] {
		grew = v - a.counters[wire.EmitDropped]
	}
	for k, v := range counters {
		// The agent's own counters are always kept; the others (dissectors',
		// parse errors) only within the bounds.
		if _, known := a.counters[k]; !known && !wire.IsAgentCounter(k) && (len(a.counters) >= maxAgentCounters || len(k) > maxCounterName) {
			a.countersRefused++
			continue
		}
		a.counters[k] = v
	}
	return grew
}

// An agent's counters are kept for the hub's life and listed every few
// seconds by each UI, so what one agent can make the hub keep is bounded: an
// agent has a few hundred counters, each named in a few dozen bytes.
const (
	maxAgentCounters = 1024
	maxCounterName   = 128
)

// AgentInfo is one agent as GET /api/v1/agents shows it.
type AgentInfo struct {
	AgentID     string            `json:"agent_id"`
	Node        string            `json:"node"`
	Version     string            `json:"version"`
	Source      string            `json:"source"`
	Remote      string            `json:"remote"`
	Connected   bool              `json:"connected"`
	ConnectedAt time.Time         `json:"connected_at"`
	LastSeen    time.Time         `json:"last_seen"`
	Batches     uint64            `json:"batches"`
	Entries     uint64            `json:"entries"`
	Duplicates  uint64            `json:"duplicate_batches"`
	Counters    map[string]uint64 `json:"counters"`
	// CountersRefused counts the counters not kept: past the number an
	// agent may have, or with too long a name.
	CountersRefused uint64 `json:"counters_refused"`
	// Loss names the counters that count traffic Sonde could not show.
	Loss []string `json:"loss"`
}

func (g *agents) list() []AgentInfo {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]AgentInfo, 0, len(g.m))
	for _, a := range g.m {
		c := make(map[string]uint64, len(a.counters))
		loss := []string{}
		for k, v := range a.counters {
			c[k] = v
			if wire.IsLoss(k, &a.hello) {
				loss = append(loss, k)
			}
		}
		sort.Strings(loss)
		out = append(out, AgentInfo{AgentID: a.hello.AgentID, Node: a.hello.Node, Version: a.hello.Version,
			Source: a.hello.Source, Remote: a.remote, Connected: a.connected, ConnectedAt: a.connectedAt,
			LastSeen: a.lastSeen, Batches: a.batches, Entries: a.entries, Duplicates: a.duplicates, Counters: c, CountersRefused: a.countersRefused, Loss: loss})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Node != out[j].Node {
			return out[i].Node < out[j].Node
		}
		return out[i].AgentID < out[j].AgentID
	})
	return out
}

func (g *agents) connectedCount() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	n := 0
	for _, a := range g.m {
		if a.connected {
			n++
		}
	}
	return n
}
