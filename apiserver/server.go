package apiserver

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/gorilla/websocket"

	"github.com/sondehq/sonde/apiserver/enrich"
	"github.com/sondehq/sonde/apiserver/internal/store"
	"github.com/sondehq/sonde/apiserver/internal/stream"
	"github.com/sondehq/sonde/protocols"
	"github.com/sondehq/sonde/protocols/wire"
)

// Defaults the CLI shows in its flags.
const (
	// DefaultListen is where `sonde hub` listens in the cluster.
	DefaultListen = "0.0.0.0:8898"
	// DefaultServeListen is where `sonde read --serve` listens.
	DefaultServeListen = "127.0.0.1:8899"
	// DefaultStorageLimit bounds the data directory.
	DefaultStorageLimit = 1 << 30
	// ShutdownTimeout is how long Serve waits for requests in flight.
	ShutdownTimeout = 10 * time.Second
	// DefaultStreamQueue is how many entries a stream client may fall behind
	// before it is told it lost some.
	DefaultStreamQueue = 1024
	// DefaultMaxStreams is how many live streams a hub serves at once: a
	// team's browser tabs, well within memory (each holds its queue and up
	// to maxHistory entries of history while it sends them).
	DefaultMaxStreams = 64
)

// Config configures New.
type Config struct {
	// DataDir holds the store. Empty: a temporary directory that Close removes
	// (for `sonde read --serve`).
	DataDir string
	// StorageLimit is the most bytes DataDir may hold; 0 means DefaultStorageLimit.
	StorageLimit int64
	// Token is the bearer token agents must present. Empty: ingest over the
	// network is refused (Ingest still works).
	Token []byte
	// AllowedOrigins lists browser origins ("https://sonde.example.com")
	// allowed to open websockets besides the hub's own host.
	AllowedOrigins []string
	// Resolver names endpoints; nil leaves them as the agents sent them.
	Resolver enrich.Resolver
	// Logger receives structured logs; nil discards them.
	Logger *slog.Logger
	// Version is reported in HAR exports and /api/v1/agents.
	Version string
	// UI, when set, serves everything outside /api, /healthz and /metrics.
	UI http.Handler
	// MaxMessageBytes bounds one ingest message; 0 means wire.MaxMessageBytes.
	MaxMessageBytes int64
	// StreamQueue is each stream client's queue length; 0 means DefaultStreamQueue.
	StreamQueue int
	// MaxStreams is the most live streams open at once; 0 means
	// DefaultMaxStreams.
	MaxStreams int
	// Session, when set, makes every reader present the session's token
	// and name this machine in Host (see Session): for hubs that serve on
	// the user's own machine.
	Session *Session
	// Access, when set, makes readers come through the Kubernetes API and
	// see only what RBAC lets them (see Access): for hubs in a cluster.
	Access *Access
	// TLS, when set, makes Serve answer TLS only: agents' tokens and
	// entries, and the API server's requests, never travel in the clear.
	// Access needs it (the API server's client certificate is how it is
	// known); ClientAuth should be tls.RequestClientCert, since agents
	// present no certificate.
	TLS *tls.Config
}

// Server is the hub: it routes requests to ingest (agent connections), search
// (questions asked of the store) and the live streams, and owns their
// lifecycle (the store, the websockets to close on shutdown) and the
// metrics. Its methods are safe for concurrent use.
type Server struct {
	cfg      Config
	log      *slog.Logger
	store    *store.Store
	broker   *stream.Broker
	metrics  *metrics
	agents   *agents
	upgrader websocket.Upgrader
	handler  http.Handler
	tempDir  string
	started  time.Time

	ingest *ingester
	search *search
	live   *liveStreams

	// sessions are the open websockets, closed on shutdown (the HTTP server
	// does not track hijacked connections).
	smu      sync.Mutex
	sessions map[*websocket.Conn]struct{}
	closing  bool
}

