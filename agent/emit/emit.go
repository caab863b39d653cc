package emit

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/sondehq/sonde/protocols"
	"github.com/sondehq/sonde/protocols/wire"
)

// Websocket timing.
const (
	// writeWait bounds writing one batch.
	writeWait = 10 * time.Second
	// readWait is how long the hub may stay silent (it pings more often).
	readWait = 2 * time.Minute
	// handshakeTimeout bounds the websocket handshake.
	handshakeTimeout = 10 * time.Second
	// maxHubMessage is the largest message read from the hub: an ack is a
	// few dozen bytes, and a hub (or whatever answers at its address) must
	// not make the agent buffer more.
	maxHubMessage = 64 << 10
)

var (
	// ErrRefused: the hub rejected the token.
	ErrRefused = errors.New("the hub refused the token (401)")
	// errHubClosed: the hub closed the connection.
	errHubClosed = errors.New("the hub closed the connection")
	// errTooLarge: even an entry's summary does not fit a batch.
	errTooLarge = errors.New("the entry does not fit a batch even reduced to its summary")
)

// Config configures a Sender. Zero values take the defaults below.
type Config struct {
	// HubURL is the hub's address: "http://sonde-hub:8898", "ws://...", or
	// the full ingest URL.
	HubURL string
	Token  []byte
	// Node, Version and Source describe this agent to the hub.
	Node, Version, Source string
	// BatchSize is the most entries in one batch (default 500).
	BatchSize int
	// MaxBatchBytes bounds one batch message (default 1 MiB, below the hub's 8 MiB).
	MaxBatchBytes int
	// FlushInterval is the longest an entry waits for its batch to fill (default 100 ms).
	FlushInterval time.Duration
	// BufferEntries is the most entries held, sent or not, until the hub
	// acknowledges them (default 100,000).
	BufferEntries int
	// BufferBytes bounds the same in bytes: entries waiting by their
	// footprint, batches sent by their size (default 64 MiB). Past either
	// bound the oldest entries not yet in a batch make room, counted as
	// dropped.
	BufferBytes int
	// MaxInFlight is the most batches sent and not yet acknowledged (default 8).
	MaxInFlight int
	// MinBackoff and MaxBackoff bound the wait between reconnects
	// (defaults 250 ms and 30 s).
	MinBackoff, MaxBackoff time.Duration
	// Counters, when set, returns the agent's running totals (capture loss,
	// parse errors...), reported with every batch.
	Counters func() map[string]uint64
	// Loss names the dissectors' counters among them that count loss
	// (protocols.LossCounterNames), told to the hub in the hello.
	Loss   []string
	Logger *slog.Logger
	// Dialer, when set, replaces the default websocket dialer.
	Dialer *websocket.Dialer
}

// DefaultBufferBytes is Config.BufferBytes unless set: an eighth of the
// agent's memory limit in deploy/ (512 MiB).
const DefaultBufferBytes = 64 << 20

// Stats are the sender's running totals.
type Stats struct {
	Sent     uint64 // entries in batches written to the hub (resends not counted)
	Acked    uint64 // entries the hub acknowledged
	Dropped  uint64 // entries dropped because the buffer was full
	Oversize uint64 // entries cut to fit MaxBatchBytes (payloads shortened, or only the summary kept)
	Buffered int    // entries held now
	// BufferedBytes is what they hold: entries waiting by their footprint,
	// batches sent by their size.
	BufferedBytes int
	Reconnects    uint64
}

type batch struct {
	seq     uint64
	n       int
	payload []byte
	sent    bool // on the current connection
}

// waiting is an entry not yet in a batch, with the footprint it is charged.
type waiting struct {
	e    *protocols.Entry
	size int
}

// Sender batches entries to the hub. See the package doc.
type Sender struct {
	cfg     Config
	log     *slog.Logger
	url     string
	agentID string

	mu       sync.Mutex
	pending  []waiting
	oldest   time.Time // when the oldest pending entry arrived
	inflight []*batch  // in sequence order, not yet acknowledged
	buffered int
	bytes    int // BufferedBytes
	nextSeq  uint64
	stats    Stats
	changed  chan struct{} // closed and replaced on every state change
	wake     chan struct{}
}

// New makes a sender; call Run to start sending.
func New(cfg Config) *Sender {
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 500
	}
	if cfg.MaxBatchBytes <= 0 {
		cfg.MaxBatchBytes = 1 << 20
	}
	if cfg.FlushInterval <= 0 {
		cfg.FlushInterval = 100 * time.Millisecond
	}
	if cfg.BufferEntries <= 0 {
		cfg.BufferEntries = 100_000
	}
	if cfg.BufferBytes <= 0 {
		cfg.BufferBytes = DefaultBufferBytes
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = 8
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = 250 * time.Millisecond
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 30 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Dialer == nil {
		cfg.Dialer = NewDialer(nil)
	}
	var id [8]byte
	crand.Read(id[:])
	return &Sender{
		cfg: cfg, log: cfg.Logger, url: ingestURL(cfg.HubURL), agentID: hex.EncodeToString(id[:]),
		nextSeq: 1, changed: make(chan struct{}), wake: make(chan struct{}, 1),
	}
}

