package amqp

import (
	"strings"
	"testing"

	"github.com/sondehq/sonde/protocols"
	"github.com/sondehq/sonde/protocols/protocolstest"
)

// selectConfirms puts channel ch in confirm mode (nowait).
func selectConfirms(ch uint16) string {
	return meth(ch, classConfirm, confirmSelect, args().bits(true))
}

// TestBudgetUnconfirmedPublishes: many connections of publishes in confirm
// mode whose confirms never come, each holding its body while it waits,
// hold no more than the agent's budget together; what had to be given up
// is emitted unmatched, says why, and is counted.
func TestBudgetUnconfirmedPublishes(t *testing.T) {
	body := strings.Repeat("b", 60<<10)
	msgs := append(handshake(), selectConfirms(1))
	var pub strings.Builder
	const conns, perConn, limit = 40, 50, 4 << 20
	for range perConn {
		pub.WriteString(publish(1, "amq.topic", "orders") + hdr(1, uint64(len(body)), "text/plain") + bodyFrame(1, body))
	}
	chunks := protocolstest.Stream(msgs...)
	chunks = append(chunks, protocolstest.Chunk{Dir: protocols.ClientToServer, Data: []byte(pub.String())})
	evicted := 0
	res := protocolstest.RunFlood(t, New(), protocolstest.Flood{
		Conns: conns, Chunks: chunks, Limit: limit,
		Each: func(e *protocols.Entry) {
			if strings.Contains(strings.Join(e.Warnings, ";"), warnBudgetEvicted) {
				evicted++
				if e.Unmatched != protocols.MissingResponse {
					t.Errorf("a publish given up emitted as %q", e.Unmatched)
				}
			}
		},
	})
	if res.Peak > limit {
		t.Errorf("high-water mark %d over the budget of %d", res.Peak, limit)
	}
	if n := res.Counters[countBudgetEvicted]; n == 0 || uint64(evicted) != n {
		t.Errorf("%d publishes given up for the budget, %d say so", n, evicted)
	}
	if res.Held > 3*limit {
		t.Errorf("the connections hold %d MiB, for a budget of %d MiB", res.Held>>20, limit>>20)
	}
	t.Logf("%d connections × %d unconfirmed 60 KiB publishes, budget %d MiB: high-water %d KiB, heap %.1f MiB, %d evicted",
		conns, perConn, limit>>20, res.Peak>>10, float64(res.Held)/(1<<20), res.Counters[countBudgetEvicted])
}

// TestBudgetContentInProgress: publishes whose content never completes, on
// many channels of many connections, keep their bodies within the budget;
// past it the bodies are kept shorter, with a warning, and counted.
func TestBudgetContentInProgress(t *testing.T) {
	body := strings.Repeat("b", 60<<10)
	var pub strings.Builder
	const conns, chans, limit = 20, 50, 4 << 20
	for ch := range uint16(chans) {
		pub.WriteString(publish(ch+1, "amq.topic", "orders") + hdr(ch+1, 1<<20, "text/plain") + bodyFrame(ch+1, body))
	}
	chunks := protocolstest.Stream(handshake()...)
	chunks = append(chunks, protocolstest.Chunk{Dir: protocols.ClientToServer, Data: []byte(pub.String())})
	cut := 0
	res := protocolstest.RunFlood(t, New(), protocolstest.Flood{
		Conns: conns, Chunks: chunks, Limit: limit,
		Each: func(e *protocols.Entry) {
			if strings.Contains(strings.Join(e.Warnings, ";"), warnBudgetCut) {
				cut++
				if !e.AMQP.Content.Body.Truncated {
					t.Errorf("a body cut for the budget is not marked truncated")
				}
			}
		},
	})
	if res.Peak > limit {
		t.Errorf("high-water mark %d over the budget of %d", res.Peak, limit)
	}
	if n := res.Counters[countBudgetCut]; n == 0 || uint64(cut) != n {
		t.Errorf("%d bodies cut for the budget, %d entries say so", n, cut)
	}
	if res.Held > 3*limit {
		t.Errorf("the connections hold %d MiB, for a budget of %d MiB", res.Held>>20, limit>>20)
	}
	t.Logf("%d connections × %d channels of content in progress, budget %d MiB: high-water %d KiB, heap %.1f MiB, %d cut",
		conns, chans, limit>>20, res.Peak>>10, float64(res.Held)/(1<<20), res.Counters[countBudgetCut])
}
