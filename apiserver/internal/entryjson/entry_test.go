package entryjson_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/sondehq/sonde/agent/pipeline"
	"github.com/sondehq/sonde/apiserver/internal/entryjson"
	"github.com/sondehq/sonde/protocols"
	"github.com/sondehq/sonde/protocols/all"
	"github.com/sondehq/sonde/protocols/wire"
)

// sampleCapture is committed; the corpus beside the checkout adds every
// protocol's real captures when it is there.
const sampleCapture = "../../../cmd/sonde/testdata/sample.pcapng"

// captures lists the sample and, when present, every corpus capture.
func captures(t testing.TB) []string {
	paths := []string{sampleCapture}
	dir := os.Getenv("SONDE_CORPUS")
	if dir == "" {
		dir = filepath.Join("..", "..", "..", "..", "shared", "corpus")
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
		for i, e := range es {
			e.Node = "node-1" // as agent/emit fills it in
			if i%3 == 1 {     // as if NAT had sent it elsewhere
				e.Via = &protocols.Endpoint{IP: netip.MustParseAddr("10.96.0.10"), Port: 53}
			}
			b, err := json.Marshal(e)
			if err != nil {
				t.Fatalf("%s: %v", p, err)
			}
			lines = append(lines, b)
		}
	}
	return lines
}

// TestDecodeAsEncodingJSON: every real entry decodes to what encoding/json
// makes of it, and encodes back to the same bytes.
func TestDecodeAsEncodingJSON(t *testing.T) {
	lines := entryLines(t)
	d := entryjson.NewEntryDecoder()
	protos := map[protocols.Protocol]int{}
	for i, line := range lines {
		want := new(protocols.Entry)
		if err := json.Unmarshal(line, want); err != nil {
			t.Fatalf("entry %d: encoding/json: %v", i, err)
		}
		got := new(protocols.Entry)
		if _, err := d.Decode(line, got); err != nil {
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

// TestMerge: an entry named after decoding, its names kept in an overlay
// and merged into the line, is what encoding/json writes for it with the
// hub's ID, whether the names are spliced in or, with a node or source from
// the agent's hello, the entry is encoded again.
func TestMerge(t *testing.T) {
	d := entryjson.NewEntryDecoder()
	name := func(ep *protocols.Endpoint, i int) {
		ep.Pod, ep.Namespace = fmt.Sprintf("pod-%d", i), `ns "quoted" <&>`
		ep.Service, ep.Workload, ep.Node = "svc", "deploy/w", "node-7"
	}
	for i, line := range entryLines(t) {
		e := new(protocols.Entry)
		at, err := d.Decode(line, e)
		if err != nil {
			t.Fatalf("entry %d: %v", i, err)
		}
		add := entryjson.Additions{At: at}
		for j, ep := range []*protocols.Endpoint{&e.Src, &e.Dst, e.Via} {
			if ep != nil && (i+j)%3 != 0 {
				name(ep, i)
				*[]**protocols.Endpoint{&add.Src, &add.Dst, &add.Via}[j] = ep
			}
		}
		if i%7 == 0 {
			e.Source, add.Source = "pcap", "pcap"
		}
		overlay := entryjson.AppendOverlay([]byte("o"), &add)[1:]
		got, err := entryjson.Merge([]byte("x"), line, overlay, uint64(i+1))
		if err != nil {
			t.Fatalf("entry %d: Merge: %v", i, err)
		}
		e.ID = fmt.Sprint(i + 1)
		if w, _ := json.Marshal(e); !bytes.Equal(got[1:], w) || got[0] != 'x' {
			t.Fatalf("entry %d:\n got %s\nwant x%s", i, got, w)
		}
	}
	tests := []struct {
		name, line, want string
	}{
		{"no ID", `{"src":{"ip":"","port":0},"dst":{"ip":"","port":0}}`, `{"id":"9","src":{"ip":"","port":0},"dst":{"ip":"","port":0}}`},
		{"ID last, spaced", `{ "src":{"ip":"","port":0}, "dst" : {"ip":"","port":0} ,"id" : "a" }`, `{ "src":{"ip":"","port":0}, "dst" : {"ip":"","port":0} ,"id" : "9" }`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			at, err := d.Scan([]byte(tt.line))
			if err != nil {
				t.Fatal(err)
			}
			overlay := entryjson.AppendOverlay(nil, &entryjson.Additions{At: at})
			if got, err := entryjson.Merge(nil, []byte(tt.line), overlay, 9); err != nil || string(got) != tt.want {
				t.Errorf("= %s, %v; want %s", got, err, tt.want)
			}
		})
	}
	// An entry stored before overlays is served as it was stored.
	if got, err := entryjson.Merge(nil, []byte(`{"id":"3"}`), nil, 4); err != nil || string(got) != `{"id":"3"}` {
		t.Errorf("without an overlay: %s, %v", got, err)
	}
}

// TestMergeEveryField: every field of an endpoint, whatever its value, is
// written as encoding/json writes it, and a field added to
// protocols.Endpoint fails here until the overlay keeps it.
func TestMergeEveryField(t *testing.T) {
	d := entryjson.NewEntryDecoder()
	line, _ := json.Marshal(&protocols.Entry{ID: "1", Via: &protocols.Endpoint{}})
	// Each character that encoding/json escapes or replaces, on its own.
	values := []string{"plain-name", `a"b`, `a\b`, "a<b", "a>b", "a&b", "a\x01b", "a\u2028b", "é", "a\xffb", ""}
	addrs := []string{"10.1.2.3", "fd00::1", "fe80::1%eth0", "::ffff:10.1.2.3", ""}
	for i, v := range values {
		e := new(protocols.Entry)
		at, err := d.Decode(line, e)
		if err != nil {
			t.Fatal(err)
		}
		for j, ep := range []*protocols.Endpoint{&e.Src, &e.Dst, e.Via} {
			rv := reflect.ValueOf(ep).Elem()
			for k := range rv.NumField() {
				switch f := rv.Field(k); f.Kind() {
				case reflect.String:
					f.SetString(v)
				case reflect.Uint16:
					f.SetUint(uint64(65535 - i))
				default:
					if f.Type() != reflect.TypeOf(netip.Addr{}) {
						t.Fatalf("endpoint field %s of a kind this test does not set", rv.Type().Field(k).Name)
					}
					if a := addrs[(i+j)%len(addrs)]; a != "" {
						f.Set(reflect.ValueOf(netip.MustParseAddr(a)))
					}
				}
			}
		}
		overlay := entryjson.AppendOverlay(nil, &entryjson.Additions{At: at, Src: &e.Src, Dst: &e.Dst, Via: e.Via})
		got, err := entryjson.Merge(nil, line, overlay, 1)
		if want, _ := json.Marshal(e); err != nil || !bytes.Equal(got, want) {
			t.Errorf("%q: %v\n got %s\nwant %s", v, err, got, want)
		}
	}
}

// TestDecodeRefuses: what is not an entry is an error, as with
// encoding/json, never a panic.
func TestDecodeRefuses(t *testing.T) {
	d := entryjson.NewEntryDecoder()
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
			_, err := d.Decode([]byte(tt.line), new(protocols.Entry))
			if err == nil {
				t.Fatal("accepted")
			}
			t.Log(err)
		})
	}
}

