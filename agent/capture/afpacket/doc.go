// Package afpacket reads TCP frames from an AF_PACKET socket with a
// TPACKET_V3 memory-mapped ring (gopacket/gopacket's pure-Go afpacket, no
// cgo). It is the capture where eBPF cannot be loaded; agent/capture/live
// wraps it in the same Source as the eBPF ring buffer.
//
// A classic BPF filter on the socket keeps only IPv4 and IPv6 TCP frames, so
// the kernel copies nothing else. The socket listens on every interface of
// its network namespace or on one; the caller selects interfaces by index.
//
// Concurrency and buffers: a Handle is read by one goroutine. The frame
// returned by Read points into the ring and is valid until the next Read.
package afpacket
