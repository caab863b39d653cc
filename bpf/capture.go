package bpf

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"sync"

	"github.com/cilium/ebpf"
)

// MaxSnapLen is the largest snap length: a 64 KiB GSO super-packet and its
// headers (MAX_SNAP in capture.bpf.c).
const MaxSnapLen = 65536 + 128

// DefaultRingSize is the ring buffer size used when Config.RingSize is zero:
// about 20 ms of a saturated veth on the machines Sonde was measured on.
const DefaultRingSize = 16 << 20

var (
	// ErrClosed is returned by a Reader after Close.
	ErrClosed = errors.New("capture closed")
	// errRingSize says the ring size is not a power-of-two multiple of the page size.
	errRingSize = errors.New("ring size must be a power of two and a multiple of the page size")
)

// Config sets up a Capture.
type Config struct {
	// RingSize is the ring buffer size in bytes: a power of two, at least a
	// page. Zero means DefaultRingSize.
	RingSize int
	// SnapLen is how many bytes of each frame are copied, 1..MaxSnapLen.
	// Zero means MaxSnapLen.
	SnapLen int
	// WakeupBytes forces a reader wakeup once that many bytes wait in the
	// ring; below it the reader is not woken and polls. Zero means an eighth
	// of the ring; a negative value wakes the reader for every record.
	WakeupBytes int
}

// Filter selects the packets to capture. Non-TCP packets are never captured.
// With All set every TCP packet is; otherwise a packet must match each
// non-empty set (an address, a port, an interface), and an empty Filter
// selects nothing.
type Filter struct {
	All bool
	// Addrs match the source or the destination address.
	Addrs []netip.Addr
	// Ports match the source or the destination port.
	Ports []uint16
	// Ifindexes match the interface the packet was seen on.
	Ifindexes []int
}

// Counters are the kernel program's counters, summed over CPUs.
//
// Seen == Filtered + Captured + RingbufFull + LoadError, and Captured is what
// the ring buffer received (a Reader sees all of it unless it stops early).
type Counters struct {
	Seen        uint64 // packets the programs ran on
	Filtered    uint64 // not TCP, or not selected by the Filter
	Captured    uint64 // records submitted to the ring buffer
	RingbufFull uint64 // selected but lost: no room in the ring buffer
	LoadError   uint64 // selected but lost: the copy out of the packet failed
	Truncated   uint64 // captured but cut by the snap length
	// CapturedBytes are the frame bytes copied; LostBytes the wire bytes of
	// the packets lost.
	CapturedBytes uint64
	LostBytes     uint64
}

// Lost is the number of selected packets that never reached the ring buffer.
func (c Counters) Lost() uint64 { return c.RingbufFull + c.LoadError }

// Capture is the loaded programs and maps.
type Capture struct {
	objs     captureObjects
	ringSize int
	mu       sync.Mutex // serialises filter updates
	settings captureConfig
}

// Load loads the programs into the kernel. It needs CAP_BPF and CAP_NET_ADMIN
// (or root).
func Load(cfg Config) (*Capture, error) {
	ring := cfg.RingSize
	if ring == 0 {
		ring = DefaultRingSize
	}
	if ring < os.Getpagesize() || ring&(ring-1) != 0 {
		return nil, fmt.Errorf("ring size %d: %w", ring, errRingSize)
	}
	snap := cfg.SnapLen
	if snap <= 0 || snap > MaxSnapLen {
		snap = MaxSnapLen
	}
	wake := cfg.WakeupBytes
	switch {
	case wake == 0:
		wake = ring / 8
	case wake < 0:
		wake = 0 // the kernel's own policy: wake whenever the reader caught up
	}
	spec, err := loadCapture()
	if err != nil {
		return nil, fmt.Errorf("reading the capture object: %w", err)
	}
	spec.Maps[captureMapEvents].MaxEntries = uint32(ring)
	c := &Capture{ringSize: ring}
	if err := spec.LoadAndAssign(&c.objs, nil); err != nil {
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			return nil, fmt.Errorf("loading the capture programs: %+v", ve)
		}
		return nil, fmt.Errorf("loading the capture programs: %w", err)
	}
	c.settings = captureConfig{Snaplen: uint32(snap), WakeupBytes: uint32(wake)}
	if err := c.objs.Settings.Put(uint32(0), &c.settings); err != nil {
		c.objs.Close()
		return nil, fmt.Errorf("writing the capture settings: %w", err)
	}
	return c, nil
}

