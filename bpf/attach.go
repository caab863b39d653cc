package bpf

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"
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

// Attachment is the programs attached to one interface.
type Attachment struct {
	Ifindex int
	Mode    AttachMode // AttachTCX or AttachClsact
	links   []link.Link
	filters []*netlink.BpfFilter
}

// Attach attaches the ingress and egress programs to the interface. Both run
// ahead of other TC programs and hand every packet on unchanged.
func (c *Capture) Attach(ifindex int, mode AttachMode) (*Attachment, error) {
	if mode != AttachClsact {
		a, err := c.attachTCX(ifindex)
		if err == nil || mode == AttachTCX || !errors.Is(err, link.ErrNotSupported) {
			return a, err
		}
	}
	return c.attachClsact(ifindex)
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
	for _, f := range a.filters {
		if err := netlink.FilterDel(f); err != nil && !errors.Is(err, unix.ENODEV) && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("removing cls_bpf filter from interface %d: %w", a.Ifindex, err))
		}
	}
	a.links, a.filters = nil, nil
	return errors.Join(errs...)
}

// RemoveStaleFilters removes the cls_bpf filters that a Sonde process which
// did not exit cleanly left on any interface of the current network
// namespace. TCX links need no such sweep: the kernel drops them with the
// process. It returns how many filters it removed.
func RemoveStaleFilters() (int, error) {
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
