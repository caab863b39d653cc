// Package emit sends the agent's entries to the hub over the ingest
// websocket (see protocols/wire for the conversation).
//
// The pipeline calls Send for every entry; Send never blocks and never does
// I/O. Entries wait in a bounded buffer until they are in a batch the hub has
// acknowledged as stored. A batch carries each entry's JSON and its index
// record (protocols/wire), so that the hub checks and stores the entry
// without decoding it. A batch goes out when it holds BatchSize entries or
// its oldest entry has waited FlushInterval. When the hub is unreachable the
// sender reconnects with exponential backoff and jitter, and resends every
// unacknowledged batch, in order, under its original number: the hub stores
// each batch once.
//
// # Bounds
//
// What the sender holds is bounded in entries (BufferEntries) and in bytes
// (BufferBytes: entries waiting by their footprint, batches sent by their
// size). At either bound the oldest entries not yet in a batch make room
// for the new one, counted as dropped (Stats.Dropped, wire.EmitDropped). An
// entry too large for a batch on its own is never dropped whole: its
// payloads are cut shorter until it fits, and as a last resort it keeps only
// what the list shows, with a warning saying so (Stats.Oversize,
// wire.EmitOversize). A message from the hub larger than an ack could be
// ends the connection.
//
// # Goroutines
//
// Run owns the connection: it dials, writes batches, and starts one reader
// goroutine per connection for acknowledgements; it returns when its context
// ends. Send, Flush and Stats may be called from any goroutine. Entries
// passed to Send belong to the sender from then on.
package emit
