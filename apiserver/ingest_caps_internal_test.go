package apiserver

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/sondehq/sonde/protocols/protocolstest"
	"github.com/sondehq/sonde/protocols/wire"
)

// setIngestLimits bounds s's agent connections and their batch memory.
func setIngestLimits(s *Server, conns int, memory int64) {
	s.ingest.lim.maxConns, s.ingest.lim.memory = conns, memory
}

// TestIngestMemoryBounded: twenty agent connections sending batches of
// nearly the largest message took the hub to 2 GB; nothing bounded the
// number of connections or what their batches held. Now a connection past
// the cap is refused with a sentence, counted, and the batches of all
// connections share a bounded memory, waiting for room rather than
// allocating; every batch is still stored.
func TestIngestMemoryBounded(t *testing.T) {
	const (
		conns   = 20
		batches = 3
		memory  = 64 << 20
	)
	token := []byte("s3cret-token-for-caps")
	srv, err := New(Config{DataDir: t.TempDir(), StorageLimit: 1 << 30, Token: token})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	setIngestLimits(srv, conns, memory)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, ln) }()
	defer func() { cancel(); <-served }()

	// One body of nearly wire.MaxMessageBytes, sent under each
	// connection's batch numbers.
	var body []byte
	n := 0
	payload := strings.Repeat("x", 48<<10)
	for {
		e := protocolstest.HTTPEntry(n)
		e.Warnings = []string{payload}
		j, _ := json.Marshal(e)
		if len(body)+len(j)+600 > wire.MaxMessageBytes-1024 {
			break
		}
		body = wire.AppendIndexed(body, wire.AppendIndex(nil, e), j)
		n++
	}

	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	var peak atomic.Uint64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		var ms runtime.MemStats
		for {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			runtime.ReadMemStats(&ms)
			if ms.HeapAlloc > peak.Load() {
				peak.Store(ms.HeapAlloc)
			}
		}
	}()

	hdr := http.Header{"Authorization": {"Bearer " + string(token)}}
	url := "ws://" + ln.Addr().String() + wire.Path
	var open []*websocket.Conn
	for i := range conns {
		c, _, err := websocket.DefaultDialer.Dial(url, hdr)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		defer c.Close()
		open = append(open, c)
	}
	if limited(srv) {
		_, resp, err := websocket.DefaultDialer.Dial(url, hdr)
		if err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("a connection past the cap: %v, %v; want 503", err, resp)
		}
		if got := counterValue(t, srv, rejectTooManyConns); got != 1 {
			t.Errorf("connections refused: counted %v, want 1", got)
		}
	}
	var wg sync.WaitGroup
	var stored atomic.Int64
	for i, c := range open {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := c.WriteJSON(wire.Hello{Type: wire.TypeHello, AgentID: fmt.Sprint("a", i), Node: "n"}); err != nil {
				t.Error(err)
				return
			}
			go func() {
				for seq := uint64(1); seq <= batches; seq++ {
					w, err := c.NextWriter(websocket.BinaryMessage)
					if err != nil {
						return
					}
					head, _ := wire.AppendBatch(nil, seq, nil)
					w.Write(append(head, '\n'))
					w.Write(body)
					if w.Close() != nil {
						return
					}
				}
			}()
			for range batches {
				var a wire.Ack
				c.SetReadDeadline(time.Now().Add(5 * time.Minute))
				if err := c.ReadJSON(&a); err != nil {
					t.Errorf("connection %d: %v", i, err)
					return
				}
				stored.Add(int64(a.Stored))
			}
		}()
	}
	wg.Wait()
	close(stop)
	<-sampled
	grew := int64(peak.Load()) - int64(base.HeapAlloc)
	t.Logf("%d connections, %d batches of %.1f MiB each: peak heap %.0f MiB above the start", conns, batches, float64(len(body))/(1<<20), float64(grew)/(1<<20))
	if want := int64(conns * batches * n); stored.Load() != want {
		t.Errorf("stored %d entries, want %d", stored.Load(), want)
	}
	// The heap holds garbage until the next collection (GOGC), and pebble
	// its memtables and the batch being committed, besides the batch memory.
	if limited(srv) && grew > 3*memory+128<<20 {
		t.Errorf("peak heap grew by %d MiB with %d MiB of batch memory", grew>>20, memory>>20)
	}
}

func limited(*Server) bool { return true }

// counterValue reads sonde_hub_ingest_rejected_total{reason}.
func counterValue(t *testing.T, s *Server, reason string) float64 {
	mfs, err := s.metrics.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "sonde_hub_ingest_rejected_total" {
			continue
		}
		for _, m := range mf.Metric {
			for _, l := range m.Label {
				if l.GetValue() == reason {
					return m.Counter.GetValue()
				}
			}
		}
	}
	return 0
}
