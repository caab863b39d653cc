package live

import (
	"bufio"
	"io"
	"os"
	"strconv"
	"strings"
)

// The capabilities loading and attaching the TC programs needs, by their
// bit in the kernel's capability sets.
var ebpfCapabilities = []struct {
	name string
	bit  uint
}{
	{"CAP_NET_ADMIN", 12},
	{"CAP_BPF", 39},
}

// missingCapabilities names the capabilities eBPF capture needs that the
// effective set of a /proc/PID/status lacks; nil when it cannot tell.
func missingCapabilities(status io.Reader) []string {
	sc := bufio.NewScanner(status)
	for sc.Scan() {
		v, ok := strings.CutPrefix(sc.Text(), "CapEff:")
		if !ok {
			continue
		}
		eff, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		if err != nil {
			return nil
		}
		var missing []string
		for _, c := range ebpfCapabilities {
			if eff&(1<<c.bit) == 0 {
				missing = append(missing, c.name)
			}
		}
		return missing
	}
	return nil
}

// capabilityHint says which capabilities this process lacks for eBPF
// capture, or "" when it has them (or cannot tell): an "operation not
// permitted" from the kernel names none.
func capabilityHint() string {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return ""
	}
	defer f.Close()
	missing := missingCapabilities(f)
	if len(missing) == 0 {
		return ""
	}
	them := "it"
	if len(missing) > 1 {
		them = "them"
	}
	return "this process lacks " + strings.Join(missing, " and ") + "; add " + them + " to the container's securityContext.capabilities"
}