// FuzzDecode: no input panics, whatever the decoder accepts encoding/json
// accepts too, into the same Entry, and the line with its endpoints replaced
// merged with its endpoints and an ID decodes to that Entry again.
func FuzzDecode(f *testing.F) {
	seeds := map[string]int{} // a few of each protocol
	for _, l := range entryLines(f) {
		var e struct{ Protocol string }
		json.Unmarshal(l, &e)
		if seeds[e.Protocol]++; seeds[e.Protocol] <= 5 {
			f.Add(l)
		}
	}
	d := entryjson.NewEntryDecoder()
	f.Fuzz(func(t *testing.T, line []byte) {
		got := new(protocols.Entry)
		at, err := d.Decode(line, got)
		if err != nil {
			return
		}
		want := new(protocols.Entry)
		if err := json.Unmarshal(line, want); err != nil {
			t.Fatalf("accepted what encoding/json refuses (%v): %s", err, line)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("decodes differently from encoding/json: %s", line)
		}
		if at.Src == (entryjson.Span{}) || at.Dst == (entryjson.Span{}) {
			return
		}
		add := entryjson.Additions{At: at, Src: &got.Src, Dst: &got.Dst}
		if at.Via != (entryjson.Span{}) {
			add.Via = got.Via
		}
		merged, err := entryjson.Merge(nil, line, entryjson.AppendOverlay(nil, &add), 5)
		if err != nil {
			t.Fatal(err)
		}
		back := new(protocols.Entry)
		got.ID = "5"
		if err := json.Unmarshal(merged, back); err != nil || !reflect.DeepEqual(back, got) {
			t.Fatalf("merged line decodes differently (%v):\n%s\n%s", err, line, merged)
		}
	})
}

// TestScanAsDecode: scanning a real entry finds its endpoints where
// decoding it does.
func TestScanAsDecode(t *testing.T) {
	d := entryjson.NewEntryDecoder()
	for i, line := range entryLines(t) {
		want, err := d.Decode(line, new(protocols.Entry))
		if err != nil {
			t.Fatalf("entry %d: %v", i, err)
		}
		got, err := d.Scan(line)
		if err != nil || got != want {
			t.Fatalf("entry %d: Scan = %+v, %v; Decode found %+v\n%s", i, got, err, want, line)
		}
	}
}

