package apiserver

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the hub's Prometheus series, on a registry of its own so that
// two hubs in one process (tests) do not collide.
type metrics struct {
	reg            *prometheus.Registry
	ingested       prometheus.Counter
	batches        prometheus.Counter
	duplicates     prometheus.Counter
	rejected       *prometheus.CounterVec
	queries        *prometheus.CounterVec
	queryErrors    prometheus.Counter
	streamLost     prometheus.Counter
	panics         prometheus.Counter
	sessionRefused *prometheus.CounterVec
	streamRefused  prometheus.Counter
	readerRefused  *prometheus.CounterVec
	agentDropped   prometheus.Counter
	agentConnected prometheus.Gauge
	// ingestMemoryWaits counts messages that waited for room in the batch
	// memory of all agent connections.
	ingestMemoryWaits prometheus.Counter
	// indexMismatch counts entries whose index record disagreed with
	// their JSON, indexed again from the JSON.
	indexMismatch prometheus.Counter
}

// Reasons an ingest connection or message is refused.
const (
	rejectUnauthorized = "unauthorized"
	rejectTooLarge     = "too_large"
	rejectMalformed    = "malformed"
	rejectProtocol     = "protocol"
	rejectUpgrade      = "upgrade"
	// rejectAgentConnected: a hello with the agent_id of a connection
	// still open.
	rejectAgentConnected = "agent_connected"
	// rejectBatchAhead and rejectBatchBehind: a batch number further from
	// the agent's last stored one than store.BatchWindow.
	rejectBatchAhead  = "batch_ahead"
	rejectBatchBehind = "batch_behind"
	// rejectDiskFull: a batch not stored for want of disk space, and
	// rejectStoreFailed: for a store that failed (see store.ErrFailed).
	rejectDiskFull    = "disk_full"
	rejectStoreFailed = "store_failed"
	// rejectTooManyConns: a connection past the ingester's MaxIngestConns.
	rejectTooManyConns = "too_many_connections"
)

