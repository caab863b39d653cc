package stream

import (
	"testing"
	"time"
)

// TestPublishNeverWaits: a subscriber whose writer does not drain its queue
// holds Publish up for nothing; what it could not take is counted lost,
// and what the history covers (up to last) is neither sent nor lost.
func TestPublishNeverWaits(t *testing.T) {
	b := NewBroker()
	var reported int
	lostc := make(chan int, 100)
	b.OnLost = func(n int) { lostc <- n }
	const history, n, queue = 5, 40, 3
	sub, upTo := b.Subscribe(nil, queue, func() uint64 { return history })
	defer b.Unsubscribe(sub)
	if upTo != history {
		t.Fatalf("Subscribe returned %d, want %d", upTo, history)
	}
	for seq := uint64(1); seq <= n; seq++ {
		b.Publish([]Item{{Seq: seq}})
	}
	deadline := time.After(10 * time.Second)
	for {
		if sent := len(sub.ch); sent+int(sub.lost.Load()) == n-history {
			break
		}
		select {
		case got := <-lostc:
			reported += got
		case <-deadline:
			t.Fatalf("queued %d, lost %d, of %d live entries", len(sub.ch), sub.lost.Load(), n-history)
		case <-time.After(10 * time.Millisecond):
		}
	}
	if len(sub.ch) != queue {
		t.Errorf("writer queue holds %d entries, want %d", len(sub.ch), queue)
	}
	prev := uint64(history)
	for len(sub.ch) > 0 {
		it := <-sub.ch
		if it.Seq <= prev {
			t.Errorf("live entry %d after %d (the history ends at %d)", it.Seq, prev, history)
		}
		prev = it.Seq
	}
	for len(lostc) > 0 {
		reported += <-lostc
	}
	if want := int(sub.lost.Load()); reported != want {
		t.Errorf("OnLost told %d, the subscription counts %d", reported, want)
	}
}