// NewDialer is the dialer a Sender uses, with tc for wss:// hubs (nil:
// the system's roots).
func NewDialer(tc *tls.Config) *websocket.Dialer {
	return &websocket.Dialer{HandshakeTimeout: handshakeTimeout, Proxy: http.ProxyFromEnvironment, TLSClientConfig: tc}
}

// ingestURL turns the hub's address into the ingest websocket URL.
func ingestURL(hub string) string {
	u, err := url.Parse(hub)
	if err != nil || u.Host == "" {
		u, err = url.Parse("http://" + hub)
		if err != nil {
			return hub
		}
	}
	switch u.Scheme {
	case "http":
		u.Scheme = "ws"
	case "https":
		u.Scheme = "wss"
	}
	if !strings.HasSuffix(u.Path, wire.Path) {
		u.Path = strings.TrimSuffix(u.Path, "/") + wire.Path
	}
	return u.String()
}

// AgentID is this sender's identity at the hub.
func (s *Sender) AgentID() string { return s.agentID }

// Send queues an entry. It never blocks: with the buffer full, the oldest
// entries not yet in a batch make room (the newest say most about now), and
// when every held entry is already in a batch the new one is dropped; either
// way the loss is counted.
func (s *Sender) Send(e *protocols.Entry) {
	size := footprint(e)
	s.mu.Lock()
	for len(s.pending) > 0 && (s.buffered >= s.cfg.BufferEntries || s.bytes+size > s.cfg.BufferBytes) {
		s.bytes -= s.pending[0].size
		s.buffered--
		s.stats.Dropped++
		s.pending[0] = waiting{}
		s.pending = s.pending[1:]
	}
	if s.buffered >= s.cfg.BufferEntries || s.bytes+size > s.cfg.BufferBytes {
		s.stats.Dropped++
		s.mu.Unlock()
		return
	}
	if len(s.pending) == 0 {
		s.oldest = time.Now()
	}
	s.pending = append(s.pending, waiting{e, size})
	s.buffered++
	s.bytes += size
	full := len(s.pending) == s.cfg.BatchSize
	first := len(s.pending) == 1
	s.mu.Unlock()
	if full || first {
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}

// Stats returns the running totals.
func (s *Sender) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.Buffered, st.BufferedBytes = s.buffered, s.bytes
	return st
}

// Flush waits until every entry sent so far is acknowledged by the hub, or ctx ends.
func (s *Sender) Flush(ctx context.Context) error {
	select {
	case s.wake <- struct{}{}:
	default:
	}
	for {
		s.mu.Lock()
		empty, ch := s.buffered == 0, s.changed
		s.mu.Unlock()
		if empty {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("flushing %d entries: %w", s.Stats().Buffered, ctx.Err())
		}
	}
}

