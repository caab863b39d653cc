// Package amqp dissects AMQP 0-9-1 as RabbitMQ speaks it: the protocol
// header, the four frame types, every method of the connection, channel,
// exchange, queue, basic, confirm and tx classes (RabbitMQ's extensions
// included), field tables and arrays of every value type, and content
// carried across a content header and body frames.
//
// # Entries
//
// One entry per method, not per frame. A synchronous method waits for its
// reply on the same channel and becomes one entry with it (queue.declare
// with queue.declare-ok); when a Channel.Close or Connection.Close answers
// it instead, the entry's status is that Close's reply code by its spec
// name ("404 NOT_FOUND"), and the Close is an entry of its own, paired with
// its Close-Ok. Content-bearing methods (basic.publish, basic.deliver,
// basic.return, and the basic.get-ok reply) are emitted once their content
// is complete; the body is streamed, keeping at most Options.BodyCap bytes.
//
// After confirm.select a channel's publishes are numbered from 1, and each
// waits for the broker's basic.ack or basic.nack that names it (or, with
// multiple set, a later one); its entry then carries Confirm and the status
// "ack" or "nack". A publish waits at most 30 s of capture time and counts
// against Options.MaxPending; past either it is emitted unmatched. Without
// confirm mode a publish is one-way, as are basic.deliver, basic.return,
// the consumer's basic.ack, basic.nack and basic.reject, and
// connection.blocked. Heartbeats are counted, not emitted.
//
// Summary: method is the class.method name ("basic.publish"), target the
// exchange and routing key a message travels by ("amq.topic/orders.created",
// "(default)/hello" for the default exchange) or the queue, exchange,
// consumer tag or virtual host a method addresses (for a Close, the method
// it blames), status "ok", a Close's or basic.return's reply code and name,
// "ack"/"nack" for confirmed publishes, "empty" for basic.get-empty.
//
// Credentials are redacted when Options.Redact is set: the password of a
// PLAIN or AMQPLAIN response in connection.start-ok (the user name stays),
// any other mechanism's whole response, connection.secure-ok responses and
// connection.update-secret tokens; and, by Options.Secrets, secret-named
// entries of a message's headers table and secret members of a JSON body
// sent without a content-encoding; a body sent with one is withheld, since
// it cannot be searched for secrets.
//
// # Caps
//
// Frames are checked against frame_max from connection.tune-ok (until then
// 128 KiB, RabbitMQ's default; 1 MiB on a connection joined mid-stream,
// whose Tune was not seen). Method and content header frames are parsed
// whole and may never exceed 1 MiB; body frames are streamed. Field tables
// nest at most 8 deep and yield at most 256 fields per method or content
// header; string values are cut at 1024 bytes. Tables are length-prefixed,
// so these caps mark fields Truncated without losing the framing. At most
// 4096 channels are tracked per connection. The bodies every connection
// holds (content still arriving, publishes awaiting their confirm) draw
// from Options.Budget: when it is spent, the oldest message on the
// connection whose content is complete and that only awaits its answer is
// emitted unmatched to make room (amqp_budget_evicted), or else the body
// is kept shorter (amqp_budget_cut), each with a warning on its entry. A broken frame (frame-end
// missing, unknown type or method, oversized, arguments cut short, body
// longer than its header said) is a ParseError with a stable code
// ("amqp_frame_end", ...); the connection's pending entries are then
// emitted with a warning. Events that are not fatal are counted under
// stable names; a Conn made by this package has a method
// Counters() map[string]uint64 that returns them.
//
// # Loss and joining mid-stream
//
// On a connection whose start was not seen, and after a gap that does not
// end inside the frame being read, each direction looks for the next frame
// it can trust (a known method, a basic content header or a heartbeat, each
// ending in frame-end where its size says) and skips the bytes before it,
// counting them. A gap inside a body frame leaves the framing intact: the
// body is marked truncated and the entry Gap. A reply whose request was not
// seen is an entry with Unmatched "request"; a request whose reply never
// came is one with Unmatched "response".
//
// # Where things are
//
// Every dissector in protocols/ has the same files, so that whoever reads one
// finds their way in the others:
//
//   - dissector.go: the Dissector: detection from the protocol header or a run
//     of frames
//   - frame.go: framing: frames, heartbeats, resynchronisation after a loss
//     (content.go: content headers and bodies)
//   - conn.go: the Conn: channels, pairing synchronous methods with their
//     replies, publisher confirms, the pending cap
//   - entry.go: entry building: an exchange's record, target and status
//     (args.go, fields.go: arguments and field tables, read with
//     protocols/internal/bin)
//   - errors.go: the error codes, sentinels and counter names
//   - spec.go, redact.go: the 0-9-1 method table; credentials
//
// Tests feed Conns through protocolstest, whose CheckSplit checks that
// cutting a stream at other points changes nothing.
//
// # Concurrency and buffers
//
// The dissector returned by New is stateless and safe for concurrent use.
// A Conn is not: the pipeline calls it from one goroutine, and it starts
// none. Feed parses a whole method or content header frame where it lies in
// the caller's slice and copies one that arrives in pieces (at most 1 MiB
// per direction); everything an entry keeps is copied out of the slice
// before Feed returns, so the slice may be reused afterwards. Entries
// belong to the EmitFunc's receiver once emitted.
package amqp
