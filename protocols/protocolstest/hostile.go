package protocolstest

import (
	"runtime"
	"testing"
	"time"

	"github.com/sondehq/sonde/protocols"
)

// Flood is a hostile load: Conns connections of one dissector, each fed the
// same Chunks (large requests nobody answers, say) and left open, all
// drawing from one Options.Budget of Limit bytes.
type Flood struct {
	Conns  int
	Chunks []Chunk
	Limit  int64
	// Options are the options to start from (DefaultOptions when zero);
	// their Budget is replaced by one of Limit bytes.
	Options protocols.Options
	// Each, when set, sees every entry emitted; entries are not kept, so
	// that what the connections hold is measured apart from them.
	Each func(*protocols.Entry)
}

// FloodResult is what a Flood left behind.
type FloodResult struct {
	// Peak is the budget's high-water mark; Held what the Go heap grew by
	// while every connection was open.
	Peak, Held int64
	// Emitted counts the entries the connections emitted, Close included.
	Emitted int
	// Counters add up every connection's counters.
	Counters map[string]uint64
}

// RunFlood feeds the flood and closes every connection. It fails t when what
// the connections reserved ever passed the limit, or when anything is still
// reserved once they are all closed.
func RunFlood(t testing.TB, d protocols.Dissector, f Flood) FloodResult {
	t.Helper()
	opts := f.Options
	if opts.BodyCap == 0 {
		opts = protocols.DefaultOptions()
	}
	budget := protocols.NewBudget(f.Limit)
	opts.Budget = budget
	var res FloodResult
	emit := func(e *protocols.Entry) {
		res.Emitted++
		if f.Each != nil {
			f.Each(e)
		}
	}
	before := heapAlloc()
	now := time.Unix(1_700_000_000, 0)
	feeders := make([]*protocols.Feeder, 0, f.Conns)
	for i := range f.Conns {
		c := d.NewConn(protocols.ConnInfo{Options: opts}, emit)
		fd := protocols.NewFeeder(c, 1<<20)
		feeders = append(feeders, fd)
		for _, ch := range f.Chunks {
			if ch.Gap != 0 {
				fd.Gap(ch.Dir, ch.Gap, now)
				continue
			}
			if err := fd.Feed(ch.Dir, ch.Data, now); err != nil {
				t.Fatalf("connection %d: %v", i, err)
			}
			if used := budget.Used(); used > f.Limit {
				t.Fatalf("connection %d: %d bytes reserved, over the budget of %d", i, used, f.Limit)
			}
		}
	}
	res.Held = int64(heapAlloc()) - int64(before)
	res.Counters = map[string]uint64{}
	for _, fd := range feeders {
		fd.Close(protocols.ClosedEnd, now)
		if cs, ok := fd.Conn().(protocols.Counters); ok {
			for k, v := range cs.Counters() {
				res.Counters[k] += v
			}
		}
	}
	if cs, ok := d.(protocols.Counters); ok {
		// Some dissectors count for all their connections at once.
		for k, v := range cs.Counters() {
			res.Counters[k] += v
		}
	}
	if used := budget.Used(); used != 0 {
		t.Errorf("%d bytes of the budget still reserved after every connection closed", used)
	}
	res.Peak = budget.Peak()
	runtime.KeepAlive(feeders)
	return res
}

func heapAlloc() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}
