package assembly

import (
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/reassembly"

	"github.com/sondehq/sonde/agent/packet"
	"github.com/sondehq/sonde/protocols"
)

// trace is a synthetic capture of many concurrent request/response
// connections, the same segments for both assemblers under comparison.
type trace struct {
	segs  []packet.Segment
	bytes int // distinct payload bytes: what a perfect assembler delivers
}

type traceShape struct {
	conns, exchanges, request, response int
	// reorder is the chance that a segment swaps places with the one after
	// it; retransmit that a segment is sent twice.
	reorder, retransmit float64
}

var traceShapes = []struct {
	name  string
	shape traceShape
}{
	{"in-order", traceShape{conns: 100, exchanges: 20, request: 300, response: 16 << 10}},
	{"out-of-order", traceShape{conns: 100, exchanges: 20, request: 300, response: 16 << 10, reorder: 0.05, retransmit: 0.02}},
	{"many-conns", traceShape{conns: 20000, exchanges: 1, request: 200, response: 1000}},
}

const mss = 1448

func makeTrace(sh traceShape) *trace {
	rng := rand.New(rand.NewPCG(1, 2))
	noise := make([]byte, 64<<10)
	for i := range noise {
		noise[i] = byte(rng.Uint32())
	}
	type side struct {
		addr netip.AddrPort
		seq  uint32
	}
	// One connection's segments in the order its peers sent them.
	connSegs := func(i int) []packet.Segment {
		cli := side{netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}), uint16(30000+i%30000)), rng.Uint32()}
		srv := side{netip.MustParseAddrPort("10.2.0.1:8080"), rng.Uint32()}
		mk := func(from, to *side, flags packet.Flags, n int) packet.Segment {
			o := rng.IntN(len(noise) - n)
			s := packet.Segment{Src: from.addr, Dst: to.addr, Seq: from.seq, Ack: to.seq, Flags: flags, Payload: noise[o : o+n]}
			from.seq += uint32(n)
			if flags&(packet.SYN|packet.FIN) != 0 {
				from.seq++
			}
			return s
		}
		segs := []packet.Segment{mk(&cli, &srv, packet.SYN, 0), mk(&srv, &cli, packet.SYN|packet.ACK, 0), mk(&cli, &srv, packet.ACK, 0)}
		for range sh.exchanges {
			for _, m := range []struct {
				from, to *side
				n        int
			}{{&cli, &srv, sh.request}, {&srv, &cli, sh.response}} {
				for n := m.n; n > 0; n -= mss {
					segs = append(segs, mk(m.from, m.to, packet.ACK, min(n, mss)))
				}
			}
		}
		return append(segs, mk(&cli, &srv, packet.FIN|packet.ACK, 0), mk(&srv, &cli, packet.FIN|packet.ACK, 0), mk(&cli, &srv, packet.ACK, 0))
	}
	tr := &trace{}
	pending := make([][]packet.Segment, sh.conns)
	for i := range pending {
		pending[i] = connSegs(i)
		for _, s := range pending[i] {
			tr.bytes += len(s.Payload)
		}
		for j := 3; j+1 < len(pending[i])-3; j++ {
			if rng.Float64() < sh.reorder {
				pending[i][j], pending[i][j+1] = pending[i][j+1], pending[i][j]
			}
		}
	}
	// The connections run concurrently, a few segments of each in turn.
	t := t0
	for open := sh.conns; open > 0; {
		open = 0
		for i, p := range pending {
			if len(p) == 0 {
				continue
			}
			open++
			n := min(len(p), 1+rng.IntN(4))
			for _, s := range p[:n] {
				t = t.Add(time.Microsecond)
				s.Time = t
				tr.segs = append(tr.segs, s)
				if rng.Float64() < sh.retransmit {
					tr.segs = append(tr.segs, s)
				}
			}
			pending[i] = p[n:]
		}
	}
	return tr
}

type countStream struct{ f *countFactory }

type countFactory struct{ data, gaps int }

func (f *countFactory) NewStream(Key, bool, time.Time) Stream { return &countStream{f} }

