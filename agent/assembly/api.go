package assembly

import (
	"net/netip"
	"time"

	"github.com/sondehq/sonde/protocols"
)

// Side says which endpoint of a connection sent some bytes.
type Side uint8

const (
	// SideA is the initiator: the sender of the SYN when it was captured,
	// otherwise the sender of the first segment seen.
	SideA Side = iota
	// SideB is the other endpoint.
	SideB
)

// Key names a connection by its endpoints, A first (see SideA).
type Key struct {
	A, B netip.AddrPort
}

// Stream receives one connection's bytes in order. The assembler calls it
// from the goroutine that calls Add; data is valid only during the call.
type Stream interface {
	// Data delivers the next in-order bytes that side sent.
	Data(side Side, data []byte, ts time.Time)
	// Gap says n bytes that side sent are missing (never captured, or given
	// up on by a cap) before the next Data of that side. n < 0: unknown.
	Gap(side Side, n int, ts time.Time)
	// Close ends the stream; no call follows it.
	Close(reason protocols.CloseReason, ts time.Time)
}

// Factory makes a Stream for each new connection. sawSYN is false when the
// connection was first seen mid-stream.
type Factory interface {
	NewStream(key Key, sawSYN bool, ts time.Time) Stream
}

// Config bounds the assembler. Every bound, when hit, is counted in Stats.
type Config struct {
	// MaxConns is the most connections tracked at once; beyond it the least
	// recently active one is closed as idle.
	MaxConns int
	// MaxBufferedPerConn is the most out-of-order bytes held for one
	// connection (both directions). Each held segment is charged its payload
	// plus SegmentOverhead, so that the bound covers the bookkeeping too.
	MaxBufferedPerConn int
	// MaxBufferedTotal is the most out-of-order bytes held in all, charged
	// the same way.
	MaxBufferedTotal int
	// MaxSegmentsPerConn is the most out-of-order segments held for one
	// connection (both directions); it bounds the work of placing a segment.
	MaxSegmentsPerConn int
	// IdleTimeout closes connections without a segment for that long, in
	// capture time (see Expire).
	IdleTimeout time.Duration
}

// DefaultConfig is what the agent and `sonde read` run with.
func DefaultConfig() Config {
	return Config{
		MaxConns:           65536,
		MaxBufferedPerConn: 4 << 20,
		MaxBufferedTotal:   256 << 20,
		MaxSegmentsPerConn: 4096,
		IdleTimeout:        2 * time.Minute,
	}
}
