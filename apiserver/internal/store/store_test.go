package store

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

func open(t testing.TB, dir string, limit int64, compression string) *Store {
	t.Helper()
	s, err := Open(Config{Dir: dir, Limit: limit, Compression: compression})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func records(from, n int) func(uint64) ([]Record, error) {
	return func(uint64) ([]Record, error) {
		recs := make([]Record, n)
		for i := range recs {
			recs[i] = Record{Start: time.Unix(int64(from+i), 0), JSON: []byte(fmt.Sprintf(`{"n":%d}`, from+i)), Overlay: []byte{byte(i), 7}, Index: []byte{byte(i)}}
		}
		return recs, nil
	}
}

func TestAppendScanRestart(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, MinLimit, "")
	tests := []struct {
		agent   string
		batch   uint64
		n       int
		wantDup bool
		first   uint64
	}{
		{agent: "a", batch: 1, n: 3, first: 1},
		{agent: "b", batch: 1, n: 2, first: 4},
		{agent: "a", batch: 1, n: 3, wantDup: true},
		{agent: "a", batch: 2, n: 1, first: 6},
		{agent: "", batch: 0, n: 2, first: 7},
	}
	for _, tt := range tests {
		first, dup, err := s.Append(tt.agent, tt.batch, records(int(tt.first), tt.n), nil)
		if err != nil || dup != tt.wantDup || (!dup && first != tt.first) {
			t.Fatalf("Append(%s, %d) = %d, %v, %v", tt.agent, tt.batch, first, dup, err)
		}
	}
	s.Close()
	s = open(t, dir, MinLimit, "")
	defer s.Close()
	var seqs []string
	s.Scan(context.Background(), 8, func(it *Item) bool {
		st, _ := it.Get()
		seqs = append(seqs, fmt.Sprintf("%d=%s%x@%d", it.Seq, st.JSON, st.Overlay, it.Start.Unix()))
		return true
	})
	if got, want := strings.Join(seqs, " "), `7={"n":7}0007@7 6={"n":6}0007@6 5={"n":5}0107@5 4={"n":4}0007@4 3={"n":3}0207@3 2={"n":2}0107@2 1={"n":1}0007@1`; got != want {
		t.Errorf("after restart:\n got %s\nwant %s", got, want)
	}
	if _, dup, _ := s.Append("a", 2, records(0, 1), nil); !dup {
		t.Error("batch 2 of a stored again after a restart")
	}
	if first, _, _ := s.Append("a", 3, records(9, 1), nil); first != 9 {
		t.Errorf("numbering after restart starts at %d, want 9", first)
	}
	if _, err := s.Get(100); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get(100): %v", err)
	}
	if st := s.Stats(); st.Count != 9 || st.HistoryStart.Unix() != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestOpenRefusesTinyLimit(t *testing.T) {
	if _, err := Open(Config{Dir: t.TempDir(), Limit: MinLimit - 1}); err == nil {
		t.Error("opened with a limit below MinLimit")
	}
}

