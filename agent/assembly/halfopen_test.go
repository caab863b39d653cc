package assembly

import (
	"fmt"
	"net/netip"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/sondehq/sonde/agent/packet"
	"github.com/sondehq/sonde/protocols"
)

// A flood of a million SYNs that are never answered: the connections tracked
// stay at MaxConns, each new one evicting the least recently active, and the
// heap stays within a fixed budget per tracked connection however long the
// flood goes on.
func TestMillionHalfOpen(t *testing.T) {
	const (
		total = 1_000_000
		every = 100_000
		// perConn is the heap budget of one tracked connection: its state,
		// its place in the map and the stream the factory made.
		perConn = 1 << 10
	)
	cfg := DefaultConfig()
	a := New(cfg, &countFactory{})
	dst := netip.MustParseAddrPort("10.2.0.1:443")
	heap := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	base := heap()
	var curve []string
	for i := range total + 1 {
		if i > 0 && i%every == 0 {
			used := heap() - base
			curve = append(curve, fmt.Sprintf("%dk: %.1f MiB", i/1000, float64(used)/(1<<20)))
			if max := uint64(cfg.MaxConns * perConn); used > max {
				t.Errorf("after %d SYNs the heap grew by %d bytes, more than %d for %d connections", i, used, max, cfg.MaxConns)
			}
		}
		if i == total {
			break
		}
		src := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 1, byte(i >> 16), byte(i >> 8)}), uint16(1024+i%256))
		s := packet.Segment{Time: t0.Add(time.Duration(i) * time.Microsecond), Src: src, Dst: dst, Seq: uint32(i), Flags: packet.SYN}
		a.Add(&s)
	}
	st := a.Stats()
	t.Logf("MaxConns %d, heap after SYNs: %s; evicted %d", cfg.MaxConns, strings.Join(curve, ", "), st.ConnsEvicted)
	if want := uint64(total - cfg.MaxConns); st.ConnsEvicted != want {
		t.Errorf("evicted %d, want %d", st.ConnsEvicted, want)
	}
	if st.ConnsOpen != cfg.MaxConns || len(a.conns) != cfg.MaxConns {
		t.Errorf("%d open, %d tracked; want %d", st.ConnsOpen, len(a.conns), cfg.MaxConns)
	}
	a.CloseAll(protocols.ClosedEnd, t0)
	if st := a.Stats(); st.ConnsOpen != 0 || len(a.conns) != 0 {
		t.Errorf("%d open, %d tracked after CloseAll", st.ConnsOpen, len(a.conns))
	}
}
