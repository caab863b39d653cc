// Package query is Sonde's query language: CEL (github.com/google/cel-go)
// over a fixed vocabulary of fields with names a user can guess (http,
// status_code, path, src.pod, elapsed, ...). The vocabulary is one table,
// protocols/wire's, shared with the agents that write index records; the
// README section, the UI's help (GET /api/v1/query/fields)
// and the tests all come from it.
//
// A query is compiled once (Compile) and evaluated per entry against its
// index record (MatchIndex), for stored history and live streams alike.
// Index records (wire.AppendIndex) hold every scalar field of an entry in a
// compact form, written by the agent beside the entry's JSON and checked by
// the hub (wire.CheckIndex); evaluating a query against one decodes only the
// fields the query asks for, which is what makes a scan of a million stored
// entries take well under a second, and lets the hub store and stream an
// entry without decoding it. Queries that read headers, bodies
// or lists (request, response, warnings, redis_args) decode whole entries and
// are correspondingly slower.
//
// A *Program is immutable and safe for concurrent use. An Index is a reusable
// cursor over one record at a time and must not be shared between goroutines;
// the record bytes must stay valid while it points at them.
package query
