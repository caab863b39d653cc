package apiserver_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/sondehq/sonde/agent/emit"
	"github.com/sondehq/sonde/apiserver"
	"github.com/sondehq/sonde/apiserver/enrich"
	"github.com/sondehq/sonde/protocols"
	"github.com/sondehq/sonde/protocols/wire"
)

// entryPool is a set of distinct ~1 KiB entries reused by the benchmarks.
func entryPool(n int) []*protocols.Entry {
	base := time.Now()
	out := make([]*protocols.Entry, n)
	for i := range out {
		out[i] = makeEntry(i, base.Add(time.Duration(i)*time.Microsecond))
	}
	return out
}

func meanJSONSize(es []*protocols.Entry) int {
	total := 0
	for _, e := range es[:min(len(es), 1000)] {
		b, _ := json.Marshal(e)
		total += len(b)
	}
	return total / min(len(es), 1000)
}

// BenchmarkIngest: sustained ingest from one agent over the websocket, each
// batch stored (synced) before its ack. Reports entries/s.
func BenchmarkIngest(b *testing.B) {
	h := startHub(b, apiserver.Config{DataDir: b.TempDir(), StorageLimit: 8 << 30}, "127.0.0.1:0")
	pool := entryPool(10_000)
	s := newSender(b, h.url, emit.Config{Node: "bench", BatchSize: 1000, MaxInFlight: 8, BufferEntries: 200_000, BufferBytes: 1 << 30, FlushInterval: 10 * time.Millisecond})
	cpu0 := cpuTime()
	b.ResetTimer()
	for i := range b.N {
		for s.Stats().Buffered >= 150_000 {
			flush(b, s) // stay under the buffer, never drop
		}
		s.Send(pool[i%len(pool)])
	}
	flush(b, s)
	b.StopTimer()
	if st := s.Stats(); st.Dropped != 0 || st.Acked != uint64(b.N) {
		b.Fatalf("sender stats %+v", st)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "entries/s")
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N)/1e3, "cpu-µs/entry")
	b.ReportMetric(float64(meanJSONSize(pool)), "JSON-B/entry")
}

// cpuTime is the CPU time (user and system) the process has used: on a
// shared machine, cost per entry is steadier than entries per second.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkIngestHub: the hub's side of ingest alone, from one agent and
// from four at once (a cluster has an agent per node; each connection's
// batches are checked on a goroutine of its own), and from one agent whose
// entries the hub's resolver names (as in a cluster, where agents send
// addresses only); then the same with batches of lines without index
// records, which the hub decodes. The entries (1,000 per batch, as
// agent/emit makes them) are encoded before the clock starts, as agents
// encode on their own nodes; each agent keeps eight batches in flight. cpu-µs/entry is the process's CPU time, which is the
// hub's plus the little the simulated agents take to write the batches.
func BenchmarkIngestHub(b *testing.B) {
	pool := entryPool(10_000)
	for _, e := range pool {
		e.Node, e.Source = "n", "ebpf" // as agent/emit fills them in
	}
	const batch, window = 1000, 8
	// Each batch's body (what follows its header line), made before the
	// clock starts, as agents make them on their own nodes: as agent/emit
	// makes it (index records and JSON), or lines of JSON alone.
	var indexedBodies, lineBodies [][]byte
	for from := 0; from < len(pool); from += batch {
		var indexed, lines []byte
		for _, e := range pool[from : from+batch] {
			j, _ := json.Marshal(e)
			indexed = wire.AppendIndexed(indexed, wire.AppendIndex(nil, e), j)
			lines = append(append(lines, '\n'), j...)
		}
		indexedBodies = append(indexedBodies, append([]byte{'\n'}, indexed...))
		lineBodies = append(lineBodies, lines)
	}
	// The resolver names the server, which makeEntry leaves without a service.
	names := enrich.Static{netip.MustParseAddr("10.1.0.7"): {Service: "orders", Workload: "orders"}}
	for _, tt := range []struct {
		name     string
		agents   int
		resolver enrich.Resolver
		lines    bool
	}{
		{"1-agent", 1, nil, false},
		{"4-agents", 4, nil, false},
		{"1-agent-resolved", 1, names, false},
		// Batches of lines without index records, which the hub decodes.
		{"1-agent-lines", 1, nil, true},
		{"1-agent-resolved-lines", 1, names, true},
	} {
		agents := tt.agents
		b.Run(tt.name, func(b *testing.B) {
			h := startHub(b, apiserver.Config{DataDir: b.TempDir(), StorageLimit: 8 << 30, Resolver: tt.resolver}, "127.0.0.1:0")
			n := (b.N + batch*agents - 1) / (batch * agents) // batches per agent
			cpu0 := cpuTime()
			b.ResetTimer()
			var wg sync.WaitGroup
			for a := range agents {
				wg.Add(1)
				go func() {
					defer wg.Done()
					hdr := http.Header{"Authorization": {"Bearer " + string(testToken)}}
					c, _, err := websocket.DefaultDialer.Dial(h.wsURL(wire.Path), hdr)
					if err != nil {
						b.Error(err)
						return
					}
					defer c.Close()
					c.WriteJSON(wire.Hello{Type: wire.TypeHello, AgentID: fmt.Sprint("bench-", a), Node: "n"})
					acked := make(chan struct{}, window)
					go func() {
						for range n {
							if _, _, err := c.ReadMessage(); err != nil {
								return
							}
							acked <- struct{}{}
						}
					}()
					typ, bodies := websocket.BinaryMessage, indexedBodies
					if tt.lines {
						typ, bodies = websocket.TextMessage, lineBodies
					}
					for i := range n {
						if i >= window {
							<-acked
						}
						header, _ := wire.AppendBatch(nil, uint64(i+1), nil)
						w, err := c.NextWriter(typ)
						if err == nil {
							w.Write(header)
							w.Write(bodies[(i+a)%len(bodies)])
							err = w.Close()
						}
						if err != nil {
							b.Error(err)
							return
						}
					}
					for range min(n, window) {
						<-acked
					}
				}()
			}
			wg.Wait()
			b.StopTimer()
			total := n * batch * agents
			b.ReportMetric(float64(total)/b.Elapsed().Seconds(), "entries/s")
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(total)/1e3, "cpu-µs/entry")
		})
	}
}

