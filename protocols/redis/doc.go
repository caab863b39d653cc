// Package redis dissects the Redis serialization protocol, RESP2 and RESP3:
// commands (arrays of bulk strings, and inline commands), replies of every
// type (simple string, error, integer, bulk string, array, null, boolean,
// double, big number, bulk error, verbatim string, map, set, attribute,
// push), and the connection modes that change what a reply is.
//
// # Pairing
//
// Redis answers the commands of a connection in order, so a connection is a
// FIFO of commands waiting for replies (pipelining sends many at once).
// What does not fit a FIFO is followed explicitly:
//
//   - Pushes are one-way entries, never replies: RESP3 '>' frames (pub/sub
//     messages, client-side caching invalidations), RESP2 message arrays on
//     a subscribed connection, and MONITOR's stream.
//   - SUBSCRIBE and its kin are answered by one confirmation per channel;
//     an UNSUBSCRIBE without arguments by one per subscription, known from
//     the confirmations seen so far.
//   - CLIENT REPLY OFF and SKIP silence commands: they are emitted with
//     NoReply, and take no reply from the queue.
//   - Inside MULTI, commands are paired with their QUEUED replies; EXEC's
//     reply holds the results.
//   - Beyond Options.MaxPending waiting commands, the oldest is emitted as
//     unmatched and its reply, when it comes, is skipped.
//   - After a replica's PSYNC, the master sends a snapshot (one "rdb"
//     entry) and then streams the commands it runs: one-way "replication"
//     entries; the replica's REPLCONF ACKs get no reply. A replication link
//     joined mid-stream is recognised by the replica's next REPLCONF ACK.
//
// Secrets (AUTH, HELLO ... AUTH, MIGRATE ... AUTH/AUTH2, ACL SETUSER
// passwords, the values of secret parameters in CONFIG SET and in the reply
// to CONFIG GET: requirepass, masterauth, tls-*-pass and what
// Options.Secrets calls secret) are replaced with protocols.Redacted when
// Options.Redact is set.
//
// # Loss
//
// After a gap, or on a connection joined mid-stream, the stream is
// resynchronised at the next line that starts a well-formed command or
// reply. Commands that were waiting are emitted as unmatched with Gap set,
// since their replies may be among the lost bytes; entries paired until the
// queue next drains carry Gap (or, mid-stream, a warning), and a long run of
// replies without commands (the rest of a large reply, read as separate
// values) is folded into one entry.
//
// # Bounds
//
// The decoder is incremental: it consumes lines and string payloads as they
// arrive and never needs a whole value in the pipeline's leftover, so a
// 512 MiB string or a million-element array streams through. It keeps, per
// message, at most 1024 values and Options.BodyCap payload bytes (4 KiB per
// string) for display. What every connection holds together, the values
// being read and the commands waiting for replies, draws from
// Options.Budget: when it is spent, the oldest command waiting on the
// connection is emitted unmatched (redis_budget_evicted, its reply skipped
// when it comes), and a value being read is kept shorter
// (redis_budget_cut), each with a warning on its entry. It refuses, with a ParseError of a stable code,
// nesting deeper than 32, strings longer than 512 MiB, element counts no
// peer can send, and lines (other than a server's simple strings and
// errors) longer than 64 KiB.
//
// # Where things are
//
// Every dissector in protocols/ has the same files, so that whoever reads one
// finds their way in the others:
//
//   - dissector.go: the Dissector: detection, and finding a message start
//     after a loss
//   - frame.go: framing: the incremental RESP decoder (inline.go: inline
//     commands; replication.go: snapshots)
//   - conn.go: the Conn: the FIFO of commands waiting for replies, pushes,
//     subscriptions, MULTI
//   - entry.go: entry building: how values are shown (command.go, commands.go:
//     commands, their keys and secrets)
//   - errors.go: the error codes, sentinels and counter names
//
// Tests feed Conns through protocolstest, whose CheckSplit checks that
// cutting a stream at other points changes nothing.
//
// # Concurrency and buffers
//
// The Dissector is stateless. A Conn is used by one goroutine at a time and
// starts none; it copies what it keeps of the bytes handed to Feed, which
// are not used after Feed returns. Entries passed to the EmitFunc are not
// touched again.
package redis
