package apiserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sondehq/sonde/apiserver/internal/store"
	"github.com/sondehq/sonde/apiserver/query"
	"github.com/sondehq/sonde/protocols"
	"github.com/sondehq/sonde/protocols/wire"
)

// Analysis bounds.
const (
	defaultWindow = 15 * time.Minute
	maxWindow     = 7 * 24 * time.Hour
	// timelineBuckets is how many points the rate timeline has.
	timelineBuckets = 60
	// minWindow is the shortest window: one bucket of the timeline a
	// millisecond wide (a shorter one divided the window into nothing).
	minWindow = timelineBuckets * time.Millisecond
	// lateness is how far out of start order stored entries may be (agents
	// flush at different times); a window scan stops this far past its start.
	lateness = time.Minute
	// maxSamples bounds the latencies kept for percentiles, per edge and overall.
	maxSamples = 100_000
)

// sample is what stats and the service map read of one stored entry.
type sample struct {
	start    time.Time
	elapsed  time.Duration
	protocol string
	class    string
	err      bool
	src, dst protocols.Endpoint
}

// scanWindow calls fn for the entries matching p whose start lies within
// window before the newest stored entry's start (for a capture loaded by
// `sonde read --serve`, "the last 15 minutes" are the capture's, not the
// wall clock's). It returns the window's end.
func (s *search) scanWindow(ctx context.Context, p *query.Program, window time.Duration, fn func(*sample)) (time.Time, error) {
	ctx, cancel := context.WithTimeout(ctx, scanBudget)
	defer cancel()
	var end time.Time
	if err := s.store.Scan(ctx, 0, func(it *store.Item) bool { end = it.Start; return false }); err != nil {
		return end, err
	}
	from := end.Add(-window)
	m := matcher{p: p}
	var x wire.Index
	err := s.store.Scan(ctx, 0, func(it *store.Item) bool {
		if it.Start.Before(from) {
			return !it.Start.Before(from.Add(-lateness))
		}
		if it.Start.After(end) || !m.match(it) {
			return true
		}
		x.Reset(it.Index)
		sm := sample{start: it.Start}
		if v, ok := x.Value("elapsed"); ok {
			sm.elapsed = v.(time.Duration)
		}
		if v, ok := x.Value("protocol"); ok {
			sm.protocol = v.(string)
		}
		if v, ok := x.Value("status_class"); ok {
			sm.class = v.(string)
		}
		if v, ok := x.Value("error"); ok {
			sm.err = v.(bool)
		}
		sm.src, _ = x.Endpoint(false)
		sm.dst, _ = x.Endpoint(true)
		fn(&sm)
		return true
	})
	if errors.Is(err, context.DeadlineExceeded) {
		err = nil // what was scanned in time is still worth showing
	}
	return end, err
}

