package apiserver

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/sondehq/sonde/apiserver/enrich"
	"github.com/sondehq/sonde/apiserver/internal/store"
	"github.com/sondehq/sonde/apiserver/internal/stream"
	"github.com/sondehq/sonde/apiserver/query"
	"github.com/sondehq/sonde/apiserver/wire"
	"github.com/sondehq/sonde/protocols"
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

// DroppedCounter is the counter agents report their buffer drops under; the
// hub adds its growth to sonde_hub_agent_dropped_entries_total.
const DroppedCounter = "emit_dropped"

var errNoHello = errors.New("the first message must be a hello")

// authorized checks the bearer token in constant time (hashing first, so
// that not even the length is compared in variable time).
func (s *Server) authorized(r *http.Request) bool {
	if len(s.cfg.Token) == 0 {
		return false
	}
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return false
	}
	a, b := sha256.Sum256([]byte(got)), sha256.Sum256(s.cfg.Token)
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1
}

// message is every message an agent may send, decoded in one pass.
type message struct {
	Type     string            `json:"type"`
	AgentID  string            `json:"agent_id"`
	Node     string            `json:"node"`
	Version  string            `json:"version"`
	Source   string            `json:"source"`
	Seq      uint64            `json:"seq"`
	Counters map[string]uint64 `json:"counters"`
	// Entries are a batch's lines after the header (see wire).
	Entries []json.RawMessage `json:"-"`
}

// ingest serves one agent connection: hello, then batches, each stored and
// then acknowledged.
func (s *Server) ingest(w http.ResponseWriter, r *http.Request) {
	if !s.authorized(r) {
		s.metrics.rejected.WithLabelValues(rejectUnauthorized).Inc()
		s.log.Warn("ingest refused: missing or wrong token", "remote", r.RemoteAddr)
		writeError(w, http.StatusUnauthorized, "missing or wrong bearer token")
		return
	}
	c, err := s.upgrader.Upgrade(w, r, nil)
	if err != nil {
		s.metrics.rejected.WithLabelValues(rejectUpgrade).Inc()
		return
	}
	if !s.track(c) {
		c.Close()
		return
	}
	defer s.untrack(c)
	defer c.Close()
	c.SetReadLimit(s.cfg.MaxMessageBytes)
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

	// One goroutine reads and decodes the next batch while this one stores
	// and acknowledges the previous: decoding and storing use a core each.
	in := make(chan inbound, 1)
	bufs := make(msgBuffers, msgBuffersHeld)
	go s.readIngest(c, in, done, bufs)

	var a *agentState
	defer func() {
		if a != nil {
			s.agents.disconnected(a)
			s.metrics.agentConnected.Dec()
		}
	}()
	for msg := range in {
		switch {
		case msg.readErr != nil:
			if errors.Is(msg.readErr, websocket.ErrReadLimit) {
				// gorilla has already sent "message too big" (1009).
				s.metrics.rejected.WithLabelValues(rejectTooLarge).Inc()
				s.log.Warn("ingest message over the size limit", "remote", r.RemoteAddr, "limit", s.cfg.MaxMessageBytes)
			}
			return
		case msg.bad != nil:
			s.refuse(c, r, msg.bad.reason, msg.bad.code, msg.bad.text)
			return
		case msg.m.Type == wire.TypeHello:
			m := msg.m
			a = s.agents.connected(wire.Hello{Type: m.Type, AgentID: m.AgentID, Node: m.Node, Version: m.Version, Source: m.Source}, r.RemoteAddr)
			s.metrics.agentConnected.Inc()
			s.log.Info("agent connected", "agent", m.AgentID, "node", m.Node, "version", m.Version, "remote", r.RemoteAddr)
		default: // a batch
			m := msg.m
			stored, dup, err := s.storeBatch(a.hello.AgentID, m.Seq, msg.entries, m.Entries, msg.at)
			if err != nil {
				s.log.Error("storing a batch", "agent", a.hello.AgentID, "err", err)
				c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseInternalServerErr, "store failed"), time.Now().Add(ingestWriteWait))
				return
			}
			if dropped := s.agents.batch(a, len(m.Entries), dup, m.Counters); dropped > 0 {
				s.metrics.agentDropped.Add(float64(dropped))
			}
			bufs.put(msg.buf)
			c.SetWriteDeadline(time.Now().Add(ingestWriteWait))
			if err := c.WriteJSON(wire.Ack{Type: wire.TypeAck, Seq: m.Seq, Stored: stored}); err != nil {
				return
			}
		}
	}
}

