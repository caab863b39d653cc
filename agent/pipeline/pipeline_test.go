package pipeline

import (
	"bytes"
	"net/netip"
	"testing"
	"time"

	"github.com/sondehq/sonde/agent/packet"
	"github.com/sondehq/sonde/protocols"
)

// fakeDissector claims connections whose first bytes start with "REQ" (from
// the client) or "RSP" (from the server); its Conn consumes whole lines and
// emits one entry per "REQ" line, and can be told to refuse to consume.
type fakeDissector struct{ stall bool }

func (fakeDissector) Protocol() protocols.Protocol { return "fake" }

func (fakeDissector) Detect(p []byte, _ protocols.Ports) protocols.Detection {
	for _, m := range []struct {
		prefix string
		client bool
	}{{"REQ", true}, {"RSP", false}} {
		n := min(len(p), len(m.prefix))
		if string(p[:n]) == m.prefix[:n] {
			if n < len(m.prefix) {
				return protocols.Detection{Verdict: protocols.NeedMore}
			}
			return protocols.Detection{Verdict: protocols.Match, FromClient: m.client}
		}
	}
	return protocols.Detection{Verdict: protocols.NoMatch}
}

func (d fakeDissector) NewConn(info protocols.ConnInfo, emit protocols.EmitFunc) protocols.Conn {
	return &fakeConn{stall: d.stall, emit: emit}
}

type fakeConn struct {
	stall bool
	emit  protocols.EmitFunc
}

func (c *fakeConn) Feed(dir protocols.Direction, data []byte, ts time.Time) (int, error) {
	if c.stall {
		return 0, nil
	}
	n := 0
	for {
		i := bytes.IndexByte(data[n:], '\n')
		if i < 0 {
			return n, nil
		}
		line := string(data[n : n+i])
		n += i + 1
		if line == "RSP switch" {
			// The bytes after this line belong to whatever comes next.
			return n, &protocols.UpgradeError{To: "elsewhere"}
		}
		if dir == protocols.ClientToServer {
			c.emit(&protocols.Entry{Protocol: "fake", Start: ts, Summary: protocols.Summary{Method: line}})
		}
	}
}

func (c *fakeConn) Gap(protocols.Direction, int, time.Time) {}
func (c *fakeConn) Close(protocols.CloseReason, time.Time)  {}

var (
	client = netip.MustParseAddrPort("10.0.0.1:40000")
	server = netip.MustParseAddrPort("10.0.0.2:7000")
)

// conversation builds segments of one connection without a handshake:
// each message is (from client?, payload).
type msg struct {
	fromClient bool
	data       string
}

func segments(msgs ...msg) []packet.Segment {
	var out []packet.Segment
	seq := [2]uint32{1000, 5000}
	t := time.Unix(1_700_000_000, 0)
	for i, m := range msgs {
		s := packet.Segment{Time: t.Add(time.Duration(i) * time.Millisecond), Flags: packet.ACK, Payload: []byte(m.data)}
		side := 1
		s.Src, s.Dst = server, client
		if m.fromClient {
			side = 0
			s.Src, s.Dst = client, server
		}
		s.Seq = seq[side]
		seq[side] += uint32(len(m.data))
		out = append(out, s)
	}
	return out
}

func runSegments(cfg Config, segs []packet.Segment) ([]*protocols.Entry, Stats) {
	var got []*protocols.Entry
	p := New(cfg, func(e *protocols.Entry) { got = append(got, e) })
	for i := range segs {
		p.Segment(&segs[i])
	}
	p.Close(segs[len(segs)-1].Time)
	return got, p.Stats()
}

