package protocolstest

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/sondehq/sonde/protocols"
)

// NoSecret fails t when any entry, in the JSON form it leaves the agent in,
// holds one of secrets, or when no entry says it was redacted. Bodies kept
// as text show in that form as they are, so a secret in them is found too.
func NoSecret(t testing.TB, entries []*protocols.Entry, secrets ...string) {
	t.Helper()
	if len(entries) == 0 {
		t.Fatal("no entries")
	}
	redacted := false
	for _, e := range entries {
		out, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range secrets {
			if strings.Contains(string(out), s) {
				t.Errorf("secret %q left in %s", s, out)
			}
		}
		redacted = redacted || e.Redacted
	}
	if !redacted {
		t.Errorf("no entry marked Redacted: %s", DescribeAll(entries))
	}
}
