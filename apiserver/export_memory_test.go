package apiserver_test

import (
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/sondehq/sonde/apiserver"
	"github.com/sondehq/sonde/protocols"
)

// TestExportsHoldOneEntry: a HAR export, and the history of a stream
// whose client never reads it, hold about one entry in memory at a time,
// not all of them: 300 entries with 256 KiB bodies (75 MiB) must grow the
// heap by less than their bodies' size. (Before, an export decoded
// every entry and encoded the file whole, and a history was read whole
// before its first entry was sent.)
func TestExportsHoldOneEntry(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 75 MiB of entries")
	}
	h := startHub(t, apiserver.Config{DataDir: t.TempDir()}, "127.0.0.1:0")
	const n, bodySize = 300, 256 << 10
	body := []byte(strings.Repeat("order line, ", bodySize/12))
	for i := range n {
		e := &protocols.Entry{Protocol: protocols.HTTP1, Start: time.Now(), Duration: time.Millisecond,
			Src:     protocols.Endpoint{IP: netip.MustParseAddr("10.0.0.1"), Port: 40000},
			Dst:     protocols.Endpoint{IP: netip.MustParseAddr("10.0.0.2"), Port: 80},
			Summary: protocols.Summary{Method: "POST", Target: fmt.Sprintf("/orders/%d", i), Status: "200"},
			HTTP: &protocols.HTTPRecord{
				Request:  &protocols.HTTPRequest{Method: "POST", Target: fmt.Sprintf("/orders/%d", i), Version: "HTTP/1.1", Body: protocols.Body{Size: int64(len(body)), Data: body}},
				Response: &protocols.HTTPResponse{Version: "HTTP/1.1", StatusCode: 200}}}
		if err := h.srv.Ingest(e); err != nil {
			t.Fatal(err)
		}
	}
	// Holding every entry takes more than their bodies (before: 306 MiB
	// for the export, 127 MiB for the history); holding one at a time
	// leaves room for the garbage the collector has yet to take (2–9 MiB
	// here, 13–39 MiB under the race detector).
	limit := uint64(n * bodySize)

	grow := heapGrowth(t, func() {
		resp, err := http.Get(h.url + "/api/v1/export/har?limit=1000")
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if got < n*bodySize {
			t.Errorf("the export wrote %d bytes, less than its bodies", got)
		}
	})
	t.Logf("HAR export of %d MiB of bodies: heap grew %d MiB", n*bodySize>>20, grow>>20)
	if grow > limit {
		t.Errorf("a HAR export grew the heap by %d MiB, want under %d MiB", grow>>20, limit>>20)
	}

	grow = heapGrowth(t, func() {
		c, _, err := websocket.DefaultDialer.Dial(h.wsURL("/api/v1/stream?history=1000"), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		// The client reads nothing: the hub's writes stop once the
		// socket's buffers are full.
		time.Sleep(2 * time.Second)
	})
	t.Logf("an unread stream history of %d MiB: heap grew %d MiB", n*bodySize>>20, grow>>20)
	if grow > limit {
		t.Errorf("an unread stream history grew the heap by %d MiB, want under %d MiB", grow>>20, limit>>20)
	}
}

// heapGrowth runs fn and returns how far the heap rose above where it
// started while fn ran. The heap counts garbage not yet collected too, so
// the figure is an upper bound on what fn held.
func heapGrowth(t *testing.T, fn func()) uint64 {
	t.Helper()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapAlloc
	var peak atomic.Uint64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapAlloc > base && ms.HeapAlloc-base > peak.Load() {
				peak.Store(ms.HeapAlloc - base)
			}
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	fn()
	close(stop)
	<-done
	return peak.Load()
}
