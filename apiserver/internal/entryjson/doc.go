// Package entryjson reads entries' JSON as agents send it, for the hub.
//
// An EntryDecoder reads what encoding/json writes into the same Entry that
// encoding/json would make, with json/v2 (github.com/go-json-experiment/json)
// at well under half the cost; the engine is confined to this package, and
// the contract (protocols, protocols/wire) stays on the standard library.
// Scan checks a line's syntax and shape without decoding it and says where
// its ID and endpoints are. The hub stores the line as the agent wrote it,
// beside an overlay of what it adds (AppendOverlay: the endpoints it named,
// the hello's node and source); Merge splices the ID and those into the line
// when an entry is read, in one pass.
//
// An EntryDecoder holds reusable buffers and must not be shared between
// goroutines; nothing here starts goroutines.
package entryjson
