// Package bpf loads Sonde's TC capture programs, attaches them to network
// interfaces and reads what they capture.
//
// The programs (capture.bpf.c) run on the ingress and egress hooks of an
// interface. Each packet is parsed (Ethernet, optional VLAN tag, IPv4 or IPv6,
// TCP), checked against a filter held in maps (target addresses, ports,
// interfaces, or "capture all"), and only then copied, up to a snap length,
// into a BPF ring buffer. Per-CPU counters make every packet the program saw
// land in exactly one of: filtered, captured, lost for want of ring space,
// lost to a failed copy (see Counters).
//
// Snap length and GSO: on a veth the stack hands TC whole GSO/GRO
// super-packets of up to 64 KiB instead of MTU-sized frames. The default
// snap length (MaxSnapLen) keeps them whole, so the TCP payload reaches the
// reassembly complete; records are reserved in a few size classes so that
// small segments do not take 64 KiB of ring space each. A smaller snap length
// cuts frames: the cut shows up as Missing bytes when the frame is decoded
// (agent/packet), which the assembly turns into a gap.
//
// Wakeups: records are submitted without waking the reader unless the ring
// holds more than Config.WakeupBytes; the reader polls every few milliseconds
// instead. A wakeup per record costs the kernel two to three times more per
// packet.
//
// Attaching uses TCX links where the kernel has them; they vanish with the
// process. Elsewhere a clsact qdisc and cls_bpf filters are used, which
// outlive the process: Attachment.Close removes them and RemoveStaleFilters
// sweeps those of a process that was killed. Sonde's filters use one fixed
// priority and handle, and the sweep removes every filter Sonde left in the
// namespace: run one capture per network namespace.
//
// Concurrency: Capture's methods are safe for concurrent use. A Reader is
// read by one goroutine; Close may be called from any. A Record and the Data
// in it point into the ring buffer and are valid only during the callback
// that receives them.
//
// The generated files (capture_bpfel.go, capture_bpfel.o) are committed;
// `go generate` rebuilds them with clang (see gen.go).
package bpf
