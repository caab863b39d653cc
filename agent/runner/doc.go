// Package runner is the agent's one runtime: a source (a live capture, or a
// pcap/pcapng file), the shared pipeline, and the sinks its entries go to
// (the hub over the ingest websocket, JSON lines to a writer, a function),
// with the expiry tick, the counters under their stable names, and the
// closing and flushing at the end. `sonde agent` wires flags into a Config;
// the demo (cmd/sonde-demo) and the live tests run the same code.
//
// Open starts the source (for a live capture: attaches to the interfaces),
// so that the caller can hand it pods (Source().SetPods) and serve its
// metrics before Run. Run captures until its context ends, then closes
// every connection, waits up to FlushTimeout for the hub to acknowledge
// what is left, and flushes the JSON writer. A file is read to its end
// on Run's goroutine, whatever the context says.
//
// # Goroutines
//
// A live capture delivers frames on the source's goroutine and expires idle
// connections from a ticker's (ExpireEvery); the pipeline is shared under
// one lock, and every sink is called under it, one entry at a time. Run
// also owns the emit sender's goroutine. Counters and Stats may be called
// from any goroutine at any time, also after Run returned. A Runner runs
// once.
package runner
