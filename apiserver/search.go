package apiserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/sondehq/sonde/apiserver/internal/entryjson"
	"github.com/sondehq/sonde/apiserver/internal/har"
	"github.com/sondehq/sonde/apiserver/internal/store"
	"github.com/sondehq/sonde/apiserver/query"
	"github.com/sondehq/sonde/protocols"
	"github.com/sondehq/sonde/protocols/wire"
)

// search answers the questions asked of the stored entries: paged and
// filtered lists, one entry in full, stats, the service map, HAR exports,
// and the history a live stream sends first. It only reads the store.
//
// Goroutines: each request runs on its HTTP handler's goroutine, bounded by
// scanBudget; a page's scan runs in shards on goroutines of its own that end
// before the page is answered. Safe for concurrent use.
type search struct {
	queryCompiler
	store   *store.Store
	version string
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
	b, err := served(it.Get, it.Seq)
	if err != nil {
		return nil
	}
	e := new(protocols.Entry)
	if json.Unmarshal(b, e) != nil {
		return nil
	}
	return e
}

// served reads one entry as it is served: the agent's JSON with what the
// hub added merged into it.
func served(get func() (store.Stored, error), seq uint64) ([]byte, error) {
	e, err := get()
	if err != nil {
		return nil, err
	}
	b, err := entryjson.Merge(make([]byte, 0, len(e.JSON)+len(e.Overlay)+mergeGrowth), e.JSON, e.Overlay, seq)
	if err != nil {
		return nil, fmt.Errorf("reading entry %d: %w", seq, err)
	}
	return b, nil
}

// get reads one entry by its sequence number, as served.
func (s *search) get(seq uint64) ([]byte, error) {
	return served(func() (store.Stored, error) { return s.store.Get(seq) }, seq)
}

// mergeGrowth is room for what merging adds beyond the overlay's bytes:
// the ID, and the names of JSON fields.
const mergeGrowth = 64

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
	// Withheld is how many of the scanned entries are in namespaces the
	// reader may not see.
	Withheld uint64 `json:"withheld,omitempty"`
}

func (s *search) entries(w http.ResponseWriter, r *http.Request) {
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
	p, ok := s.compile(w, r, r.URL.Query().Get("q"), "entries")
	if !ok {
		return
	}
	res, err := s.page(r.Context(), p, before, limit)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	res.Withheld = withheld(r)
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

func (s *search) page(ctx context.Context, p *query.Program, before uint64, limit int) (*page, error) {
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
		b, err := s.get(seq)
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

func (s *search) entry(w http.ResponseWriter, r *http.Request) {
	seq, err := strconv.ParseUint(chi.URLParam(r, "id"), 10, 64)
	if err != nil {
		writeError(w, http.StatusNotFound, "no entry has that ID")
		return
	}
	b, err := s.get(seq)
	if errors.Is(err, store.ErrNotFound) || (err == nil && !readerSees(r, b)) {
		// An entry the reader may not see is one that does not exist, so
		// that IDs tell nothing of other namespaces.
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

func (s *search) exportHAR(w http.ResponseWriter, r *http.Request) {
	limit, err := intParam(r, "limit", maxLimit, 1, maxHARLimit)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	q := r.URL.Query().Get("q")
	if q != "" {
		if _, ok := s.compile(w, r, q, "har"); !ok {
			return
		}
		q = "http && (" + q + ")"
	} else {
		q = "http"
	}
	p, ok := s.compile(w, r, q, "har")
	if !ok {
		return
	}
	// The matches are found first, by number only, then read and written
	// one at a time, oldest first: an export holds one entry, not all.
	seqs, err := s.matching(r.Context(), p, 0, limit)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	if n := withheld(r); n > 0 {
		w.Header().Set(withheldHeader, strconv.FormatUint(n, 10))
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Disposition", `attachment; filename="sonde.har"`)
	hw := har.NewWriter(w, s.version)
	for _, seq := range seqs {
		b, err := s.get(seq)
		if errors.Is(err, store.ErrNotFound) {
			continue // evicted since it was scanned
		}
		e := new(protocols.Entry)
		if err == nil {
			err = json.Unmarshal(b, e)
		}
		if err == nil {
			_, err = hw.Add(e)
		}
		if err != nil {
			// The status is sent; a cut file is what the client sees.
			return
		}
	}
	hw.Close()
}

// matching returns the sequence numbers of up to n stored entries matching
// p with sequence numbers up to upTo (0: any), oldest first, within the
// scan budget.
func (s *search) matching(ctx context.Context, p *query.Program, upTo uint64, n int) ([]uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, scanBudget)
	defer cancel()
	m := matcher{p: p}
	var seqs []uint64
	before := uint64(0)
	if upTo > 0 {
		before = upTo + 1
	}
	err := s.store.Scan(ctx, before, func(it *store.Item) bool {
		if m.match(it) {
			seqs = append(seqs, it.Seq)
		}
		return len(seqs) < n
	})
	if err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return nil, err
	}
	slices.Reverse(seqs)
	return seqs, nil
}

// history returns the sequence numbers of up to n entries matching p with
// sequence numbers up to upTo, oldest first: a stream reads each as it
// sends it.
func (s *search) history(ctx context.Context, p *query.Program, upTo uint64, n int) ([]uint64, error) {
	if n == 0 || upTo == 0 {
		return nil, nil
	}
	return s.matching(ctx, p, upTo, n)
}