// benchEntries makes distinct entries of about 1.3 KiB whose bodies are
// JSON text built from a small vocabulary with random values, so that
// compression meets something like real traffic rather than one record
// repeated.
func benchEntries(n int) [][]byte {
	r := rand.New(rand.NewPCG(1, 2))
	words := []string{"order", "item", "sku", "qty", "price", "customer", "status", "created", "shipping", "address", "note", "total"}
	out := make([][]byte, n)
	for i := range out {
		var body strings.Builder
		body.WriteString("{")
		for j := range 24 {
			if j > 0 {
				body.WriteString(",")
			}
			fmt.Fprintf(&body, `"%s_%d":%d`, words[r.IntN(len(words))], r.IntN(100), r.IntN(1_000_000))
		}
		body.WriteString("}")
		data, _ := json.Marshal([]byte(body.String()))
		out[i] = fmt.Appendf(nil, `{"id":"","protocol":"http1","start":"2026-11-25T22:00:%02d.%06dZ","duration_ns":%d,`+
			`"src":{"ip":"10.0.%d.%d","port":%d,"pod":"frontend-7d9f","namespace":"shop"},"dst":{"ip":"10.1.0.7","port":8080,"pod":"orders-5c4b","namespace":"payments"},`+
			`"summary":{"method":"POST","target":"/api/v1/orders/%d","status":"201"},"http":{"request":{"method":"POST","target":"/api/v1/orders/%d","path":"/api/v1/orders/%d","version":"HTTP/1.1",`+
			`"headers":[{"name":"Host","value":"orders"},{"name":"Content-Type","value":"application/json"},{"name":"X-Request-Id","value":"%016x"}],"body":{"size":%d,"data":%s}},`+
			`"response":{"version":"HTTP/1.1","status_code":201,"headers":[{"name":"Content-Type","value":"application/json"}],"body":{"size":2,"data":"e30="}}}}`,
			i%60, r.IntN(1e6), r.IntN(1e9), r.IntN(4), r.IntN(250), 30000+r.IntN(30000), i, i, i, r.Uint64(), body.Len(), data)
	}
	return out
}

// BenchmarkAppend compares pebble's block compressions on the same entries:
// the measurement behind the choice in doc.go (bbolt was measured outside
// the module, to keep it out of go.mod).
func BenchmarkAppend(b *testing.B) {
	entries := benchEntries(10_000)
	for _, c := range []string{"none", "snappy", "zstd"} {
		b.Run(c, func(b *testing.B) {
			dir := b.TempDir()
			s := open(b, dir, 64<<30, c)
			const batch = 500
			cpu0 := cpuTime()
			b.ResetTimer()
			for i := 0; i < b.N; i += batch {
				n := min(batch, b.N-i)
				_, _, err := s.Append("", 0, func(uint64) ([]Record, error) {
					recs := make([]Record, n)
					for j := range recs {
						e := entries[(i+j)%len(entries)]
						recs[j] = Record{Start: time.Now(), JSON: e, Overlay: e[:20], Index: e[:120]}
					}
					return recs, nil
				}, nil)
				if err != nil {
					b.Fatal(err)
				}
			}
			s.db.Flush() // its work and the compactions it starts count
			b.StopTimer()
			cpu := cpuTime() - cpu0
			s.Close()
			var size int64
			filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
				if err == nil && !fi.IsDir() {
					size += fi.Size()
				}
				return nil
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "entries/s")
			b.ReportMetric(float64(size)/float64(b.N), "disk-B/entry")
			b.ReportMetric(float64(len(entries[0])), "B/entry")
			b.ReportMetric(float64(cpu)/float64(b.N)/1e3, "cpu-µs/entry")
		})
	}
}

