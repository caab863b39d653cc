package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sondehq/sonde/agent/emit"
	"github.com/sondehq/sonde/agent/pipeline"
	"github.com/sondehq/sonde/apiserver"
	"github.com/sondehq/sonde/apiserver/query"
	"github.com/sondehq/sonde/protocols"
	"github.com/sondehq/sonde/protocols/all"
	"github.com/sondehq/sonde/protocols/wire"
	"github.com/sondehq/sonde/web"
)

var updateScreenshots = flag.Bool("update-screenshots", false, "write the browser tests' screenshots to docs/screenshots")

// defaultChromium is Debian's package's binary; SONDE_CHROMIUM overrides it.
const defaultChromium = "/usr/bin/chromium"

const (
	agentToken = "e2e-token"
	// streamQueue is small so that a burst overflows a browser's stream
	// queue for certain, and large enough for the live batches the tests send.
	streamQueue = 64
	// lossCounter is what the test agent reports once asked to lose data:
	// one the contract counts as loss, so the hub lists it in the agent's loss.
	lossCounter = wire.CaptureLost
)

// captures feed the hub; the corpus ones are used when ../shared is there.
var captures = []struct {
	path     string
	required bool
}{
	{"../cmd/sonde/testdata/sample.pcapng", true},
	{"../../shared/corpus/pcaps/grpc/packt-grpc-go__Unary.pcapng", false},
	{"../../shared/corpus/pcaps/grpc/deepflow__http__grpc-unary.pcap", false},
	{"../../shared/corpus/pcaps/grpc/suricata-verify__http2-errorcode__input.pcap", false},
	{"../../shared/corpus/pcaps/redis/deepflow__redis__redis.pcap", false},
	{"../../shared/corpus/pcaps/kafka/deepflow__kafka__00-produce-v9.pcap", false},
	{"../../shared/corpus/pcaps/kafka/deepflow__kafka__01-fetch-v12-ok.pcap", false},
	{"../../shared/corpus/pcaps/kafka/ndpi__kafka.pcapng", false},
	{"../../shared/corpus/pcaps/amqp/deepflow__amqp__amqp1.pcap", false},
	{"../../shared/corpus/pcaps/amqp/deepflow__amqp__amqp-error.pcap", false},
}

// browserTools returns node's path, installing the npm packages when
// node_modules lacks them; it skips the test, saying what is missing, when
// Chromium, Node or npm is not installed (`make deps` installs them).
func browserTools(t testing.TB) string {
	t.Helper()
	chromium := defaultChromium
	if v := os.Getenv("SONDE_CHROMIUM"); v != "" {
		chromium = v
	}
	if _, err := os.Stat(chromium); err != nil {
		t.Skipf("Chromium is missing: %s not found (Debian: apt-get install -y chromium)", chromium)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("Node.js is missing: no node in PATH (Debian: apt-get install -y nodejs npm)")
	}
	if _, err := os.Stat("node_modules/playwright-core/package.json"); err != nil {
		npm, err := exec.LookPath("npm")
		if err != nil {
			t.Skip("npm is missing: no npm in PATH to install web/node_modules (Debian: apt-get install -y npm)")
		}
		cmd := exec.Command(npm, "ci", "--no-audit", "--no-fund")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("npm ci in web/: %v\n%s", err, out)
		}
	}
	return node
}

// lab is a hub on loopback, an agent streaming into it, and the entries
// the captures gave.
type lab struct {
	t        testing.TB
	srv      *apiserver.Server
	url      string
	loaded   []*protocols.Entry
	sender   *emit.Sender
	lost     atomic.Uint64
	mu       sync.Mutex
	rng      *rand.Rand
	template []*protocols.Entry
}

func newLab(t testing.TB, queue int) *lab {
	t.Helper()
	srv, err := apiserver.New(apiserver.Config{
		DataDir: t.TempDir(), Token: []byte(agentToken), UI: web.Handler(),
		StreamQueue: queue, Version: "e2e", StorageLimit: 8 << 30,
	})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("hub: %v", err)
		}
		srv.Close()
	})
	return &lab{t: t, srv: srv, url: "http://" + ln.Addr().String(), rng: rand.New(rand.NewPCG(1, 2))}
}