func TestDetectionAssignsRoles(t *testing.T) {
	tests := []struct {
		name string
		msgs []msg
	}{
		{"client speaks first", []msg{{true, "REQ a\n"}, {false, "RSP a\n"}, {true, "REQ b\n"}}},
		{"server seen first", []msg{{false, "RSP x\n"}, {true, "REQ a\n"}, {true, "REQ b\n"}}},
		{"prefix split over segments", []msg{{true, "RE"}, {true, "Q a\nREQ b\n"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig([]protocols.Dissector{fakeDissector{}})
			got, st := runSegments(cfg, segments(tt.msgs...))
			if len(got) != 2 {
				t.Fatalf("got %d entries, want 2 (stats %+v)", len(got), st)
			}
			for _, e := range got {
				if e.Src.IP != client.Addr() || e.Dst.Port != server.Port() {
					t.Errorf("entry %s: src %v dst %v, want the client as src", e.ID, e.Src, e.Dst)
				}
			}
			if got[0].Summary.Method != "REQ a" || got[1].Summary.Method != "REQ b" {
				t.Errorf("entries %q, %q", got[0].Summary.Method, got[1].Summary.Method)
			}
			if got[0].ID == got[1].ID {
				t.Error("two entries share an ID")
			}
		})
	}
}

func TestUnknownProtocolIsCounted(t *testing.T) {
	cfg := DefaultConfig([]protocols.Dissector{fakeDissector{}})
	_, st := runSegments(cfg, segments(msg{true, "HELLO THERE\n"}, msg{false, "GO AWAY\n"}))
	if st.Undetected != 1 || st.OpaqueConns != 1 || st.OpaqueBytes != 20 {
		t.Errorf("undetected %d opaque %d bytes %d; want 1, 1, 20", st.Undetected, st.OpaqueConns, st.OpaqueBytes)
	}
}

func TestDetectLimit(t *testing.T) {
	cfg := DefaultConfig([]protocols.Dissector{fakeDissector{}})
	cfg.DetectLimit = 4
	// "RE" keeps the fake asking for more; the limit ends the wait.
	_, st := runSegments(cfg, segments(msg{true, "RE"}, msg{true, "\x00\x00\x00"}))
	if st.Undetected != 1 {
		t.Errorf("undetected = %d, want 1", st.Undetected)
	}
}

func TestLeftoverOverflowMakesOpaque(t *testing.T) {
	cfg := DefaultConfig([]protocols.Dissector{fakeDissector{stall: true}})
	cfg.MaxLeftover = 16
	_, st := runSegments(cfg, segments(msg{true, "REQ 0123456789\n"}, msg{true, "REQ 0123456789\n"}))
	if st.LeftoverOverflows != 1 || st.OpaqueConns != 1 {
		t.Errorf("leftover overflows %d, opaque %d; want 1, 1", st.LeftoverOverflows, st.OpaqueConns)
	}
	if st.ParseErrors["leftover_too_large"] != 1 {
		t.Errorf("parse errors = %v", st.ParseErrors)
	}
}

// TestUpgradeToUnknownRedetects: after a switch to a protocol no dissector
// is named for (a CONNECT tunnel), the bytes that follow are detected afresh.
func TestUpgradeToUnknownRedetects(t *testing.T) {
	cfg := DefaultConfig([]protocols.Dissector{fakeDissector{}})
	got, st := runSegments(cfg, segments(
		msg{true, "REQ connect\n"}, msg{false, "RSP switch\nRSP x\n"}, msg{true, "REQ inner\n"}))
	if st.Upgrades != 1 {
		t.Errorf("upgrades = %d, want 1", st.Upgrades)
	}
	if len(got) != 2 || got[1].Summary.Method != "REQ inner" {
		t.Fatalf("entries %v, want REQ connect then REQ inner", got)
	}
	_, st = runSegments(cfg, segments(msg{true, "REQ ws\n"}, msg{false, "RSP switch\n\x81\x05hello"}, msg{true, "\x81\x85abcd"}))
	if st.Upgrades != 1 || st.Undetected != 1 {
		t.Errorf("upgrades %d undetected %d; want 1, 1 (what followed is no known protocol)", st.Upgrades, st.Undetected)
	}
}

// TestNATTwinAppearsOnce: a pod dialling a service IP is captured on its own
// interface (to the service address) and on the server's (to the pod
// address, after DNAT). The exchange appears once, to the pod, via the service.
func TestNATTwinAppearsOnce(t *testing.T) {
	service := netip.MustParseAddrPort("10.96.0.10:80")
	pod := netip.MustParseAddrPort("10.244.0.7:8080")
	t0 := time.Unix(1_700_000_000, 0)
	var segs []packet.Segment
	add := func(src, dst netip.AddrPort, seq uint32, flags packet.Flags, payload string) {
		segs = append(segs, packet.Segment{Time: t0.Add(time.Duration(len(segs)) * time.Microsecond),
			Src: src, Dst: dst, Seq: seq, Flags: flags, Payload: []byte(payload)})
	}
	for _, server := range []netip.AddrPort{service, pod} {
		add(client, server, 100, packet.SYN, "")
		add(server, client, 900, packet.SYN|packet.ACK, "")
	}
	for _, server := range []netip.AddrPort{service, pod} {
		add(client, server, 101, packet.ACK, "REQ a\n")
		add(server, client, 901, packet.ACK, "RSP a\n")
	}
	got, st := runSegments(DefaultConfig([]protocols.Dissector{fakeDissector{}}), segs)
	if len(got) != 1 {
		t.Fatalf("got %d entries, want 1", len(got))
	}
	e := got[0]
	if e.Dst.IP != pod.Addr() || e.Dst.Port != pod.Port() || e.Via == nil || e.Via.IP != service.Addr() || e.Via.Port != service.Port() {
		t.Errorf("dst %v via %v; want the pod via the service", e.Dst, e.Via)
	}
	if st.NATTwins != 1 || st.NATTwinBytes != 12 || st.Connections != 1 {
		t.Errorf("twins %d, twin bytes %d, connections %d; want 1, 12, 1", st.NATTwins, st.NATTwinBytes, st.Connections)
	}
}
