package bpf

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// load loads the programs or skips with the exact reason.
func load(t testing.TB, cfg Config) *Capture {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("loading BPF programs needs root (CAP_BPF and CAP_NET_ADMIN); run the privileged tests as root")
	}
	c, err := Load(cfg)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

type pkt struct {
	src, dst     string
	sport, dport uint16
	udp          bool
	payload      int
}

// frame builds an Ethernet frame; the payload bytes count up from 0.
func frame(t testing.TB, p pkt) []byte {
	t.Helper()
	src, dst := netip.MustParseAddr(p.src), netip.MustParseAddr(p.dst)
	eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}}
	var ip gopacket.NetworkLayer
	var ls []gopacket.SerializableLayer
	proto := layers.IPProtocolTCP
	if p.udp {
		proto = layers.IPProtocolUDP
	}
	if src.Is4() {
		eth.EthernetType = layers.EthernetTypeIPv4
		ip4 := &layers.IPv4{Version: 4, TTL: 64, Protocol: proto, SrcIP: src.AsSlice(), DstIP: dst.AsSlice()}
		ip, ls = ip4, []gopacket.SerializableLayer{eth, ip4}
	} else {
		eth.EthernetType = layers.EthernetTypeIPv6
		ip6 := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: proto, SrcIP: src.AsSlice(), DstIP: dst.AsSlice()}
		ip, ls = ip6, []gopacket.SerializableLayer{eth, ip6}
	}
	if p.udp {
		udp := &layers.UDP{SrcPort: layers.UDPPort(p.sport), DstPort: layers.UDPPort(p.dport)}
		udp.SetNetworkLayerForChecksum(ip)
		ls = append(ls, udp)
	} else {
		tcp := &layers.TCP{SrcPort: layers.TCPPort(p.sport), DstPort: layers.TCPPort(p.dport), Seq: 1000, ACK: true, PSH: true, Window: 512}
		tcp.SetNetworkLayerForChecksum(ip)
		ls = append(ls, tcp)
	}
	payload := make([]byte, p.payload)
	for i := range payload {
		payload[i] = byte(i)
	}
	ls = append(ls, gopacket.Payload(payload))
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// run runs the program once on the frame and returns what reached the ring.
func run(t testing.TB, c *Capture, prog *ebpf.Program, data []byte) []Record {
	t.Helper()
	ret, err := prog.Run(&ebpf.RunOptions{Data: data})
	if err != nil {
		t.Fatalf("running the program: %v", err)
	}
	if int32(ret) != -1 { // TC_ACT_UNSPEC / TCX_NEXT
		t.Fatalf("program returned %d, want -1 (pass the packet on)", int32(ret))
	}
	r, err := c.NewReader()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var got []Record
	if _, err := r.Read(0, func(rec *Record) {
		cp := *rec
		cp.Data = bytes.Clone(rec.Data)
		got = append(got, cp)
	}); err != nil {
		t.Fatal(err)
	}
	return got
}

