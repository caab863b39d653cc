package enrich

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/sondehq/sonde/protocols"
)

func TestParseStatic(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    Static
		wantErr error
	}{
		{name: "full", in: "# names\n10.0.0.1 pod=frontend-7d9f namespace=shop service=frontend workload=frontend node=node-1\n\n::ffff:10.0.0.2,ns=payments",
			want: Static{
				netip.MustParseAddr("10.0.0.1"): {Pod: "frontend-7d9f", Namespace: "shop", Service: "frontend", Workload: "frontend", Node: "node-1"},
				netip.MustParseAddr("10.0.0.2"): {Namespace: "payments"},
			}},
		{name: "no pairs", in: "10.0.0.1", wantErr: ErrSyntax},
		{name: "bad addr", in: "frontend pod=x", wantErr: ErrSyntax},
		{name: "unknown key", in: "10.0.0.1 zone=x", wantErr: ErrSyntax},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseStatic(strings.NewReader(tt.in))
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			for k, v := range tt.want {
				if got[k] != v {
					t.Errorf("%s = %+v, want %+v", k, got[k], v)
				}
			}
		})
	}
}

func TestEntryKeepsAgentNames(t *testing.T) {
	s := Static{netip.MustParseAddr("10.0.0.1"): {Pod: "resolved", Namespace: "shop"}}
	e := &protocols.Entry{
		Src: protocols.Endpoint{IP: netip.MustParseAddr("10.0.0.1"), Pod: "from-agent"},
		Dst: protocols.Endpoint{IP: netip.MustParseAddr("10.0.0.9")},
	}
	Entry(s, e)
	if e.Src.Pod != "from-agent" || e.Src.Namespace != "shop" || e.Dst.Pod != "" {
		t.Errorf("got src %+v dst %+v", e.Src, e.Dst)
	}
}