// BenchmarkIngestInProcess: the hub's own cost per entry (encode, index,
// store, publish) without the websocket, as `sonde read --serve` loads.
func BenchmarkIngestInProcess(b *testing.B) {
	h := startHub(b, apiserver.Config{DataDir: b.TempDir(), StorageLimit: 8 << 30}, "127.0.0.1:0")
	pool := entryPool(10_000)
	cpu0 := cpuTime()
	b.ResetTimer()
	for i := 0; i < b.N; i += 1000 {
		n := min(1000, b.N-i)
		batch := make([]*protocols.Entry, n)
		for j := range batch {
			e := *pool[(i+j)%len(pool)]
			batch[j] = &e
		}
		if err := h.srv.Ingest(batch...); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "entries/s")
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N)/1e3, "cpu-µs/entry")
}

const million = 1_000_000

// rareNamespace marks one entry in rareEvery, for a selective query.
const rareEvery = 10_000

var (
	bigOnce    sync.Once
	bigHub     *hub
	bigDir     string
	bigLoad    time.Duration
	bigLoadCPU time.Duration
)

// millionHub stores 1,000,000 entries once per process. Only benchmarks
// call it, so `go test` never pays for it.
func millionHub(b *testing.B) *hub {
	bigOnce.Do(func() {
		dir, err := os.MkdirTemp("", "sonde-bench-")
		if err != nil {
			b.Fatal(err)
		}
		bigDir = dir
		srv, err := apiserver.New(apiserver.Config{DataDir: dir, StorageLimit: 16 << 30})
		if err != nil {
			b.Fatal(err)
		}
		t0, cpu0 := time.Now(), cpuTime()
		base := time.Now().Add(-time.Hour)
		for i := 0; i < million; i += 5000 {
			batch := make([]*protocols.Entry, 5000)
			for j := range batch {
				e := makeEntry(i+j, base.Add(time.Duration(i+j)*3*time.Millisecond))
				if (i+j)%rareEvery == rareEvery/2 {
					e.Dst.Namespace = "audit"
				}
				batch[j] = e
			}
			if err := srv.Ingest(batch...); err != nil {
				b.Fatal(err)
			}
		}
		bigLoad, bigLoadCPU = time.Since(t0), cpuTime()-cpu0
		srv.Close()
		// Serve from a fresh process state: a restarted hub over the stored data.
		bigHub = startHubNoCleanup(b, apiserver.Config{DataDir: dir, StorageLimit: 16 << 30})
	})
	if bigHub == nil {
		b.Skip("the million-entry store could not be built")
	}
	return bigHub
}

// startHubNoCleanup is startHub for a hub that outlives one benchmark.
func startHubNoCleanup(b *testing.B, cfg apiserver.Config) *hub {
	cfg.Token = testToken
	srv, err := apiserver.New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	h := &hub{t: b, srv: srv}
	ln, err := netListen()
	if err != nil {
		b.Fatal(err)
	}
	h.addr = ln.Addr().String()
	h.url = "http://" + h.addr
	go srv.Serve(context.Background(), ln)
	return h
}

func TestMain(m *testing.M) {
	code := m.Run()
	if bigDir != "" {
		os.RemoveAll(bigDir)
	}
	os.Exit(code)
}

