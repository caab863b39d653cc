package apiserver

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/sondehq/sonde/apiserver/internal/har"
	"github.com/sondehq/sonde/apiserver/internal/store"
	"github.com/sondehq/sonde/apiserver/internal/stream"
	"github.com/sondehq/sonde/apiserver/query"
	"github.com/sondehq/sonde/protocols"
	"github.com/sondehq/sonde/protocols/wire"
)

// Paging and scanning bounds.
const (
	defaultLimit = 100
	maxLimit     = 1000
	// maxHARLimit bounds one HAR export (entries decoded in full).
	maxHARLimit = 10000
	// scanBudget bounds the time one request spends scanning the store; a
	// page cut short says so (partial) and where to continue (next).
	scanBudget = 10 * time.Second
	// defaultHistory and maxHistory bound the history a stream sends first.
	defaultHistory = 100
	maxHistory     = 10000
)

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

// apiError is every error body: a sentence, and for bad queries the
// character position.
type apiError struct {
	Error    string `json:"error"`
	Position *int   `json:"position,omitempty"`
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, apiError{Error: msg})
}

// compile compiles the q parameter, answering 400 itself when it is bad.
func (s *Server) compile(w http.ResponseWriter, q, endpoint string) (*query.Program, bool) {
	s.metrics.queries.WithLabelValues(endpoint).Inc()
	p, err := query.Compile(q)
	if err == nil {
		return p, true
	}
	s.metrics.queryErrors.Inc()
	var qe *query.Error
	if errors.As(err, &qe) {
		pos := qe.Position
		writeJSON(w, http.StatusBadRequest, apiError{Error: qe.Message, Position: &pos})
	} else {
		writeError(w, http.StatusBadRequest, err.Error())
	}
	return nil, false
}

func intParam(r *http.Request, name string, def, lo, hi int) (int, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, errors.New(name + " must be a number from " + strconv.Itoa(lo) + " to " + strconv.Itoa(hi))
	}
	return n, nil
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	st := s.store.Stats()
	writeJSON(w, http.StatusOK, map[string]any{"ok": true, "stored": st.Count, "uptime_s": int(time.Since(s.started).Seconds())})
}

// matcher evaluates a compiled query against stored items, decoding the
// whole entry only when the index record cannot answer.
type matcher struct {
	p *query.Program
	x wire.Index
}

func (m *matcher) match(it *store.Item) bool {
	if m.p == nil {
		return true
	}
	m.x.Reset(it.Index)
	return m.p.MatchIndex(&m.x, func() *protocols.Entry { return decodeItem(it) })
}

func decodeItem(it *store.Item) *protocols.Entry {
	b, err := it.Full()
	if err != nil {
		return nil
	}
	e := new(protocols.Entry)
	if json.Unmarshal(b, e) != nil {
		return nil
	}
	return e
}

// page is the answer of GET /api/v1/entries.
type page struct {
	Entries []json.RawMessage `json:"entries"`
	// Total is how many stored entries match, when known without more work:
	// always for the empty query, and whenever the scan reached the oldest entry.
	Total *uint64 `json:"total,omitempty"`
	// Next is the before= value of the next page; empty at the end.
	Next string `json:"next,omitempty"`
	// Partial is true when the scan ran out of time before filling the page.
	Partial      bool       `json:"partial,omitempty"`
	Scanned      uint64     `json:"scanned"`
	HistoryStart *time.Time `json:"history_start,omitempty"`
}

