package stream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/sondehq/sonde/apiserver/internal/entryjson"
	"github.com/sondehq/sonde/apiserver/query"
	"github.com/sondehq/sonde/protocols"
	"github.com/sondehq/sonde/protocols/wire"
)

// Websocket timing and limits for browser connections.
const (
	// writeWait is how long one write may take before the client is given up on.
	writeWait = 10 * time.Second
	// pongWait is how long the client may stay silent (no pong) before it is dropped.
	pongWait = 60 * time.Second
	// pingPeriod must be shorter than pongWait.
	pingPeriod = pongWait * 9 / 10
	// maxMessageSize bounds what a browser may send; it has nothing to say
	// beyond control frames.
	maxMessageSize = 4 << 10
	// StatsPeriod is how often a session sends a stats message.
	StatsPeriod = time.Second
)

// Item is one stored entry on its way to subscribers.
type Item struct {
	Seq uint64
	// Index is the entry's index record, which queries are matched against.
	Index []byte
	// JSON is the entry as the agent wrote it, and Overlay what the hub
	// adds to it (see entryjson.Merge), merged as the entry is sent.
	JSON, Overlay []byte
}

// Merged returns the entry as served.
func (it *Item) Merged(dst []byte) ([]byte, error) {
	return entryjson.Merge(dst, it.JSON, it.Overlay, it.Seq)
}

// Broker distributes published items to subscribers. It is safe for
// concurrent use.
type Broker struct {
	mu   sync.RWMutex
	subs map[*Sub]struct{}
	// OnLost, when set, is told how many entries a subscriber missed. It is
	// called from Publish and from the subscribers' goroutines.
	OnLost func(n int)
}

// NewBroker returns a broker without subscribers.
func NewBroker() *Broker { return &Broker{subs: map[*Sub]struct{}{}} }

// Sub is one subscription. Publish appends whole batches to its queue of
// published batches; its own goroutine (match) takes them in order, skips
// what the history covers, matches the rest against the query and offers
// the matches to ch, which the session's writer drains. So an expensive
// query costs only its own subscriber time: when match falls behind by a
// full queue, Publish drops the next batches for it, and when the writer
// falls behind, match drops entries; both are counted in lost.
type Sub struct {
	prog *query.Program
	// ch holds matched entries until the writer sends them.
	ch chan Item
	// after is the newest sequence number the history covers.
	after  uint64
	lost   atomic.Uint64
	onLost func(int)

	mu sync.Mutex
	// batches are published batches not yet matched (under mu), holding
	// pending entries in all; limit bounds pending.
	batches [][]Item
	pending int
	limit   int
	// ready is signalled when batches grows. ctx ends with Unsubscribe,
	// stopping match and any evaluation it is in.
	ready  chan struct{}
	ctx    context.Context
	cancel context.CancelFunc
}

// Subscribe registers a subscription whose writer queue holds queue
// entries and whose queue of published batches holds as many entries
// (though always one batch, however large). last reports the newest stored
// sequence number; it is read once the subscription is registered, and
// returned: the subscription skips entries up to it, which the caller sends
// from history, so that history and live entries neither overlap nor leave
// a hole. Subscribe starts the subscription's matching goroutine, which runs
// until Unsubscribe.
func (b *Broker) Subscribe(p *query.Program, queue int, last func() uint64) (*Sub, uint64) {
	queue = max(queue, 1)
	s := &Sub{prog: p, ch: make(chan Item, queue), limit: queue, onLost: b.OnLost,
		ready: make(chan struct{}, 1)}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	// Publish takes s.mu before it reads after; holding it until after is
	// set keeps a batch published meanwhile from being judged against a
	// history not yet known. (Publish cannot be waiting for s.mu while
	// b.mu is taken here: s is not registered until then.)
	s.mu.Lock()
	b.mu.Lock()
	b.subs[s] = struct{}{}
	b.mu.Unlock()
	s.after = last()
	s.mu.Unlock()
	go s.match()
	return s, s.after
}