func TestFilter(t *testing.T) {
	c := load(t, Config{RingSize: 1 << 20})
	const lo = 1 // BPF_PROG_TEST_RUN runs the skb on the namespace's loopback
	v4 := pkt{src: "10.1.0.2", dst: "10.1.0.3", sport: 40000, dport: 8080, payload: 100}
	v6 := pkt{src: "fd00::2", dst: "fd00::3", sport: 40000, dport: 6379, payload: 100}
	tests := []struct {
		name   string
		filter Filter
		pkt    pkt
		want   bool
	}{
		{"empty filter selects nothing", Filter{}, v4, false},
		{"capture all", Filter{All: true}, v4, true},
		{"capture all skips udp", Filter{All: true}, pkt{src: "10.1.0.2", dst: "10.1.0.3", sport: 53, dport: 53, udp: true, payload: 10}, false},
		{"source address", Filter{Addrs: []netip.Addr{netip.MustParseAddr("10.1.0.2")}}, v4, true},
		{"destination address", Filter{Addrs: []netip.Addr{netip.MustParseAddr("10.1.0.3")}}, v4, true},
		{"other address", Filter{Addrs: []netip.Addr{netip.MustParseAddr("10.1.0.9")}}, v4, false},
		{"ipv6 address", Filter{Addrs: []netip.Addr{netip.MustParseAddr("fd00::3")}}, v6, true},
		{"ipv6 other address", Filter{Addrs: []netip.Addr{netip.MustParseAddr("fd00::9")}}, v6, false},
		{"ipv4-mapped form matches ipv4", Filter{Addrs: []netip.Addr{netip.MustParseAddr("::ffff:10.1.0.2")}}, v4, true},
		{"port", Filter{Ports: []uint16{8080}}, v4, true},
		{"ipv6 port", Filter{Ports: []uint16{6379}}, v6, true},
		{"other port", Filter{Ports: []uint16{80}}, v4, false},
		{"address and port", Filter{Addrs: []netip.Addr{netip.MustParseAddr("10.1.0.2")}, Ports: []uint16{8080}}, v4, true},
		{"address but not port", Filter{Addrs: []netip.Addr{netip.MustParseAddr("10.1.0.2")}, Ports: []uint16{80}}, v4, false},
		{"interface", Filter{Ifindexes: []int{lo}}, v4, true},
		{"other interface", Filter{Ifindexes: []int{lo + 1000}}, v4, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := c.SetFilter(tt.filter); err != nil {
				t.Fatal(err)
			}
			before, _ := c.Counters()
			data := frame(t, tt.pkt)
			got := run(t, c, c.Ingress(), data)
			after, _ := c.Counters()
			if (len(got) == 1) != tt.want || len(got) > 1 {
				t.Fatalf("captured %d records, want captured=%v", len(got), tt.want)
			}
			wantCaptured, wantFiltered := uint64(0), uint64(1)
			if tt.want {
				wantCaptured, wantFiltered = 1, 0
			}
			if d := after.Seen - before.Seen; d != 1 {
				t.Errorf("seen +%d, want +1", d)
			}
			if d := after.Captured - before.Captured; d != wantCaptured {
				t.Errorf("captured +%d, want +%d", d, wantCaptured)
			}
			if d := after.Filtered - before.Filtered; d != wantFiltered {
				t.Errorf("filtered +%d, want +%d", d, wantFiltered)
			}
			if !tt.want {
				return
			}
			rec := got[0]
			if !bytes.Equal(rec.Data, data) || rec.WireLen != len(data) {
				t.Errorf("record holds %d bytes (wire %d), want the %d-byte frame", len(rec.Data), rec.WireLen, len(data))
			}
			if rec.Dir != Ingress || rec.Ifindex != lo {
				t.Errorf("record dir %v ifindex %d, want ingress on %d", rec.Dir, rec.Ifindex, lo)
			}
			if d := time.Since(rec.Time); d < 0 || d > time.Minute {
				t.Errorf("record time %v is %v away from now", rec.Time, d)
			}
		})
	}
}

// TestSizes checks the smaller record size classes and the snap length: every frame
// comes back whole up to the snap length, and cut frames are counted.
func TestSizes(t *testing.T) {
	tests := []struct {
		name    string
		snap    int
		payload int
		wantCap int // 0: the whole frame
	}{
		{"ack", 0, 0, 0},
		{"small class edge", 0, 128 - 54, 0},
		{"just above small", 0, 128 - 54 + 1, 0},
		{"mtu", 0, 1460, 0},
		{"1536 class", 0, 3000, 0},
		// BPF_PROG_TEST_RUN takes at most a page of data: the larger classes
		// and GSO super-packets are checked with real traffic in agent/capture/live.
		{"snap length cuts", 200, 1000, 200},
		{"snap length above frame", 2000, 1000, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := load(t, Config{RingSize: 1 << 20, SnapLen: tt.snap})
			if err := c.SetFilter(Filter{All: true}); err != nil {
				t.Fatal(err)
			}
			data := frame(t, pkt{src: "10.1.0.2", dst: "10.1.0.3", sport: 1, dport: 2, payload: tt.payload})
			got := run(t, c, c.Egress(), data)
			if len(got) != 1 {
				t.Fatalf("captured %d records, want 1", len(got))
			}
			want := data
			if tt.wantCap > 0 {
				want = data[:tt.wantCap]
			}
			if !bytes.Equal(got[0].Data, want) {
				t.Errorf("record holds %d bytes, want the first %d of the frame", len(got[0].Data), len(want))
			}
			if got[0].WireLen != len(data) || got[0].Dir != Egress {
				t.Errorf("wire length %d dir %v, want %d egress", got[0].WireLen, got[0].Dir, len(data))
			}
			cnt, _ := c.Counters()
			wantTrunc := uint64(0)
			if tt.wantCap > 0 {
				wantTrunc = 1
			}
			if cnt.Truncated != wantTrunc || cnt.CapturedBytes != uint64(len(want)) {
				t.Errorf("truncated %d captured bytes %d, want %d and %d", cnt.Truncated, cnt.CapturedBytes, wantTrunc, len(want))
			}
		})
	}
}

