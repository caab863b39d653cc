// Package http1 dissects HTTP/1.0 and HTTP/1.1 (RFC 9112) connections into
// request/response entries.
//
// # Detection
//
// Detect claims a connection whose first bytes are a request line that ends in
// "HTTP/1.x" (any token method: WebDAV and custom methods included), the
// HTTP/0.9 form "GET /path", or a status line "HTTP/1.x NNN". The version is
// what decides: Redis inline commands ("GET key", "PING") and the HTTP/2
// preface ("PRI * HTTP/2.0") are not claimed.
//
// # Parsing
//
// Each direction has its own parser; requests pair with responses first in,
// first out, so pipelined requests are answered in order. Bodies are framed
// by Content-Length, chunked transfer coding (extensions skipped, trailers
// kept) or, for responses, the end of the connection; responses to HEAD, 1xx,
// 204, 304 and 2xx to CONNECT have none. 1xx responses (100 Continue, 103) are
// listed in Response.Informational; the final response pairs with the request.
//
// Parsing is lenient where peers are: bare LF line ends, whitespace runs in the
// request line, a request line without version from a well-known method
// (HTTP/0.9 form; its response may then be the body alone), "http/1.1" in any
// case, obs-fold continuation lines (joined with a space), empty lines between
// messages, header lines without a name (skipped with a warning). Bytes that
// do not start a message where one is due are skipped, with a warning on the
// next entry, up to 64 KiB; beyond that the connection is given up.
//
// Header fields keep their wire order and case. Bodies keep at most
// Options.BodyCap bytes (Body.Capture); a gzip, deflate (zlib or raw) or
// zstd Content-Encoding is decoded for display up to Options.DecodedCap,
// and an undecodable body keeps its raw bytes with a warning on the entry,
// unless Options.Redact is set: a body left in a content coding (br,
// compress, an unknown or damaged one) cannot be searched for secrets, so
// it is withheld (protocols.WithholdCoded). A body
// is decoded only when its exchange is emitted: a request waiting for its
// response holds its bytes as sent, never inflated. The bytes every
// connection holds in bodies not yet emitted draw from Options.Budget; when
// it is spent, the oldest request waiting on the connection is emitted
// unmatched to make room (http1_budget_evicted), or else the body is kept
// shorter (http1_budget_cut), each with a warning on its entry. With
// Options.Redact, secrets are replaced before the entry is emitted
// (Entry.Redacted), by Options.Secrets: in header fields and trailers, in
// the request target and URL-valued fields (Location, Referer), and in JSON
// and form bodies once they are decoded.
//
// # Limits and errors
//
// A start line with its header fields (or a trailer section) is at most 64 KiB,
// with at most 2000 fields; a chunk-size line at most 4 KiB; at most
// Options.MaxPending requests wait for responses (older ones are emitted as
// unanswered). Breaking a limit or the framing rules returns a
// *protocols.ParseError whose Code is one of: http1_start_line_too_long,
// http1_headers_too_large, http1_too_many_headers, http1_bad_content_length,
// http1_bad_transfer_encoding, http1_bad_chunk_size, http1_chunk_line_too_long,
// http1_bad_chunk_end, http1_lost_sync. Before returning it, the Conn emits
// every exchange it holds, with a warning; afterwards it emits nothing.
//
// # Upgrades
//
// A 101 response ends HTTP/1 on the connection: Feed returns a
// *protocols.UpgradeError after consuming the 101's header block. For
// "Upgrade: h2c" To is protocols.HTTP2 and Request is the upgrade request's
// entry, not emitted: HTTP/2 completes it as stream 1 (its ResponseSize already
// counts the 101). For any other protocol ("websocket") the exchange is emitted
// with HTTPRecord.Upgrade set and To is the Upgrade token. A 2xx to CONNECT is
// handled the same way, with Upgrade "tunnel" and To = Tunnel. While a request that may switch
// protocols (Upgrade, CONNECT) waits for its response, the client direction
// consumes nothing, so that the bytes after it go to whichever protocol wins.
//
// # Loss
//
// A gap inside a body of known length is skipped and counted: the entry gets
// Gap, the body Truncated, and nothing after the gap is kept. Any other gap
// loses the framing: the message in progress ends with Gap, and the direction
// discards bytes until a line that starts a request (client) or a status line
// (server). A request lost in a gap keeps its place in the FIFO, so that its
// response, when it comes, does not pair with the next request; a response
// lost in a gap is the one the oldest waiting request expected. A connection
// joined mid-stream (ConnInfo.MidStream) starts the same way, and a response
// whose request was never seen is emitted with Unmatched "request". Requests
// without a response are emitted with Unmatched "response" when the connection
// closes.
//
// # Where things are
//
// Every dissector in protocols/ has the same files, so that whoever reads one
// finds their way in the others:
//
//   - dissector.go: the Dissector: detection from a request or status line
//   - frame.go: framing: start lines, header blocks, Content-Length and
//     chunked bodies
//   - conn.go: the Conn: each direction's state machine, resynchronisation,
//     and the FIFO that pairs responses with requests
//   - entry.go: entry building: the exchange's entry, its summary and timing,
//     decoded bodies
//   - errors.go: the error codes, sentinels and counter names
//
// Tests feed Conns through protocolstest, whose CheckSplit checks that
// cutting a stream at other points changes nothing.
//
// # Concurrency and buffers
//
// The dissector is stateless. A Conn is used from one goroutine and starts
// none. It copies what it keeps from the bytes handed to Feed (header blocks as
// one string per message, bodies up to the cap), so those bytes may be reused
// as soon as Feed returns. Entries are handed to the EmitFunc complete and
// never touched again.
package http1
