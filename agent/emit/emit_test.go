package emit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sondehq/sonde/protocols"
	"github.com/sondehq/sonde/protocols/protocolstest"
	"github.com/sondehq/sonde/protocols/wire"
)

func TestIngestURL(t *testing.T) {
	tests := []struct {
		hub  string
		want string
	}{
		{"http://sonde-hub.sonde:8898", "ws://sonde-hub.sonde:8898/api/v1/ingest"},
		{"https://hub.example.com/", "wss://hub.example.com/api/v1/ingest"},
		{"ws://10.0.0.1:8898/api/v1/ingest", "ws://10.0.0.1:8898/api/v1/ingest"},
		{"sonde-hub:8898", "ws://sonde-hub:8898/api/v1/ingest"},
		{"http://hub/prefix", "ws://hub/prefix/api/v1/ingest"},
	}
	for _, tt := range tests {
		if got := ingestURL(tt.hub); got != tt.want {
			t.Errorf("ingestURL(%q) = %q, want %q", tt.hub, got, tt.want)
		}
	}
}

func TestBackoff(t *testing.T) {
	s := New(Config{MinBackoff: 100 * time.Millisecond, MaxBackoff: 2 * time.Second})
	tests := []struct {
		attempt int
		lo, hi  time.Duration
	}{
		{0, 50 * time.Millisecond, 100 * time.Millisecond},
		{1, 100 * time.Millisecond, 200 * time.Millisecond},
		{4, 800 * time.Millisecond, 1600 * time.Millisecond},
		{5, time.Second, 2 * time.Second},
		{60, time.Second, 2 * time.Second},
	}
	for _, tt := range tests {
		seen := map[time.Duration]bool{}
		for range 50 {
			d := s.backoff(tt.attempt)
			if d < tt.lo || d > tt.hi {
				t.Fatalf("attempt %d: %v outside [%v, %v]", tt.attempt, d, tt.lo, tt.hi)
			}
			seen[d] = true
		}
		if len(seen) < 10 {
			t.Errorf("attempt %d: only %d distinct waits in 50: no jitter", tt.attempt, len(seen))
		}
	}
}

// TestOversizeDropped: an entry larger than a whole batch is dropped and
// counted, and the entries around it still go out in one batch.
func TestOversizeDropped(t *testing.T) {
	s := New(Config{MaxBatchBytes: 4 << 10, BatchSize: 10, FlushInterval: time.Nanosecond})
	small := func() *protocols.Entry {
		return &protocols.Entry{Protocol: protocols.Redis, Redis: &protocols.RedisRecord{Command: "GET"}}
	}
	big := small()
	big.Warnings = []string{string(make([]byte, 8<<10))}
	s.Send(small())
	s.Send(big)
	s.Send(small())
	b := s.nextBatch()
	if b == nil || b.n != 2 || b.seq != 1 {
		t.Fatalf("batch %+v", b)
	}
	if st := s.Stats(); st.Oversize != 1 || st.Buffered != 2 || st.Sent != 2 {
		t.Errorf("stats %+v", st)
	}
	if s.nextBatch() != nil {
		t.Error("a second batch from nothing")
	}
}

// TestCountersOutsideLock: the pipeline's counters callback takes the
// pipeline's lock, and the pipeline calls Send while holding it; the sender
// must not call the callback while it holds its own lock.
func TestCountersOutsideLock(t *testing.T) {
	var pipelineMu sync.Mutex
	var s *Sender
	s = New(Config{BatchSize: 1, FlushInterval: time.Nanosecond, Counters: func() map[string]uint64 {
		pipelineMu.Lock()
		defer pipelineMu.Unlock()
		return map[string]uint64{"capture_lost": 3}
	}})
	s.Send(&protocols.Entry{Protocol: protocols.Redis})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 1000 {
			pipelineMu.Lock()
			s.Send(&protocols.Entry{Protocol: protocols.Redis})
			pipelineMu.Unlock()
		}
	}()
	for range 1000 {
		if b := s.nextBatch(); b != nil {
			s.ack(b.seq)
			if !bytes.Contains(b.payload, []byte(`"capture_lost":3`)) {
				t.Fatalf("batch lacks the pipeline's counters: %.100s", b.payload)
			}
		}
	}
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("deadlock between Send and the counters callback")
	}
}

// TestBatchLayout: a batch is the header wire.AppendBatch makes, then each
// entry's index record and its JSON as json.Marshal encodes it, and a full
// batch stops at MaxBatchBytes.
func TestBatchLayout(t *testing.T) {
	tests := []struct {
		name     string
		maxBytes int
		wantN    int
	}{
		{"all fit", 1 << 20, 5},
		{"cut by size", 1500, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New(Config{MaxBatchBytes: tt.maxBytes, BatchSize: 5, FlushInterval: time.Nanosecond, Node: "n1", Source: "pcap"})
			var es []*protocols.Entry
			for i := range 5 {
				e := &protocols.Entry{ID: fmt.Sprint("e", i), Protocol: protocols.HTTP1, Warnings: []string{strings.Repeat("<&>\n", 10)}}
				es = append(es, e)
				s.Send(e)
			}
			b := s.nextBatch()
			if b == nil || b.n != tt.wantN {
				t.Fatalf("batch %+v, want %d entries", b, tt.wantN)
			}
			want, _ := wire.AppendBatch(nil, 1, s.ownCounters())
			want = append(want, '\n')
			for _, e := range es[:tt.wantN] {
				j, _ := json.Marshal(e)
				want = wire.AppendIndexed(want, wire.AppendIndex(nil, e), j)
			}
			if !bytes.Equal(b.payload, want) || len(b.payload) > tt.maxBytes {
				t.Errorf("payload (%d bytes)\n%s\nwant\n%s", len(b.payload), b.payload, want)
			}
		})
	}
}

// BenchmarkEncode: the agent's cost of making a batch, per entry: each
// entry's JSON and index record. The json.Marshal case is the JSON alone,
// which is what batches held before they carried index records.
func BenchmarkEncode(b *testing.B) {
	es := make([]*protocols.Entry, 500)
	for i := range es {
		es[i] = protocolstest.HTTPEntry(i)
	}
	b.Run("batch", func(b *testing.B) {
		s := New(Config{Node: "n1", Source: "ebpf"})
		for b.Loop() {
			if bt, used, _ := s.encode(es, nil); bt == nil || used != len(es) {
				b.Fatalf("encoded %d of %d", used, len(es))
			}
		}
		b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*len(es)), "µs/entry")
	})
	b.Run("json.Marshal", func(b *testing.B) {
		for b.Loop() {
			for _, e := range es {
				json.Marshal(e)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*len(es)), "µs/entry")
	})
}
