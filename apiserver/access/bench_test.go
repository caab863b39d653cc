package access

import (
	"context"
	"testing"

	"github.com/sondehq/sonde/apiserver/query"
	"github.com/sondehq/sonde/protocols"
	"github.com/sondehq/sonde/protocols/protocolstest"
	"github.com/sondehq/sonde/protocols/wire"
)

// allowOne allows one namespace, without asking anyone.
type allowOne string

func (a allowOne) Allowed(_ context.Context, _ *User, ns string) (bool, error) {
	return ns == string(a), nil
}

// BenchmarkScopedMatch: what a reader limited to some namespaces adds to
// every entry a scan or a stream matches, beside the same query for a
// reader who sees everything (the SubjectAccessReviews are asked once per
// request and namespace, so not here).
func BenchmarkScopedMatch(b *testing.B) {
	e := protocolstest.HTTPEntry(1)
	rec := wire.AppendIndex(nil, e)
	entry := func() *protocols.Entry { return e }
	p, err := query.Compile(`http && status_code >= 500`)
	if err != nil {
		b.Fatal(err)
	}
	sc, err := NewScope(context.Background(), allowOne("elsewhere"), &User{Name: "alice"})
	if err != nil {
		b.Fatal(err)
	}
	for name, prog := range map[string]*query.Program{"unrestricted": p, "restricted": query.Restrict(p, sc.Sees)} {
		b.Run(name, func(b *testing.B) {
			var x wire.Index
			for b.Loop() {
				x.Reset(rec)
				prog.MatchIndex(&x, entry)
			}
		})
	}
}
