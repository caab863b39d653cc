// Package kafka dissects the Kafka wire protocol: every API key and version
// that github.com/twmb/franz-go/pkg/kmsg knows, flexible versions (KIP-482
// tagged fields) included.
//
// # Frames and pairing
//
// A connection carries size-delimited frames. A request header names its API
// key, version, correlation ID and client ID; a response header carries only
// the correlation ID, so a response is decoded with the version of the
// request that has the same ID on the same connection. Requests wait for
// their responses in a pending map bounded by Options.MaxPending. Brokers
// answer one connection's requests in order, so a response also settles the
// requests sent before it that are still waiting: they are emitted as
// unmatched. A response whose request was not captured is emitted as
// unmatched too, with its correlation ID only: its body cannot be decoded
// without the request's API key and version, and the parser does not guess.
// A Produce request with acks=0 gets no response and is emitted at once.
//
// Record batches (Produce requests, Fetch and ShareFetch responses) are read
// by hand: magic 2 batches, and legacy magic 0 and 1 message sets. gzip,
// snappy (raw and xerial-framed), lz4 and zstd are decompressed under
// Options.DecodedCap per batch and four times that per entry; up to 64
// records per entry are shown, their keys, values and headers held to
// Options.BodyCap in total. The record count comes from the batch headers, so
// it is exact whatever was shown.
//
// SaslAuthenticate tokens (and the raw tokens that follow a SaslHandshake v0)
// hold passwords or proofs of them: with Options.Redact only their size is
// kept and Entry.Redacted is set. Record headers with secret names and
// secret members of JSON record values are redacted too, by
// Options.Secrets.
//
// # Bounds
//
// A frame longer than 100 MiB (Kafka's own request limit) is a framing error.
// Frames up to 16 MiB are buffered; a larger one is passed over as it streams
// by, keeping its first 64 KiB for the header, and its entry says so. kmsg's
// decoder allocates several times the size of a frame made of minimal array
// elements (measured: 5x for a hostile 16 MiB Fetch response, 12x for a
// Metadata response), so only record-carrying messages (Produce requests,
// Fetch and ShareFetch responses) are decoded up to 16 MiB, the others up to
// 4 MiB, and the walk over one decoded message stops after 100000 parts.
// Lists of topics, partitions, errors and batches are capped per entry.
// What every connection holds together draws from Options.Budget: frames
// being collected beyond their first 64 KiB, and waiting requests with the
// records they show. When it is spent, a request makes room by emitting
// the oldest request waiting on its connection as unmatched
// (kafka_budget_evicted); a response, which answers that request, is
// instead passed over undecoded from where the budget stopped it, as is a
// request with nothing left to give up, and a waiting request lets go of
// its records (kafka_budget_cut), each with a warning on its entry.
// Every cap hit and every recoverable problem is counted under a stable name
// (see Dissector.Counts).
//
// # Loss
//
// A gap of known size inside a frame whose length is known costs that frame's
// body only. Otherwise (a gap of unknown size, or a connection joined
// mid-stream) the parser looks for the next frame: a request must decode and
// be followed by the end of the bytes at hand or another request; a response
// must carry the correlation ID of a waiting request or, when none waits, end
// where the bytes at hand end. On a connection followed from its first byte
// without loss, a malformed frame is a ParseError and the connection becomes
// opaque.
//
// # Where things are
//
// Every dissector in protocols/ has the same files, so that whoever reads one
// finds their way in the others:
//
//   - dissector.go: the Dissector: detection, counters, the topic names its
//     Conns share
//   - frame.go: framing: length-prefixed frames, their caps, resynchronisation
//     after a loss
//   - conn.go: the Conn: pairing responses with requests by correlation ID,
//     the pending queue
//   - entry.go: entry building: walking kmsg's decoded messages into the
//     record (records.go, compress.go: record batches)
//   - errors.go: the error codes, sentinels and counter names
//   - reader.go: Kafka's compound types on the shared sticky reader
//     (protocols/internal/bin)
//
// Tests feed Conns through protocolstest, whose CheckSplit checks that
// cutting a stream at other points changes nothing.
//
// # Concurrency and buffers
//
// The Dissector is safe for concurrent use; its Conns share its counters,
// its pools of decompressors, its cache of how to read kmsg's types and the
// topic names it learnt by topic ID (up to 16384), so that Produce and Fetch
// calls that name topics by ID only (v13 and later) show names learnt from
// Metadata responses on other connections of the same client. A
// Conn is not safe for concurrent use. It consumes every byte Feed hands it
// (except while looking for a frame after a loss, when it may leave fewer
// than 64 KiB): a frame that arrives whole is decoded in place, one that
// arrives in pieces is copied into the Conn's buffer for its direction, up to
// 16 MiB. Entries copy what they keep and never refer to fed bytes.
package kafka