// inbound is one message from an agent, decoded and checked, or the reason
// the connection ends.
type inbound struct {
	m       message
	entries []*protocols.Entry
	// at locates each entry's endpoints in its line (m.Entries).
	at []wire.Endpoints
	// buf holds the message, which m.Entries alias; release it once they
	// are stored.
	buf     *[]byte
	bad     *refusal
	readErr error
}

// msgBuffers recycles the buffers one connection's messages are read into.
// A batch is around a megabyte, and reading each into a new buffer grown by
// doubling (as websocket.Conn.ReadMessage does) allocated and copied about
// three times that for every batch. A sync.Pool would not do: the
// collections that each batch's garbage brings about would empty it.
type msgBuffers chan *[]byte

// msgBuffersHeld is how many buffers a connection keeps: the one being
// read, the one waiting, the one being stored.
const msgBuffersHeld = 3

func (m msgBuffers) get() *[]byte {
	select {
	case b := <-m:
		return b
	default:
		return new([]byte)
	}
}

func (m msgBuffers) put(b *[]byte) {
	select {
	case m <- b:
	default:
	}
}

// readMessage reads the next message into buf, growing it as needed. The
// connection's read limit applies as with ReadMessage.
func readMessage(c *websocket.Conn, buf []byte) (int, []byte, error) {
	typ, r, err := c.NextReader()
	if err != nil {
		return typ, buf, err
	}
	buf = buf[:0]
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if errors.Is(err, io.EOF) {
			return typ, buf, nil
		}
		if err != nil {
			return typ, buf, err
		}
	}
}

// refusal says why a message ends its connection.
type refusal struct {
	reason string
	code   int
	text   string
}

// readIngest reads, decodes and checks an agent's messages in order, until
// the connection fails, a message is refused (the last thing sent), or done
// is closed. It reads into buffers from bufs; a batch's goes back there once
// the batch is stored.
func (s *Server) readIngest(c *websocket.Conn, out chan<- inbound, done <-chan struct{}, bufs msgBuffers) {
	defer close(out)
	send := func(msg inbound) bool {
		select {
		case out <- msg:
			return msg.readErr == nil && msg.bad == nil
		case <-done:
			return false
		}
	}
	refuse := func(reason string, code int, text string) {
		send(inbound{bad: &refusal{reason: reason, code: code, text: text}})
	}
	var hello *message
	dec := wire.NewEntryDecoder()
	for {
		buf := bufs.get()
		typ, data, err := readMessage(c, *buf)
		*buf = data
		if err != nil {
			send(inbound{readErr: err})
			return
		}
		c.SetReadDeadline(time.Now().Add(ingestPongWait))
		if typ != websocket.TextMessage {
			refuse(rejectMalformed, websocket.CloseUnsupportedData, "expected JSON text messages")
			return
		}
		header, lines := wire.SplitMessage(data)
		var m message
		if err := json.Unmarshal(header, &m); err != nil {
			refuse(rejectMalformed, websocket.CloseUnsupportedData, "malformed message: "+err.Error())
			return
		}
		if len(lines) > 0 && m.Type != wire.TypeBatch {
			refuse(rejectProtocol, websocket.ClosePolicyViolation, "only a batch has lines after the first")
			return
		}
		m.Entries = make([]json.RawMessage, len(lines))
		for i, l := range lines {
			m.Entries[i] = l
		}
		switch {
		case hello == nil && m.Type != wire.TypeHello:
			refuse(rejectProtocol, websocket.ClosePolicyViolation, errNoHello.Error())
			return
		case m.Type == wire.TypeHello:
			if hello != nil || m.AgentID == "" {
				refuse(rejectProtocol, websocket.ClosePolicyViolation, "one hello with an agent_id, first")
				return
			}
			hello = &m
			bufs.put(buf) // a hello's fields are copies
			if !send(inbound{m: m}) {
				return
			}
		case m.Type == wire.TypeBatch:
			if m.Seq == 0 {
				refuse(rejectProtocol, websocket.ClosePolicyViolation, "batch numbers start at 1")
				return
			}
			entries := make([]*protocols.Entry, len(m.Entries))
			at := make([]wire.Endpoints, len(m.Entries))
			for i, raw := range m.Entries {
				if bytes.Equal(raw, []byte("null")) {
					refuse(rejectMalformed, websocket.CloseUnsupportedData, fmt.Sprintf("null entry in batch %d", m.Seq))
					return
				}
				e := new(protocols.Entry)
				var err error
				if at[i], err = dec.Decode(raw, e); err != nil {
					refuse(rejectMalformed, websocket.CloseUnsupportedData, fmt.Sprintf("malformed message: entry %d of batch %d: %v", i, m.Seq, err))
					return
				}
				if e.Node == "" && hello.Node != "" {
					e.Node = hello.Node
					m.Entries[i] = nil // changed: encode again
				}
				if e.Source == "" && hello.Source != "" {
					e.Source = hello.Source
					m.Entries[i] = nil
				}
				entries[i] = e
			}
			if !send(inbound{m: m, entries: entries, at: at, buf: buf}) {
				return
			}
		default:
			refuse(rejectProtocol, websocket.ClosePolicyViolation, fmt.Sprintf("unknown message type %q", m.Type))
			return
		}
	}
}