// Close unloads the programs and maps. Attachments made with TCX go with
// them; clsact filters must be closed first (Attachment.Close).
func (c *Capture) Close() error {
	return c.objs.Close()
}

// Ingress and Egress are the programs for each hook, for attaching them by
// other means and for test runs.
func (c *Capture) Ingress() *ebpf.Program { return c.objs.CaptureIngress }
func (c *Capture) Egress() *ebpf.Program  { return c.objs.CaptureEgress }

// RingSize is the ring buffer size in bytes.
func (c *Capture) RingSize() int { return c.ringSize }

// SetFilter replaces the filter. Packets in flight see the old or the new
// one; the new keys are added before the flags change and the old ones
// removed after, so no packet sees a half-built filter.
func (c *Capture) SetFilter(f Filter) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	addrs := make(map[captureAddrKey]bool, len(f.Addrs))
	for _, a := range f.Addrs {
		addrs[captureAddrKey{Addr: a.As16()}] = true
	}
	ports := make(map[uint16]bool, len(f.Ports))
	for _, p := range f.Ports {
		ports[p] = true
	}
	ifaces := make(map[uint32]bool, len(f.Ifindexes))
	for _, i := range f.Ifindexes {
		ifaces[uint32(i)] = true
	}
	if err := syncSet(c.objs.Addrs, addrs, false); err != nil {
		return fmt.Errorf("adding addresses: %w", err)
	}
	if err := syncSet(c.objs.Ports, ports, false); err != nil {
		return fmt.Errorf("adding ports: %w", err)
	}
	if err := syncSet(c.objs.Ifaces, ifaces, false); err != nil {
		return fmt.Errorf("adding interfaces: %w", err)
	}
	var flags captureConfigFlag
	if f.All {
		flags |= captureConfigFlagFLAG_CAPTURE_ALL
	}
	if len(addrs) > 0 {
		flags |= captureConfigFlagFLAG_FILTER_ADDR
	}
	if len(ports) > 0 {
		flags |= captureConfigFlagFLAG_FILTER_PORT
	}
	if len(ifaces) > 0 {
		flags |= captureConfigFlagFLAG_FILTER_IFACE
	}
	s := c.settings
	s.Flags = flags
	if err := c.objs.Settings.Put(uint32(0), &s); err != nil {
		return fmt.Errorf("writing the filter flags: %w", err)
	}
	c.settings = s
	if err := syncSet(c.objs.Addrs, addrs, true); err != nil {
		return fmt.Errorf("removing addresses: %w", err)
	}
	if err := syncSet(c.objs.Ports, ports, true); err != nil {
		return fmt.Errorf("removing ports: %w", err)
	}
	if err := syncSet(c.objs.Ifaces, ifaces, true); err != nil {
		return fmt.Errorf("removing interfaces: %w", err)
	}
	return nil
}

// syncSet adds the keys of want to m or, with remove, deletes the keys of m
// that want lacks.
func syncSet[K comparable](m *ebpf.Map, want map[K]bool, remove bool) error {
	if !remove {
		one := uint8(1)
		for k := range want {
			if err := m.Put(k, one); err != nil {
				return err
			}
		}
		return nil
	}
	var stale []K
	var k K
	var v uint8
	it := m.Iterate()
	for it.Next(&k, &v) {
		if !want[k] {
			stale = append(stale, k)
		}
	}
	if err := it.Err(); err != nil {
		return err
	}
	for _, k := range stale {
		if err := m.Delete(k); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return err
		}
	}
	return nil
}

// Counters reads the kernel counters.
func (c *Capture) Counters() (Counters, error) {
	var sums [captureCounterCOUNTER_MAX]uint64
	var perCPU []uint64
	for i := range sums {
		if err := c.objs.Counters.Lookup(uint32(i), &perCPU); err != nil {
			return Counters{}, fmt.Errorf("reading counter %d: %w", i, err)
		}
		for _, v := range perCPU {
			sums[i] += v
		}
	}
	return Counters{
		Seen:          sums[captureCounterCOUNTER_SEEN],
		Filtered:      sums[captureCounterCOUNTER_FILTERED],
		Captured:      sums[captureCounterCOUNTER_CAPTURED],
		RingbufFull:   sums[captureCounterCOUNTER_RINGBUF_FULL],
		LoadError:     sums[captureCounterCOUNTER_LOAD_ERROR],
		Truncated:     sums[captureCounterCOUNTER_TRUNCATED],
		CapturedBytes: sums[captureCounterCOUNTER_CAPTURED_BYTES],
		LostBytes:     sums[captureCounterCOUNTER_LOST_BYTES],
	}, nil
}
