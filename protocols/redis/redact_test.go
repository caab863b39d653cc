package redis

import (
	"fmt"
	"strings"
	"testing"

	"github.com/sondehq/sonde/protocols"
	"github.com/sondehq/sonde/protocols/protocolstest"
)

// command is a RESP array of bulk strings.
func respCommand(args ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	return b.String()
}

// TestRedactConfigGet: CONFIG GET answers with the secrets CONFIG SET
// hides; the reply must not show them, in RESP2 and in RESP3.
func TestRedactConfigGet(t *testing.T) {
	const s = "s3cr3tv4lue"
	chunks := protocolstest.Stream(
		respCommand("CONFIG", "GET", "requirepass"), respCommand("requirepass", s+"1"),
		respCommand("CONFIG", "GET", "*"), respCommand("maxmemory", "0", "masterauth", s+"2", "tls-key-file-pass", s+"3", "tls-client-key-file-pass", s+"4", "appendonly", "no"),
		respCommand("HELLO", "3"), "%1\r\n$6\r\nserver\r\n$5\r\nredis\r\n",
		respCommand("CONFIG", "GET", "masterauth"), "%1\r\n$10\r\nmasterauth\r\n$12\r\n"+s+"5\r\n",
	)
	res := replay(t, protocols.ConnInfo{}, chunks)
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	protocolstest.NoSecret(t, res.Entries, s)
	got := protocolstest.DescribeAll(res.Entries)
	if len(got) != 4 || !strings.Contains(res.Entries[1].Redis.Reply, `"maxmemory", "0"`) || !strings.Contains(res.Entries[1].Redis.Reply, `"appendonly", "no"`) {
		t.Errorf("entries: %q; reply %s", got, res.Entries[1].Redis.Reply)
	}
	for _, i := range []int{0, 1, 3} {
		if e := res.Entries[i]; !e.Redacted || !strings.Contains(e.Redis.Reply, protocols.Redacted) {
			t.Errorf("entry %d: %s", i, protocolstest.Describe(e))
		}
	}

	// A parameter the policy names is a secret too.
	info := protocols.ConnInfo{Options: protocols.DefaultOptions()}
	info.Options.Secrets.Names = []string{"my-module-key"}
	res = replay(t, info, protocolstest.Stream(respCommand("CONFIG", "GET", "my-module-*"), respCommand("my-module-key", s)))
	protocolstest.NoSecret(t, res.Entries, s)
}