// Unsubscribe removes a subscription and stops its goroutine; its queues
// are left to the garbage collector.
func (b *Broker) Unsubscribe(s *Sub) {
	b.mu.Lock()
	_, ok := b.subs[s]
	delete(b.subs, s)
	b.mu.Unlock()
	if ok {
		s.cancel()
	}
}

// Clients counts subscriptions.
func (b *Broker) Clients() int {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return len(b.subs)
}

// Publish hands a batch of items, in sequence order, to every subscriber's
// queue. It never blocks and matches nothing itself, so it may be called
// under the store's write lock, keeping batches in sequence order. The
// items are shared with the subscribers from then on.
func (b *Broker) Publish(items []Item) {
	if len(items) == 0 {
		return
	}
	b.mu.RLock()
	defer b.mu.RUnlock()
	for s := range b.subs {
		s.offer(items)
	}
}

// offer queues a batch, or counts it lost when the queue is full.
func (s *Sub) offer(items []Item) {
	s.mu.Lock()
	if items[len(items)-1].Seq <= s.after { // all in the history
		s.mu.Unlock()
		return
	}
	if s.pending > 0 && s.pending+len(items) > s.limit {
		after := s.after
		s.mu.Unlock()
		// Unread entries may or may not have matched; all of them are
		// announced, since the subscriber cannot know.
		n := 0
		for _, it := range items {
			if it.Seq > after {
				n++
			}
		}
		s.addLost(n)
		return
	}
	s.batches = append(s.batches, items)
	s.pending += len(items)
	s.mu.Unlock()
	select {
	case s.ready <- struct{}{}:
	default:
	}
}

func (s *Sub) addLost(n int) {
	if n == 0 {
		return
	}
	s.lost.Add(uint64(n))
	if s.onLost != nil {
		s.onLost(n)
	}
}

// next takes the oldest queued batch, or returns nil.
func (s *Sub) next() []Item {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.batches) == 0 {
		return nil
	}
	items := s.batches[0]
	s.batches[0] = nil
	s.batches = s.batches[1:]
	s.pending -= len(items)
	return items
}

// match is the subscription's goroutine: it matches queued batches until
// Unsubscribe.
func (s *Sub) match() {
	var x wire.Index
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-s.ready:
		}
		for items := s.next(); items != nil; items = s.next() {
			lost := 0
			for _, it := range items {
				if s.ctx.Err() != nil {
					return
				}
				if it.Seq <= s.after || !s.matches(&x, it) {
					continue
				}
				select {
				case s.ch <- it:
				default:
					lost++
				}
			}
			s.addLost(lost)
		}
	}
}

func (s *Sub) matches(x *wire.Index, it Item) bool {
	if s.prog == nil {
		return true
	}
	x.Reset(it.Index)
	return s.prog.MatchIndexContext(s.ctx, x, func() *protocols.Entry {
		e := new(protocols.Entry)
		if b, err := it.Merged(nil); err != nil || json.Unmarshal(b, e) != nil {
			return nil // matches nothing
		}
		return e
	})
}

// Source is what a session needs from the hub.
type Source struct {
	// Last returns the newest stored sequence number.
	Last func() uint64
	// History returns the sequence numbers of up to n stored entries with
	// sequence numbers up to upTo that match p, oldest first; Entry reads
	// one as served (store.ErrNotFound, or any error, once it is evicted).
	// The session reads each as it sends it, so that a client slow to read
	// its history holds one entry of it, not all.
	History func(ctx context.Context, p *query.Program, upTo uint64, n int) ([]uint64, error)
	Entry   func(seq uint64) ([]byte, error)
	// Stats returns the body of a stats message.
	Stats func() any
}

// Session serves one browser websocket.
type Session struct {
	Conn    *websocket.Conn
	Broker  *Broker
	Source  Source
	Query   *query.Program
	History int
	Queue   int
}

