package live

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync/atomic"

	"github.com/sondehq/sonde/agent/capture/afpacket"
)

// AFPacket is the AF_PACKET source: one socket on all interfaces of the
// node's namespace, TCP only in the kernel, frames of unwatched interfaces
// skipped in user space. It has no address filter in the kernel and cannot
// tell directions apart (Frame.Dir is DirUnknown).
type AFPacket struct {
	cfg       Config
	h         *afpacket.Handle
	follower  *follower
	read      atomic.Uint64
	skipped   atomic.Uint64
	delivered atomic.Uint64
	ran       atomic.Bool
	final     atomic.Pointer[Stats]
}

// NewAFPacket opens the socket and resolves the interfaces to watch.
func NewAFPacket(cfg Config) (*AFPacket, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	h, err := afpacket.Open(afpacket.Config{SnapLen: cfg.SnapLen, RingSize: cfg.RingSize, Netns: cfg.Netns})
	if err != nil {
		return nil, err
	}
	s := &AFPacket{cfg: cfg, h: h}
	if s.follower, err = newFollower(&s.cfg, s); err != nil {
		h.Close()
		return nil, err
	}
	if err := s.follower.reconcile(); err != nil {
		s.follower.detachAll()
		h.Close()
		return nil, err
	}
	return s, nil
}

// The socket listens everywhere already; watching is the follower's set.
func (s *AFPacket) attach(int, string) error { return nil }
func (s *AFPacket) detach(int) error         { return nil }

// SetPods implements Source. AF_PACKET has no address filter: the set
// only decides which interfaces are watched.
func (s *AFPacket) SetPods(pods []netip.Addr) error {
	return s.follower.setPods(pods, func() error { return nil })
}

// Run implements Source.
func (s *AFPacket) Run(ctx context.Context, deliver func(*Frame)) error {
	if s.ran.Swap(true) {
		return errRunTwice
	}
	defer s.h.Close()
	fctx, stop := context.WithCancel(ctx)
	followErr := make(chan error, 1)
	go func() { followErr <- s.follower.follow(fctx) }()
	var f Frame
	// read handles one frame; it reports false on a timeout or an error.
	read := func() (bool, error) {
		data, ci, err := s.h.Read()
		if errors.Is(err, afpacket.ErrTimeout) {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("reading the AF_PACKET ring: %w", err)
		}
		s.read.Add(1)
		if _, ok := (*s.follower.attached.Load())[ci.InterfaceIndex]; !ok {
			s.skipped.Add(1)
			return true, nil
		}
		f = Frame{Data: data, WireLen: ci.Length, Time: ci.Timestamp, Ifindex: ci.InterfaceIndex}
		deliver(&f)
		s.delivered.Add(1)
		return true, nil
	}
	var err error
	for ctx.Err() == nil && err == nil {
		_, err = read()
	}
	// Deliver what is still in the ring: everything up to the first poll
	// timeout.
	for more := err == nil; more; {
		more, err = read()
	}
	stop()
	err = errors.Join(err, <-followErr)
	s.follower.detachAll()
	st := s.Stats()
	s.final.Store(&st)
	return err
}

// Stats implements Source. Frames still in the socket's ring when Run
// returns count as captured but not read.
func (s *AFPacket) Stats() Stats {
	if st := s.final.Load(); st != nil {
		return *st
	}
	st := Stats{Source: "afpacket", Read: s.read.Load(), Skipped: s.skipped.Load(), Delivered: s.delivered.Load()}
	if passed, dropped, err := s.h.Stats(); err == nil {
		st.Seen, st.Captured, st.Lost = passed, passed-dropped, dropped
	}
	st.Interfaces = len(*s.follower.attached.Load())
	st.AttachErrors = s.follower.errs.Load()
	return st
}
