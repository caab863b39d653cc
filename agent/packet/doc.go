// Package packet turns link-layer frames into the TCP segments that the
// assembly reads. Every capture source (a pcap file, the eBPF ring buffer,
// AF_PACKET) decodes through the same Decoder, so a packet is understood the
// same way whatever brought it.
//
// A Decoder is not safe for concurrent use. The Segment it returns, and the
// Payload inside it, are valid only until the next call to Decode: the
// assembly copies what it keeps.
package packet