// refuse counts a bad message and closes the connection saying why.
func (s *Server) refuse(c *websocket.Conn, r *http.Request, reason string, code int, text string) {
	s.metrics.rejected.WithLabelValues(reason).Inc()
	s.log.Warn("ingest connection closed", "reason", reason, "detail", text, "remote", r.RemoteAddr)
	if len(text) > maxCloseReason {
		text = text[:maxCloseReason]
	}
	c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, text), time.Now().Add(ingestWriteWait))
}

// idPrefix is how an Entry's JSON starts: encoding/json writes the ID first,
// as protocols.Entry declares it first.
var idPrefix = []byte(`{"id":"`)

const (
	// maxIDLen is the longest hub ID: a uint64 in decimal.
	maxIDLen = 20
	// indexRecordSize is room for a typical index record (apiserver/query).
	indexRecordSize = 256
	// namedGrowth is room for what naming adds to an entry's endpoints.
	namedGrowth = 160
)

// withoutID returns what follows the ID in an entry's JSON (starting with the
// character after the ID's closing quote), or false when the JSON does not
// start with the ID.
func withoutID(b []byte) ([]byte, bool) {
	if !bytes.HasPrefix(b, idPrefix) {
		return nil, false
	}
	for i := len(idPrefix); i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return b[i+1:], true
		}
	}
	return nil, false
}