// New opens the store and builds the server; it does not listen yet.
func New(cfg Config) (*Server, error) {
	if cfg.Access != nil && (cfg.Access.FrontProxy == nil || cfg.Access.Checker == nil) {
		return nil, errors.New("a hub behind the Kubernetes API needs both a front-proxy authenticator and a checker")
	}
	if cfg.Access != nil && cfg.TLS == nil {
		return nil, errors.New("a hub behind the Kubernetes API must serve TLS: the API server's client certificate is how its requests are known")
	}
	if cfg.Session != nil && len(cfg.Session.Token) < wire.MinTokenBytes {
		return nil, fmt.Errorf("a session's token must have at least %d bytes", wire.MinTokenBytes)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.StorageLimit == 0 {
		cfg.StorageLimit = DefaultStorageLimit
	}
	if cfg.MaxMessageBytes == 0 {
		cfg.MaxMessageBytes = wire.MaxMessageBytes
	}
	if cfg.MaxStreams <= 0 {
		cfg.MaxStreams = DefaultMaxStreams
	}
	if cfg.StreamQueue == 0 {
		cfg.StreamQueue = DefaultStreamQueue
	}
	s := &Server{cfg: cfg, log: cfg.Logger, broker: stream.NewBroker(), agents: newAgents(),
		sessions: map[*websocket.Conn]struct{}{}, started: time.Now()}
	if cfg.DataDir == "" {
		dir, err := os.MkdirTemp("", "sonde-hub-")
		if err != nil {
			return nil, fmt.Errorf("making a temporary data directory: %w", err)
		}
		s.tempDir, cfg.DataDir = dir, dir
	}
	st, err := store.Open(store.Config{Dir: cfg.DataDir, Limit: cfg.StorageLimit, Logger: cfg.Logger})
	if err != nil {
		s.removeTemp()
		return nil, err
	}
	s.store = st
	s.metrics = newMetrics(s)
	s.broker.OnLost = func(n int) { s.metrics.streamLost.Add(float64(n)) }
	s.upgrader = websocket.Upgrader{
		ReadBufferSize:  32 << 10,
		WriteBufferSize: 32 << 10,
		CheckOrigin:     checkOrigin(cfg.AllowedOrigins),
	}
	qc := queryCompiler{metrics: s.metrics}
	s.ingest = &ingester{token: cfg.Token, resolver: cfg.Resolver, maxMessage: cfg.MaxMessageBytes, log: s.log,
		store: st, live: s.broker, conns: s, metrics: s.metrics, agents: s.agents, upgrader: &s.upgrader}
	s.search = &search{queryCompiler: qc, store: st, version: cfg.Version}
	s.live = &liveStreams{queryCompiler: qc, broker: s.broker, upgrader: &s.upgrader, queue: cfg.StreamQueue,
		last: st.Last, history: s.search, stats: func() any { return s.streamStats() }, conns: s, log: s.log,
		slots: make(chan struct{}, cfg.MaxStreams), refused: s.metrics.streamRefused.Inc}
	s.handler = s.routes()
	return s, nil
}

func (s *Server) routes() http.Handler {
	r := chi.NewRouter()
	r.Use(middleware.RequestID, s.logRequests, s.recoverPanics)
	r.Get("/healthz", s.health)
	// Agents present their own token.
	r.Method(http.MethodGet, "/api/v1/ingest", s.ingest)
	if s.cfg.Access != nil {
		// Counters only, no traffic: Prometheus scrapes the pod itself.
		r.Method(http.MethodGet, "/metrics", s.metrics.handler())
		s.aggregatedRoutes(r)
		return r
	}
	r.Group(func(r chi.Router) {
		if s.cfg.Session != nil {
			r.Use(s.guardSession)
		}
		s.readRoutes(r)
	})
	return r
}

// readRoutes are what a reader of the traffic may ask for.
func (s *Server) readRoutes(r chi.Router) {
	r.Method(http.MethodGet, "/metrics", s.metrics.handler())
	r.Route("/api/v1", func(r chi.Router) {
		r.Get("/entries", s.search.entries)
		r.Get("/entries/{id}", s.search.entry)
		r.Post("/query/validate", s.validate)
		r.Get("/query/fields", s.fields)
		r.Get("/stats", s.search.stats)
		r.Get("/servicemap", s.search.serviceMap)
		r.Get("/agents", s.listAgents)
		r.Get("/export/har", s.search.exportHAR)
		r.Method(http.MethodGet, "/stream", s.live)
	})
	if s.cfg.UI != nil {
		r.Handle("/*", s.cfg.UI)
	}
}

// Handler returns the server's HTTP handler, for tests and embedding.
func (s *Server) Handler() http.Handler { return s.handler }

// Serve answers HTTP on ln until ctx ends, then shuts down gracefully: it
// stops accepting, closes websockets, and waits up to ShutdownTimeout for
// requests in flight. It returns nil after a shutdown that ctx asked for.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	hs := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	if s.cfg.TLS != nil {
		ln = tls.NewListener(ln, s.cfg.TLS)
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	s.log.Info("hub listening", "addr", ln.Addr().String())
	select {
	case err := <-errc:
		return fmt.Errorf("serving: %w", err)
	case <-ctx.Done():
	}
	s.closeSessions()
	sctx, cancel := context.WithTimeout(context.Background(), ShutdownTimeout)
	defer cancel()
	err := hs.Shutdown(sctx)
	if serr := <-errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		return fmt.Errorf("serving: %w", serr)
	}
	if err != nil {
		return fmt.Errorf("shutting down: %w", err)
	}
	return nil
}

// Ingest stores entries loaded in-process (`sonde read --serve`) and shows
// them to live streams.
func (s *Server) Ingest(entries ...*protocols.Entry) error {
	return s.ingest.ingestEntries(entries)
}

// Close closes the store (and removes a temporary data directory). Call it
// after Serve has returned.
func (s *Server) Close() error {
	s.closeSessions()
	err := s.store.Close()
	s.removeTemp()
	return err
}

func (s *Server) removeTemp() {
	if s.tempDir != "" {
		os.RemoveAll(s.tempDir)
	}
}

// track registers a websocket to close on shutdown; false means the hub is
// already shutting down.
func (s *Server) track(c *websocket.Conn) bool {
	s.smu.Lock()
	defer s.smu.Unlock()
	if s.closing {
		return false
	}
	s.sessions[c] = struct{}{}
	return true
}

func (s *Server) untrack(c *websocket.Conn) {
	s.smu.Lock()
	delete(s.sessions, c)
	s.smu.Unlock()
}

func (s *Server) closeSessions() {
	s.smu.Lock()
	defer s.smu.Unlock()
	s.closing = true
	msg := websocket.FormatCloseMessage(websocket.CloseGoingAway, "hub shutting down")
	for c := range s.sessions {
		c.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second))
		c.Close()
	}
}