// notify wakes Flush; call with s.mu held.
func (s *Sender) notify() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// Run connects to the hub and sends until ctx ends, reconnecting with backoff
// whenever the connection fails. It returns ctx's error.
func (s *Sender) Run(ctx context.Context) error {
	attempt := 0
	for {
		acked, err := s.session(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if acked {
			attempt = 0
		}
		wait := s.backoff(attempt)
		attempt++
		s.mu.Lock()
		s.stats.Reconnects++
		s.mu.Unlock()
		s.log.Warn("hub connection lost; reconnecting", "hub", s.url, "err", err, "in", wait)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// backoff is exponential with "equal jitter": half the step is fixed, half
// random, so that agents restarted together do not reconnect together.
func (s *Sender) backoff(attempt int) time.Duration {
	d := s.cfg.MinBackoff << min(attempt, 20)
	if d > s.cfg.MaxBackoff || d <= 0 {
		d = s.cfg.MaxBackoff
	}
	return d/2 + rand.N(d/2+1)
}

// session runs one connection; acked says whether the hub acknowledged
// anything on it (which resets the backoff).
func (s *Sender) session(ctx context.Context) (acked bool, err error) {
	h := http.Header{}
	h.Set("Authorization", "Bearer "+string(s.cfg.Token))
	c, resp, err := s.cfg.Dialer.DialContext(ctx, s.url, h)
	if err != nil {
		if resp != nil && resp.StatusCode == http.StatusUnauthorized {
			return false, ErrRefused
		}
		return false, fmt.Errorf("connecting to %s: %w", s.url, err)
	}
	defer c.Close()
	hello, _ := json.Marshal(wire.Hello{Type: wire.TypeHello, AgentID: s.agentID, Node: s.cfg.Node, Version: s.cfg.Version, Source: s.cfg.Source, Loss: s.cfg.Loss})
	c.SetWriteDeadline(time.Now().Add(writeWait))
	if err := c.WriteMessage(websocket.TextMessage, hello); err != nil {
		return false, fmt.Errorf("saying hello: %w", err)
	}
	s.mu.Lock()
	for _, b := range s.inflight {
		b.sent = false // resend on this connection
	}
	s.mu.Unlock()

	ackc := make(chan uint64, s.cfg.MaxInFlight+1)
	errc := make(chan error, 1)
	done := make(chan struct{})
	defer close(done)
	go s.readAcks(c, ackc, errc, done)

	timer := time.NewTimer(s.cfg.FlushInterval)
	defer timer.Stop()
	for {
		if err := s.writeReady(c); err != nil {
			return acked, err
		}
		select {
		case <-ctx.Done():
			c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "agent stopping"), time.Now().Add(time.Second))
			return acked, ctx.Err()
		case err := <-errc:
			return acked, err
		case seq := <-ackc:
			s.ack(seq)
			acked = true
		case <-s.wake:
		case <-timer.C:
			timer.Reset(s.cfg.FlushInterval)
		}
	}
}

// readAcks reads the hub's messages until the connection fails or done is
// closed (the session is over and nobody reads ackc any more).
func (s *Sender) readAcks(c *websocket.Conn, ackc chan<- uint64, errc chan<- error, done <-chan struct{}) {
	c.SetReadLimit(maxHubMessage)
	c.SetReadDeadline(time.Now().Add(readWait))
	c.SetPingHandler(func(data string) error {
		c.SetReadDeadline(time.Now().Add(readWait))
		return c.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(writeWait))
	})
	for {
		_, data, err := c.ReadMessage()
		if err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				err = fmt.Errorf("%w: %d %s", errHubClosed, ce.Code, ce.Text)
			}
			errc <- err
			return
		}
		c.SetReadDeadline(time.Now().Add(readWait))
		var a wire.Ack
		if err := json.Unmarshal(data, &a); err != nil || a.Type != wire.TypeAck {
			errc <- fmt.Errorf("unexpected message from the hub: %.80q", data)
			return
		}
		select {
		case ackc <- a.Seq:
		case <-done:
			return
		}
	}
}