// storeBatch names, stores and publishes entries. raw, when set, holds the
// entries' JSON as the agent sent it (nil where an entry changed since), and
// at where each line's endpoints are: an entry is stored as sent, with the
// hub's ID in place of the agent's and the endpoints enrichment named
// encoded again, instead of encoding all of it again (which cost a third of
// the hub's CPU per entry once a resolver named every entry). It returns how
// many entries were stored (0 for a batch stored before).
func (s *Server) storeBatch(agentID string, batchSeq uint64, entries []*protocols.Entry, raw []json.RawMessage, at []wire.Endpoints) (int, bool, error) {
	// Everything but the ID is encoded before taking the store's lock; the
	// ID, which is the sequence number, is spliced in under it.
	rest := make([][]byte, len(entries))
	var named []byte // the lines whose endpoints were named, one after another
	size := 0        // of the batch's stored JSON
	for i, e := range entries {
		var sent []byte
		if raw != nil {
			sent = raw[i]
		}
		if enrich.Entry(s.cfg.Resolver, e) && sent != nil {
			if named == nil { // room for the rest of the batch, named
				n := 0
				for _, l := range raw[i:] {
					n += len(l) + namedGrowth
				}
				named = make([]byte, 0, n)
			}
			// A slice of named stays valid when a later append moves it.
			from := len(named)
			var ok bool
			var err error
			if named, ok, err = wire.ReplaceEndpoints(named, sent, at[i], e); err != nil {
				return 0, false, fmt.Errorf("encoding entry: %w", err)
			}
			sent = named[from:len(named):len(named)]
			if !ok {
				sent = nil
			}
		}
		if sent == nil {
			e.ID = ""
			b, err := json.Marshal(e)
			if err != nil {
				return 0, false, fmt.Errorf("encoding entry: %w", err)
			}
			sent = b
		}
		r, ok := withoutID(sent)
		if !ok {
			return 0, false, fmt.Errorf("encoding entry: unexpected JSON layout %.20q", sent)
		}
		rest[i] = r
		size += len(idPrefix) + maxIDLen + 1 + len(r)
	}
	items := make([]stream.Item, len(entries))
	_, dup, err := s.store.Append(agentID, batchSeq, func(first uint64) ([]store.Record, error) {
		recs := make([]store.Record, len(entries))
		// One allocation holds the batch's stored JSON (live streams keep
		// slices of it while they send them), and one the index records
		// (the store copies them).
		all := make([]byte, 0, size)
		index := make([]byte, 0, len(entries)*indexRecordSize)
		for i, e := range entries {
			seq := first + uint64(i)
			e.ID = strconv.FormatUint(seq, 10)
			from := len(all)
			all = append(all, idPrefix...)
			all = append(all, e.ID...)
			all = append(all, '"')
			all = append(all, rest[i]...)
			full := all[from:len(all):len(all)]
			from = len(index)
			index = query.AppendIndex(index, e) // earlier records stay valid if it moves
			recs[i] = store.Record{Start: e.Start, Full: full, Index: index[from:len(index):len(index)]}
			items[i] = stream.Item{Seq: seq, Entry: e, JSON: full}
		}
		return recs, nil
	}, func() { s.broker.Publish(items) })
	if err != nil || dup {
		if dup {
			s.metrics.duplicates.Inc()
		}
		return 0, dup, err
	}
	s.metrics.batches.Inc()
	s.metrics.ingested.Add(float64(len(entries)))
	return len(entries), false, nil
}

// agents remembers every agent seen since the hub started.
type agents struct {
	mu sync.Mutex
	m  map[string]*agentState
}

type agentState struct {
	hello       wire.Hello
	remote      string
	connected   bool
	connectedAt time.Time
	lastSeen    time.Time
	batches     uint64
	entries     uint64
	duplicates  uint64
	counters    map[string]uint64
}

func newAgents() *agents { return &agents{m: map[string]*agentState{}} }

func (g *agents) connected(h wire.Hello, remote string) *agentState {
	g.mu.Lock()
	defer g.mu.Unlock()
	a := g.m[h.AgentID]
	if a == nil {
		a = &agentState{counters: map[string]uint64{}}
		g.m[h.AgentID] = a
	}
	a.hello, a.remote, a.connected = h, remote, true
	a.connectedAt, a.lastSeen = time.Now(), time.Now()
	return a
}

func (g *agents) disconnected(a *agentState) {
	g.mu.Lock()
	a.connected = false
	g.mu.Unlock()
}

// batch records a batch and the agent's counters; it returns by how much the
// agent's drop counter grew.
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
	if v, ok := counters[DroppedCounter]; ok && v > a.counters[DroppedCounter] {
		grew = v - a.counters[DroppedCounter]
	}
	for k, v := range counters {
		a.counters[k] = v
	}
	return grew
}

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
}

func (g *agents) list() []AgentInfo {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]AgentInfo, 0, len(g.m))
	for _, a := range g.m {
		c := make(map[string]uint64, len(a.counters))
		for k, v := range a.counters {
			c[k] = v
		}
		out = append(out, AgentInfo{AgentID: a.hello.AgentID, Node: a.hello.Node, Version: a.hello.Version,
			Source: a.hello.Source, Remote: a.remote, Connected: a.connected, ConnectedAt: a.connectedAt,
			LastSeen: a.lastSeen, Batches: a.batches, Entries: a.entries, Duplicates: a.duplicates, Counters: c})
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
