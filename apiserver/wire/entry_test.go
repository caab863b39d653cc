package wire_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/sondehq/sonde/agent/pipeline"
	"github.com/sondehq/sonde/apiserver/wire"
	"github.com/sondehq/sonde/protocols"
	"github.com/sondehq/sonde/protocols/all"
)

// sampleCapture is committed; the corpus beside the checkout adds every
// protocol's real captures when it is there.
const sampleCapture = "../../cmd/sonde/testdata/sample.pcapng"

// captures lists the sample and, when present, every corpus capture.
func captures(t testing.TB) []string {
	paths := []string{sampleCapture}
	dir := os.Getenv("SONDE_CORPUS")
	if dir == "" {
		dir = filepath.Join("..", "..", "..", "shared", "corpus")
	}
	more, _ := filepath.Glob(filepath.Join(dir, "pcaps", "*", "*"))
	if len(more) == 0 {
		t.Logf("no corpus at %s (set SONDE_CORPUS): comparing on the sample capture only", dir)
	}
	return append(paths, more...)
}

// entryLines returns every entry of the captures as encoding/json writes it.
func entryLines(t testing.TB) [][]byte {
	var lines [][]byte
	for _, p := range captures(t) {
		es, _, err := pipeline.ReadFile(p, pipeline.DefaultConfig(all.Dissectors()))
		if err != nil && p == sampleCapture {
			t.Fatalf("%s: %v", p, err)
		}
		for _, e := range es {
			e.Node = "node-1" // as agent/emit fills it in
			b, err := json.Marshal(e)
			if err != nil {
				t.Fatalf("%s: %v", p, err)
			}
			lines = append(lines, b)
		}
	}
	return lines
}

// TestUnmarshalEntryAsEncodingJSON: every real entry decodes to what
// encoding/json makes of it, and encodes back to the same bytes.
func TestUnmarshalEntryAsEncodingJSON(t *testing.T) {
	lines := entryLines(t)
	protos := map[protocols.Protocol]int{}
	for i, line := range lines {
		want := new(protocols.Entry)
		if err := json.Unmarshal(line, want); err != nil {
			t.Fatalf("entry %d: encoding/json: %v", i, err)
		}
		got := new(protocols.Entry)
		if err := wire.UnmarshalEntry(line, got); err != nil {
			t.Fatalf("entry %d: %v\n%s", i, err, line)
		}
		if !reflect.DeepEqual(got, want) {
			g, _ := json.Marshal(got)
			t.Fatalf("entry %d decodes differently:\n got %s\nwant %s", i, g, line)
		}
		if again, _ := json.Marshal(got); !bytes.Equal(again, line) {
			t.Fatalf("entry %d encodes back differently:\n got %s\nwant %s", i, again, line)
		}
		protos[got.Protocol]++
	}
	t.Logf("%d entries compared: %v", len(lines), protos)
}

// TestUnmarshalEntryRefuses: what is not an entry is an error, as with
// encoding/json, never a panic.
func TestUnmarshalEntryRefuses(t *testing.T) {
	tests := []struct {
		name, line string
	}{
		{"empty", ``},
		{"not an object", `["id"]`},
		{"cut short", `{"id":"1","protocol":"http1","start":"2026-01-02T03:04:05Z"`},
		{"trailing bytes", `{"id":"1"} {}`},
		{"id a number", `{"id":1}`},
		{"bad time", `{"start":"yesterday"}`},
		{"duration as text", `{"duration_ns":"1s"}`},
		{"duration fractional", `{"duration_ns":1.5}`},
		{"bad address", `{"src":{"ip":"300.1.1.1","port":80}}`},
		{"port too large", `{"src":{"port":70000}}`},
		{"bad base64 body", `{"http":{"request":{"body":{"size":1,"base64":"!!"}}}}`},
		{"body not an object", `{"http":{"request":{"body":"x"}}}`},
		{"deep nesting", `{"unknown":` + strings.Repeat(`[`, 20000)},
		{"control character", "{\"id\":\"a\x01\"}"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := json.Unmarshal([]byte(tt.line), new(protocols.Entry)); err == nil {
				t.Fatalf("encoding/json accepts it: the case is wrong")
			}
			err := wire.UnmarshalEntry([]byte(tt.line), new(protocols.Entry))
			if err == nil {
				t.Fatal("accepted")
			}
			t.Log(err)
		})
	}
}

// FuzzUnmarshalEntry: no input panics, and whatever UnmarshalEntry accepts
// encoding/json accepts too, into the same Entry.
func FuzzUnmarshalEntry(f *testing.F) {
	seeds := map[string]int{} // a few of each protocol
	for _, l := range entryLines(f) {
		var e struct{ Protocol string }
		json.Unmarshal(l, &e)
		if seeds[e.Protocol]++; seeds[e.Protocol] <= 5 {
			f.Add(l)
		}
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		got := new(protocols.Entry)
		if err := wire.UnmarshalEntry(line, got); err != nil {
			return
		}
		want := new(protocols.Entry)
		if err := json.Unmarshal(line, want); err != nil {
			t.Fatalf("accepted what encoding/json refuses (%v): %s", err, line)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("decodes differently from encoding/json: %s", line)
		}
	})
}

// BenchmarkUnmarshalEntry: decoding real entries, with encoding/json and
// with UnmarshalEntry. Reports the mean JSON size.
func BenchmarkUnmarshalEntry(b *testing.B) {
	lines := entryLines(b)
	size := 0
	for _, l := range lines {
		size += len(l)
	}
	for _, bb := range []struct {
		name   string
		decode func([]byte, *protocols.Entry) error
	}{
		{"encoding-json", func(l []byte, e *protocols.Entry) error { return json.Unmarshal(l, e) }},
		{"UnmarshalEntry", wire.UnmarshalEntry},
	} {
		b.Run(bb.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(size / len(lines)))
			i := 0
			for b.Loop() {
				if err := bb.decode(lines[i%len(lines)], new(protocols.Entry)); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}