// TestRingFull fills a one-page ring buffer without reading it: every record
// past the first few must be counted as lost, none silently.
func TestRingFull(t *testing.T) {
	c := load(t, Config{RingSize: os.Getpagesize()})
	if err := c.SetFilter(Filter{All: true}); err != nil {
		t.Fatal(err)
	}
	data := frame(t, pkt{src: "10.1.0.2", dst: "10.1.0.3", sport: 1, dport: 2, payload: 400}) // 512-byte class
	const runs = 50
	if _, err := c.Ingress().Run(&ebpf.RunOptions{Data: data, Repeat: runs}); err != nil {
		t.Fatal(err)
	}
	r, err := c.NewReader()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	read, err := r.Read(0, func(*Record) {})
	if err != nil {
		t.Fatal(err)
	}
	cnt, err := c.Counters()
	if err != nil {
		t.Fatal(err)
	}
	// 8-byte ring header + 24-byte event header + 512: 7 records fit in 4096 bytes.
	wantRead := os.Getpagesize() / (8 + eventHeaderSize + 512)
	if read != wantRead || cnt.Captured != uint64(wantRead) {
		t.Errorf("read %d, captured %d, want %d", read, cnt.Captured, wantRead)
	}
	if cnt.Seen != runs || cnt.RingbufFull != runs-uint64(wantRead) || cnt.Lost() != cnt.RingbufFull {
		t.Errorf("counters %+v: want seen %d, ring full %d", cnt, runs, runs-wantRead)
	}
	if cnt.LostBytes != cnt.RingbufFull*uint64(len(data)) {
		t.Errorf("lost bytes %d, want %d", cnt.LostBytes, cnt.RingbufFull*uint64(len(data)))
	}
	if s := r.Stats(); s.Read != uint64(read) || s.Malformed != 0 {
		t.Errorf("reader stats %+v, want %d read", s, read)
	}
}

func TestReaderClose(t *testing.T) {
	c := load(t, Config{RingSize: 1 << 16})
	r, err := c.NewReader()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	go func() {
		for {
			if _, err := r.Read(time.Hour, func(*Record) {}); err != nil {
				done <- err
				return
			}
		}
	}()
	r.Close()
	if err := <-done; !errors.Is(err, ErrClosed) {
		t.Fatalf("Read after Close: %v, want ErrClosed", err)
	}
}

// BenchmarkProgram times the program on one 1500-byte frame with
// BPF_PROG_TEST_RUN: selected (a copy into the ring) and filtered out.
func BenchmarkProgram(b *testing.B) {
	data := frame(b, pkt{src: "10.1.0.2", dst: "10.1.0.3", sport: 1, dport: 2, payload: 1434})
	for _, tt := range []struct {
		name   string
		filter Filter
	}{{"selected", Filter{All: true}}, {"filtered", Filter{Ports: []uint16{9}}}} {
		b.Run(tt.name, func(b *testing.B) {
			c := load(b, Config{RingSize: 1 << 20, WakeupBytes: -1})
			if err := c.SetFilter(tt.filter); err != nil {
				b.Fatal(err)
			}
			// The ring is never read: once full, selected packets count as lost,
			// which costs the same reservation attempt.
			_, per, err := c.Ingress().Benchmark(data, b.N, b.ResetTimer)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(per.Nanoseconds()), "ns/pkt")
		})
	}
}