// load runs the captures through the agent's pipeline into the hub.
func (l *lab) load() {
	l.t.Helper()
	cfg := pipeline.DefaultConfig(all.Dissectors())
	cfg.Source = "pcap"
	for _, c := range captures {
		if _, err := os.Stat(c.path); err != nil {
			if c.required {
				l.t.Fatalf("capture %s: %v", c.path, err)
			}
			l.t.Logf("corpus capture %s is not there: its entries are not loaded", c.path)
			continue
		}
		es, _, err := pipeline.ReadFile(c.path, cfg)
		if err != nil {
			l.t.Fatalf("reading %s: %v", c.path, err)
		}
		l.loaded = append(l.loaded, es...)
	}
	for _, e := range l.loaded {
		l.template = append(l.template, clone(l.t, e))
	}
	if err := l.srv.Ingest(l.loaded...); err != nil {
		l.t.Fatal(err)
	}
}

func clone(t testing.TB, e *protocols.Entry) *protocols.Entry {
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	out := new(protocols.Entry)
	if err := json.Unmarshal(b, out); err != nil {
		t.Fatal(err)
	}
	return out
}

// workload is a named endpoint of the pretend cluster the live entries
// come from (data only: nothing is sent to these addresses).
func workload(name, ip string, port uint16) protocols.Endpoint {
	return protocols.Endpoint{IP: netip.MustParseAddr(ip), Port: port, Namespace: "shop",
		Pod: name + "-7d9f8c-x2k4p", Workload: name, Service: name}
}

// topology says who talks to whom, by protocol.
var topology = map[protocols.Protocol][][2]protocols.Endpoint{
	protocols.HTTP1: {{workload("frontend", "10.244.1.10", 0), workload("api", "10.244.2.20", 8080)}},
	protocols.HTTP2: {{workload("frontend", "10.244.1.10", 0), workload("api", "10.244.2.20", 8080)}},
	protocols.GRPC:  {{workload("api", "10.244.2.20", 0), workload("orders", "10.244.2.30", 50051)}},
	protocols.Redis: {{workload("api", "10.244.2.20", 0), workload("redis", "10.244.3.40", 6379)}, {workload("orders", "10.244.2.30", 0), workload("redis", "10.244.3.40", 6379)}},
	protocols.Kafka: {{workload("orders", "10.244.2.30", 0), workload("kafka", "10.244.3.50", 9092)}},
	protocols.AMQP:  {{workload("orders", "10.244.2.30", 0), workload("rabbitmq", "10.244.3.60", 5672)}, {workload("mailer", "10.244.1.70", 0), workload("rabbitmq", "10.244.3.60", 5672)}},
}

// live makes n entries like the captured ones, from named workloads, with
// start times spread over the last ten minutes in order.
func (l *lab) live(n int) []*protocols.Entry {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	out := make([]*protocols.Entry, n)
	for i := range out {
		e := clone(l.t, l.template[l.rng.IntN(len(l.template))])
		pairs := topology[e.Protocol]
		p := pairs[l.rng.IntN(len(pairs))]
		e.Src, e.Dst = p[0], p[1]
		e.Src.Port = uint16(32768 + l.rng.IntN(28000))
		e.Node, e.Source = "worker-1", "ebpf"
		e.Start = now.Add(-time.Duration(n-i) * 10 * time.Minute / time.Duration(n+1))
		out[i] = e
	}
	return out
}

// mapNodes are the service map's nodes the live entries make: the
// workloads that talk in the protocols of the loaded captures (without the
// corpus beside the checkout, the sample's HTTP/1 and Redis only).
func (l *lab) mapNodes() []string {
	var out []string
	for _, e := range l.template {
		for _, pair := range topology[e.Protocol] {
			for _, ep := range pair {
				if n := ep.Namespace + "/" + ep.Workload; !slices.Contains(out, n) {
					out = append(out, n)
				}
			}
		}
	}
	slices.Sort(out)
	return out
}

