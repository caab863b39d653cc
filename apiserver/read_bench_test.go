package apiserver_test

import (
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"testing"

	"github.com/sondehq/sonde/apiserver"
	"github.com/sondehq/sonde/apiserver/enrich"
)

// BenchmarkRead: reading stored entries as browsers do, a page of 100 and
// one entry in full, with the server of every entry named by the resolver
// (so that every read merges names into the agent's JSON).
func BenchmarkRead(b *testing.B) {
	names := enrich.Static{netip.MustParseAddr("10.1.0.7"): {Service: "orders", Workload: "orders"}}
	h := startHub(b, apiserver.Config{DataDir: b.TempDir(), StorageLimit: 1 << 30, Resolver: names}, "127.0.0.1:0")
	pool := entryPool(10_000)
	if err := h.srv.Ingest(pool...); err != nil {
		b.Fatal(err)
	}
	read := func(b *testing.B, path func(i int) string) {
		for i := 0; b.Loop(); i++ {
			resp, err := http.Get(h.url + path(i))
			if err != nil {
				b.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Fatalf("status %d", resp.StatusCode)
			}
		}
	}
	b.Run("page", func(b *testing.B) {
		read(b, func(int) string { return "/api/v1/entries?limit=100" })
	})
	b.Run("entry", func(b *testing.B) {
		read(b, func(i int) string { return fmt.Sprintf("/api/v1/entries/%d", 1+i%10_000) })
	})
}
