package kafka

import (
	"bytes"
	"strings"
	"testing"

	"github.com/sondehq/sonde/protocols"
	"github.com/sondehq/sonde/protocols/protocolstest"
)

// TestBudgetUnansweredProduce: many connections of Produce requests whose
// responses never come hold no more than the agent's budget together, each
// waiting request with its records; what had to be given up is emitted
// unmatched, says why, and is counted.
func TestBudgetUnansweredProduce(t *testing.T) {
	value := bytes.Repeat([]byte("v"), 60<<10)
	var stream []byte
	const conns, perConn, limit = 50, 40, 4 << 20
	for i := range perConn {
		stream = append(stream, request(produceRequest(9, -1, "orders", batch(t, 0, 0, testRecord{value: value})), 9, int32(i+1), "app")...)
	}
	d := New()
	warned := 0
	res := protocolstest.RunFlood(t, d, protocolstest.Flood{
		Conns:  conns,
		Chunks: []protocolstest.Chunk{{Dir: protocols.ClientToServer, Data: stream}},
		Limit:  limit,
		Each: func(e *protocols.Entry) {
			if e.Unmatched != protocols.MissingResponse {
				t.Errorf("a request without a response emitted as %q", e.Unmatched)
			}
			if strings.Contains(strings.Join(e.Warnings, ";"), warnBudgetEvicted) {
				warned++
			}
		},
	})
	if res.Peak > limit {
		t.Errorf("high-water mark %d over the budget of %d", res.Peak, limit)
	}
	if res.Counters[CountBudgetEvicted] == 0 || uint64(warned) != res.Counters[CountBudgetEvicted] {
		t.Errorf("%d requests given up for the budget, %d say so", res.Counters[CountBudgetEvicted], warned)
	}
	if res.Emitted != conns*perConn {
		t.Errorf("emitted %d entries of %d requests", res.Emitted, conns*perConn)
	}
	if res.Held > 3*limit {
		t.Errorf("the connections hold %d MiB, for a budget of %d MiB", res.Held>>20, limit>>20)
	}
	t.Logf("%d connections × %d unanswered 60 KiB Produce requests, budget %d MiB: high-water %d KiB, heap %.1f MiB, %d evicted",
		conns, perConn, limit>>20, res.Peak>>10, float64(res.Held)/(1<<20), res.Counters[CountBudgetEvicted])
}

// TestBudgetLargeFetchInProgress: connections each in the middle of a
// large Fetch response collect it within the budget; once it is spent the
// frame is passed over undecoded, with a warning, and counted.
func TestBudgetLargeFetchInProgress(t *testing.T) {
	recs := make([]testRecord, 8)
	for i := range recs {
		recs[i] = testRecord{value: bytes.Repeat([]byte{byte('a' + i)}, 1<<20)}
	}
	resp := response(fetchResponse("orders", batch(t, 0, 0, recs...)), 12, 1)
	chunks := []protocolstest.Chunk{{Dir: protocols.ClientToServer, Data: request(fetchRequest("orders"), 12, 1, "app")}}
	half := resp[:len(resp)/2]
	for len(half) > 0 {
		k := min(64<<10, len(half))
		chunks = append(chunks, protocolstest.Chunk{Dir: protocols.ServerToClient, Data: half[:k]})
		half = half[k:]
	}
	const conns, limit = 20, 16 << 20
	starved := 0
	res := protocolstest.RunFlood(t, New(), protocolstest.Flood{
		Conns:  conns,
		Chunks: chunks,
		Limit:  limit,
		Each: func(e *protocols.Entry) {
			if strings.Contains(strings.Join(e.Warnings, ";"), partialBudget) {
				starved++
			}
		},
	})
	if res.Peak > limit {
		t.Errorf("high-water mark %d over the budget of %d", res.Peak, limit)
	}
	if res.Counters[CountBudgetCut] == 0 || starved == 0 {
		t.Errorf("%d half-received 8 MiB responses fit a budget of %d MiB: %d cut, %d entries say so", conns, limit>>20, res.Counters[CountBudgetCut], starved)
	}
	if res.Held > 3*limit {
		t.Errorf("the connections hold %d MiB, for a budget of %d MiB", res.Held>>20, limit>>20)
	}
	t.Logf("%d connections inside an 8 MiB Fetch response, budget %d MiB: high-water %.1f MiB, heap %.1f MiB, %d cut",
		conns, limit>>20, float64(res.Peak)/(1<<20), float64(res.Held)/(1<<20), res.Counters[CountBudgetCut])
}
