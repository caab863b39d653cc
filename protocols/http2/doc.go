// Package http2 dissects HTTP/2 connections (RFC 9113) and the gRPC calls
// they carry: one entry per stream, paired by stream ID, with the request's
// and response's pseudo-headers, headers, trailers and capped bodies, or,
// for streams whose content-type is application/grpc*, a gRPC record with
// the call's metadata, status and length-prefixed messages decoded as
// protobuf without a schema.
//
// Connections are recognised by the client preface, by prior-knowledge h2c
// (which also starts with the preface), by an HTTP/1.1 Upgrade to h2c (the
// request arrives as ConnInfo.Upgrade and becomes stream 1), and, when the
// start was not captured, by a run of plausible frame headers.
//
// # Frames and header compression
//
// Frames are read whole with x/net's http2.Framer, which applies RFC 9113's
// checks; a frame is parsed only once all its bytes are there, and Feed
// consumes whole frames only. A frame larger than 1 MiB (what the pipeline
// may keep unconsumed) is refused from its header, before it is buffered
// (ParseError http2_frame_too_large); one larger than the receiver's
// SETTINGS_MAX_FRAME_SIZE but within that bound is shown with a warning,
// since its receiver may well have accepted it. Header
// blocks are decoded with x/net's hpack.Decoder, one per direction, with the
// table size the receiver announced (at most 1 MiB, counted past it); a header block is
// capped at 256 KiB on the wire (a CONTINUATION flood ends the connection
// with ParseError http2_header_block_too_large) and its decoded list at
// 256 KiB (fields past it are left out, with a warning).
//
// When part of a direction's history is missing (the connection was joined
// mid-stream, or a gap cut a header block), the dynamic table is unknown.
// A shadow table then takes over: entries added from then on are known,
// since HPACK indexes count from the newest entry; fields that reference
// older ones are left out and the entry says "headers not decodable:
// connection joined mid-stream". Blocks that use only the static table and
// literals decode in full. After a gap, the frame boundary is recovered by
// arithmetic when the gap fell inside a frame of known length (HPACK state
// then survives, unless the frame carried a header block); otherwise the
// bytes right after the gap are tried as a frame header, then two plausible
// frame headers in a row are looked for. A side joined mid-stream starts the
// same way. gRPC messages whose boundaries were lost resume at the next DATA
// frame that holds whole messages exactly.
//
// # Resets
//
// A RST_STREAM answers the request: the entry carries its code and is not
// "unmatched". Frames the other side sent before the reset reached it are
// still on their way (RFC 9113 §5.4.2), and often hold what it answered, so
// the stream waits for them, unless that side's half is over already. It
// stops waiting when that side ends its half or resets too, when it sends a
// frame on another stream, or once a second of capture time has passed (seen
// at the next bytes of the connection, or at Close). What the resetting side
// sends on the stream afterwards is ignored.
//
// # Bounds
//
// Streams open at once are bounded by Options.MaxPending (the oldest is
// emitted, with a warning, beyond it); bodies by Options.BodyCap, their
// gzip, deflate or zstd decoding by Options.DecodedCap (with
// Options.Redact, a body or gRPC message left in a coding Sonde does not
// decode is withheld, since it cannot be searched for secrets); gRPC messages are all
// counted, the first 256 per side listed, their content capped in total by
// BodyCap, the protobuf field tree by depth (12) and count (2048 per
// message, 4096 per side of a call), decoded once the call's entry is
// made. What every connection's open streams hold (header fields, and
// each side's payload up to BodyCap) draws from Options.Budget: when it
// is spent, the oldest other stream open on the connection is emitted as
// it stands to make room (http2_budget_evicted), or else the side keeps
// nothing more of its payload, or a header block only its pseudo-header
// fields (http2_budget_cut), each with a warning on its entry.
//
// # Where things are
//
// Every dissector in protocols/ has the same files, so that whoever reads one
// finds their way in the others:
//
//   - dissector.go: the Dissector: detection from the preface or a run of
//     frame headers
//   - frame.go: framing: the preface, frames through x/net's Framer, frame
//     boundaries after a loss
//   - conn.go: the Conn: frames to streams, pairing by stream ID, resets, the
//     bound on open streams
//   - entry.go: entry building: a stream's headers, bodies and its HTTP entry
//   - errors.go: the error codes, sentinels and counter names
//   - hpack.go, grpc.go, protobuf.go, inflate.go: header blocks, gRPC calls,
//     schema-less protobuf, content decoding
//
// Tests feed Conns through protocolstest, whose CheckSplit checks that
// cutting a stream at other points changes nothing.
//
// # Concurrency and buffers
//
// A Conn is not safe for concurrent use and starts no goroutines; the
// pipeline calls it from one goroutine. Feed copies what it keeps: frame
// payloads are copied by the framer into a buffer reused for the next frame,
// and bodies, header strings and messages are copied again into the entry.
// Emitted entries belong to the receiver. After a ParseError the connection
// emits nothing more, not even at Close.
package http2
