// Package wire is the agent-to-hub ingest protocol, shared by the hub
// (apiserver) and the node agent's sender (agent/emit). It holds only message
// types, limits and the token file format, so that the agent can speak to the
// hub without importing the hub.
//
// # The conversation
//
// The agent opens GET /api/v1/ingest as a websocket, with
// "Authorization: Bearer TOKEN". A wrong or missing token gets 401 before the
// upgrade. Every message is one text frame:
//
//	agent → hub  {"type":"hello","agent_id":...,"node":...,"version":...,"source":...}
//	agent → hub  {"type":"batch","seq":N,"counters":{...}}\n<entry JSON>\n<entry JSON>...
//	hub → agent  {"type":"ack","seq":N,"stored":K}
//
// The hello comes first, once. A batch is a JSON header line followed by one
// line per entry, each an Entry in its JSON form (encoding/json never writes
// a raw newline inside a value). Lines let the hub find the entries without
// parsing the batch as a whole before parsing each entry, which was a third
// of its work per entry; each line is still checked as JSON on its own.
//
// Batch sequence numbers start at 1 and grow by one per batch for the life of
// one agent_id. The hub acknowledges a batch only once it is durably stored,
// and remembers (durably, with the entries) the highest batch stored per
// agent_id, so an agent that resends unacknowledged batches after a reconnect
// never stores an entry twice. A message over MaxMessageBytes, or one that does
// not decode, closes the connection with a close frame that says why.
//
// The hub decodes entry lines with an EntryDecoder, which reads what
// encoding/json writes into the same Entry that encoding/json would make, with
// json/v2 (github.com/go-json-experiment/json) at well under half the cost:
// decoding entries was most of the hub's work per entry. protocols stays on
// the standard library; the engine is confined to this package. The decoder
// also says where each line's endpoints are, so that the hub, having named
// them, writes the line again by replacing those alone (ReplaceEndpoints)
// rather than encoding the whole entry.
//
// Nothing here holds state or starts goroutines.
package wire
