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
	// JSON is the entry as stored and served.
	JSON []byte
}

// Broker distributes published items to subscribers. It is safe for
// concurrent use.
type Broker struct {
	mu   sync.RWMutex
	subs map[*Sub]struct{}
	// OnLost, when set, is told how many entries a slow subscriber missed.
	OnLost func(n int)
}

// NewBroker returns a broker without subscribers.
func NewBroker() *Broker { return &Broker{subs: map[*Sub]struct{}{}} }

// Sub is one subscription.
type Sub struct {
	prog  *query.Program
	ch    chan Item
	after atomic.Uint64
	lost  atomic.Uint64
}

// Subscribe registers a subscription with a queue of the given size.
func (b *Broker) Subscribe(p *query.Program, queue int) *Sub {
	s := &Sub{prog: p, ch: make(chan Item, max(queue, 1))}
	b.mu.Lock()
	b.subs[s] = struct{}{}
	b.mu.Unlock()
	return s
}

// Unsubscribe removes a subscription; its queue is left to the garbage collector.
func (b *Broker) Unsubscribe(s *Sub) {
	b.mu.Lock()
	delete(b.subs, s)
	b.mu.Unlock()
}

// Clients counts subscriptions.
func (b *Broker) Clients() int {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return len(b.subs)
}

// Publish offers items, in sequence order, to every subscriber whose query
// they match. It never blocks.
func (b *Broker) Publish(items []Item) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	var x wire.Index
	// decoded holds the entries that a query needed whole, decoded once
	// for every subscriber.
	var decoded []*protocols.Entry
	for s := range b.subs {
		lost := 0
		after := s.after.Load()
		for i, it := range items {
			if it.Seq <= after {
				continue
			}
			if s.prog != nil {
				x.Reset(it.Index)
				if !s.prog.MatchIndex(&x, func() *protocols.Entry {
					if decoded == nil {
						decoded = make([]*protocols.Entry, len(items))
					}
					if decoded[i] == nil {
						decoded[i] = new(protocols.Entry)
						if json.Unmarshal(it.JSON, decoded[i]) != nil {
							decoded[i] = nil // matches nothing
						}
					}
					return decoded[i]
				}) {
					continue
				}
			}
			select {
			case s.ch <- it:
			default:
				lost++
			}
		}
		if lost > 0 {
			s.lost.Add(uint64(lost))
			if b.OnLost != nil {
				b.OnLost(lost)
			}
		}
	}
}

// Source is what a session needs from the hub.
type Source struct {
	// Last returns the newest stored sequence number.
	Last func() uint64
	// History returns the JSON of up to n stored entries with sequence
	// numbers up to upTo that match p, oldest first.
	History func(ctx context.Context, p *query.Program, upTo uint64, n int) ([][]byte, error)
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

	sub := s.Broker.Subscribe(s.Query, s.Queue)
	defer s.Broker.Unsubscribe(sub)
	upTo := s.Source.Last()
	sub.after.Store(upTo)

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
	for _, j := range hist {
		if err := s.writeEntry(j); err != nil {
			return err
		}
	}
	if err := s.writeJSON(map[string]any{"type": TypeHistoryEnd, "count": len(hist)}); err != nil {
		return err
	}

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
			if err := s.writeEntry(it.JSON); err != nil {
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
