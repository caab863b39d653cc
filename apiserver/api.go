package apiserver

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/sondehq/sonde/apiserver/query"
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

// queryCompiler compiles the queries of requests, counting them.
type queryCompiler struct{ metrics *metrics }

// compile compiles the q parameter, answering 400 itself when it is bad.
// The program sees only what the request's reader may see (see
// readerScope).
func (s queryCompiler) compile(w http.ResponseWriter, r *http.Request, q, endpoint string) (*query.Program, bool) {
	s.metrics.queries.WithLabelValues(endpoint).Inc()
	p, err := query.Compile(q)
	if err == nil {
		if sc := readerScope(r); sc != nil && !sc.All() {
			p = query.Restrict(p, sc.Sees)
		}
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

func (s *Server) validate(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Q string `json:"q"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 2*query.MaxLength)).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, `the body must be {"q": "<query>"}`)
		return
	}
	if _, ok := (queryCompiler{s.metrics}).compile(w, r, req.Q, "validate"); ok {
		writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
	}
}

func (s *Server) fields(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"fields": wire.Fields()})
}

func (s *Server) listAgents(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"agents": s.agents.list()})
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