func (s *Server) entries(w http.ResponseWriter, r *http.Request) {
	limit, err := intParam(r, "limit", defaultLimit, 1, maxLimit)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	var before uint64
	if v := r.URL.Query().Get("before"); v != "" {
		if before, err = strconv.ParseUint(v, 10, 64); err != nil {
			writeError(w, http.StatusBadRequest, "before must be an entry ID")
			return
		}
	}
	p, ok := s.compile(w, r.URL.Query().Get("q"), "entries")
	if !ok {
		return
	}
	res, err := s.page(r.Context(), p, before, limit)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// scanShards is how many ranges of the store one page scans at once: a
// selective query over a large store is CPU-bound, and shards let it use
// every core.
var scanShards = min(runtime.GOMAXPROCS(0), 4)

// minShard is the smallest range worth a goroutine of its own.
var minShard uint64 = 50_000

// shard is one range of a page scan, newest first.
type shard struct {
	from, before uint64
	hits         []uint64 // sequence numbers of matches, newest first
	scanned      uint64
	last         uint64 // the oldest sequence number scanned
	done         bool   // scanned down to from
	err          error
}

func (s *Server) page(ctx context.Context, p *query.Program, before uint64, limit int) (*page, error) {
	st := s.store.Stats()
	res := &page{Entries: []json.RawMessage{}}
	if !st.HistoryStart.IsZero() {
		res.HistoryStart = &st.HistoryStart
	}
	ctx, cancel := context.WithTimeout(ctx, scanBudget)
	defer cancel()

	upper := st.Last + 1
	if before > 0 && before < upper {
		upper = before
	}
	lower := min(s.store.First(), upper)
	n := 1
	if p != nil {
		n = int(min(uint64(scanShards), max((upper-lower)/minShard, 1)))
	}
	shards := make([]*shard, n)
	step := (upper - lower) / uint64(n)
	for i := range shards {
		sh := &shard{before: upper - uint64(i)*step, from: upper - uint64(i+1)*step}
		if i == n-1 {
			sh.from = lower
		}
		shards[i] = sh
	}
	// found counts matches per shard, so that an older shard stops once the
	// newer ones hold a page.
	found := make([]atomic.Int64, n)
	var wg sync.WaitGroup
	for i, sh := range shards {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m := matcher{p: p}
			sh.done = true
			sh.err = s.store.ScanRange(ctx, sh.from, sh.before, func(it *store.Item) bool {
				sh.scanned++
				sh.last = it.Seq
				if sh.scanned%1024 == 0 {
					newer := int64(0)
					for k := range i {
						newer += found[k].Load()
					}
					if newer > int64(limit) {
						sh.done = false
						return false
					}
				}
				if !m.match(it) {
					return true
				}
				sh.hits = append(sh.hits, it.Seq)
				found[i].Add(1)
				if len(sh.hits) > limit {
					sh.done = false
					return false
				}
				return true
			})
			if sh.err != nil {
				sh.done = false
			}
		}()
	}
	wg.Wait()

	var hits []uint64
	complete := true
	for _, sh := range shards {
		res.Scanned += sh.scanned
		if len(hits) > limit {
			continue
		}
		hits = append(hits, sh.hits...)
		if len(hits) > limit {
			complete = false
			continue
		}
		if !sh.done {
			complete = false
			if sh.err != nil && !errors.Is(sh.err, context.DeadlineExceeded) {
				return nil, sh.err
			}
			res.Partial = true
			res.Next = strconv.FormatUint(sh.last, 10)
			hits = hits[:len(hits):len(hits)]
			break
		}
	}
	if len(hits) > limit {
		hits = hits[:limit]
		res.Next = strconv.FormatUint(hits[limit-1], 10)
	}
	for _, seq := range hits {
		b, err := s.store.Get(seq)
		if errors.Is(err, store.ErrNotFound) {
			continue // evicted since it was scanned
		}
		if err != nil {
			return nil, err
		}
		res.Entries = append(res.Entries, b)
	}
	if complete && before == 0 {
		total := uint64(len(hits))
		res.Total = &total
	}
	if p == nil && before == 0 {
		res.Total = &st.Count
	}
	return res, nil
}

func (s *Server) entry(w http.ResponseWriter, r *http.Request) {
	seq, err := strconv.ParseUint(chi.URLParam(r, "id"), 10, 64)
	if err != nil {
		writeError(w, http.StatusNotFound, "no entry has that ID")
		return
	}
	b, err := s.store.Get(seq)
	if errors.Is(err, store.ErrNotFound) {
		writeError(w, http.StatusNotFound, "no entry has that ID (it may have been evicted to stay under the storage limit)")
		return
	}
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(b)
}

