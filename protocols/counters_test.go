package protocols_test

import (
	"slices"
	"testing"

	"github.com/sondehq/sonde/protocols"
	"github.com/sondehq/sonde/protocols/all"
)

// TestLossCounterNames: every dissector names the counters that count loss,
// and each name is one the dissector reports, so that the hub and the UI can
// show loss without guessing it from a name.
func TestLossCounterNames(t *testing.T) {
	loss := protocols.LossCounterNames(all.Dissectors())
	for _, want := range []string{"kafka_gap_in_frame", "amqp_body_truncated", "amqp_frame_lost_to_gap", "http1_pending_evicted", "redis_pending_evicted"} {
		if !slices.Contains(loss, want) {
			t.Errorf("loss counters %v lack %s", loss, want)
		}
	}
	for _, notLoss := range []string{"amqp_heartbeat", "kafka_sasl_raw_token"} {
		if slices.Contains(loss, notLoss) {
			t.Errorf("%s is named loss; it counts nothing the user misses", notLoss)
		}
	}
	for _, d := range all.Dissectors() {
		if _, ok := d.(protocols.LossCounters); !ok {
			t.Errorf("%s's dissector does not say which of its counters count loss", d.Protocol())
		}
	}
}

func TestWithLossRefusesUnknownNames(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("WithLoss accepted a name that was not declared")
		}
	}()
	protocols.NewCounterNames("a").WithLoss("b")
}