func windowParam(r *http.Request) (time.Duration, error) {
	v := r.URL.Query().Get("window")
	if v == "" {
		return defaultWindow, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < minWindow || d > maxWindow {
		return 0, fmt.Errorf("window must be a duration such as 15m, from %v up to %v", minWindow, maxWindow)
	}
	return d, nil
}

// Percentiles of latency, in milliseconds.
type Percentiles struct {
	P50 float64 `json:"p50_ms"`
	P90 float64 `json:"p90_ms"`
	P99 float64 `json:"p99_ms"`
	Max float64 `json:"max_ms"`
}

func percentiles(d []time.Duration) Percentiles {
	if len(d) == 0 {
		return Percentiles{}
	}
	slices.Sort(d)
	at := func(q float64) float64 {
		return float64(d[min(int(q*float64(len(d))), len(d)-1)]) / 1e6
	}
	return Percentiles{P50: at(0.50), P90: at(0.90), P99: at(0.99), Max: float64(d[len(d)-1]) / 1e6}
}

// Bucket is one point of the rate timeline.
type Bucket struct {
	Start  time.Time `json:"start"`
	Count  int       `json:"count"`
	Errors int       `json:"errors"`
}

// Stats is the answer of GET /api/v1/stats.
type Stats struct {
	From          time.Time                 `json:"from"`
	To            time.Time                 `json:"to"`
	Total         int                       `json:"total"`
	Errors        int                       `json:"errors"`
	ByProtocol    map[string]int            `json:"by_protocol"`
	ByStatusClass map[string]map[string]int `json:"by_status_class"`
	Timeline      []Bucket                  `json:"timeline"`
	Latency       Percentiles               `json:"latency"`
	HistoryStart  *time.Time                `json:"history_start,omitempty"`
	// Withheld is how many entries of the window are in namespaces the
	// reader may not see.
	Withheld uint64 `json:"withheld,omitempty"`
}

func (s *search) stats(w http.ResponseWriter, r *http.Request) {
	window, err := windowParam(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	p, ok := s.compile(w, r, r.URL.Query().Get("q"), "stats")
	if !ok {
		return
	}
	res := Stats{ByProtocol: map[string]int{}, ByStatusClass: map[string]map[string]int{}}
	var lat []time.Duration
	var samples []sample
	end, err := s.scanWindow(r.Context(), p, window, func(sm *sample) {
		res.Total++
		if sm.err {
			res.Errors++
		}
		res.ByProtocol[sm.protocol]++
		if res.ByStatusClass[sm.protocol] == nil {
			res.ByStatusClass[sm.protocol] = map[string]int{}
		}
		res.ByStatusClass[sm.protocol][sm.class]++
		if len(lat) < maxSamples {
			lat = append(lat, sm.elapsed)
		}
		samples = append(samples, sample{start: sm.start, err: sm.err})
	})
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	res.To, res.From = end, end.Add(-window)
	step := window / timelineBuckets
	res.Timeline = make([]Bucket, timelineBuckets)
	for i := range res.Timeline {
		res.Timeline[i].Start = res.From.Add(time.Duration(i) * step)
	}
	for _, sm := range samples {
		i := min(int(sm.start.Sub(res.From)/step), timelineBuckets-1)
		res.Timeline[i].Count++
		if sm.err {
			res.Timeline[i].Errors++
		}
	}
	res.Latency = percentiles(lat)
	res.Withheld = withheld(r)
	if st := s.store.Stats(); !st.HistoryStart.IsZero() {
		res.HistoryStart = &st.HistoryStart
	}
	writeJSON(w, http.StatusOK, res)
}

// MapNode is a workload, or an address when the entry carries no names.
type MapNode struct {
	ID        string `json:"id"`
	Kind      string `json:"kind"` // "workload", "pod", "service" or "address"
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
}

// MapEdge is traffic from one node to another over one protocol.
type MapEdge struct {
	Source   string      `json:"source"`
	Target   string      `json:"target"`
	Protocol string      `json:"protocol"`
	Count    int         `json:"count"`
	Errors   int         `json:"errors"`
	Latency  Percentiles `json:"latency"`
	samples  []time.Duration
}

func mapNode(ep protocols.Endpoint, server bool) MapNode {
	switch {
	case ep.Workload != "":
		return MapNode{ID: ep.Namespace + "/" + ep.Workload, Kind: "workload", Namespace: ep.Namespace, Name: ep.Workload}
	case ep.Pod != "":
		return MapNode{ID: ep.Namespace + "/" + ep.Pod, Kind: "pod", Namespace: ep.Namespace, Name: ep.Pod}
	case ep.Service != "":
		return MapNode{ID: ep.Namespace + "/" + ep.Service, Kind: "service", Namespace: ep.Namespace, Name: ep.Service}
	}
	name := ""
	if ep.IP.IsValid() {
		name = ep.IP.String()
	}
	// A server address is a service endpoint: its port tells services on one
	// host apart. A client's ephemeral port tells nothing.
	if server {
		name = net.JoinHostPort(name, strconv.Itoa(int(ep.Port)))
	}
	return MapNode{ID: name, Kind: "address", Name: name}
}

func (s *search) serviceMap(w http.ResponseWriter, r *http.Request) {
	window, err := windowParam(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	p, ok := s.compile(w, r, r.URL.Query().Get("q"), "servicemap")
	if !ok {
		return
	}
	nodes := map[string]MapNode{}
	type edgeKey struct{ src, dst, proto string }
	edges := map[edgeKey]*MapEdge{}
	end, err := s.scanWindow(r.Context(), p, window, func(sm *sample) {
		src, dst := mapNode(sm.src, false), mapNode(sm.dst, true)
		nodes[src.ID], nodes[dst.ID] = src, dst
		k := edgeKey{src.ID, dst.ID, sm.protocol}
		e := edges[k]
		if e == nil {
			e = &MapEdge{Source: src.ID, Target: dst.ID, Protocol: sm.protocol}
			edges[k] = e
		}
		e.Count++
		if sm.err {
			e.Errors++
		}
		if len(e.samples) < maxSamples/10 {
			e.samples = append(e.samples, sm.elapsed)
		}
	})
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	res := struct {
		From  time.Time `json:"from"`
		To    time.Time `json:"to"`
		Nodes []MapNode `json:"nodes"`
		Edges []MapEdge `json:"edges"`
		// Withheld is how many entries of the window are in namespaces
		// the reader may not see.
		Withheld uint64 `json:"withheld,omitempty"`
	}{From: end.Add(-window), To: end, Nodes: []MapNode{}, Edges: []MapEdge{}, Withheld: withheld(r)}
	for _, n := range nodes {
		res.Nodes = append(res.Nodes, n)
	}
	slices.SortFunc(res.Nodes, func(a, b MapNode) int { return strings.Compare(a.ID, b.ID) })
	for _, e := range edges {
		e.Latency = percentiles(e.samples)
		res.Edges = append(res.Edges, *e)
	}
	slices.SortFunc(res.Edges, func(a, b MapEdge) int {
		if c := strings.Compare(a.Source, b.Source); c != 0 {
			return c
		}
		if c := strings.Compare(a.Target, b.Target); c != 0 {
			return c
		}
		return strings.Compare(a.Protocol, b.Protocol)
	})
	writeJSON(w, http.StatusOK, res)
}
