package apiserver_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/sondehq/sonde/agent/emit"
	"github.com/sondehq/sonde/apiserver"
	"github.com/sondehq/sonde/apiserver/query"
	"github.com/sondehq/sonde/protocols"
	"github.com/sondehq/sonde/protocols/wire"
)

var testToken = []byte("s3cret-token")

// hub is a running hub on a loopback port.
type hub struct {
	t    testing.TB
	srv  *apiserver.Server
	addr string
	url  string
	stop func()
}

// startHub runs a hub with cfg on addr ("127.0.0.1:0" for any port).
func startHub(t testing.TB, cfg apiserver.Config, addr string) *hub {
	t.Helper()
	if cfg.Token == nil {
		cfg.Token = testToken
	}
	if cfg.Logger == nil && testing.Verbose() {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	srv, err := apiserver.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	h := &hub{t: t, srv: srv, addr: ln.Addr().String(), url: "http://" + ln.Addr().String()}
	stopped := false
	h.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
		if err := srv.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}
	t.Cleanup(h.stop)
	return h
}

func (h *hub) wsURL(path string) string { return "ws://" + h.addr + path }

// get fetches path and decodes the JSON answer into v, returning the status.
func (h *hub) get(path string, v any) int {
	h.t.Helper()
	resp, err := http.Get(h.url + path)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	if v != nil {
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
			h.t.Fatalf("GET %s: decoding: %v", path, err)
		}
	}
	return resp.StatusCode
}

// metric returns the value of one series from /metrics ("name" or
// `name{label="v"}`).
func (h *hub) metric(series string) float64 {
	h.t.Helper()
	resp, err := http.Get(h.url + "/metrics")
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	h.t.Fatalf("no series %s in /metrics", series)
	return 0
}

// page is GET /api/v1/entries decoded.
type page struct {
	Entries []protocols.Entry `json:"entries"`
	Total   *uint64           `json:"total"`
	Next    string            `json:"next"`
}

