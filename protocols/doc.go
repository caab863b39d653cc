// Package protocols is the contract every part of Sonde shares: the Entry that
// describes one exchange on the wire, the Dissector that recognises a protocol
// from a connection's first bytes, and the Conn that parses one connection.
//
// It depends on the standard library only, so that the hub, the agent and every
// dissector can import it without pulling capture or Kubernetes code along.
//
// # Who calls what
//
// The agent's pipeline owns every Conn. It calls Feed, Gap and Close from one
// goroutine per connection shard; a Conn is never used concurrently and starts
// no goroutines of its own. The byte slice handed to Feed is valid only for the
// duration of the call: a Conn copies what it keeps. Entries handed to the
// EmitFunc belong to the receiver from then on.
//
// # Streams and leftovers
//
// Feed returns how many bytes it consumed. The pipeline keeps the rest and
// presents it again, followed by the next bytes of that direction, at the next
// call: "need more data" is a short count, never an error. The pipeline bounds
// what it keeps (MaxPending): a Conn that consumes nothing while the leftover
// grows past that bound is closed with ErrTooLarge. Large bodies are therefore
// consumed as they arrive, copying at most the configured body cap. Feeder is
// that feeding, written once: the pipeline and the tests' replays both use it.
//
// # Loss
//
// Loss is data. Bytes that never reached the parser arrive as a Gap call; the
// exchanges that overlap a gap carry Gap=true, and a request whose response
// never came (or the reverse) is emitted with Unmatched set when the connection
// closes, instead of vanishing.
//
// # Secrets
//
// Secrets are redacted on the node, in each dissector, before an entry is
// emitted, when Options.Redact is set (the default); Entry.Redacted says
// that something was replaced, and the value itself reads Redacted where
// it was. What a secret is comes from one rule for names, the same for
// header fields, query and fragment keys, form fields (multipart parts
// too), JSON members, XML elements and attributes, gRPC metadata and AMQP
// and Kafka headers: the name, percent-decoded, in lower
// case and without '-', '_', '.' and spaces, ends with a credential word
// ("token", "password", "apikey", ...) or is one of a few short names
// ("code", "key", "sig", ...); see secretWords in redact.go for the list and
// why each word is there. Options.Secrets (a SecretPolicy) adds names and
// regular expressions matched against values; its zero value is the rule
// alone. URL user info, protocol credentials (Redis AUTH, AMQP SASL, Kafka
// SASL) and HPACK never-indexed fields are redacted besides. A body left in
// a content coding Sonde does not decode (br, compress, unknown codings, a
// damaged gzip, a gRPC codec it does not know, an AMQP content-encoding)
// cannot be searched for secrets, and some codings carry short content as
// is: it is withheld (WithholdCoded), its size kept and a warning on the
// entry.
//
// JSON bodies are scanned token by token rather than decoded, so that only
// the replaced values change, a body cut at the body cap is still read, and
// a clean body costs no allocation.
package protocols
