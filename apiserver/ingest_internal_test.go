package apiserver

import (
	"encoding/json"
	"net/http"
	"net/netip"
	"testing"

	"github.com/sondehq/sonde/apiserver/enrich"
	"github.com/sondehq/sonde/apiserver/internal/entryjson"
	"github.com/sondehq/sonde/protocols/protocolstest"
	"github.com/sondehq/sonde/protocols/wire"
)

// BenchmarkPrepare: the hub's work on a batch before storing it, per entry,
// for a batch with index records (as agent/emit sends them) and one of
// lines alone, with and without a resolver that names every server.
func BenchmarkPrepare(b *testing.B) {
	server := netip.MustParseAddr("10.1.0.7") // HTTPEntry's
	var indexed, lines []byte
	for i := range 1000 {
		e := protocolstest.HTTPEntry(i)
		e.Node, e.Source = "n1", "ebpf"
		j, _ := json.Marshal(e)
		indexed = wire.AppendIndexed(indexed, wire.AppendIndex(nil, e), j)
		if i > 0 {
			lines = append(lines, '\n')
		}
		lines = append(lines, j...)
	}
	names := enrich.Static{server: {Service: "orders", Workload: "orders"}}
	for _, bb := range []struct {
		name     string
		resolver enrich.Resolver
		indexed  bool
	}{
		{"indexed", nil, true},
		{"indexed-resolved", names, true},
		{"lines", nil, false},
		{"lines-resolved", names, false},
	} {
		b.Run(bb.name, func(b *testing.B) {
			p := &preparer{resolver: bb.resolver, node: "n1", source: "ebpf", dec: entryjson.NewEntryDecoder()}
			b.ReportAllocs()
			for b.Loop() {
				var out []prepared
				var err error
				if bb.indexed {
					out, err = p.indexedBatch(indexed)
				} else {
					out, err = p.lineBatch(lines)
				}
				if err != nil || len(out) != 1000 {
					b.Fatalf("%d entries, %v", len(out), err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1000/1e3, "µs/entry")
		})
	}
}

// TestBearerToken: the scheme's name is case-insensitive (RFC 9110 §11.1).
func TestBearerToken(t *testing.T) {
	tests := []struct {
		header, want string
		ok           bool
	}{
		{"Bearer abc", "abc", true},
		{"bearer abc", "abc", true},
		{"BEARER  abc", "abc", true},
		{"Basic abc", "", false},
		{"Bearerabc", "", false},
		{"", "", false},
	}
	for _, tt := range tests {
		r, _ := http.NewRequest("GET", "/", nil)
		r.Header.Set("Authorization", tt.header)
		if got, ok := bearerToken(r); got != tt.want || ok != tt.ok {
			t.Errorf("bearerToken(%q) = %q, %v; want %q, %v", tt.header, got, ok, tt.want, tt.ok)
		}
	}
}
