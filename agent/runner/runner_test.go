package runner

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"sync"
	"testing"

	"github.com/sondehq/sonde/agent/capture/live"
	"github.com/sondehq/sonde/agent/pipeline"
	"github.com/sondehq/sonde/protocols"
	"github.com/sondehq/sonde/protocols/all"
	"github.com/sondehq/sonde/protocols/wire"
)

// sample is the capture the project recorded, which `sonde read` is
// checked against.
const sample = "../../cmd/sonde/testdata/sample.pcapng"

// TestFileToJSON: a file run through the runtime's JSON sink prints what
// `sonde read --json` prints (pipeline.RunFile with the default
// configuration, one JSON line per entry), byte for byte; the function sink
// sees the same entries, and the counters count them under their stable
// names.
func TestFileToJSON(t *testing.T) {
	if _, err := os.Stat(sample); err != nil {
		t.Fatal(err)
	}
	var want bytes.Buffer
	enc := json.NewEncoder(&want)
	enc.SetEscapeHTML(false)
	if _, err := pipeline.RunFile(sample, pipeline.DefaultConfig(all.Dissectors()), func(e *protocols.Entry) { enc.Encode(e) }); err != nil {
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
	if !bytes.Equal(out.Bytes(), want.Bytes()) {
		t.Errorf("JSON sink differs from sonde read's:\n%s\nwant:\n%s", out.String(), want.String())
	}
	lines := bytes.Count(want.Bytes(), []byte("\n"))
	if lines == 0 {
		t.Fatalf("%s gave no entries", sample)
	}
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