// TestScanRefuses: what is not valid JSON, or not of the shape the hub
// relies on, is an error, never a panic.
func TestScanRefuses(t *testing.T) {
	d := entryjson.NewEntryDecoder()
	const eps = `"src":{"ip":"","port":0},"dst":{"ip":"","port":0}`
	tests := []struct {
		name, line string
	}{
		{"empty", ``},
		{"not an object", `["id"]`},
		{"cut short", `{"id":"1",` + eps},
		{"trailing bytes", `{"id":"1",` + eps + `} {}`},
		{"id a number", `{"id":1,` + eps + `}`},
		{"a second id", `{"id":"1",` + eps + `,"id":"2"}`},
		{"an escaped name", `{"id":"1",` + eps + `,"\u0069d":"2"}`},
		{"no src", `{"id":"1","dst":{"ip":"","port":0}}`},
		{"dst not an object", `{"id":"1","src":{"ip":"","port":0},"dst":[]}`},
		{"src twice", `{"id":"1",` + eps + `,"src":{"ip":"","port":0}}`},
		{"via null", `{"id":"1",` + eps + `,"via":null}`},
		{"bad JSON inside", `{"id":"1",` + eps + `,"http":{"request":{"body":[1,]}}}`},
		{"invalid UTF-8", "{\"id\":\"1\"," + eps + ",\"warnings\":[\"\xff\"]}"},
		{"control character", "{\"id\":\"a\x01\"," + eps + "}"},
		{"deep nesting", `{"id":"1",` + eps + `,"x":` + strings.Repeat(`[`, 20000)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := d.Scan([]byte(tt.line)); err == nil {
				t.Fatal("accepted")
			} else {
				t.Log(err)
			}
		})
	}
	for _, ok := range []string{
		`{"id":"1",` + eps + `,"via":{"ip":"10.0.0.1","port":53},"x":{"a":1,"a":2}}`,
		`{` + eps + `,"id":"1"}`,
		`{ ` + eps + ` }`,
	} {
		if _, err := d.Scan([]byte(ok)); err != nil {
			t.Errorf("refused %s: %v", ok, err)
		}
	}
}

// FuzzScan: no input panics, and what Scan accepts is valid JSON with the
// ID and the endpoints where Scan says.
func FuzzScan(f *testing.F) {
	for i, l := range entryLines(f) {
		if i%50 == 0 {
			f.Add(l)
		}
	}
	d := entryjson.NewEntryDecoder()
	f.Fuzz(func(t *testing.T, line []byte) {
		at, err := d.Scan(line)
		if err != nil {
			return
		}
		var top map[string]json.RawMessage
		if err := json.Unmarshal(line, &top); err != nil {
			t.Fatalf("accepted %q (%v)", line, err)
		}
		if id, ok := top["id"]; ok != (at.ID.Start != at.ID.End) || ok && (!bytes.HasPrefix(id, []byte(`"`)) || !bytes.Equal(id, line[at.ID.Start:at.ID.End])) {
			t.Fatalf("id at %+v in %q", at.ID, line)
		}
		for name, span := range map[string]entryjson.Span{"src": at.Src, "dst": at.Dst, "via": at.Via} {
			if v, ok := top[name]; ok != (span != entryjson.Span{}) || ok && !bytes.Equal(v, line[span.Start:span.End]) {
				t.Fatalf("%s at %+v in %q", name, span, line)
			}
		}
	})
}

// TestAgentIndexAsHub: the index record an agent writes for an entry is the
// one the hub would write for the entry it decodes from the agent's JSON,
// so that queries find the same entries however they arrived. Strings that
// are not valid UTF-8 are where the two could differ.
func TestAgentIndexAsHub(t *testing.T) {
	d := entryjson.NewEntryDecoder()
	var es []*protocols.Entry
	for _, p := range captures(t) {
		got, _, err := pipeline.ReadFile(p, pipeline.DefaultConfig(all.Dissectors()))
		if err != nil && p == sampleCapture {
			t.Fatalf("%s: %v", p, err)
		}
		es = append(es, got...)
	}
	es = append(es, &protocols.Entry{Protocol: protocols.Redis, Summary: protocols.Summary{Method: "GET", Target: "k\xff\xfe", Status: "x\xc3"},
		Redis: &protocols.RedisRecord{Command: "GET", Key: "k\xff\xfe", Error: "\xe2\x82"}, Src: protocols.Endpoint{Pod: "p\x80"}})
	for i, e := range es {
		line, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		decoded := new(protocols.Entry)
		if _, err := d.Decode(line, decoded); err != nil {
			t.Fatal(err)
		}
		if a, h := wire.AppendIndex(nil, e), wire.AppendIndex(nil, decoded); !bytes.Equal(a, h) {
			t.Fatalf("entry %d: the agent's record differs from the hub's:\n%q\n%q", i, a, h)
		}
	}
	t.Logf("%d entries compared", len(es))
}

// BenchmarkDecode: decoding real entries, with encoding/json and with an
// EntryDecoder, and scanning them. Reports the mean JSON size.
func BenchmarkDecode(b *testing.B) {
	lines := entryLines(b)
	d := entryjson.NewEntryDecoder()
	size := 0
	for _, l := range lines {
		size += len(l)
	}
	for _, bb := range []struct {
		name   string
		decode func([]byte, *protocols.Entry) error
	}{
		{"encoding-json", func(l []byte, e *protocols.Entry) error { return json.Unmarshal(l, e) }},
		{"EntryDecoder", func(l []byte, e *protocols.Entry) error { _, err := d.Decode(l, e); return err }},
		// What the hub does to an entry that comes with its index record.
		{"Scan", func(l []byte, _ *protocols.Entry) error { _, err := d.Scan(l); return err }},
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
