// Package assembly puts the TCP segments of many connections back in order and
// hands each connection's two byte streams to a Stream: in-order bytes as
// Data, bytes that will never come as a Gap. It is the step between a capture
// source (package packet's Segment) and the dissectors.
//
// # What a Stream sees
//
// Factory.NewStream is called when a connection is first seen: at its SYN, at
// a SYN-ACK whose SYN was not captured (the SYN-ACK's receiver is then SideA),
// or at the first segment carrying data (sawSYN false; its sender is SideA,
// and each side starts with the first segment it is seen sending with data or
// a FIN). Bare ACKs,
// FINs and RSTs of unknown connections open nothing (Stats.Unattached).
//
// Each side's bytes arrive in order. Where copies overlap — retransmissions,
// repacketised segments, a copy that differs — the first copy that reached the
// Assembler wins and the others are counted (RetransmittedBytes,
// OverlapConflicts). Bytes the capture cut off (Segment.Missing) are a Gap,
// and so is a hole the Assembler stops waiting for: when a cap would be passed,
// when the hole has waited IdleTimeout, or when the connection ends. A Gap is
// never glued over: every byte is delivered once as Data or counted once in a
// Gap. Data held out of order is delivered with the capture time of the
// segment that completed it, so that times only move forward.
//
// Close comes once: with protocols.ClosedFIN after both sides' FINs and the
// bytes before them, ClosedRST at a reset (after what was held), ClosedIdle
// from Expire and at an eviction, and otherwise — when a SYN reuses the
// 4-tuple (ClosedIdle) or at CloseAll (the reason given) — ClosedFIN if either
// side had sent a FIN.
// Bytes past a FIN, or after the close, are ignored (LateBytes). A closed
// connection stays known for a TIME_WAIT (60 s, at most IdleTimeout) so that
// its last ACKs do not open a new stream; a new SYN on it does.
//
// # Bounds
//
// Everything held is bounded by Config and every bound hit is counted in Stats:
// tracked connections (MaxConns: a closed one is forgotten first, otherwise
// the least recently active is evicted), bytes held out of order per
// connection and in all (each held segment charged SegmentOverhead beyond its
// payload, so the caps bound memory, not just payload), and held segments per
// connection. At a cap the oldest hole is given up as a Gap and what follows
// it delivered; nothing that arrived is thrown away to make room. A million
// unanswered SYNs keep the heap at about 40 MiB with the default 65536
// connections (TestMillionHalfOpen).
//
// # Concurrency and buffers
//
// An Assembler is not safe for concurrent use: shard by connection (both
// directions to the same shard) and call Add, Expire and CloseAll from the
// shard's goroutine. Stream methods run synchronously inside those calls and
// must not call back into the Assembler. Add does not keep seg or its
// Payload. The slice given to Stream.Data is valid only during the call: it is
// the segment's own payload when the bytes came in order (no copy), or the
// Assembler's copy of held bytes, which it reuses afterwards.
//
// # Why not gopacket's reassembly
//
// gopacket's reassembly.Assembler was measured beside this one on the same
// traces (BenchmarkAssembler, BenchmarkGopacketReassembly; the figures are in
// docs/decisions/assembly.md). This one is faster per segment (one lookup
// with a pointer-free key, no locks, no scatter-gather for in-order data),
// but the bounds decided it: gopacket's StreamPool has no limit on
// connections, its FlushCloseOlderThan walks every connection on each call,
// its buffer limits count pages rather than bytes, and a gap is a field to
// read rather than a call the dissector cannot miss.
package assembly
