// Package protocolstest helps test dissectors without a capture: it replays
// recorded byte streams into a Conn the way the agent's pipeline does (leftover
// kept and presented again, gaps, close), and records real client/server
// conversations on loopback through a TCP proxy. HTTPEntry is a typical
// entry for benchmarks of what follows dissection.
//
// It is imported by tests only.
package protocolstest
