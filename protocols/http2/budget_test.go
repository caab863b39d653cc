package http2

import (
	"bytes"
	"strings"
	"testing"

	"github.com/sondehq/sonde/protocols"
	"github.com/sondehq/sonde/protocols/protocolstest"
)

// budgetFlood runs conns connections of the conversation c built, all
// drawing from a budget of limit bytes, and checks what users care about:
// what the connections hold stays within the budget, and what had to be
// given up is counted and said on the entries.
func budgetFlood(t *testing.T, c *conv, conns int, limit int64) protocolstest.FloodResult {
	t.Helper()
	said := 0
	res := protocolstest.RunFlood(t, New(), protocolstest.Flood{
		Conns: conns, Chunks: c.chunks, Limit: limit,
		Each: func(e *protocols.Entry) {
			w := strings.Join(e.Warnings, ";")
			if strings.Contains(w, warnBudgetEvict) || strings.Contains(w, warnBudgetCut) {
				said++
			}
		},
	})
	if res.Peak > limit {
		t.Errorf("high-water mark %d over the budget of %d", res.Peak, limit)
	}
	if res.Counters[countBudgetEvicted] == 0 {
		t.Errorf("no stream given up for a budget of %d MiB", limit>>20)
	}
	if said == 0 {
		t.Errorf("no entry says the budget cut it short")
	}
	if res.Held > 3*limit {
		t.Errorf("the connections hold %d MiB, for a budget of %d MiB", res.Held>>20, limit>>20)
	}
	return res
}

// TestBudgetOpenStreams: many connections of streams whose request bodies
// never end (nor get an answer) each hold their body until END_STREAM; the
// budget bounds them all together.
func TestBudgetOpenStreams(t *testing.T) {
	c := newConv(t).start()
	piece := bytes.Repeat([]byte("x"), 15<<10)
	const streams = 100
	for i := range uint32(streams) {
		id := 2*i + 1
		c.headers(c2s, id, false, ":method", "POST", ":scheme", "http", ":authority", "api", ":path", "/upload", "content-type", "application/octet-stream")
		for range 4 {
			c.data(c2s, id, false, piece)
		}
	}
	const conns, limit = 20, 4 << 20
	res := budgetFlood(t, c, conns, limit)
	if res.Emitted != conns*streams {
		t.Errorf("emitted %d entries of %d streams", res.Emitted, conns*streams)
	}
	t.Logf("%d connections × %d open streams of 60 KiB, budget %d MiB: high-water %d KiB, heap %.1f MiB, %d evicted, %d cut",
		conns, streams, limit>>20, res.Peak>>10, float64(res.Held)/(1<<20), res.Counters[countBudgetEvicted], res.Counters[countBudgetCut])
}

// TestBudgetOpenGRPCCalls: the same with gRPC streaming calls whose
// messages are held until the call ends.
func TestBudgetOpenGRPCCalls(t *testing.T) {
	c := newConv(t).start()
	msg := bytes.Repeat([]byte{0x0a, 0x01, 'a'}, 5<<10)
	const streams = 100
	for i := range uint32(streams) {
		c.grpcRequest(2*i+1, "/svc.Upload/Stream", false, msg, msg, msg, msg)
	}
	const conns, limit = 20, 4 << 20
	res := budgetFlood(t, c, conns, limit)
	t.Logf("%d connections × %d open gRPC calls of 60 KiB, budget %d MiB: high-water %d KiB, heap %.1f MiB, %d evicted, %d cut",
		conns, streams, limit>>20, res.Peak>>10, float64(res.Held)/(1<<20), res.Counters[countBudgetEvicted], res.Counters[countBudgetCut])
}
