package apiserver

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/gorilla/websocket"

	"github.com/sondehq/sonde/apiserver/internal/stream"
	"github.com/sondehq/sonde/apiserver/query"
)

// liveStreams serves the browsers' stream websockets (GET /api/v1/stream):
// history from a historian, then live entries from the broker, to which
// ingest hands every stored batch.
//
// Goroutines: each stream runs a stream.Session on its HTTP handler's
// goroutine (the connection's only writer), with a reader and its
// subscription's matcher beside it (see package stream). Safe for
// concurrent use.
type liveStreams struct {
	queryCompiler
	broker   *stream.Broker
	upgrader *websocket.Upgrader
	// queue is each stream's queue length (Config.StreamQueue).
	queue   int
	last    func() uint64
	history historian
	stats   func() any
	conns   connTracker
	log     *slog.Logger
	// slots bound the streams open at once (Config.MaxStreams): each holds
	// a goroutine pair, a queue and a history.
	slots   chan struct{}
	refused func()
}

// historian answers a stream's history: the sequence numbers of up to n
// stored entries matching p with sequence numbers up to upTo, oldest
// first, and each entry as served.
type historian interface {
	history(ctx context.Context, p *query.Program, upTo uint64, n int) ([]uint64, error)
	get(seq uint64) ([]byte, error)
}

// ServeHTTP serves GET /api/v1/stream: history, then live entries.
func (s *liveStreams) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hist, err := intParam(r, "history", defaultHistory, 0, maxHistory)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	p, ok := s.compile(w, r, r.URL.Query().Get("q"), "stream")
	if !ok {
		return
	}
	select {
	case s.slots <- struct{}{}:
		defer func() { <-s.slots }()
	default:
		s.refused()
		writeError(w, http.StatusServiceUnavailable, fmt.Sprintf("%d live streams are open, the most this hub serves: close one (a browser tab of Sonde) and try again", cap(s.slots)))
		return
	}
	c, err := s.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	if !s.conns.track(c) {
		c.Close()
		return
	}
	defer s.conns.untrack(c)
	sess := &stream.Session{
		Conn: c, Broker: s.broker, Query: p, History: hist, Queue: s.queue,
		Source: stream.Source{Last: s.last, History: s.history.history, Entry: s.history.get, Stats: s.stats},
	}
	if err := sess.Run(r.Context()); err != nil {
		s.log.Debug("stream ended", "err", err)
	}
}
