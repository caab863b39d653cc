package live

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/sondehq/sonde/bpf"
)

var (
	// ErrNoTargets says the Config names nothing to capture.
	ErrNoTargets = errors.New("nothing to capture: give pod IPs, interfaces or all interfaces")
	// ErrUnavailable wraps the reason the eBPF capture cannot run here.
	ErrUnavailable = errors.New("eBPF capture unavailable")
	// errRunTwice says Run was called on a source that already ran.
	errRunTwice = errors.New("a source runs only once")
	// ErrStopped says SetPods came after Run returned.
	ErrStopped = errors.New("the capture has stopped")
)

// Config says what to capture and how.
type Config struct {
	// Pods are the IP addresses of the pods to capture. Their host-side
	// interfaces are found by route lookup, and the kernel keeps only
	// packets to or from these addresses.
	Pods []netip.Addr
	// FollowPods says the pods come and go: Source.SetPods replaces Pods
	// while the source runs, and an empty set is allowed and captures
	// nothing until then (an agent whose node has no selected pod yet).
	FollowPods bool
	// Ifaces are interfaces to capture by name; they are attached when
	// they appear. Without Pods or Ports, all their TCP traffic is captured.
	Ifaces []string
	// AllIfaces attaches to every interface except loopback.
	AllIfaces bool
	// Ports, when set, keep only packets from or to these ports.
	Ports []uint16

	// Source forces "ebpf" or "afpacket"; empty lets Open choose.
	Source string
	// SnapLen, RingSize: see bpf.Config. Zero picks the defaults.
	SnapLen  int
	RingSize int
	// WakeupBytes: see bpf.Config (zero: an eighth of the ring; negative:
	// a wakeup per record, which costs the kernel two to three times more).
	WakeupBytes int
	// PollInterval is how often the ring is read when no wakeup came; zero
	// means 2 ms.
	PollInterval time.Duration
	// Resync is how often interfaces are re-resolved besides on netlink
	// link updates; zero means 10 s.
	Resync time.Duration
	// Attach chooses TCX or clsact; zero tries TCX first.
	Attach bpf.AttachMode
	// Netns is the network namespace of the node's interfaces; zero means
	// the agent's own. It must stay open while the source runs.
	Netns netns.NsHandle
	// Log receives the one line saying which source runs, and interface
	// changes at debug level; nil discards.
	Log *slog.Logger
	// OnInterface, if set, is called after an interface is attached or
	// detached, from the goroutine that follows interfaces.
	OnInterface func(ifindex int, name string, attached bool)
}

func (c *Config) defaults() error {
	if len(c.Pods) == 0 && len(c.Ifaces) == 0 && !c.AllIfaces && !c.FollowPods {
		return ErrNoTargets
	}
	if c.PollInterval <= 0 {
		c.PollInterval = 2 * time.Millisecond
	}
	if c.Resync <= 0 {
		c.Resync = 10 * time.Second
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	return nil
}

// filter is the kernel filter the Config asks for.
func (c *Config) filter() bpf.Filter {
	if c.FollowPods && len(c.Pods) == 0 {
		return bpf.Filter{} // selects nothing, whatever the ports
	}
	return bpf.Filter{All: len(c.Pods) == 0 && len(c.Ports) == 0, Addrs: c.Pods, Ports: c.Ports}
}

// hooks attach a source to one interface and detach it.
type hooks interface {
	attach(ifindex int, name string) error
	detach(ifindex int) error
}

// follower keeps a source attached to the interfaces the Config selects.
type follower struct {
	cfg      *Config
	nl       *netlink.Handle
	hooks    hooks
	mu       sync.Mutex // serialises reconcile and guards cfg.Pods
	attached atomic.Pointer[map[int]string]
	errs     atomic.Uint64
	stopped  bool // detachAll ran; guarded by mu
	// missing are the interfaces named in Ifaces that do not exist (yet),
	// each said once when it goes missing and once when it appears;
	// guarded by mu.
	missing map[string]bool
}

func newFollower(cfg *Config, h hooks) (*follower, error) {
	nl, err := netlink.NewHandleAt(nsOrCurrent(cfg.Netns))
	if err != nil {
		return nil, fmt.Errorf("opening netlink: %w", err)
	}
	f := &follower{cfg: cfg, nl: nl, hooks: h}
	f.attached.Store(&map[int]string{})
	return f, nil
}

func nsOrCurrent(ns netns.NsHandle) netns.NsHandle {
	if ns > 0 {
		return ns
	}
	return netns.None() // NewHandleAt: stay in the current namespace
}

// resolve lists the interfaces to attach to now, by index.
func (f *follower) resolve() (map[int]string, error) {
	links, err := f.nl.LinkList()
	if err != nil {
		return nil, fmt.Errorf("listing interfaces: %w", err)
	}
	byIndex := make(map[int]netlink.Link, len(links))
	for _, l := range links {
		byIndex[l.Attrs().Index] = l
	}
	want := map[int]string{}
	add := func(l netlink.Link) { want[l.Attrs().Index] = l.Attrs().Name }
	names := map[string]bool{}
	for _, n := range f.cfg.Ifaces {
		names[n] = true
	}
	for _, l := range links {
		a := l.Attrs()
		if names[a.Name] || (f.cfg.AllIfaces && a.Flags&net.FlagLoopback == 0) {
			add(l)
		}
	}
	for _, ip := range f.cfg.Pods {
		routes, err := f.nl.RouteGet(ip.AsSlice())
		if err != nil || len(routes) == 0 {
			continue // no route yet: the next update or resync tries again
		}
		r := routes[0]
		l := byIndex[r.LinkIndex]
		if r.Gw != nil || l == nil || l.Attrs().Flags&net.FlagLoopback != 0 {
			continue // not a pod of this node
		}
		if l.Type() != "bridge" {
			add(l)
			continue
		}
		// Behind a bridge any port may lead to the pod: watch them all and
		// let the kernel's address filter pick the pod's packets.
		for _, port := range links {
			if port.Attrs().MasterIndex == r.LinkIndex {
				add(port)
			}
		}
	}
	return want, nil
}

// setPods replaces the pods to capture and reconciles. The kernel filter
// (apply) takes new addresses before their interfaces are attached, so
// that a new pod's first packets are not filtered out, and lets go of gone
// ones before their interfaces are detached, which only costs packets the
// filter counts.
func (f *follower) setPods(pods []netip.Addr, apply func() error) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stopped {
		return ErrStopped
	}
	f.cfg.Pods = slices.Clone(pods)
	if err := apply(); err != nil {
		return fmt.Errorf("setting the capture filter: %w", err)
	}
	return f.reconcileLocked()
}

