package afpacket

import (
	"fmt"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/afpacket"
	"github.com/vishvananda/netns"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	sbpf "github.com/sondehq/sonde/bpf"
)

// ErrTimeout is returned by Read when no frame came within the poll timeout.
var ErrTimeout = afpacket.ErrTimeout

// Config sets up a Handle.
type Config struct {
	// Iface is the interface to listen on; empty means all of them.
	Iface string
	// SnapLen is the most bytes kept of a frame; zero means 65536+128,
	// enough for a whole GSO super-packet.
	SnapLen int
	// RingSize is the ring size in bytes; zero means 16 MiB.
	RingSize int
	// PollTimeout bounds how long Read waits; zero means 50 ms.
	PollTimeout time.Duration
	// Netns is the network namespace to open the socket in; zero or
	// negative means the caller's.
	Netns netns.NsHandle
}

// Handle is an open AF_PACKET socket.
type Handle struct {
	tp *afpacket.TPacket
}

const blockSize = 1 << 20 // fits a whole 64 KiB frame many times over

// Open opens the socket and installs the TCP-only filter.
func Open(cfg Config) (*Handle, error) {
	snap := cfg.SnapLen
	if snap <= 0 {
		snap = 65536 + 128
	}
	ring := cfg.RingSize
	if ring <= 0 {
		ring = 16 << 20
	}
	poll := cfg.PollTimeout
	if poll <= 0 {
		poll = 50 * time.Millisecond
	}
	opts := []any{
		afpacket.TPacketVersion3,
		afpacket.OptFrameSize(frameSize(snap)),
		afpacket.OptBlockSize(blockSize),
		afpacket.OptNumBlocks(max(ring/blockSize, 2)),
		afpacket.OptBlockTimeout(2 * time.Millisecond),
		afpacket.OptPollTimeout(poll),
	}
	if cfg.Iface != "" {
		opts = append(opts, afpacket.OptInterface(cfg.Iface))
	}
	var tp *afpacket.TPacket
	open := func() error {
		var err error
		tp, err = afpacket.NewTPacket(opts...)
		return err
	}
	if err := sbpf.InNetns(cfg.Netns, open); err != nil {
		return nil, fmt.Errorf("opening an AF_PACKET socket: %w", err)
	}
	prog, err := bpf.Assemble(tcpOnly(snap))
	if err != nil {
		tp.Close()
		return nil, fmt.Errorf("assembling the socket filter: %w", err)
	}
	if err := tp.SetBPF(prog); err != nil {
		tp.Close()
		return nil, fmt.Errorf("setting the socket filter: %w", err)
	}
	// The socket received frames between binding and the filter; throw them
	// away before the counters start, so that what Read returns reconciles
	// with Stats.
	for {
		if _, _, err := tp.ZeroCopyReadPacketData(); err != nil {
			break
		}
	}
	if err := tp.InitSocketStats(); err != nil {
		tp.Close()
		return nil, fmt.Errorf("resetting socket statistics: %w", err)
	}
	return &Handle{tp: tp}, nil
}

// frameSize is the TPACKET frame size for a snap length: a power of two
// (the ring wants frames that divide the block).
func frameSize(snap int) int {
	f := 4096
	for f < snap+256 && f < blockSize {
		f *= 2
	}
	return f
}

// tcpOnly accepts IPv4 and IPv6 TCP frames (no VLAN tag, no IPv6 extension
// headers before TCP) and drops everything else.
func tcpOnly(snap int) []bpf.Instruction {
	return []bpf.Instruction{
		bpf.LoadAbsolute{Off: 12, Size: 2},                         // ethertype
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: 0x0800, SkipFalse: 3}, // IPv4?
		bpf.LoadAbsolute{Off: 23, Size: 1},                         // IPv4 protocol
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: unix.IPPROTO_TCP, SkipTrue: 4, SkipFalse: 5},
		bpf.RetConstant{Val: 0},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: 0x86dd, SkipFalse: 3}, // IPv6?
		bpf.LoadAbsolute{Off: 20, Size: 1},                         // IPv6 next header
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: unix.IPPROTO_TCP, SkipFalse: 1},
		bpf.RetConstant{Val: uint32(snap)},
		bpf.RetConstant{Val: 0},
	}
}

// Read returns the next frame. data points into the ring and is valid
// until the next Read; ci.Length is the frame's length on the wire.
func (h *Handle) Read() (data []byte, ci gopacket.CaptureInfo, err error) {
	return h.tp.ZeroCopyReadPacketData()
}

// Stats returns the frames that passed the socket filter since Open and,
// among them, those dropped for want of ring space. Safe for concurrent use.
func (h *Handle) Stats() (passed, dropped uint64, err error) {
	// The kernel resets its statistics when read and counts drops in
	// tp_packets; the library adds them up.
	_, v3, err := h.tp.SocketStats()
	if err != nil {
		return 0, 0, err
	}
	return uint64(v3.Packets()), uint64(v3.Drops()), nil
}

// Close closes the socket.
func (h *Handle) Close() { h.tp.Close() }