// cpuTime is the CPU time (user and system) the process has used, pebble's
// background flushes and compactions included.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestTablesHoldOnePrefix: no table holds both entries and index records
// (see onePrefixPerTable), after flushes and after compactions.
func TestTablesHoldOnePrefix(t *testing.T) {
	s := open(t, t.TempDir(), MinLimit, "")
	defer s.Close()
	for i := range 40 {
		if _, _, err := s.Append("a", uint64(i+1), records(i*100, 100), nil); err != nil {
			t.Fatal(err)
		}
		if i%10 == 9 {
			if err := s.db.Flush(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := s.db.Compact(context.Background(), []byte{0}, []byte{0xff}, false); err != nil {
		t.Fatal(err)
	}
	levels, err := s.db.SSTables()
	if err != nil {
		t.Fatal(err)
	}
	tables := 0
	for l, ts := range levels {
		for _, tb := range ts {
			tables++
			if lo, hi := tb.Smallest.UserKey, tb.Largest.UserKey; lo[0] != hi[0] {
				t.Errorf("L%d table %s spans %q to %q", l, tb.FileNum, lo, hi)
			}
		}
	}
	if tables < 3 {
		t.Errorf("%d tables: want at least entries, index records and agents apart", tables)
	}
}

// TestAgentsFromOlderStore: a store that kept each agent's batch number
// under a key per agent still recognises resent batches after the upgrade,
// and again after a second restart.
func TestAgentsFromOlderStore(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, MinLimit, "")
	if _, _, err := s.Append("", 0, records(1, 3), nil); err != nil {
		t.Fatal(err)
	}
	var v [16]byte
	v[7] = 5 // batch 5
	binary.BigEndian.PutUint64(v[8:], uint64(time.Now().UnixNano()))
	if err := s.db.Set(append([]byte{prefixAgent}, "old-agent"...), v[:], pebble.Sync); err != nil {
		t.Fatal(err)
	}
	s.Close()
	for restart := range 2 {
		s = open(t, dir, MinLimit, "")
		if _, dup, err := s.Append("old-agent", 5, records(0, 1), nil); !dup || err != nil {
			t.Errorf("restart %d: batch 5 stored again (%v)", restart, err)
		}
		if _, closer, err := s.db.Get(append([]byte{prefixAgent}, "old-agent"...)); !errors.Is(err, pebble.ErrNotFound) {
			if closer != nil {
				closer.Close()
			}
			t.Errorf("restart %d: the agent key is still there (%v)", restart, err)
		}
		s.Close()
	}
	s = open(t, dir, MinLimit, "")
	defer s.Close()
	if first, dup, err := s.Append("old-agent", 6, records(4, 1), nil); dup || err != nil || first != 4 {
		t.Errorf("batch 6: first %d, dup %v, %v", first, dup, err)
	}
}

// TestEntriesFromOlderStore: an entry stored before overlays, its JSON as
// served, reads back as that JSON without an overlay, beside entries
// stored since.
func TestEntriesFromOlderStore(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, MinLimit, "")
	if _, _, err := s.Append("", 0, records(1, 1), nil); err != nil {
		t.Fatal(err)
	}
	old := `{"id":"2","src":{"ip":"10.0.0.1","port":1,"pod":"p"}}`
	if err := s.db.Set(key(prefixEntry, 2), []byte(old), pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if err := s.db.Set(key(prefixIndex, 2), make([]byte, 9), pebble.Sync); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = open(t, dir, MinLimit, "")
	defer s.Close()
	if got, err := s.Get(2); err != nil || string(got.JSON) != old || got.Overlay != nil {
		t.Errorf("older entry: %q %q, %v", got.JSON, got.Overlay, err)
	}
	if got, err := s.Get(1); err != nil || string(got.JSON) != `{"n":1}` || string(got.Overlay) != "\x00\x07" {
		t.Errorf("entry stored since: %q %q, %v", got.JSON, got.Overlay, err)
	}
	if first, _, err := s.Append("", 0, records(3, 1), nil); err != nil || first != 3 {
		t.Errorf("appending after the older entry: %d, %v", first, err)
	}
}

// TestIDsPastAnEmptyStore: when eviction has removed every entry, numbering
// goes on from the last ID given, across a restart.
func TestIDsPastAnEmptyStore(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, MinLimit, "")
	if _, _, err := s.Append("a", 1, records(1, 5), nil); err != nil {
		t.Fatal(err)
	}
	s.marks = marks{} // everything is over the mark: evict it all
	if err := s.evict(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Count != 0 {
		t.Fatalf("%d entries left after evicting everything", st.Count)
	}
	s.Close()
	s = open(t, dir, MinLimit, "")
	defer s.Close()
	if first, dup, err := s.Append("a", 2, records(6, 1), nil); dup || err != nil || first != 6 {
		t.Errorf("first ID after an emptied store: %d (dup %v, %v), want 6", first, dup, err)
	}
}

// TestFlushesDoNotOverlap: the tables of successive flushes cover separate
// key ranges, whatever the agents, so that pebble moves them down the
// levels instead of rewriting them. (A key rewritten with every batch made
// every flush overlap the one before, and compactions cost a third of the
// store's work.)
func TestFlushesDoNotOverlap(t *testing.T) {
	s := open(t, t.TempDir(), 1<<30, "")
	defer s.Close()
	for i := range 12 {
		for _, agent := range []string{"a", "b"} {
			if _, _, err := s.Append(agent, uint64(i+1), records(i*10, 10), nil); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.db.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	m := s.db.Metrics()
	if n := m.Levels[0].Sublevels; n > 1 {
		t.Errorf("L0 has %d sublevels: flushes overlap", n)
	}
	for l := range m.Levels {
		if b := m.Levels[l].TableBytesCompacted; b > 0 {
			t.Errorf("L%d: %d bytes rewritten by compactions", l, b)
		}
	}
}

// TestBurstOfLargeBatchesStaysUnderLimit appends batches larger than the
// memtable, as fast as they come, and samples the directory beside them.
// Pebble takes such a batch's buffer over, so the store must measure it
// before committing: once it did not, and only the evictor's once-a-second
// look caught a burst, after the directory had grown to twice the limit.
func TestBurstOfLargeBatchesStaysUnderLimit(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, MinLimit, "")
	defer s.Close()
	entries := benchEntries(1000)
	batch := func(uint64) ([]Record, error) {
		recs := make([]Record, len(entries))
		for i, e := range entries {
			recs[i] = Record{Start: time.Unix(int64(i), 0), JSON: e, Overlay: e[:20], Index: e[:64]}
		}
		return recs, nil
	}
	stop := make(chan struct{})
	peak := make(chan int64)
	go func() {
		var p int64
		for {
			select {
			case <-stop:
				peak <- p
				return
			default:
			}
			p = max(p, dirBytes(dir))
		}
	}()
	for range 5 * MinLimit / (1000 * len(entries[0])) {
		if _, _, err := s.Append("", 0, batch, nil); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	p := <-peak
	t.Logf("limit %d MiB, peak %.1f MiB, evicted %d", MinLimit>>20, float64(p)/(1<<20), s.Stats().Evicted)
	if p > MinLimit {
		t.Errorf("directory peaked at %d bytes, over the %d limit", p, MinLimit)
	}
}

func dirBytes(dir string) int64 {
	var n int64
	filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			n += fi.Size()
		}
		return nil
	})
	return n
}

// TestDirectoryIsPrivate: another local user cannot read the captured
// traffic: the store's directory is its owner's alone, also when it existed
// with looser permissions.
func TestDirectoryIsPrivate(t *testing.T) {
	for _, existing := range []bool{false, true} {
		dir := filepath.Join(t.TempDir(), "data")
		if existing {
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		s := open(t, dir, MinLimit, "")
		fi, err := os.Stat(dir)
		if err != nil {
			t.Fatal(err)
		}
		if perm := fi.Mode().Perm(); perm != 0o700 {
			t.Errorf("existing %v: the store's directory has mode %o, want 700", existing, perm)
		}
		s.Close()
	}
}

// TestFatalErrorFailsTheStore: pebble's fatal error (a commit it cannot
// continue from) panicked through Append into the request handler, whose
// recovery kept the hub serving while every later batch panicked again. Now
// the store fails for good: Append and Health say so without calling into
// pebble, and Failed is closed for the process to exit on.
func TestFatalErrorFailsTheStore(t *testing.T) {
	s := open(t, t.TempDir(), MinLimit, "")
	defer s.Close()
	err := s.guard(func() error {
		pebbleLogger{l: s.log}.Fatalf("pebble: fatal commit error: %v", syscall.EIO)
		return nil
	})
	if !errors.Is(err, ErrFailed) {
		t.Fatalf("guard: %v, want ErrFailed", err)
	}
	select {
	case <-s.Failed():
	default:
		t.Fatal("Failed is not closed")
	}
	if _, _, err := s.Append("a", 1, records(0, 1), nil); !errors.Is(err, ErrFailed) || !strings.Contains(err.Error(), "input/output error") {
		t.Errorf("Append after a fatal error: %v, want ErrFailed with the cause", err)
	}
	if err := s.Health(); !errors.Is(err, ErrFailed) {
		t.Errorf("Health: %v", err)
	}
}