func newMetrics(s *Server) *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	f := func(c prometheus.Collector) { m.reg.MustRegister(c) }
	m.ingested = prometheus.NewCounter(prometheus.CounterOpts{Name: "sonde_hub_ingested_entries_total", Help: "Entries received from agents and stored."})
	m.batches = prometheus.NewCounter(prometheus.CounterOpts{Name: "sonde_hub_ingested_batches_total", Help: "Batches stored."})
	m.duplicates = prometheus.NewCounter(prometheus.CounterOpts{Name: "sonde_hub_duplicate_batches_total", Help: "Batches resent by agents after they had been stored, acknowledged and not stored again."})
	m.rejected = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sonde_hub_ingest_rejected_total", Help: "Ingest connections or messages refused, by reason."}, []string{"reason"})
	m.queries = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sonde_hub_queries_total", Help: "Queries run, by endpoint."}, []string{"endpoint"})
	m.queryErrors = prometheus.NewCounter(prometheus.CounterOpts{Name: "sonde_hub_query_errors_total", Help: "Queries that did not compile."})
	m.streamLost = prometheus.NewCounter(prometheus.CounterOpts{Name: "sonde_hub_stream_lost_entries_total", Help: "Entries not delivered to stream clients that fell behind."})
	m.panics = prometheus.NewCounter(prometheus.CounterOpts{Name: "sonde_hub_handler_panics_total", Help: "Requests whose handler panicked."})
	m.sessionRefused = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sonde_hub_session_refused_total", Help: "Requests a local session refused, by reason: no valid token, or a Host that does not name this machine."}, []string{"reason"})
	for _, r := range []string{"token", "host"} {
		m.sessionRefused.WithLabelValues(r)
	}
	f(m.sessionRefused)
	m.streamRefused = prometheus.NewCounter(prometheus.CounterOpts{Name: "sonde_hub_stream_refused_total", Help: "Live streams refused because MaxStreams were open."})
	f(m.streamRefused)
	m.readerRefused = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sonde_hub_reader_refused_total", Help: "Reads refused on a hub behind the Kubernetes API, by reason: asked directly, an untrusted certificate, no user named, or a namespace the user may not see."}, []string{"reason"})
	for _, r := range []string{"direct", "certificate", "user", "forbidden"} {
		m.readerRefused.WithLabelValues(r)
	}
	f(m.readerRefused)
	m.agentDropped = prometheus.NewCounter(prometheus.CounterOpts{Name: "sonde_hub_agent_dropped_entries_total", Help: "Entries agents reported dropping while the hub was unreachable (growth since each agent connected)."})
	m.agentConnected = prometheus.NewGauge(prometheus.GaugeOpts{Name: "sonde_hub_agents_connected", Help: "Agents connected now."})
	for _, r := range []string{rejectUnauthorized, rejectTooLarge, rejectMalformed, rejectProtocol, rejectUpgrade,
		rejectAgentConnected, rejectBatchAhead, rejectBatchBehind, rejectDiskFull, rejectStoreFailed, rejectTooManyConns} {
		m.rejected.WithLabelValues(r)
	}
	f(m.ingested)
	f(m.batches)
	f(m.duplicates)
	f(m.rejected)
	f(m.queries)
	f(m.queryErrors)
	f(m.streamLost)
	f(m.panics)
	f(m.agentDropped)
	f(m.agentConnected)
	f(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "sonde_hub_stored_entries", Help: "Entries in the store."},
		func() float64 { return float64(s.store.Stats().Count) }))
	f(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "sonde_hub_store_bytes", Help: "Bytes the store's directory holds."},
		func() float64 { return float64(s.store.Stats().Bytes) }))
	f(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "sonde_hub_store_limit_bytes", Help: "The store's size limit."},
		func() float64 { return float64(s.cfg.StorageLimit) }))
	f(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "sonde_hub_evicted_entries_total", Help: "Oldest entries removed to stay under the size limit."},
		func() float64 { return float64(s.store.Stats().Evicted) }))
	f(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "sonde_hub_history_start_seconds", Help: "Start time of the oldest stored entry (Unix seconds); 0 when empty."},
		func() float64 {
			if t := s.store.Stats().HistoryStart; !t.IsZero() {
				return float64(t.UnixNano()) / 1e9
			}
			return 0
		}))
	f(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "sonde_hub_stream_clients", Help: "Open stream websockets."},
		func() float64 { return float64(s.broker.Clients()) }))
	f(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "sonde_hub_store_disk_full_total", Help: "Times the store's writes met a full disk (its reserve file was given up so that the write could finish)."},
		func() float64 { return float64(s.store.DiskFullEvents()) }))
	f(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "sonde_hub_store_healthy", Help: "1 while the store takes entries; 0 while its disk is full or after it failed."},
		func() float64 {
			if s.store.Health() != nil {
				return 0
			}
			return 1
		}))
	m.ingestMemoryWaits = prometheus.NewCounter(prometheus.CounterOpts{Name: "sonde_hub_ingest_memory_waits_total", Help: "Agent messages that waited for room in the batch memory shared by all agent connections (see DefaultIngestMemory)."})
	f(m.ingestMemoryWaits)
	m.indexMismatch = prometheus.NewCounter(prometheus.CounterOpts{Name: "sonde_hub_index_mismatch_entries_total", Help: "Entries whose index record (what searches read) disagreed with their JSON (what the UI shows) on protocol, endpoints or summary, and were indexed again from the JSON."})
	f(m.indexMismatch)
	f(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "sonde_hub_ingest_memory_bytes", Help: "Bytes of the agent connections' batch memory in use."},
		func() float64 { return float64(s.ingest.limits().mem.used.Load()) }))
	f(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "sonde_hub_ingest_memory_limit_bytes", Help: "The batch memory all agent connections share."},
		func() float64 { return float64(s.ingest.limits().memory) }))
	if rs, ok := s.cfg.Access.reviewStats(); ok {
		f(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "sonde_hub_access_reviews_total", Help: "SubjectAccessReviews the hub asked the cluster, deciding which namespaces a reader sees."},
			func() float64 { a, _ := rs.Stats(); return float64(a) }))
		f(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "sonde_hub_access_review_cache_flushes_total", Help: "Times the cache of review answers was full and started over."},
			func() float64 { _, fl := rs.Stats(); return float64(fl) }))
	}
	f(collectors.NewGoCollector())
	f(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}
