package web_test

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestBench measures the UI with many entries: the time to apply a query
// with N entries in the hub, and the scroll frame rate with N rows in the
// browser's list. It takes minutes, so it runs only when asked:
//
//	SONDE_WEB_BENCH=100000,1000000 go test ./web -run TestBench -v -timeout 30m
func TestBench(t *testing.T) {
	sizes := os.Getenv("SONDE_WEB_BENCH")
	if sizes == "" {
		t.Skip("a measurement, not a check: set SONDE_WEB_BENCH=100000,1000000 to run it")
	}
	node := browserTools(t)
	for _, s := range strings.Split(sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n <= 0 {
			t.Fatalf("SONDE_WEB_BENCH: %q is not a number of entries", s)
		}
		t.Run(s, func(t *testing.T) {
			l := newLab(t, 0)
			l.load()
			start := time.Now()
			const chunk = 10_000
			for left := n; left > 0; left -= chunk {
				if err := l.srv.Ingest(l.live(min(chunk, left))...); err != nil {
					t.Fatal(err)
				}
			}
			t.Logf("loaded %d entries into the hub in %v", n, time.Since(start).Round(time.Millisecond))
			runNode(t, node, 20*time.Minute, "e2e/bench.mjs", l.url, strconv.Itoa(n))
		})
	}
}
