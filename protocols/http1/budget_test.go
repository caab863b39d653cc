package http1

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/sondehq/sonde/protocols"
)

// gzipPOST is a request whose small gzip body inflates to size bytes.
func gzipPOST(size int) []byte {
	var z bytes.Buffer
	w := gzip.NewWriter(&z)
	w.Write(make([]byte, size))
	w.Close()
	return append([]byte(fmt.Sprintf("POST /upload HTTP/1.1\r\nHost: api\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n", z.Len())), z.Bytes()...)
}

func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// TestPendingGzipBodiesStayCompressed: any client of a captured pod could
// make the agent inflate its request bodies while they wait for responses
// that never come: 1,100 gzip POSTs of about a kilobyte each, inflating to
// 1 MiB, took an agent to gigabytes. A waiting request now holds its body as
// sent; it is inflated once, when its entry is made.
func TestPendingGzipBodiesStayCompressed(t *testing.T) {
	opts := protocols.DefaultOptions()
	var emitted []*protocols.Entry
	f := protocols.NewFeeder(New().NewConn(protocols.ConnInfo{Options: opts}, func(e *protocols.Entry) { emitted = append(emitted, e) }), 1<<20)
	req := gzipPOST(1 << 20)
	const n = 1000
	before := heapInUse()
	now := time.Now()
	for range n {
		if err := f.Feed(protocols.ClientToServer, req, now); err != nil {
			t.Fatal(err)
		}
	}
	held := heapInUse() - before
	if held > 64<<20 {
		t.Errorf("%d requests awaiting responses hold %d MiB: their bodies were inflated", n, held>>20)
	}
	t.Logf("%d pending gzip POSTs (%d bytes each on the wire, 1 MiB inflated) hold %.1f MiB", n, len(req), float64(held)/(1<<20))
	f.Close(protocols.ClosedEnd, now)
	if len(emitted) != n {
		t.Fatalf("emitted %d entries, want %d", len(emitted), n)
	}
	last := emitted[n-1].HTTP.Request.Body
	if last.Encoding != "gzip" || len(last.Data) != opts.DecodedCap {
		t.Errorf("the body was not inflated for its entry: encoding %q, %d bytes", last.Encoding, len(last.Data))
	}
	if opts.Budget.Used() != 0 {
		t.Errorf("%d bytes of the budget still reserved after every entry was emitted", opts.Budget.Used())
	}
}

// TestBudgetAcrossConnections: many connections of large unanswered
// requests together hold no more than the budget; what had to be given up
// is emitted unmatched or cut, and counted, never lost silently.
func TestBudgetAcrossConnections(t *testing.T) {
	opts := protocols.DefaultOptions()
	const limit = 4 << 20
	opts.Budget = protocols.NewBudget(limit)
	body := bytes.Repeat([]byte("x"), 60<<10)
	req := append([]byte(fmt.Sprintf("POST /big HTTP/1.1\r\nHost: api\r\nContent-Length: %d\r\n\r\n", len(body))), body...)
	const conns, perConn = 50, 10
	emitted := 0
	var feeders []*protocols.Feeder
	var counters []protocols.Counters
	now := time.Now()
	for range conns {
		c := New().NewConn(protocols.ConnInfo{Options: opts}, func(*protocols.Entry) { emitted++ })
		f := protocols.NewFeeder(c, 1<<20)
		feeders = append(feeders, f)
		counters = append(counters, c.(protocols.Counters))
		for range perConn {
			if err := f.Feed(protocols.ClientToServer, req, now); err != nil {
				t.Fatal(err)
			}
			if used := opts.Budget.Used(); used > limit {
				t.Fatalf("connections hold %d bytes of bodies, over the budget of %d", used, limit)
			}
		}
	}
	var cut, evicted uint64
	for _, c := range counters {
		cut += c.Counters()[countBudgetCut]
		evicted += c.Counters()[countBudgetEvicted]
	}
	if cut+evicted == 0 {
		t.Errorf("%d MiB of bodies fit a budget of %d MiB without anything given up", conns*perConn*len(body)>>20, limit>>20)
	}
	for _, f := range feeders {
		f.Close(protocols.ClosedEnd, now)
	}
	if emitted != conns*perConn {
		t.Errorf("emitted %d entries of %d requests", emitted, conns*perConn)
	}
	if opts.Budget.Used() != 0 {
		t.Errorf("%d bytes still reserved", opts.Budget.Used())
	}
	t.Logf("%d connections × %d requests of 60 KiB, budget %d MiB: %d evicted, %d cut", conns, perConn, limit>>20, evicted, cut)
}