// reconcile attaches to new interfaces and detaches from gone ones.
func (f *follower) reconcile() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.reconcileLocked()
}

func (f *follower) reconcileLocked() error {
	want, err := f.resolve()
	if err != nil {
		return err
	}
	f.sayMissing(want)
	cur := *f.attached.Load()
	next := make(map[int]string, len(want))
	for idx, name := range cur {
		if _, ok := want[idx]; ok && want[idx] == name {
			next[idx] = name
			continue
		}
		if err := f.hooks.detach(idx); err != nil {
			f.cfg.Log.Debug("detaching", "iface", name, "err", err)
		}
		if f.cfg.OnInterface != nil {
			f.cfg.OnInterface(idx, name, false)
		}
	}
	for idx, name := range want {
		if _, ok := next[idx]; ok {
			continue
		}
		if err := f.hooks.attach(idx, name); err != nil {
			// Most often the interface vanished since it was listed.
			f.errs.Add(1)
			f.cfg.Log.Debug("attaching", "iface", name, "err", err)
			continue
		}
		next[idx] = name
		if f.cfg.OnInterface != nil {
			f.cfg.OnInterface(idx, name, true)
		}
	}
	f.attached.Store(&next)
	return nil
}

// sayMissing tells, once each, which named interfaces are not there (a
// typo, or a pod not started yet: the capture waits for them) and which
// have since appeared.
func (f *follower) sayMissing(want map[int]string) {
	if len(f.cfg.Ifaces) == 0 {
		return
	}
	present := make(map[string]bool, len(want))
	for _, name := range want {
		present[name] = true
	}
	if f.missing == nil {
		f.missing = map[string]bool{}
	}
	for _, name := range f.cfg.Ifaces {
		switch {
		case !present[name] && !f.missing[name]:
			f.missing[name] = true
			f.cfg.Log.Warn("no interface of that name: waiting for it to appear (ip link lists the interfaces)", "iface", name)
		case present[name] && f.missing[name]:
			delete(f.missing, name)
			f.cfg.Log.Info("interface appeared", "iface", name)
		}
	}
}

// follow reconciles on every link update and every Resync until ctx ends.
func (f *follower) follow(ctx context.Context) error {
	updates := make(chan netlink.LinkUpdate, 64)
	done := make(chan struct{})
	defer close(done)
	opts := netlink.LinkSubscribeOptions{
		ErrorCallback: func(err error) {
			// Closing done on a normal stop makes the subscription's
			// pending receive fail; that is not worth a warning.
			if ctx.Err() == nil {
				f.cfg.Log.Warn("netlink link updates", "err", err)
			}
		},
	}
	if f.cfg.Netns > 0 {
		ns := f.cfg.Netns
		opts.Namespace = &ns
	}
	if err := netlink.LinkSubscribeWithOptions(updates, done, opts); err != nil {
		return fmt.Errorf("subscribing to link updates: %w", err)
	}
	tick := time.NewTicker(f.cfg.Resync)
	defer tick.Stop()
	// Catch what changed between the first reconcile and the subscription.
	if err := f.reconcile(); err != nil {
		f.cfg.Log.Warn("following interfaces", "err", err)
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case _, ok := <-updates:
			if !ok {
				return errors.New("netlink link updates stopped")
			}
			// One reconcile for a burst of updates.
			for drained := false; !drained; {
				select {
				case <-updates:
				default:
					drained = true
				}
			}
		case <-tick.C:
		}
		if err := f.reconcile(); err != nil {
			f.cfg.Log.Warn("following interfaces", "err", err)
		}
	}
}

// detachAll detaches from every interface.
func (f *follower) detachAll() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for idx, name := range *f.attached.Load() {
		if err := f.hooks.detach(idx); err != nil {
			f.cfg.Log.Debug("detaching", "iface", name, "err", err)
		}
		if f.cfg.OnInterface != nil {
			f.cfg.OnInterface(idx, name, false)
		}
	}
	f.attached.Store(&map[int]string{})
	if !f.stopped {
		f.stopped = true
		f.nl.Close()
	}
}
