package live

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/sondehq/sonde/bpf"
)

// EBPF is the eBPF source.
type EBPF struct {
	cfg       Config
	capture   *bpf.Capture
	reader    *bpf.Reader
	follower  *follower
	links     map[int]*bpf.Attachment // touched only by the follower, under its lock
	delivered atomic.Uint64
	ran       atomic.Bool
	final     atomic.Pointer[Stats]
}

// NewEBPF loads the programs and attaches them to the interfaces the Config
// selects now; Run follows later changes. Errors from loading wrap
// ErrUnavailable.
func NewEBPF(cfg Config) (*EBPF, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	c, err := bpf.Load(bpf.Config{RingSize: cfg.RingSize, SnapLen: cfg.SnapLen, WakeupBytes: cfg.WakeupBytes})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	s := &EBPF{cfg: cfg, capture: c, links: map[int]*bpf.Attachment{}}
	if err := s.start(); err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

func (s *EBPF) start() error {
	if err := s.capture.SetFilter(s.cfg.filter()); err != nil {
		return fmt.Errorf("setting the capture filter: %w", err)
	}
	if n, err := bpf.RemoveStaleFilters(s.cfg.Netns); err != nil {
		s.cfg.Log.Warn("removing stale capture filters", "err", err)
	} else if n > 0 {
		s.cfg.Log.Info("removed capture filters left by an earlier run", "filters", n)
	}
	var err error
	if s.reader, err = s.capture.NewReader(); err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	if s.follower, err = newFollower(&s.cfg, s); err != nil {
		return err
	}
	if err := s.follower.reconcile(); err != nil {
		return err
	}
	// A kernel that cannot attach at all is as good as one without eBPF.
	if len(*s.follower.attached.Load()) == 0 && s.follower.errs.Load() > 0 {
		return fmt.Errorf("%w: no interface could be attached", ErrUnavailable)
	}
	return nil
}

func (s *EBPF) attach(ifindex int, name string) error {
	a, err := s.capture.Attach(ifindex, bpf.AttachOptions{Mode: s.cfg.Attach, Netns: s.cfg.Netns})
	if err != nil {
		return err
	}
	s.links[ifindex] = a
	s.cfg.Log.Debug("attached", "iface", name, "ifindex", ifindex, "mode", a.Mode)
	return nil
}

func (s *EBPF) detach(ifindex int) error {
	a := s.links[ifindex]
	delete(s.links, ifindex)
	if a == nil {
		return nil
	}
	return a.Close()
}

// SetPods implements Source.
func (s *EBPF) SetPods(pods []netip.Addr) error {
	return s.follower.setPods(pods, func() error { return s.capture.SetFilter(s.cfg.filter()) })
}

// Modes reports how each attached interface is attached (tcx or clsact).
func (s *EBPF) Modes() map[int]bpf.AttachMode {
	s.follower.mu.Lock()
	defer s.follower.mu.Unlock()
	m := make(map[int]bpf.AttachMode, len(s.links))
	for idx, a := range s.links {
		m[idx] = a.Mode
	}
	return m
}

// Capture is the loaded programs, for benchmarks and tests.
func (s *EBPF) Capture() *bpf.Capture { return s.capture }

// Run implements Source.
func (s *EBPF) Run(ctx context.Context, deliver func(*Frame)) error {
	if s.ran.Swap(true) {
		return errRunTwice
	}
	defer s.close()
	fctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var followErr error
	wg.Go(func() { followErr = s.follower.follow(fctx) })

	var f Frame
	fn := func(r *bpf.Record) {
		f = Frame{Data: r.Data, WireLen: r.WireLen, Time: r.Time, Ifindex: r.Ifindex, Dir: PodEgress}
		if r.Dir == bpf.Egress {
			f.Dir = PodIngress
		}
		deliver(&f)
		s.delivered.Add(1)
	}
	var err error
	for ctx.Err() == nil && err == nil {
		_, err = s.reader.Read(s.cfg.PollInterval, fn)
	}
	stop()
	wg.Wait()
	s.follower.detachAll()
	if err == nil {
		err = s.drain(fn)
	}
	st := s.Stats()
	s.final.Store(&st)
	return errors.Join(err, followErr)
}

// drain reads what the programs captured before they were detached. A
// program that was still running on another CPU may submit a moment later,
// so it reads until the ring has given up everything the kernel counted.
func (s *EBPF) drain(fn func(*bpf.Record)) error {
	for range 100 {
		k, err := s.capture.Counters()
		if err != nil {
			return err
		}
		if _, err := s.reader.Read(0, fn); err != nil {
			return err
		}
		if s.reader.Stats().Read >= k.Captured {
			return nil
		}
		if _, err := s.reader.Read(s.cfg.PollInterval, fn); err != nil {
			return err
		}
	}
	return nil
}

func (s *EBPF) close() {
	if s.follower != nil {
		s.follower.detachAll()
	}
	if s.reader != nil {
		s.reader.Close()
	}
	s.capture.Close()
}

// Stats implements Source.
func (s *EBPF) Stats() Stats {
	if st := s.final.Load(); st != nil {
		return *st
	}
	st := Stats{Source: "ebpf", Delivered: s.delivered.Load()}
	if k, err := s.capture.Counters(); err == nil {
		st.Seen, st.Filtered, st.Captured = k.Seen, k.Filtered, k.Captured
		st.Lost, st.Truncated, st.LostBytes = k.Lost(), k.Truncated, k.LostBytes
	}
	r := s.reader.Stats()
	st.Read, st.Malformed = r.Read, r.Malformed
	st.Interfaces = len(*s.follower.attached.Load())
	st.AttachErrors = s.follower.errs.Load()
	return st
}

// The snap lengths a capture takes: enough for the headers the programs
// parse (Ethernet, a VLAN tag, IPv6 with options, TCP with options), up to
// a whole GSO super-packet.
const (
	MinSnapLen = 128
	MaxSnapLen = bpf.MaxSnapLen
)
