// Package pipeline turns TCP segments into entries: it runs the assembly,
// detects each connection's protocol from its first bytes, feeds the
// connection's parser, and stamps what the parser emits with the
// connection's endpoints and an ID. Every capture source ends here, so a bug
// found in a file is a bug fixed live.
//
// A Pipeline is not safe for concurrent use: one goroutine owns it (shard by
// connection to use more). Entries handed to the EmitFunc belong to the
// receiver.
//
// Detection looks at up to Config.DetectLimit bytes of each direction. A
// connection no dissector claims is opaque: it is counted, with its bytes,
// never silently dropped. So is a connection whose parser fails; its error is
// counted under the parser's stable code.
package pipeline
