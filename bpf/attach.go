package bpf

import (
	"errors"
	"fmt"
	"runtime"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// AttachMode says how the programs are attached to an interface.
type AttachMode uint8

const (
	// AttachAuto uses TCX and falls back to clsact where the kernel lacks it.
	AttachAuto AttachMode = iota
	// AttachTCX uses TCX links (Linux 6.6 and later).
	AttachTCX
	// AttachClsact uses a clsact qdisc and cls_bpf filters.
	AttachClsact
)

func (m AttachMode) String() string {
	switch m {
	case AttachTCX:
		return "tcx"
	case AttachClsact:
		return "clsact"
	}
	return "auto"
}

// filterName marks Sonde's cls_bpf filters so that those left by a killed
// process can be found and removed.
const filterName = "sonde_capture"

// filterPriority and filterHandle place Sonde's filter; replacing a filter
// with the same ones is idempotent.
const (
	filterPriority = 1
	filterHandle   = 0x50de
)

// AttachOptions say where and how to attach.
type AttachOptions struct {
	Mode AttachMode
	// Netns is the network namespace the interface index refers to; zero or
	// negative means the caller's. It must stay open until the Attachment
	// is closed.
	Netns netns.NsHandle
}

// Attachment is the programs attached to one interface.
type Attachment struct {
	Ifindex int
	Mode    AttachMode // AttachTCX or AttachClsact
	ns      netns.NsHandle
	links   []link.Link
	filters []*netlink.BpfFilter
}

// Attach attaches the ingress and egress programs to the interface. Both run
// ahead of other TC programs and hand every packet on unchanged.
func (c *Capture) Attach(ifindex int, opts AttachOptions) (*Attachment, error) {
	var a *Attachment
	err := InNetns(opts.Netns, func() error {
		var err error
		if opts.Mode != AttachClsact {
			a, err = c.attachTCX(ifindex)
			if err == nil || opts.Mode == AttachTCX || !errors.Is(err, link.ErrNotSupported) {
				return err
			}
		}
		a, err = c.attachClsact(ifindex)
		return err
	})
	if err != nil {
		return nil, err
	}
	a.ns = opts.Netns
	return a, nil
}

// InNetns runs fn on a thread that is in the network namespace ns (zero or
// negative: the caller's). Interface indexes, netlink requests and TCX
// attachments made by fn refer to that namespace.
func InNetns(ns netns.NsHandle, fn func() error) error {
	if ns <= 0 {
		return fn()
	}
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("getting the current network namespace: %w", err)
	}
	defer orig.Close()
	if err := netns.Set(ns); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("entering network namespace: %w", err)
	}
	fnErr := fn()
	if err := netns.Set(orig); err != nil {
		// Leave the thread locked: the runtime then ends it rather than
		// let another goroutine run in the wrong namespace.
		return errors.Join(fnErr, fmt.Errorf("returning to the original network namespace: %w", err))
	}
	runtime.UnlockOSThread()
	return fnErr
}

func (c *Capture) attachTCX(ifindex int) (*Attachment, error) {
	a := &Attachment{Ifindex: ifindex, Mode: AttachTCX}
	hooks := []struct {
		prog *ebpf.Program
		at   ebpf.AttachType
	}{{c.objs.CaptureIngress, ebpf.AttachTCXIngress}, {c.objs.CaptureEgress, ebpf.AttachTCXEgress}}
	for _, h := range hooks {
		// Head: see what the pod sent before another program redirects it.
		l, err := link.AttachTCX(link.TCXOptions{Interface: ifindex, Program: h.prog, Attach: h.at, Anchor: link.Head()})
		if err != nil {
			a.Close()
			return nil, fmt.Errorf("attaching tcx %s to interface %d: %w", h.at, ifindex, err)
		}
		a.links = append(a.links, l)
	}
	return a, nil
}

func (c *Capture) attachClsact(ifindex int) (*Attachment, error) {
	q := &netlink.GenericQdisc{
		QdiscAttrs: netlink.QdiscAttrs{LinkIndex: ifindex, Handle: netlink.MakeHandle(0xffff, 0), Parent: netlink.HANDLE_CLSACT},
		QdiscType:  "clsact",
	}
	if err := netlink.QdiscAdd(q); err != nil && !errors.Is(err, unix.EEXIST) {
		return nil, fmt.Errorf("adding clsact to interface %d: %w", ifindex, err)
	}
	a := &Attachment{Ifindex: ifindex, Mode: AttachClsact}
	for _, h := range []struct {
		prog   *ebpf.Program
		parent uint32
	}{{c.objs.CaptureIngress, netlink.HANDLE_MIN_INGRESS}, {c.objs.CaptureEgress, netlink.HANDLE_MIN_EGRESS}} {
		f := &netlink.BpfFilter{
			FilterAttrs: netlink.FilterAttrs{
				LinkIndex: ifindex,
				Parent:    h.parent,
				Handle:    filterHandle,
				Protocol:  unix.ETH_P_ALL,
				Priority:  filterPriority,
			},
			Fd:           h.prog.FD(),
			Name:         filterName,
			DirectAction: true,
		}
		if err := netlink.FilterReplace(f); err != nil {
			a.Close()
			return nil, fmt.Errorf("adding cls_bpf filter to interface %d: %w", ifindex, err)
		}
		a.filters = append(a.filters, f)
	}
	return a, nil
}

// Close detaches the programs. An interface that is already gone is not an
// error: its hooks went with it.
func (a *Attachment) Close() error {
	var errs []error
	for _, l := range a.links {
		if err := l.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	if len(a.filters) > 0 {
		errs = append(errs, InNetns(a.ns, func() error {
			var errs []error
			for _, f := range a.filters {
				if err := netlink.FilterDel(f); err != nil && !errors.Is(err, unix.ENODEV) && !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.EINVAL) {
					errs = append(errs, fmt.Errorf("removing cls_bpf filter from interface %d: %w", a.Ifindex, err))
				}
			}
			return errors.Join(errs...)
		}))
	}
	a.links, a.filters = nil, nil
	return errors.Join(errs...)
}

// RemoveStaleFilters removes the cls_bpf filters that a Sonde process which
// did not exit cleanly left on any interface of the current network
// namespace. TCX links need no such sweep: the kernel drops them with the
// process. It works in the network namespace ns (zero or negative: the
// caller's) and returns how many filters it removed.
func RemoveStaleFilters(ns netns.NsHandle) (removed int, err error) {
	err = InNetns(ns, func() error {
		removed, err = removeStaleFilters()
		return err
	})
	return removed, err
}

func removeStaleFilters() (int, error) {
	links, err := netlink.LinkList()
	if err != nil {
		return 0, fmt.Errorf("listing interfaces: %w", err)
	}
	removed := 0
	var errs []error
	for _, l := range links {
		for _, parent := range []uint32{netlink.HANDLE_MIN_INGRESS, netlink.HANDLE_MIN_EGRESS} {
			filters, err := netlink.FilterList(l, parent)
			if err != nil {
				continue // no clsact on this interface
			}
			for _, f := range filters {
				bf, ok := f.(*netlink.BpfFilter)
				if !ok || bf.Name != filterName {
					continue
				}
				if err := netlink.FilterDel(bf); err != nil {
					errs = append(errs, fmt.Errorf("removing stale filter from %s: %w", l.Attrs().Name, err))
					continue
				}
				removed++
			}
		}
	}
	return removed, errors.Join(errs...)
}
