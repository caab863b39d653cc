package live

import (
	"bytes"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/sondehq/sonde/agent/assembly"
	"github.com/sondehq/sonde/agent/packet"
	"github.com/sondehq/sonde/agent/pipeline"
	"github.com/sondehq/sonde/protocols"
	"github.com/sondehq/sonde/protocols/http1"
)

// keeper keeps copies of the segments seen on one interface.
type keeper struct {
	*recorder
	ifindex int
	kept    []packet.Segment
}

func (k *keeper) deliver(f *Frame) {
	k.recorder.deliver(f)
	if f.Ifindex != k.ifindex {
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	s := k.seg
	s.Payload = bytes.Clone(s.Payload)
	k.kept = append(k.kept, s)
}

// gapRecorder is an assembly.Factory that records which directions got gaps.
type gapRecorder struct{ gaps map[flowKey]int }

type gapStream struct {
	r   *gapRecorder
	key assembly.Key
}

func (r *gapRecorder) NewStream(key assembly.Key, _ bool, _ time.Time) assembly.Stream {
	return &gapStream{r, key}
}
func (s *gapStream) Data(assembly.Side, []byte, time.Time)  {}
func (s *gapStream) Close(protocols.CloseReason, time.Time) {}
func (s *gapStream) Gap(side assembly.Side, n int, _ time.Time) {
	src, dst := s.key.A, s.key.B
	if side == assembly.SideB {
		src, dst = dst, src
	}
	s.r.gaps[flowKey{src: src, dst: dst}]++
}

// TestRingBufferLoss runs a capture with a two-page ring buffer, read
// rarely, beside a reference capture with a large one. Every segment the
// small one misses must be counted by the kernel as lost, and every
// direction that lost payload in the middle of a connection must come out
// of the assembly with a gap.
func TestRingBufferLoss(t *testing.T) {
	l := newLab(t)
	server, client := addPod(t, l, "server"), addPod(t, l, "client")
	sizedServer(t, server, 8080)
	cIf := ifindex(t, l, client)
	base := Config{Pods: []netip.Addr{server.IP}, Netns: l.Node.Handle}

	refCfg := base
	ref, err := NewEBPF(refCfg)
	if err != nil {
		t.Fatal(err)
	}
	tinyCfg := base
	tinyCfg.RingSize = 8192
	tinyCfg.PollInterval = 20 * time.Millisecond
	tiny, err := NewEBPF(tinyCfg)
	if err != nil {
		t.Fatal(err)
	}
	refRec := newRecorder()
	tinyRec := &keeper{recorder: newRecorder(), ifindex: cIf}
	stopRef := running(t, ref, refRec.deliver)
	stopTiny := running(t, tiny, tinyRec.deliver)

	convs := workload(t, client, fmt.Sprintf("http://%s:8080", server.IP), 12)
	last := convs[len(convs)-1]
	waitFor(t, "the reference capture", func() bool {
		got, _ := refRec.flow(flowKey{cIf, last.server, last.client}).bytes()
		return got == last.recv
	})
	// Let the connections' last ACKs pass both captures before stopping, so
	// that both saw the same packets: the selected count must agree and hold
	// still for a few polls.
	var prev uint64
	stable := 0
	waitFor(t, "both captures to settle", func() bool {
		r, s := ref.Stats(), tiny.Stats()
		sel := r.Captured + r.Lost
		if sel == s.Captured+s.Lost && sel == prev {
			stable++
		} else {
			stable = 0
		}
		prev = sel
		return stable >= 4
	})
	refSt, tinySt := stopRef(), stopTiny()
	checkReconciled(t, refSt)
	checkReconciled(t, tinySt)
	if refSt.Lost != 0 {
		t.Fatalf("the reference capture lost %d packets: the comparison would mean nothing", refSt.Lost)
	}
	if tinySt.Lost == 0 {
		t.Fatalf("the small ring lost nothing (%+v): the test did not exercise loss", tinySt)
	}
	if refSt.Captured != tinySt.Captured+tinySt.Lost {
		t.Errorf("the reference selected %d packets, the small ring %d", refSt.Captured, tinySt.Captured+tinySt.Lost)
	}

	// Missing segments, counted exactly.
	missing := 0
	lostPayload := map[flowKey][]uint32{} // on the client's veth: seq of lost payload segments
	for k, n := range refRec.segs {
		got := tinyRec.segs[k]
		if got > n {
			t.Errorf("the small ring captured %v %d times, the reference %d", k, got, n)
		}
		missing += n - got
		if got < n && k.len > 0 && k.ifindex == cIf {
			lostPayload[flowKey{src: k.src, dst: k.dst}] = append(lostPayload[flowKey{src: k.src, dst: k.dst}], k.seq)
		}
	}
	if uint64(missing) != tinySt.Lost {
		t.Errorf("%d segments missing from the small ring, kernel counted %d lost", missing, tinySt.Lost)
	}

	// Loss reaches the assembly as gaps, on the directions that lost bytes.
	gr := &gapRecorder{gaps: map[flowKey]int{}}
	asm := assembly.New(assembly.DefaultConfig(), gr)
	var end time.Time
	for i := range tinyRec.kept {
		asm.Add(&tinyRec.kept[i])
		end = tinyRec.kept[i].Time
	}
	asm.CloseAll(protocols.ClosedEnd, end)
	// A lost segment is in the middle of what the assembly saw when a
	// captured segment of that direction follows it and the stream's start
	// (its SYN or payload) was captured before it; a stream whose beginning
	// was all lost starts, for the assembly, at its first captured byte.
	captured := func(k flowKey, seq uint32, after bool) bool {
		for _, s := range tinyRec.kept {
			if s.Src != k.src || s.Dst != k.dst {
				continue
			}
			if after && len(s.Payload) > 0 && int32(s.Seq-seq) > 0 {
				return true
			}
			if !after && (len(s.Payload) > 0 || s.Flags&packet.SYN != 0) && int32(seq-s.Seq) > 0 {
				return true
			}
		}
		return false
	}
	inMiddle := 0
	for k, seqs := range lostPayload {
		mid := false
		for _, seq := range seqs {
			mid = mid || (captured(k, seq, false) && captured(k, seq, true))
		}
		if mid {
			inMiddle++
			if gr.gaps[k] == 0 {
				t.Errorf("%v -> %v lost payload mid-stream (seq %v) but the assembly reported no gap; captured: %v", k.src, k.dst, seqs, capturedSeqs(tinyRec.kept, k))
			}
		}
	}
	for k := range gr.gaps {
		if _, ok := lostPayload[k]; !ok {
			t.Errorf("gap on %v, which lost no payload", k)
		}
	}

	// And the loss reaches the entries: run the same segments through the
	// pipeline. An entry of a connection that lost nothing has no gap
	// marker; some entries of the others have one.
	lossy := map[uint16]bool{} // client ports of connections that lost payload
	for k := range lostPayload {
		if k.src.Addr() == client.IP {
			lossy[k.src.Port()] = true
		} else {
			lossy[k.dst.Port()] = true
		}
	}
	var entries []*protocols.Entry
	p := pipeline.New(pipeline.DefaultConfig([]protocols.Dissector{http1.New()}), func(e *protocols.Entry) { entries = append(entries, e) })
	for i := range tinyRec.kept {
		p.Segment(&tinyRec.kept[i])
	}
	p.Close(end)
	marked := 0
	for _, e := range entries {
		if e.Gap && !lossy[e.Src.Port] {
			t.Errorf("entry %v from port %d has a gap marker but its connection lost nothing", e.Summary, e.Src.Port)
		}
		if e.Gap {
			marked++
		}
	}
	if marked == 0 {
		t.Errorf("none of %d entries carries a gap marker, though %d connections lost payload", len(entries), len(lossy))
	}
	t.Logf("%d entries, %d with a gap marker; %d of %d connections lost payload", len(entries), marked, len(lossy), len(convs))
	t.Logf("reference %+v", refSt)
	t.Logf("small ring %+v; %d directions lost payload mid-stream, %d got gaps", tinySt, inMiddle, len(gr.gaps))
	if inMiddle == 0 {
		t.Error("no direction lost payload mid-stream: the gap check did not run")
	}
}

func capturedSeqs(segs []packet.Segment, k flowKey) []string {
	var out []string
	for _, s := range segs {
		if s.Src == k.src && s.Dst == k.dst {
			out = append(out, fmt.Sprintf("%d+%d/%x", s.Seq, len(s.Payload), s.Flags))
		}
	}
	return out
}
