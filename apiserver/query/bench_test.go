package query

import (
	"testing"

	"github.com/sondehq/sonde/protocols"
	"github.com/sondehq/sonde/protocols/protocolstest"
	"github.com/sondehq/sonde/protocols/wire"
)

// BenchmarkMatchIndex: the cost of evaluating a query against one entry's
// index record, what a scan of stored history and every live subscriber pay
// per entry.
func BenchmarkMatchIndex(b *testing.B) {
	e := protocolstest.HTTPEntry(1)
	rec := wire.AppendIndex(nil, e)
	entry := func() *protocols.Entry { return e }
	for _, q := range []string{
		`http && status_code >= 500`,
		`method == "POST" && path.startsWith("/api")`,
		`dst.namespace == "shop" && elapsed > duration("1ms")`,
		`request.headers["content-type"].contains("json")`,
	} {
		p, err := Compile(q)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(q, func(b *testing.B) {
			var x wire.Index
			for b.Loop() {
				x.Reset(rec)
				p.MatchIndex(&x, entry)
			}
		})
	}
}