// allTargets lists the summary targets of every stored entry, oldest first.
func (h *hub) allTargets() []string {
	h.t.Helper()
	var out []string
	before := ""
	for {
		var p page
		path := "/api/v1/entries?limit=1000"
		if before != "" {
			path += "&before=" + before
		}
		if code := h.get(path, &p); code != http.StatusOK {
			h.t.Fatalf("GET %s: %d", path, code)
		}
		for _, e := range p.Entries {
			out = append(out, e.Summary.Target)
		}
		if p.Next == "" {
			break
		}
		before = p.Next
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out
}

var protos = []protocols.Protocol{protocols.HTTP1, protocols.GRPC, protocols.Redis, protocols.Kafka, protocols.AMQP, protocols.HTTP2}

// makeEntry builds entry i of a synthetic workload: about 1 KiB of JSON, all
// protocols in turn, Summary.Target "t-<i>" so tests can follow each one.
func makeEntry(i int, at time.Time) *protocols.Entry {
	e := &protocols.Entry{
		ID:          "agent-" + strconv.Itoa(i),
		Protocol:    protos[i%len(protos)],
		Start:       at,
		Duration:    time.Duration(i%1000) * time.Millisecond,
		Src:         protocols.Endpoint{IP: netip.AddrFrom4([4]byte{10, 0, byte(i >> 8 % 4), byte(i)}), Port: uint16(30000 + i%30000), Pod: "frontend-7d9f", Namespace: "shop"},
		Dst:         protocols.Endpoint{IP: netip.MustParseAddr("10.1.0.7"), Port: 8080, Pod: "orders-" + strconv.Itoa(i%3), Namespace: []string{"shop", "payments"}[i%2]},
		Summary:     protocols.Summary{Method: "GET", Target: "t-" + strconv.Itoa(i), Status: "200"},
		RequestSize: 300, ResponseSize: 700,
	}
	body := []byte(strings.Repeat(fmt.Sprintf(`{"order":%d,"items":["a","b"]}`, i), 12))
	switch e.Protocol {
	case protocols.HTTP1, protocols.HTTP2:
		status := 200
		if i%10 == 3 {
			status = 503
		}
		e.Summary.Status = strconv.Itoa(status)
		e.HTTP = &protocols.HTTPRecord{
			Request: &protocols.HTTPRequest{Method: "POST", Target: "/api/orders/" + strconv.Itoa(i), Path: "/api/orders/" + strconv.Itoa(i), Version: "HTTP/1.1", Authority: "orders",
				Headers: protocols.Headers{{Name: "Content-Type", Value: "application/json"}, {Name: "User-Agent", Value: "Go-http-client/1.1"}, {Name: "X-Request-Id", Value: fmt.Sprintf("%016x", i*7919)}},
				Body:    protocols.Body{Size: int64(len(body)), Data: body}},
			Response: &protocols.HTTPResponse{Version: "HTTP/1.1", StatusCode: status, Reason: http.StatusText(status), Headers: protocols.Headers{{Name: "Content-Type", Value: "application/json"}}, Body: protocols.Body{Size: 2, Data: []byte("{}")}},
		}
	case protocols.GRPC:
		e.GRPC = &protocols.GRPCRecord{Service: "shop.Orders", Method: "Get", Status: []string{"OK", "NOT_FOUND"}[i%2], StatusCode: []int{0, 5}[i%2]}
		e.Summary.Status = e.GRPC.Status
	case protocols.Redis:
		e.Redis = &protocols.RedisRecord{Command: []string{"GET", "SET"}[i%2], Key: "session:" + strconv.Itoa(i), Args: []string{string(body[:200])}}
	case protocols.Kafka:
		e.Kafka = &protocols.KafkaRecord{API: "Produce", APIVersion: 9, CorrelationID: int32(i), ClientID: "checkout"}
	case protocols.AMQP:
		e.AMQP = &protocols.AMQPRecord{Channel: 1, Method: "basic.publish"}
	}
	e.Warnings = []string{string(body[:min(len(body), 400)])}
	return e
}

// newSender starts an agent-side sender against h, stopped at cleanup.
func newSender(t testing.TB, hubURL string, cfg emit.Config) *emit.Sender {
	t.Helper()
	cfg.HubURL = hubURL
	if cfg.Token == nil {
		cfg.Token = testToken
	}
	if cfg.MinBackoff == 0 {
		cfg.MinBackoff, cfg.MaxBackoff = 10*time.Millisecond, 200*time.Millisecond
	}
	if cfg.FlushInterval == 0 {
		cfg.FlushInterval = 5 * time.Millisecond
	}
	s := emit.New(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return s
}

func flush(t testing.TB, s *emit.Sender) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
}

// streamMsg is one message a stream client receives.
type streamMsg struct {
	Type  string           `json:"type"`
	Entry *protocols.Entry `json:"entry"`
	Count int              `json:"count"`
}

// dialStream opens a stream websocket.
func dialStream(t testing.TB, h *hub, query string, header http.Header, d *websocket.Dialer) *websocket.Conn {
	t.Helper()
	if d == nil {
		d = websocket.DefaultDialer
	}
	c, resp, err := d.Dial(h.wsURL("/api/v1/stream?q="+urlEscape(query)+"&history=10000"), header)
	if err != nil {
		code := 0
		if resp != nil {
			code = resp.StatusCode
		}
		t.Fatalf("dialing stream: %v (HTTP %d)", err, code)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func urlEscape(s string) string {
	r := strings.NewReplacer("%", "%25", " ", "%20", "&", "%26", "+", "%2B", "=", "%3D", "\"", "%22", "#", "%23", "|", "%7C")
	return r.Replace(s)
}

// readUntil reads stream messages until stop says so or the deadline passes.
func readUntil(t testing.TB, c *websocket.Conn, d time.Duration, stop func(streamMsg) bool) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(d))
	for {
		var m streamMsg
		if err := c.ReadJSON(&m); err != nil {
			t.Fatalf("reading stream: %v", err)
		}
		if stop(m) {
			return
		}
	}
}

// dirSize adds up the bytes of every file under dir.
func dirSize(t testing.TB, dir string) int64 {
	var n int64
	filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			n += fi.Size()
		}
		return nil
	})
	return n
}

func netListen() (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") }

// matches evaluates a query on the entry itself (an empty index record
// makes MatchIndex read every field from the entry): what the hub should
// find.
func matches(p *query.Program, e *protocols.Entry) bool {
	var none wire.Index
	return p.MatchIndex(&none, func() *protocols.Entry { return e })
}
