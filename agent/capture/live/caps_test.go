package live

import (
	"slices"
	"strings"
	"testing"
)

func TestMissingCapabilities(t *testing.T) {
	for _, tt := range []struct {
		capEff string
		want   []string
	}{
		{"000000c000003000", nil},                                  // BPF, PERFMON, NET_ADMIN, NET_RAW
		{"0000004000003000", []string{"CAP_BPF"}},                  // PERFMON, NET_ADMIN, NET_RAW
		{"000000c000002000", []string{"CAP_NET_ADMIN"}},            // BPF, PERFMON, NET_RAW
		{"0000000000002000", []string{"CAP_NET_ADMIN", "CAP_BPF"}}, // NET_RAW alone
		{"000001ffffffffff", nil},                                  // root's full set
	} {
		status := "Name:\tsonde\nCapInh:\t0000000000000000\nCapEff:\t" + tt.capEff + "\nSeccomp:\t2\n"
		if got := missingCapabilities(strings.NewReader(status)); !slices.Equal(got, tt.want) {
			t.Errorf("CapEff %s: missing %v, want %v", tt.capEff, got, tt.want)
		}
	}
	if got := missingCapabilities(strings.NewReader("Name:\tx\n")); got != nil {
		t.Errorf("no CapEff line: %v", got)
	}
}