// startAgent connects an emit.Sender to the hub, as a node agent does.
func (l *lab) startAgent() {
	l.sender = emit.New(emit.Config{
		HubURL: l.url, Token: []byte(agentToken), Node: "worker-1", Version: "e2e", Source: "ebpf",
		FlushInterval: 10 * time.Millisecond,
		Counters: func() map[string]uint64 {
			return map[string]uint64{lossCounter: l.lost.Load(), "capture_packets": 1000}
		},
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		l.sender.Run(ctx)
	}()
	l.t.Cleanup(func() {
		cancel()
		<-done
	})
}

// send streams entries through the agent and waits until the hub stored them.
func (l *lab) send(es []*protocols.Entry) error {
	for _, e := range es {
		l.sender.Send(e)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return l.sender.Flush(ctx)
}

// celString quotes like the UI does (JSON.stringify: no HTML escaping).
func celString(s string) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.Encode(s)
	return strings.TrimSpace(b.String())
}

// detail is what run.mjs checks in one entry's detail.
type detail struct {
	Protocol string   `json:"protocol"`
	ID       string   `json:"id"`
	Clauses  []string `json:"clauses"`
	Texts    []string `json:"texts,omitempty"`
	Curl     string   `json:"curl,omitempty"`
	DstPort  int      `json:"dst_port,omitempty"`
}

// details picks one entry of each protocol and the values its detail must offer.
func (l *lab) details() []detail {
	var out []detail
	first := func(ok func(e *protocols.Entry) bool) *protocols.Entry {
		for _, e := range l.loaded {
			if ok(e) {
				return e
			}
		}
		return nil
	}
	if e := first(func(e *protocols.Entry) bool {
		return e.HTTP != nil && e.HTTP.Request != nil && e.HTTP.Request.Method == "POST" && e.HTTP.Response != nil
	}); e != nil {
		r := e.HTTP.Request
		out = append(out, detail{Protocol: string(e.Protocol), ID: e.ID, DstPort: int(e.Dst.Port),
			Clauses: []string{
				"method == " + celString(r.Method), "path == " + celString(r.Path),
				"status_code == " + strconv.Itoa(e.HTTP.Response.StatusCode),
				`request.headers["content-type"] == ` + celString(headerValue(r.Headers, "Content-Type")),
			},
			// The JSON body is shown pretty-printed.
			Texts: []string{prettyJSON(l.t, r.Body.Data), e.HTTP.Response.Reason},
			Curl:  "-X POST",
		})
	} else {
		l.t.Fatal("the sample capture has no POST with a response")
	}
	if e := first(func(e *protocols.Entry) bool { return e.GRPC != nil && e.GRPC.Status != "" }); e != nil {
		out = append(out, detail{Protocol: "grpc", ID: e.ID, Clauses: []string{
			"grpc_service == " + celString(e.GRPC.Service), "grpc_method == " + celString(e.GRPC.Method),
			"grpc_status == " + celString(e.GRPC.Status),
		}})
	}
	if e := first(func(e *protocols.Entry) bool { return e.Redis != nil && e.Redis.Key != "" && e.Redis.Reply != "" }); e != nil {
		out = append(out, detail{Protocol: "redis", ID: e.ID, Clauses: []string{
			"redis_command == " + celString(e.Redis.Command), "redis_key == " + celString(e.Redis.Key),
		}, Texts: []string{e.Redis.Reply}})
	}
	if e := first(func(e *protocols.Entry) bool { return e.Kafka != nil && e.Kafka.API == "Produce" }); e != nil {
		d := detail{Protocol: "kafka", ID: e.ID, Clauses: []string{
			"kafka_api == " + celString(e.Kafka.API), "kafka_api_version == " + strconv.Itoa(int(e.Kafka.APIVersion)),
		}}
		if e.Kafka.ClientID != "" {
			d.Clauses = append(d.Clauses, "kafka_client_id == "+celString(e.Kafka.ClientID))
		}
		if len(e.Kafka.Batches) > 0 {
			d.Texts = append(d.Texts, e.Kafka.Batches[0].Compression)
		}
		out = append(out, d)
	}
	if e := first(func(e *protocols.Entry) bool { return e.AMQP != nil && e.AMQP.Content != nil }); e != nil {
		d := detail{Protocol: "amqp", ID: e.ID, Clauses: []string{
			"amqp_method == " + celString(e.AMQP.Method), "amqp_channel == " + strconv.Itoa(int(e.AMQP.Channel)),
		}}
		if e.AMQP.Exchange != "" {
			d.Texts = append(d.Texts, e.AMQP.Exchange)
		}
		out = append(out, d)
	}
	return out
}

func prettyJSON(t testing.TB, b []byte) string {
	var out bytes.Buffer
	if err := json.Indent(&out, b, "", "  "); err != nil {
		t.Fatalf("the POST body is not JSON: %v", err)
	}
	return out.String()
}

func headerValue(h protocols.Headers, name string) string {
	v, _ := h.Get(name)
	return v
}

// control serves what run.mjs asks of the Go side.
func (l *lab) control(expect any) http.Handler {
	mux := http.NewServeMux()
	reply := func(w http.ResponseWriter, v any, err error) {
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(v)
	}
	count := func(r *http.Request) int {
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		return max(1, min(n, 100_000))
	}
	mux.HandleFunc("GET /expect", func(w http.ResponseWriter, r *http.Request) { reply(w, expect, nil) })
	mux.HandleFunc("POST /live", func(w http.ResponseWriter, r *http.Request) {
		reply(w, map[string]any{}, l.send(l.live(count(r))))
	})
	mux.HandleFunc("POST /loss", func(w http.ResponseWriter, r *http.Request) {
		l.lost.Store(42)
		reply(w, map[string]any{}, l.send(l.live(1)))
	})
	mux.HandleFunc("POST /burst", func(w http.ResponseWriter, r *http.Request) {
		reply(w, map[string]any{}, l.srv.Ingest(l.live(count(r))...))
	})
	return mux
}

func serve(t testing.TB, h http.Handler) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })
	return "http://" + ln.Addr().String()
}

