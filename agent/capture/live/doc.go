// Package live captures the traffic of pods on this node and hands it to the
// pipeline as link-layer frames.
//
// A Source runs until its context ends and calls a function for every frame,
// in capture order per CPU (frames of one TCP connection can arrive slightly
// out of order across CPUs; the assembly reorders by sequence number).
// Frames are Ethernet (agent/packet.LinkEthernet).
//
// Two sources implement it: the eBPF one (bpf/: TC programs, an in-kernel
// filter and a ring buffer) and, where eBPF cannot be loaded, an AF_PACKET
// one (agent/capture/afpacket). Open picks one and logs one line saying
// which and why.
//
// Targets: given pod IPs, the source finds the pods' host-side interfaces by
// route lookup (a per-pod route to a veth, or a bridge whose ports are all
// watched) and attaches to them; it follows interfaces that appear and
// disappear (netlink link updates, plus a periodic resync) without a
// restart, and detaches everything when Run returns. The pods themselves
// may change while it runs (Source.SetPods, which the agent calls as the
// node's pods come and go): the kernel filter and the attachments follow,
// and the ring and the counters stay. Named interfaces and "every
// interface" are also possible (sonde agent --iface, --all-ifaces).
//
// Loss is counted, never silent: Stats reconciles kernel and user space so
// that every packet the filter selected is either delivered or counted as
// lost, and Collector exports the counters to Prometheus. Lost TCP segments
// need no marker of their own: the segments that follow carry sequence
// numbers past the hole, and the assembly turns the hole into a gap on
// exactly the connection and direction that lost bytes (TestRingBufferLoss
// checks both, down to the entries' gap markers).
//
// A connection between two pods of the same node is captured twice: leaving
// the client's veth and entering the server's. Through a service IP the two
// copies differ (service address before DNAT, pod address after) but carry
// the same TCP sequence numbers (TestServiceIP); Frame.Ifindex and
// Frame.Dir let the pipeline tell the copies apart. Between pod addresses
// the copies are identical and the assembly drops the second as a
// retransmission.
//
// Concurrency and buffers: Run calls deliver from a single goroutine. The
// Frame and its Data are valid only until deliver returns (they point into
// the ring buffer); copy what must be kept. Stats is safe for concurrent use.
package live