func (s *countStream) Data(_ Side, data []byte, _ time.Time)  { s.f.data += len(data) }
func (s *countStream) Gap(_ Side, n int, _ time.Time)         { s.f.gaps += n }
func (s *countStream) Close(protocols.CloseReason, time.Time) {}

func BenchmarkAssembler(b *testing.B) {
	for _, ts := range traceShapes {
		tr := makeTrace(ts.shape)
		b.Run(ts.name, func(b *testing.B) {
			b.SetBytes(int64(tr.bytes))
			b.ReportAllocs()
			for b.Loop() {
				f := &countFactory{}
				a := New(DefaultConfig(), f)
				for i := range tr.segs {
					a.Add(&tr.segs[i])
				}
				a.CloseAll(protocols.ClosedEnd, t0)
				if f.data != tr.bytes || f.gaps != 0 {
					b.Fatalf("delivered %d bytes and %d in gaps, want %d", f.data, f.gaps, tr.bytes)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(tr.segs)), "ns/segment")
		})
	}
}

// gopacket's reassembly on the same segments, limited like DefaultConfig. Its
// streams Fetch the bytes, as a parser that needs them contiguous must.
type gpFactory struct{ data int }

type gpStream struct{ f *gpFactory }

type gpContext gopacket.CaptureInfo

func (c *gpContext) GetCaptureInfo() gopacket.CaptureInfo { return gopacket.CaptureInfo(*c) }

func (f *gpFactory) New(_, _ gopacket.Flow, _ *layers.TCP, _ reassembly.AssemblerContext) reassembly.Stream {
	return &gpStream{f}
}

func (s *gpStream) Accept(*layers.TCP, gopacket.CaptureInfo, reassembly.TCPFlowDirection, reassembly.Sequence, *bool, reassembly.AssemblerContext) bool {
	return true
}

func (s *gpStream) ReassembledSG(sg reassembly.ScatterGather, _ reassembly.AssemblerContext) {
	if n, _ := sg.Lengths(); n > 0 {
		s.f.data += len(sg.Fetch(n))
	}
}

func (s *gpStream) ReassemblyComplete(reassembly.AssemblerContext) bool { return true }

func BenchmarkGopacketReassembly(b *testing.B) {
	const pageSize = 1900 // reassembly's page
	for _, ts := range traceShapes {
		tr := makeTrace(ts.shape)
		flows := make([]gopacket.Flow, len(tr.segs))
		tcps := make([]layers.TCP, len(tr.segs))
		ctxs := make([]gpContext, len(tr.segs))
		for i, s := range tr.segs {
			src, dst := s.Src.Addr().As4(), s.Dst.Addr().As4()
			flows[i] = gopacket.NewFlow(layers.EndpointIPv4, src[:], dst[:])
			tcps[i] = layers.TCP{
				SrcPort: layers.TCPPort(s.Src.Port()), DstPort: layers.TCPPort(s.Dst.Port()),
				Seq: s.Seq, Ack: s.Ack,
				SYN: s.Flags&packet.SYN != 0, ACK: s.Flags&packet.ACK != 0, FIN: s.Flags&packet.FIN != 0,
			}
			tcps[i].Payload = s.Payload
			tcps[i].SetInternalPortsForTesting()
			ctxs[i] = gpContext{Timestamp: s.Time, CaptureLength: len(s.Payload), Length: len(s.Payload)}
		}
		b.Run(ts.name, func(b *testing.B) {
			b.SetBytes(int64(tr.bytes))
			b.ReportAllocs()
			for b.Loop() {
				f := &gpFactory{}
				a := reassembly.NewAssembler(reassembly.NewStreamPool(f))
				a.MaxBufferedPagesPerConnection = DefaultConfig().MaxBufferedPerConn / pageSize
				a.MaxBufferedPagesTotal = DefaultConfig().MaxBufferedTotal / pageSize
				for i := range tcps {
					a.AssembleWithContext(flows[i], &tcps[i], &ctxs[i])
				}
				a.FlushAll()
				if f.data != tr.bytes {
					b.Fatalf("delivered %d bytes, want %d", f.data, tr.bytes)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(tr.segs)), "ns/segment")
		})
	}
}
