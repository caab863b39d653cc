package amqp

import (
	"bytes"
	"encoding/json"
	"flag"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sondehq/sonde/protocols"
	"github.com/sondehq/sonde/protocols/protocolstest"
)

var update = flag.Bool("update", false, "record testdata/*.chunks.json from the live broker and rewrite the golden files")

// recordedChunk is how a recorded conversation is kept in testdata.
type recordedChunk struct {
	Dir  protocols.Direction `json:"dir"`
	Time time.Time           `json:"time"`
	Data []byte              `json:"data"`
}

// goldenCases reads the conversations recorded from RabbitMQ, by name. A
// missing recording fails: it is a fixture, committed with the tests.
func goldenCases(t testing.TB) map[string][]protocolstest.Chunk {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "*.chunks.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no recorded conversations in testdata (%v): record them with go test -run TestRabbitMQ -update", err)
	}
	out := make(map[string][]protocolstest.Chunk)
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var rec []recordedChunk
		if err := json.Unmarshal(b, &rec); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		chunks := make([]protocolstest.Chunk, len(rec))
		for i, r := range rec {
			chunks[i] = protocolstest.Chunk{Dir: r.Dir, Time: r.Time, Data: r.Data}
		}
		out[strings.TrimSuffix(filepath.Base(f), ".chunks.json")] = chunks
	}
	return out
}

// saveRecording keeps a conversation the live test recorded, and its
// golden entries, when -update is given.
func saveRecording(t *testing.T, name string, chunks []protocolstest.Chunk) {
	t.Helper()
	if !*update {
		return
	}
	rec := make([]recordedChunk, len(chunks))
	kept := make([]protocolstest.Chunk, len(chunks))
	for i, c := range chunks {
		// UTC drops the monotonic clock reading, which the file cannot
		// keep, so the golden entries' durations are the file's.
		rec[i] = recordedChunk{Dir: c.Dir, Time: c.Time.UTC(), Data: c.Data}
		kept[i] = protocolstest.Chunk{Dir: c.Dir, Time: c.Time.UTC(), Data: c.Data}
	}
	b, err := json.MarshalIndent(rec, "", "\t")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join("testdata", name+".chunks.json"), append(b, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	golden(t, name, kept)
}

// golden replays a recorded conversation and compares the entries with
// testdata/<name>.golden.json (rewritten with -update).
func golden(t *testing.T, name string, chunks []protocolstest.Chunk) {
	t.Helper()
	res := replay(t, protocols.ConnInfo{Options: protocols.DefaultOptions()}, chunks)
	if res.Err != nil {
		t.Fatalf("%s: %v", name, res.Err)
	}
	got, err := json.MarshalIndent(res.Entries, "", "\t")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	path := filepath.Join("testdata", name+".golden.json")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (regenerate with go test -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s: entries differ from %s (regenerate with go test -update after checking the change)", name, path)
	}
}

// TestGolden replays the conversations recorded from RabbitMQ: a regression
// test on real traffic that needs no broker.
func TestGolden(t *testing.T) {
	cases := goldenCases(t)
	for _, name := range slices.Sorted(maps.Keys(cases)) {
		t.Run(name, func(t *testing.T) { golden(t, name, cases[name]) })
	}
}