// BenchmarkFirstPage1M: time to the first page (100 entries) of a query over
// 1,000,000 stored entries, through GET /api/v1/entries.
func BenchmarkFirstPage1M(b *testing.B) {
	h := millionHub(b)
	b.Logf("loading 1,000,000 entries in-process took %v (%.0f entries/s), %v of CPU (%.1f µs/entry)",
		bigLoad, million/bigLoad.Seconds(), bigLoadCPU, float64(bigLoadCPU.Microseconds())/million)
	tests := []struct {
		name, q string
		want    int
	}{
		{"selective index", `dst.namespace == "audit"`, million / rareEvery},
		{"selective two fields", `http && dst.namespace == "audit"`, -1},
		{"broad", `http && status_code >= 500`, 100},
		{"all", ``, 100},
		{"needs entry", `dst.namespace == "audit" && request.headers["content-type"].contains("json")`, -1},
	}
	for _, tt := range tests {
		b.Run(tt.name, func(b *testing.B) {
			var p struct {
				Entries []json.RawMessage
				Partial bool
				Scanned uint64
			}
			cpu0 := cpuTime()
			for b.Loop() {
				resp, err := http.Get(h.url + "/api/v1/entries?limit=100&q=" + urlEscape(tt.q))
				if err != nil {
					b.Fatal(err)
				}
				json.NewDecoder(resp.Body).Decode(&p)
				resp.Body.Close()
			}
			if tt.want >= 0 && !p.Partial && len(p.Entries) != tt.want {
				b.Errorf("%d entries, want %d", len(p.Entries), tt.want)
			}
			b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/page")
			b.ReportMetric(float64((cpuTime()-cpu0).Milliseconds())/float64(b.N), "cpu-ms/page")
			b.ReportMetric(float64(p.Scanned), "scanned")
			if p.Partial {
				b.Logf("%s: partial page after the scan budget: %d entries", tt.name, len(p.Entries))
			}
		})
	}
	debug.FreeOSMemory()
	rss, hwm := procStatus("VmRSS"), procStatus("VmHWM")
	b.ReportMetric(rss, "rss_MiB")
	b.Logf("process RSS with the 1,000,000-entry hub open and queried: %.0f MiB (peak %.0f MiB); data dir %.0f MiB",
		rss, hwm, float64(dirSize(b, bigDir))/(1<<20))
}

// procStatus reads a VmXXX line of /proc/self/status in MiB.
func procStatus(key string) float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, key+":"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 64)
			return kb / 1024
		}
	}
	return 0
}

// BenchmarkStreamLatency: time from an agent writing a one-entry batch to a
// stream client receiving it (the hub stores it, synced, in between), at a
// steady 500 entries/s. Reports p50 and p99.
func BenchmarkStreamLatency(b *testing.B) {
	h := startHub(b, apiserver.Config{DataDir: b.TempDir(), StorageLimit: 1 << 30}, "127.0.0.1:0")
	c := dialStream(b, h, "", nil, nil)
	readUntil(b, c, 5*time.Second, func(m streamMsg) bool { return m.Type == "history_end" })
	hdr := http.Header{"Authorization": {"Bearer " + string(testToken)}}
	ag, _, err := websocket.DefaultDialer.Dial(h.wsURL(wire.Path), hdr)
	if err != nil {
		b.Fatal(err)
	}
	defer ag.Close()
	ag.WriteJSON(wire.Hello{Type: wire.TypeHello, AgentID: "lat", Node: "n"})
	go func() { // drain acks
		for {
			if _, _, err := ag.ReadMessage(); err != nil {
				return
			}
		}
	}()
	pool := entryPool(1000)
	sent := make([]time.Time, b.N)
	lat := make([]time.Duration, 0, b.N)
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.SetReadDeadline(time.Now().Add(time.Duration(b.N)*10*time.Millisecond + 30*time.Second))
		for len(lat) < b.N {
			var m streamMsg
			if err := c.ReadJSON(&m); err != nil {
				b.Error(err)
				return
			}
			if m.Type != "entry" {
				continue
			}
			i, _ := strconv.Atoi(strings.TrimPrefix(m.Entry.Summary.Method, "m-"))
			lat = append(lat, time.Since(sent[i]))
		}
	}()
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	b.ResetTimer()
	for i := range b.N {
		<-tick.C
		e := *pool[i%len(pool)]
		e.Summary.Method = "m-" + strconv.Itoa(i)
		line, _ := json.Marshal(&e)
		msg, _ := wire.AppendBatch(nil, uint64(i+1), nil, line)
		sent[i] = time.Now()
		if err := ag.WriteMessage(websocket.TextMessage, msg); err != nil {
			b.Fatal(err)
		}
	}
	<-done
	b.StopTimer()
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	p := func(q float64) float64 { return float64(lat[min(int(q*float64(len(lat))), len(lat)-1)]) / 1e6 }
	b.ReportMetric(p(0.50), "p50_ms")
	b.ReportMetric(p(0.99), "p99_ms")
	b.ReportMetric(0, "ns/op")
	b.Logf("ingest→stream over %d entries: p50 %.2f ms, p99 %.2f ms, max %.2f ms", len(lat), p(0.5), p(0.99), p(1))
}
