package live

import (
	"context"
	"net/netip"
	"time"
)

// Direction is which way a frame went, as the pod behind the interface saw it.
type Direction uint8

const (
	DirUnknown Direction = iota
	// PodEgress: sent by the pod. On a host-side veth this is TC ingress.
	PodEgress
	// PodIngress: delivered to the pod. On a host-side veth this is TC egress.
	PodIngress
)

func (d Direction) String() string {
	switch d {
	case PodEgress:
		return "pod-egress"
	case PodIngress:
		return "pod-ingress"
	}
	return "unknown"
}

// Frame is one captured link-layer frame.
type Frame struct {
	// Data is the captured part of the frame, starting with its Ethernet
	// header. Valid only until deliver returns.
	Data []byte
	// WireLen is the frame's whole length; more than len(Data) when the
	// snap length cut it (a GSO super-packet counts whole).
	WireLen int
	Time    time.Time
	Ifindex int
	Dir     Direction
}

// Source is a live capture.
type Source interface {
	// Run captures until ctx ends, calling deliver for every frame from
	// one goroutine, then detaches, delivers what was still buffered and
	// returns. A Source runs once.
	Run(ctx context.Context, deliver func(*Frame)) error
	// SetPods replaces the addresses of the pods to capture (Config.Pods)
	// without a restart: the ring, the counters and the interfaces of pods
	// that stay are kept; those of new pods are attached and those of gone
	// pods detached before it returns. It may be called before Run and
	// while it runs, from any goroutine; after Run returned it returns
	// ErrStopped.
	SetPods(pods []netip.Addr) error
	// Stats may be called at any time, also after Run returned.
	Stats() Stats
}

// Stats are a source's counters since it was opened.
//
// They reconcile: Seen = Filtered + Captured + Lost (eBPF; AF_PACKET cannot
// see what its filter dropped, so Seen = Captured + Lost there), and once Run
// has returned Captured = Read = Delivered + Malformed. While running,
// Captured - Read frames wait in the ring.
type Stats struct {
	// Source is "ebpf" or "afpacket".
	Source string
	// Kernel side.
	Seen     uint64 // packets the capture ran on
	Filtered uint64 // not TCP or not selected
	Captured uint64 // copied into the ring
	Lost     uint64 // selected but not captured: no ring space (or a failed copy)
	// Truncated frames were captured but cut by the snap length; they are
	// delivered and decode with missing bytes, which the assembly marks
	// as a gap.
	Truncated uint64
	LostBytes uint64 // wire bytes of the lost packets (eBPF only)
	// User side.
	Read      uint64 // taken out of the ring
	Malformed uint64 // unreadable records (a bug if not zero)
	Skipped   uint64 // read but from an unwatched interface (AF_PACKET only)
	Delivered uint64 // handed to deliver
	// Interfaces is how many interfaces are attached now; AttachErrors
	// counts failed attachments (an interface that vanished meanwhile).
	Interfaces   int
	AttachErrors uint64
}
