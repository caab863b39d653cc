// Package apiserver is the hub: it takes entries from the node agents over a
// websocket (wire), names their endpoints (enrich), stores them within a size
// limit (internal/store), and serves them to browsers: paged and filtered
// with CEL queries (query), as a live websocket stream (internal/stream), as
// stats, a service map and HAR exports, with /healthz and Prometheus /metrics.
//
// # Use
//
//	srv, err := apiserver.New(apiserver.Config{DataDir: dir, StorageLimit: 1 << 30, Token: tok})
//	defer srv.Close()
//	err = srv.Serve(ctx, listener) // until ctx ends, then a graceful shutdown
//
// `sonde read --serve` loads entries in-process with Ingest instead of running
// agents.
//
// # Parts
//
// Server routes requests and owns the lifecycle (store, shutdown) and the
// metrics. Three types do the work, each documenting its goroutines:
// ingester (agent connections, checking batches, storing them), search
// (pages, one entry, stats, the service map, exports, a stream's history:
// reads of the store) and liveStreams (the stream websockets, over
// internal/stream's Broker). They meet through small interfaces: ingest
// hands stored batches to a publisher (the broker), a stream asks a
// historian (search) for its history, and both register their websockets
// with a connTracker (the Server) to be closed on shutdown.
//
// # Goroutines
//
// Serve runs the HTTP server; every request, ingest connection and stream
// session has its own goroutine (plus one reader per websocket). Ingest
// connections store each batch before acknowledging it, then hand it to the
// stream broker, which queues it for each stream's own matching goroutine:
// neither a slow browser nor an expensive query holds ingest up. When the context given to
// Serve ends, Serve stops accepting, closes every websocket with "going away"
// and waits (up to ShutdownTimeout) for requests in flight.
//
// Entries handed to Ingest belong to the server from then on: it sets their
// IDs. Like an agent's, they are stored as encoded, the names the hub
// resolves kept beside them.
package apiserver