func (s *Server) validate(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Q string `json:"q"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 2*query.MaxLength)).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, `the body must be {"q": "<query>"}`)
		return
	}
	if _, ok := s.compile(w, req.Q, "validate"); ok {
		writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
	}
}

func (s *Server) fields(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"fields": wire.Fields()})
}

func (s *Server) listAgents(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"agents": s.agents.list()})
}

func (s *Server) exportHAR(w http.ResponseWriter, r *http.Request) {
	limit, err := intParam(r, "limit", maxLimit, 1, maxHARLimit)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	q := r.URL.Query().Get("q")
	if q != "" {
		if _, ok := s.compile(w, q, "har"); !ok {
			return
		}
		q = "http && (" + q + ")"
	} else {
		q = "http"
	}
	p, ok := s.compile(w, q, "har")
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), scanBudget)
	defer cancel()
	m := matcher{p: p}
	var es []*protocols.Entry
	err = s.store.Scan(ctx, 0, func(it *store.Item) bool {
		if m.match(it) {
			if e := decodeItem(it); e != nil {
				es = append(es, e)
			}
		}
		return len(es) < limit
	})
	if err != nil && !errors.Is(err, context.DeadlineExceeded) {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	for i, j := 0, len(es)-1; i < j; i, j = i+1, j-1 {
		es[i], es[j] = es[j], es[i]
	}
	w.Header().Set("Content-Disposition", `attachment; filename="sonde.har"`)
	writeJSON(w, http.StatusOK, map[string]any{"log": har.Build(es, s.cfg.Version)})
}

// stream serves GET /api/v1/stream: history, then live entries.
func (s *Server) stream(w http.ResponseWriter, r *http.Request) {
	hist, err := intParam(r, "history", defaultHistory, 0, maxHistory)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	p, ok := s.compile(w, r.URL.Query().Get("q"), "stream")
	if !ok {
		return
	}
	c, err := s.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	if !s.track(c) {
		c.Close()
		return
	}
	defer s.untrack(c)
	sess := &stream.Session{
		Conn: c, Broker: s.broker, Query: p, History: hist, Queue: s.cfg.StreamQueue,
		Source: stream.Source{Last: s.store.Last, History: s.history, Stats: func() any { return s.streamStats() }},
	}
	if err := sess.Run(r.Context()); err != nil {
		s.log.Debug("stream ended", "err", err)
	}
}

// history returns up to n entries matching p with sequence numbers up to
// upTo, oldest first.
func (s *Server) history(ctx context.Context, p *query.Program, upTo uint64, n int) ([][]byte, error) {
	if n == 0 || upTo == 0 {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(ctx, scanBudget)
	defer cancel()
	m := matcher{p: p}
	var out [][]byte
	err := s.store.Scan(ctx, upTo+1, func(it *store.Item) bool {
		if !m.match(it) {
			return true
		}
		if b, err := it.Full(); err == nil {
			out = append(out, b)
		}
		return len(out) < n
	})
	if err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return nil, err
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out, nil
}

// streamStats is the body of the stream's stats messages.
type streamStats struct {
	Time          time.Time  `json:"time"`
	Stored        uint64     `json:"stored"`
	StoreBytes    int64      `json:"store_bytes"`
	StorageLimit  int64      `json:"storage_limit"`
	HistoryStart  *time.Time `json:"history_start,omitempty"`
	Evicted       uint64     `json:"evicted"`
	Ingested      uint64     `json:"ingested"`
	Agents        int        `json:"agents"`
	StreamClients int        `json:"stream_clients"`
}

func (s *Server) streamStats() streamStats {
	st := s.store.Stats()
	out := streamStats{Time: time.Now(), Stored: st.Count, StoreBytes: st.Bytes, StorageLimit: st.Limit,
		Evicted: st.Evicted, Ingested: st.Appended, Agents: s.agents.connectedCount(), StreamClients: s.broker.Clients()}
	if !st.HistoryStart.IsZero() {
		out.HistoryStart = &st.HistoryStart
	}
	return out
}
