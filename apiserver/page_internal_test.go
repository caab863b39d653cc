package apiserver

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/sondehq/sonde/apiserver/query"
	"github.com/sondehq/sonde/protocols"
)

// TestShardedPages: pages scanned in several shards at once are the pages a
// single scan gives, in order, with the same cursors and totals.
func TestShardedPages(t *testing.T) {
	srv, err := New(Config{DataDir: t.TempDir(), StorageLimit: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	var es []*protocols.Entry
	for i := range 3000 {
		ns := "shop"
		if i%97 == 0 || (i > 2500 && i%5 == 0) {
			ns = "audit"
		}
		es = append(es, &protocols.Entry{Protocol: protocols.Redis, Start: time.Unix(int64(i), 0),
			Summary: protocols.Summary{Target: fmt.Sprint(i)}, Dst: protocols.Endpoint{Namespace: ns}, Redis: &protocols.RedisRecord{Command: "GET"}})
	}
	if err := srv.Ingest(es...); err != nil {
		t.Fatal(err)
	}
	walk := func(q string, limit int) (pages [][]string, totals []any) {
		p, err := query.Compile(q)
		if err != nil {
			t.Fatal(err)
		}
		var before uint64
		for {
			res, err := srv.search.page(context.Background(), p, before, limit)
			if err != nil || res.Partial {
				t.Fatalf("page: %v, partial %v", err, res.Partial)
			}
			var page []string
			for _, raw := range res.Entries {
				var e protocols.Entry
				json.Unmarshal(raw, &e)
				page = append(page, e.Summary.Target)
			}
			pages = append(pages, page)
			if res.Total != nil {
				totals = append(totals, *res.Total)
			} else {
				totals = append(totals, nil)
			}
			if res.Next == "" {
				return
			}
			fmt.Sscan(res.Next, &before)
		}
	}
	defer func(shards int, min uint64) { scanShards, minShard = shards, min }(scanShards, minShard)
	for _, q := range []string{`dst.namespace == "audit"`, `redis`, `dst.namespace == "none"`} {
		for _, limit := range []int{1, 7, 100, 1000} {
			scanShards, minShard = 1, 50_000
			wantPages, wantTotals := walk(q, limit)
			scanShards, minShard = 4, 100
			gotPages, gotTotals := walk(q, limit)
			if !slices.EqualFunc(gotPages, wantPages, slices.Equal) || fmt.Sprint(gotTotals) != fmt.Sprint(wantTotals) {
				t.Errorf("%s limit %d: sharded pages differ\n got %v %v\nwant %v %v", q, limit, len(gotPages), gotTotals, len(wantPages), wantTotals)
			}
		}
	}
}