// runNode runs a script under e2e/ and streams its output to the test log.
func runNode(t testing.TB, node string, timeout time.Duration, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, args...)
	var out bytes.Buffer
	w := &lineLogger{t: t, buf: &out}
	cmd.Stdout, cmd.Stderr = w, w
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	w.flush()
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Fatalf("%s did not finish within %v", strings.Join(args, " "), timeout)
	}
	if err != nil {
		t.Fatalf("%s: %v", strings.Join(args, " "), err)
	}
}

// lineLogger logs each complete line as it arrives.
type lineLogger struct {
	t       testing.TB
	buf     *bytes.Buffer
	pending []byte
	mu      sync.Mutex
}

func (l *lineLogger) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf.Write(p)
	l.pending = append(l.pending, p...)
	for {
		i := bytes.IndexByte(l.pending, '\n')
		if i < 0 {
			return len(p), nil
		}
		l.t.Log(string(l.pending[:i]))
		l.pending = l.pending[i+1:]
	}
}

func (l *lineLogger) flush() {
	if len(l.pending) > 0 {
		l.t.Log(string(l.pending))
	}
}

// TestBrowser drives the UI in headless Chromium against a hub filled from
// real captures, with live entries streamed in by an agent during the test.
func TestBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("the browser tests take a minute; not in -short mode")
	}
	node := browserTools(t)
	l := newLab(t, streamQueue)
	l.load()
	l.startAgent()
	if err := l.send(l.live(400)); err != nil {
		t.Fatal(err)
	}

	bad := `method == "GET" && status = 200`
	_, err := query.Compile(bad)
	var qe *query.Error
	if !errors.As(err, &qe) {
		t.Fatalf("query %q compiled: %v", bad, err)
	}
	expect := map[string]any{
		"bad_query":    map[string]any{"q": bad, "position": qe.Position, "message": qe.Message},
		"details":      l.details(),
		"loss_counter": fmt.Sprintf("%s 42", lossCounter),
		"map_nodes":    l.mapNodes(),
	}
	shots := t.TempDir()
	if *updateScreenshots {
		shots = filepath.Join("..", "docs", "screenshots")
	}
	runNode(t, node, 5*time.Minute, "e2e/run.mjs", l.url, serve(t, l.control(expect)), shots)
}
