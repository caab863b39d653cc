package runner

import (
	"bytes"
	"context"
	"errors"
	"os"
	"sync"
	"testing"

	"github.com/sondehq/sonde/agent/capture/live"
	"github.com/sondehq/sonde/protocols"
	"github.com/sondehq/sonde/protocols/wire"
)

// sample is the capture `sonde read` is checked against; its golden file is
// what `sonde read --json` prints for it.
const (
	sample       = "../../cmd/sonde/testdata/sample.pcapng"
	sampleGolden = "../../cmd/sonde/testdata/sample.golden.jsonl"
)

// TestFileToJSON: a file run through the runtime's JSON sink prints what
// `sonde read --json` prints, byte for byte, since both are the same
// pipeline; the function sink sees the same entries, and the counters count
// them under their stable names.
func TestFileToJSON(t *testing.T) {
	want, err := os.ReadFile(sampleGolden)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	var mu sync.Mutex
	var seen int
	r, err := Open(Config{File: sample, JSON: &out, Emit: func(*protocols.Entry) {
		mu.Lock()
		seen++
		mu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	if r.Source() != nil || r.SourceName() != "pcap" {
		t.Errorf("a file's runner: Source() = %v, SourceName() = %q; want nil and pcap", r.Source(), r.SourceName())
	}
	if err := r.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), want) {
		t.Errorf("JSON sink differs from %s:\n%s", sampleGolden, out.String())
	}
	lines := bytes.Count(want, []byte("\n"))
	if seen != lines {
		t.Errorf("the function sink saw %d entries, want %d", seen, lines)
	}
	if n := r.Counters()[wire.Entries]; n != uint64(lines) {
		t.Errorf("counter %s = %d, want %d", wire.Entries, n, lines)
	}
	if err := r.Run(context.Background()); !errors.Is(err, errRanTwice) {
		t.Errorf("a second Run: %v, want %v", err, errRanTwice)
	}
}

// TestOpenRefusesBadConfig: a configuration that does not say one thing to
// capture and somewhere to send it is refused before anything starts.
func TestOpenRefusesBadConfig(t *testing.T) {
	sink := func(*protocols.Entry) {}
	tests := []struct {
		name    string
		cfg     Config
		wantErr error
	}{
		{"no source", Config{Emit: sink}, ErrNoSource},
		{"two sources", Config{Live: &live.Config{}, File: sample, Emit: sink}, ErrNoSource},
		{"no sink", Config{File: sample}, ErrNoSink},
		{"hub without a token", Config{File: sample, Hub: &Hub{URL: "http://127.0.0.1:1"}}, ErrNoToken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Open(tt.cfg); !errors.Is(err, tt.wantErr) {
				t.Fatalf("Open: %v, want %v", err, tt.wantErr)
			}
		})
	}
}
