package netlab

import (
	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/sondehq/sonde/bpf"
)

// Programs maps each interface of the named network namespace that has eBPF
// programs attached, by TCX or as clsact filters, to their IDs: what tests
// look at to tell that a capture attached where it should and detached
// everything when it stopped.
func Programs(nsName string) (map[string][]ebpf.ProgramID, error) {
	ns, err := netns.GetFromName(nsName)
	if err != nil {
		return nil, err
	}
	defer ns.Close()
	m := map[string][]ebpf.ProgramID{}
	err = bpf.InNetns(ns, func() error {
		links, err := netlink.LinkList()
		if err != nil {
			return err
		}
		for _, l := range links {
			name := l.Attrs().Name
			for _, at := range []ebpf.AttachType{ebpf.AttachTCXIngress, ebpf.AttachTCXEgress} {
				res, err := link.QueryPrograms(link.QueryOptions{Target: l.Attrs().Index, Attach: at})
				if err != nil {
					continue // no TCX on this kernel or interface
				}
				for _, p := range res.Programs {
					m[name] = append(m[name], p.ID)
				}
			}
			for _, parent := range []uint32{netlink.HANDLE_MIN_INGRESS, netlink.HANDLE_MIN_EGRESS} {
				filters, _ := netlink.FilterList(l, parent)
				for _, f := range filters {
					if bf, ok := f.(*netlink.BpfFilter); ok {
						m[name] = append(m[name], ebpf.ProgramID(bf.Id))
					}
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return m, nil
}