// ack forgets every batch up to seq.
func (s *Sender) ack(seq uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := 0
	for ; i < len(s.inflight) && s.inflight[i].seq <= seq; i++ {
		s.buffered -= s.inflight[i].n
		s.bytes -= len(s.inflight[i].payload)
		s.stats.Acked += uint64(s.inflight[i].n)
	}
	s.inflight = s.inflight[i:]
	s.notify()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// writeReady writes unsent batches, then new ones while the window allows.
func (s *Sender) writeReady(c *websocket.Conn) error {
	for {
		b := s.nextBatch()
		if b == nil {
			return nil
		}
		c.SetWriteDeadline(time.Now().Add(writeWait))
		if err := c.WriteMessage(websocket.BinaryMessage, b.payload); err != nil {
			return fmt.Errorf("writing batch %d: %w", b.seq, err)
		}
	}
}

// nextBatch returns the next batch to write on this connection, marking it
// sent: an unsent one from before a reconnect, or a new one when enough
// entries waited long enough. nil when there is nothing to write or the
// window is full. Only Run's goroutine calls it, so it owns nextSeq; entries
// are encoded outside the lock so that Send is never held up by encoding.
func (s *Sender) nextBatch() *batch {
	for {
		s.mu.Lock()
		sentCount := 0
		for _, b := range s.inflight {
			if !b.sent {
				b.sent = true
				s.mu.Unlock()
				return b
			}
			sentCount++
		}
		if sentCount >= s.cfg.MaxInFlight || len(s.pending) == 0 ||
			(len(s.pending) < s.cfg.BatchSize && time.Since(s.oldest) < s.cfg.FlushInterval) {
			s.mu.Unlock()
			return nil
		}
		n := min(len(s.pending), s.cfg.BatchSize)
		take := s.pending[:n:n]
		s.pending = s.pending[n:]
		s.oldest = time.Now()
		own := s.ownCounters()
		s.mu.Unlock()

		b, used, oversize, dropped := s.encode(take, s.withAgentCounters(own))

		s.mu.Lock()
		if used < n { // what did not fit goes back to the front
			s.pending = append(take[used:], s.pending...)
		}
		for _, w := range take[:used] {
			s.bytes -= w.size
		}
		s.buffered -= dropped
		s.stats.Oversize += uint64(oversize)
		s.stats.Dropped += uint64(dropped)
		if b != nil {
			s.bytes += len(b.payload)
		}
		if b == nil {
			s.notify()
			s.mu.Unlock()
			continue
		}
		b.sent = true
		s.inflight = append(s.inflight, b)
		s.stats.Sent += uint64(b.n)
		s.mu.Unlock()
		return b
	}
}

// encode builds a batch from the front of es within MaxBatchBytes. It says
// how many entries it consumed, of which how many it had to cut to fit a
// batch on their own (see fit) and how many it could not send at all (an
// entry that does not encode); b is nil when none went in.
func (s *Sender) encode(es []waiting, counters map[string]uint64) (b *batch, used, oversize, dropped int) {
	head, err := wire.AppendBatch(nil, s.nextSeq, counters)
	if err != nil {
		return nil, len(es), 0, len(es)
	}
	// Each entry goes with its index record (see wire), so that the hub
	// need not decode it. An Encoder writes the JSON, and a newline that is
	// left out, into a scratch buffer, since the length goes first.
	buf := append(head, '\n')
	var scratch bytes.Buffer
	enc := json.NewEncoder(&scratch)
	var rec []byte
	room := s.cfg.MaxBatchBytes - len(head) - 1
	n := 0
	for _, w := range es {
		e := w.e
		// The hub would fill these in from the hello, at the cost of
		// decoding the entry.
		if e.Node == "" {
			e.Node = s.cfg.Node
		}
		if e.Source == "" {
			e.Source = s.cfg.Source
		}
		line, size, cutDown, err := fit(enc, &scratch, &rec, e, room)
		if err != nil {
			used++
			dropped++
			continue
		}
		if len(buf)+size > s.cfg.MaxBatchBytes {
			break
		}
		if cutDown {
			oversize++
		}
		if n == 0 { // room for the rest, rather than growing by doubling
			buf = slices.Grow(buf, min(s.cfg.MaxBatchBytes, len(buf)+size*(len(es)-used))-len(buf))
		}
		buf = wire.AppendIndexed(buf, rec, line)
		n++
		used++
	}
	if n == 0 {
		return nil, used, oversize, dropped
	}
	b = &batch{seq: s.nextSeq, n: n, payload: buf}
	s.nextSeq++
	return b, used, oversize, dropped
}

// cutLimits are the payload sizes fit tries, in turn, for an entry too
// large for a batch.
var cutLimits = []int{64 << 10, 16 << 10, 4 << 10, 1 << 10, 256, 0}

// fit encodes e (its JSON into scratch, its index record into *rec) and
// returns the JSON line and what the pair takes in a batch. An entry larger
// than room on its own is never dropped whole: its payloads are cut shorter
// until it fits, and as a last resort it keeps only what the list shows;
// cutDown says so, and the entry carries a warning.
func fit(enc *json.Encoder, scratch *bytes.Buffer, rec *[]byte, e *protocols.Entry, room int) (line []byte, size int, cutDown bool, err error) {
	encode := func() error {
		scratch.Reset()
		if err := enc.Encode(e); err != nil {
			return err
		}
		line = scratch.Bytes()
		line = line[:len(line)-1]
		*rec = wire.AppendIndex((*rec)[:0], e)
		size = len(line) + len(*rec) + 2*binary.MaxVarintLen32
		return nil
	}
	if err := encode(); err != nil || size <= room {
		return line, size, false, err
	}
	e.Warn(cutWarning)
	for _, limit := range cutLimits {
		if !cut(e, limit) {
			continue
		}
		if err := encode(); err != nil || size <= room {
			return line, size, true, err
		}
	}
	stub(e)
	e.Warn(cutWarning)
	if err := encode(); err != nil {
		return nil, 0, true, err
	}
	if size > room {
		return nil, 0, true, errTooLarge
	}
	return line, size, true, nil
}

// ownCounters are the sender's counters as the hub sees them. Call with s.mu held.
func (s *Sender) ownCounters() map[string]uint64 {
	return map[string]uint64{
		wire.EmitDropped:    s.stats.Dropped,
		wire.EmitOversize:   s.stats.Oversize,
		wire.EmitReconnects: s.stats.Reconnects,
	}
}

// withAgentCounters adds the pipeline's counters to own. It must run without
// s.mu: Config.Counters may take locks of the pipeline, whose goroutine
// calls Send (which takes s.mu) while holding them.
func (s *Sender) withAgentCounters(own map[string]uint64) map[string]uint64 {
	if s.cfg.Counters == nil {
		return own
	}
	m := s.cfg.Counters()
	out := make(map[string]uint64, len(m)+len(own))
	for k, v := range m {
		out[k] = v
	}
	for k, v := range own {
		out[k] = v
	}
	return out
}
