// Package wire is the agent-to-hub ingest protocol, shared by the hub
// (apiserver) and the node agent's sender (agent/emit). It holds only message
// types, framing, limits and the token file format, so that the agent can
// speak to the hub without importing the hub. (The one other hub package
// agents use is apiserver/query, for the index record they write beside
// each entry.)
//
// # The conversation
//
// The agent opens GET /api/v1/ingest as a websocket, with
// "Authorization: Bearer TOKEN". A wrong or missing token gets 401 before the
// upgrade.
//
//	agent → hub  text    {"type":"hello","agent_id":...,"node":...,"version":...,"source":...}
//	agent → hub  binary  {"type":"batch","seq":N,"counters":{...}}\n(record, entry JSON)...
//	hub → agent  text    {"type":"ack","seq":N,"stored":K}
//
// The hello comes first, once. A batch is a JSON header line, then for each
// entry its index record (apiserver/query's compact form of every field
// queries read, written by query.AppendIndex) and its JSON as encoding/json
// writes an Entry, each after its length as a uvarint (AppendIndexed).
// The hub checks both but decodes neither whole: it checks the record's
// layout (query.CheckIndex) and the JSON's syntax and shape (Scan), names
// the endpoints in both when its resolver knows them, and stores them. That
// is about a third of the work of decoding the JSON into an Entry and
// indexing it, which was most of the hub's work per entry. The hub takes
// each agent's record on trust as far as its content goes (the agent is
// authenticated, and its JSON is equally its own word); a record of another
// schema (an agent of another version) or one without the node and source
// the hello gave is replaced by decoding the JSON after all.
//
// A batch may also be a text message: the header line, then one line per
// entry with its JSON alone (AppendBatch; encoding/json never writes a raw
// newline inside a value). The hub decodes each such entry with an
// EntryDecoder, which reads what encoding/json writes into the same Entry
// that encoding/json would make, with json/v2
// (github.com/go-json-experiment/json) at well under half the cost; the
// engine is confined to this package and protocols stays on the standard
// library. The decoder also says where each line's endpoints are, so that
// the hub, having named them, writes the line again by replacing those
// alone (ReplaceEndpoints) rather than encoding the whole entry.
//
// Batch sequence numbers start at 1 and grow by one per batch for the life of
// one agent_id. The hub acknowledges a batch only once it is durably stored,
// and remembers (durably, with the entries) the highest batch stored per
// agent_id, so an agent that resends unacknowledged batches after a reconnect
// never stores an entry twice. A message over MaxMessageBytes, or one that does
// not decode, closes the connection with a close frame that says why.
//
// Nothing here holds state or starts goroutines.
package wire
