package redis

import (
	"fmt"
	"strings"
	"testing"

	"github.com/sondehq/sonde/protocols"
	"github.com/sondehq/sonde/protocols/protocolstest"
)

// TestBudgetUnansweredCommands: many connections of large commands whose
// replies never come (a client of a captured pod can send them at will)
// hold no more than the agent's budget together; what had to be given up
// is emitted unmatched and counted.
func TestBudgetUnansweredCommands(t *testing.T) {
	// As many arguments as an entry shows, each as long as it shows.
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n$5\r\nRPUSH\r\n$1\r\nk\r\n", maxArgs+2)
	for range maxArgs {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", argCap, strings.Repeat("x", argCap))
	}
	set := b.String()
	const conns, perConn, limit = 50, 200, 4 << 20
	warned, unmatched := 0, 0
	res := protocolstest.RunFlood(t, New(), protocolstest.Flood{
		Conns:  conns,
		Chunks: protocolstest.Stream(strings.Repeat(set, perConn)),
		Limit:  limit,
		Each: func(e *protocols.Entry) {
			if e.Unmatched != protocols.MissingResponse {
				unmatched++
			}
			for _, w := range e.Warnings {
				if w == warnBudgetEvict {
					warned++
				}
			}
		},
	})
	if res.Peak > limit {
		t.Errorf("high-water mark %d over the budget of %d", res.Peak, limit)
	}
	if res.Counters[countBudgetEvicted] == 0 {
		t.Errorf("%d MiB of commands fit a budget of %d MiB without one given up", conns*perConn*len(set)>>20, limit>>20)
	}
	if res.Emitted != conns*perConn {
		t.Errorf("emitted %d entries of %d commands", res.Emitted, conns*perConn)
	}
	if unmatched != 0 {
		t.Errorf("%d commands without a reply not emitted as unmatched", unmatched)
	}
	if uint64(warned) != res.Counters[countBudgetEvicted] {
		t.Errorf("%d entries say they were given up for the budget, %d counted", warned, res.Counters[countBudgetEvicted])
	}
	if res.Held > 3*limit {
		t.Errorf("the connections hold %d MiB, for a budget of %d MiB", res.Held>>20, limit>>20)
	}
	t.Logf("%d connections × %d unanswered 32 KiB RPUSHes, budget %d MiB: high-water %d KiB, heap %.1f MiB, %d evicted",
		conns, perConn, limit>>20, res.Peak>>10, float64(res.Held)/(1<<20), res.Counters[countBudgetEvicted])
}

// TestBudgetLargeRepliesInProgress: connections each in the middle of a
// large array reply hold what they keep of it from the budget; once it is
// spent the replies are kept shorter, with a warning, and counted.
func TestBudgetLargeRepliesInProgress(t *testing.T) {
	var reply strings.Builder
	reply.WriteString("*1000\r\n")
	for range 200 {
		fmt.Fprintf(&reply, "$4000\r\n%s\r\n", strings.Repeat("v", 4000))
	}
	const conns, limit = 200, 2 << 20
	cut := 0
	res := protocolstest.RunFlood(t, New(), protocolstest.Flood{
		Each: func(e *protocols.Entry) {
			if strings.Contains(strings.Join(e.Warnings, ";"), warnBudgetCut) {
				cut++
			}
		},
		Conns: conns,
		Chunks: []protocolstest.Chunk{
			{Dir: protocols.ClientToServer, Data: []byte("*2\r\n$6\r\nLRANGE\r\n$1\r\nl\r\n")},
			{Dir: protocols.ServerToClient, Data: []byte(reply.String())},
		},
		Limit: limit,
	})
	if res.Peak > limit {
		t.Errorf("high-water mark %d over the budget of %d", res.Peak, limit)
	}
	if res.Held > 3*limit {
		t.Errorf("the connections hold %d MiB, for a budget of %d MiB", res.Held>>20, limit>>20)
	}
	if res.Counters[countBudgetCut] == 0 {
		t.Errorf("%d replies in progress of 64 KiB kept fit a budget of %d MiB", conns, limit>>20)
	}
	if cut == 0 {
		t.Errorf("no entry says its reply was cut for the budget")
	}
	t.Logf("%d connections inside a large reply, budget %d MiB: high-water %d KiB, heap %.1f MiB, %d cut",
		conns, limit>>20, res.Peak>>10, float64(res.Held)/(1<<20), res.Counters[countBudgetCut])
}
