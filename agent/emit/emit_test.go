package emit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
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

// TestOversizeCut: an entry larger than a whole batch is never dropped
// whole: it goes out cut to fit, with a warning that says so, counted, and
// the entries around it go out in the same batch.
func TestOversizeCut(t *testing.T) {
	s := New(Config{MaxBatchBytes: 4 << 10, BatchSize: 10, FlushInterval: time.Nanosecond})
	small := func() *protocols.Entry {
		return &protocols.Entry{Protocol: protocols.Redis, Redis: &protocols.RedisRecord{Command: "GET"}}
	}
	bigBody := protocolstest.HTTPEntry(1)
	bigBody.HTTP.Response.Body = protocols.Body{Size: 1 << 20, Data: bytes.Repeat([]byte("x"), 1<<20)}
	bigWarning := small()
	bigWarning.Warnings = []string{string(make([]byte, 8<<10))}
	for _, e := range []*protocols.Entry{small(), bigBody, small(), bigWarning, small()} {
		s.Send(e)
	}
	b := s.nextBatch()
	if b == nil || b.n != 5 || b.seq != 1 || len(b.payload) > 4<<10 {
		t.Fatalf("batch %+v", b)
	}
	if st := s.Stats(); st.Oversize != 2 || st.Dropped != 0 || st.Buffered != 5 || st.Sent != 5 {
		t.Errorf("stats %+v", st)
	}
	entries := decodeBatch(t, b.payload)
	body := entries[1].HTTP.Response.Body
	if !body.Truncated || body.Size != 1<<20 || len(body.Data) == 0 || !slices.Contains(entries[1].Warnings, cutWarning) {
		t.Errorf("cut entry: body of %d bytes kept of %d, truncated %v, warnings %q", len(body.Data), body.Size, body.Truncated, entries[1].Warnings)
	}
	if entries[1].Summary.Target != bigBody.Summary.Target {
		t.Errorf("cut entry lost its summary: %+v", entries[1].Summary)
	}
	if w := entries[3].Warnings; len(w) != 1 || w[0] != cutWarning || entries[3].Redis != nil || entries[3].Protocol != protocols.Redis {
		t.Errorf("an entry that does not fit even cut keeps only its summary and the reason: %+v", entries[3])
	}
}

// TestBufferBoundedInBytes: with the hub away, what the sender holds stays
// within BufferBytes however large the entries, the oldest entries make
// room for the newest, and every one dropped is counted.
func TestBufferBoundedInBytes(t *testing.T) {
	const limit = 4 << 20
	s := New(Config{BufferBytes: limit, BatchSize: 100})
	const n = 1000
	for i := range n {
		e := protocolstest.HTTPEntry(i)
		e.HTTP.Response.Body = protocols.Body{Size: 60 << 10, Data: bytes.Repeat([]byte("y"), 60<<10)}
		s.Send(e)
		if st := s.Stats(); st.BufferedBytes > limit {
			t.Fatalf("after %d entries the sender holds %d bytes, over its %d", i+1, st.BufferedBytes, limit)
		}
	}
	st := s.Stats()
	if st.Dropped == 0 || int(st.Dropped)+st.Buffered != n {
		t.Errorf("stats %+v: %d sent, every one must be held or counted as dropped", st, n)
	}
	if got := s.pending[len(s.pending)-1].e.Summary.Target; got != protocolstest.HTTPEntry(n-1).Summary.Target {
		t.Errorf("newest entry held is %s: the oldest must make room", got)
	}
	var heldBytes int
	for _, w := range s.pending {
		heldBytes += w.size
	}
	if heldBytes != st.BufferedBytes {
		t.Errorf("BufferedBytes %d, entries held charge %d", st.BufferedBytes, heldBytes)
	}
}

// decodeBatch returns the entries of a binary batch.
func decodeBatch(t *testing.T, payload []byte) []*protocols.Entry {
	t.Helper()
	_, body, _ := bytes.Cut(payload, []byte("\n"))
	var out []*protocols.Entry
	for len(body) > 0 {
		_, line, rest, err := wire.NextIndexed(body)
		if err != nil {
			t.Fatal(err)
		}
		e := new(protocols.Entry)
		if err := json.Unmarshal(line, e); err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
		body = rest
	}
	return out
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
		ws := make([]waiting, len(es))
		for i, e := range es {
			ws[i] = waiting{e, footprint(e)}
		}
		for b.Loop() {
			if bt, used, _, _ := s.encode(ws, nil); bt == nil || used != len(es) {
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
