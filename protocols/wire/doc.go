// Package wire is the contract between the node agent and the hub, beside
// the entries it carries (protocols): the ingest conversation's messages,
// framing and limits, the token file format, the index record an agent
// writes beside each entry with the vocabulary of fields it holds (the
// fields queries read), and the names of the agent's counters, each marked
// as loss or not. The agent (agent/emit) and the hub (apiserver) both import
// it and never each other. Standard library only: the query engine (CEL)
// stays in the hub, and the JSON decoder the hub reads entries with stays
// there too.
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
// entry its index record (the compact form of every field queries read,
// written by AppendIndex; see index.go) and its JSON as encoding/json writes
// an Entry, each after its length as a uvarint (AppendIndexed). The hub
// checks both (CheckIndex for the record) rather than decoding them, which
// is what keeps its cost per entry low; a record of another schema (an agent
// of another version) makes it decode the JSON instead.
//
// A batch may also be a text message: the header line, then one line per
// entry with its JSON alone (AppendBatch; encoding/json never writes a raw
// newline inside a value), which the hub decodes and indexes itself.
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