// Message types a session sends.
const (
	TypeEntry      = "entry"
	TypeHistoryEnd = "history_end"
	TypeLost       = "lost"
	TypeStats      = "stats"
	TypeError      = "error"
)

var errClientGone = errors.New("client closed the stream")

// Run serves the session until the client leaves, a write fails or ctx ends.
// It closes the connection.
func (s *Session) Run(ctx context.Context) error {
	defer s.Conn.Close()
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	sub, upTo := s.Broker.Subscribe(s.Query, s.Queue, s.Source.Last)
	defer s.Broker.Unsubscribe(sub)

	s.Conn.SetReadLimit(maxMessageSize)
	s.Conn.SetReadDeadline(time.Now().Add(pongWait))
	s.Conn.SetPongHandler(func(string) error { return s.Conn.SetReadDeadline(time.Now().Add(pongWait)) })
	go func() {
		for {
			if _, _, err := s.Conn.NextReader(); err != nil {
				cancel(errClientGone)
				return
			}
		}
	}()

	hist, err := s.Source.History(ctx, s.Query, upTo, s.History)
	if err != nil {
		s.writeJSON(map[string]string{"type": TypeError, "error": err.Error()})
		return fmt.Errorf("reading history: %w", err)
	}
	sent := 0
	for _, seq := range hist {
		j, err := s.Source.Entry(seq)
		if err != nil {
			continue // evicted since the history was scanned
		}
		if err := s.writeEntry(j); err != nil {
			return err
		}
		sent++
	}
	if err := s.writeJSON(map[string]any{"type": TypeHistoryEnd, "count": sent}); err != nil {
		return err
	}

	var buf []byte // the entry being sent, merged
	stats := time.NewTicker(StatsPeriod)
	defer stats.Stop()
	ping := time.NewTicker(pingPeriod)
	defer ping.Stop()
	for {
		select {
		case <-ctx.Done():
			s.Conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseGoingAway, "hub shutting down"), time.Now().Add(writeWait))
			if cause := context.Cause(ctx); errors.Is(cause, errClientGone) {
				return nil
			}
			return ctx.Err()
		case it := <-sub.ch:
			if n := sub.lost.Swap(0); n > 0 {
				if err := s.writeJSON(map[string]any{"type": TypeLost, "count": n}); err != nil {
					return err
				}
			}
			if buf, err = it.Merged(buf[:0]); err != nil {
				return fmt.Errorf("merging entry %d: %w", it.Seq, err)
			}
			if err := s.writeEntry(buf); err != nil {
				return err
			}
		case <-stats.C:
			if n := sub.lost.Swap(0); n > 0 {
				if err := s.writeJSON(map[string]any{"type": TypeLost, "count": n}); err != nil {
					return err
				}
			}
			if err := s.writeJSON(statsMessage{Type: TypeStats, Stats: s.Source.Stats()}); err != nil {
				return err
			}
		case <-ping.C:
			if err := s.Conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(writeWait)); err != nil {
				return fmt.Errorf("pinging: %w", err)
			}
		}
	}
}

type statsMessage struct {
	Type  string `json:"type"`
	Stats any    `json:"stats"`
}

func (s *Session) writeEntry(j []byte) error {
	s.Conn.SetWriteDeadline(time.Now().Add(writeWait))
	w, err := s.Conn.NextWriter(websocket.TextMessage)
	if err != nil {
		return fmt.Errorf("writing entry: %w", err)
	}
	w.Write([]byte(`{"type":"entry","entry":`))
	w.Write(j)
	w.Write([]byte{'}'})
	if err := w.Close(); err != nil {
		return fmt.Errorf("writing entry: %w", err)
	}
	return nil
}

func (s *Session) writeJSON(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encoding message: %w", err)
	}
	s.Conn.SetWriteDeadline(time.Now().Add(writeWait))
	if err := s.Conn.WriteMessage(websocket.TextMessage, b); err != nil {
		return fmt.Errorf("writing message: %w", err)
	}
	return nil
}
