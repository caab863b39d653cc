// Package protocolstest helps test dissectors without a capture.
//
// Replay feeds recorded byte streams into a Conn through protocols.Feeder,
// the agent's pipeline's own feeding (leftovers kept and presented again,
// gaps, the Conn closed after an error), and CheckSplit replays a stream as
// given and cut at random points (Split) and fails unless every cut gives
// the same entries: the one split-invariance check of every dissector's
// table tests and fuzz targets. Describe is the line a failure shows of an
// entry. Recorder records real client/server conversations on loopback
// through a TCP proxy. HTTPEntry is a typical entry for benchmarks of what
// follows dissection.
//
// It is imported by tests only, and needs the standard library only.
package protocolstest
