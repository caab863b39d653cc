package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sondehq/sonde/lab/netlab"
	"github.com/sondehq/sonde/protocols"
)

// asSonde, set in a child's environment, makes this test binary run the
// sonde command with the child's arguments instead of the tests: the agent
// must run inside the lab's node namespace, which only a process of its own
// can enter whole (goroutines of this one run on threads outside it).
const asSonde = "SONDE_TEST_RUN_AS_SONDE"

func TestMain(m *testing.M) {
	if os.Getenv(asSonde) == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestAgentCommand runs `sonde agent --iface CLIENT,SERVER --json --metrics
// ADDR` in a lab's node namespace while a client pod makes HTTP requests to
// a server pod, directly and through a service IP. Every request must come
// out as one JSON line; SIGUSR1 and the exit (the context's cancellation,
// which sends SIGINT, as Ctrl-C does) print the counters on stderr, and the
// metrics endpoint serves the same loss counters, all zero.
func TestAgentCommand(t *testing.T) {
	l := netlab.ForTest(t)
	server, err := l.AddPod("server")
	if err != nil {
		t.Fatal(err)
	}
	client, err := l.AddPod("client")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := server.Listen("tcp", ":8080")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "path %s", r.URL.Path)
	})}
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })
	svc, err := l.AddService(server, 80, 8080)
	if err != nil {
		t.Fatal(err)
	}
	pod := netip.AddrPortFrom(server.IP, 8080)

	// The node namespace is the lab's own: a port free in it now stays free.
	mln, err := l.Node.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	metricsAddr := mln.Addr().String()
	mln.Close()

	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", l.Node.Name, exe,
		"agent", "--iface", client.HostIf+","+server.HostIf, "--json", "--metrics", metricsAddr, "--node", "lab")
	cmd.Env = append(os.Environ(), asSonde+"=1")
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 15 * time.Second
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, errOut := newLines(stdout), newLines(stderr)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// ip netns exec execs the program: the process is the agent itself.
	l.Track(cmd)
	go out.read()
	go errOut.read()
	if !errOut.await(func(s string) bool { return strings.Contains(s, `msg="capture source" source=ebpf interfaces=2`) }) {
		t.Fatalf("the agent did not say it captures two interfaces with eBPF; stderr:\n%s", errOut)
	}

	const nPod, nSvc = 10, 10
	tr := &http.Transport{DisableKeepAlives: true, DialContext: client.DialContext}
	hc := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	want := map[string]netip.AddrPort{} // path -> the address dialled
	for i := range nPod + nSvc {
		to, path := pod, fmt.Sprintf("/pod/%d", i)
		if i >= nPod {
			to, path = svc, fmt.Sprintf("/svc/%d", i)
		}
		want[path] = to
		resp, err := hc.Get(fmt.Sprintf("http://%s%s", to, path))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}

	// The agent writes entries out every second; once one is out, its
	// SIGUSR1 handler is in place (both belong to one goroutine).
	if !out.awaitCount(nPod+nSvc, func(string) bool { return true }) {
		t.Fatalf("%d JSON lines, want %d:\n%s\nstderr:\n%s", out.len(), nPod+nSvc, out, errOut)
	}
	if err := cmd.Process.Signal(syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	if !errOut.awaitCount(1, isCounters) {
		t.Fatalf("no counters line on stderr after SIGUSR1:\n%s", errOut)
	}
	onSignal := counters(t, errOut.matching(isCounters)[0])
	if onSignal["nat_twins"] != nSvc || onSignal["capture_lost"] != 0 {
		t.Errorf("counters on SIGUSR1: nat_twins %d, capture_lost %d; want %d, 0", onSignal["nat_twins"], onSignal["capture_lost"], nSvc)
	}

	metrics := scrape(t, l.Node, "http://"+metricsAddr+"/metrics")
	for _, m := range []struct {
		series string
		want   float64
	}{
		{`sonde_capture_lost_packets_total{source="ebpf"}`, 0},
		{`sonde_capture_malformed_packets_total{source="ebpf"}`, 0},
		{`sonde_capture_interfaces{source="ebpf"}`, 2},
		{`sonde_agent_events_total{counter="nat_twins"}`, nSvc},
		{`sonde_agent_events_total{counter="entries"}`, nPod + nSvc},
		{`sonde_agent_events_total{counter="gaps"}`, 0},
	} {
		got, ok := metrics[m.series]
		if !ok || got != m.want {
			t.Errorf("metric %s = %v (present %v), want %v", m.series, got, ok, m.want)
		}
	}
	if got := metrics[`sonde_capture_delivered_packets_total{source="ebpf"}`]; got == 0 {
		t.Errorf("metrics say no packet was delivered")
	}
	if body := scrapeRaw(t, l.Node, "http://"+metricsAddr+"/healthz"); body != "ok\n" {
		t.Errorf("/healthz = %q", body)
	}

	// Its output must be read to the end before Wait closes the pipes.
	cancel()
	select {
	case <-errOut.done:
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("the agent did not exit on SIGINT; stderr:\n%s", errOut)
	}
	<-out.done
	// Wait reports the cancelled context even after a clean exit.
	if err := cmd.Wait(); !cmd.ProcessState.Success() {
		t.Fatalf("the agent exited with %v; stderr:\n%s", err, errOut)
	}
	all := errOut.matching(isCounters)
	if len(all) != 2 {
		t.Fatalf("%d counters lines on stderr, want one on SIGUSR1 and one at exit:\n%s", len(all), errOut)
	}
	final := counters(t, all[1])
	for name, want := range map[string]uint64{
		"entries":           nPod + nSvc,
		"nat_twins":         nSvc,
		"capture_lost":      0,
		"capture_malformed": 0,
		"gaps":              0,
		"entries_with_gap":  0,
		"unmatched":         0,
		"conns_evicted":     0,
	} {
		if final[name] != want {
			t.Errorf("counter %s = %d at exit, want %d", name, final[name], want)
		}
	}
	if final["capture_delivered"] != final["capture_captured"] || final["capture_captured"] == 0 {
		t.Errorf("captured %d, delivered %d at exit: want all delivered", final["capture_captured"], final["capture_delivered"])
	}

	seen := map[string]int{}
	for _, line := range out.matching(func(string) bool { return true }) {
		var e protocols.Entry
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("not a JSON entry: %v: %s", err, line)
		}
		if e.HTTP == nil || e.HTTP.Request == nil {
			t.Errorf("not an HTTP request: %s", line)
			continue
		}
		path := e.HTTP.Request.Path
		seen[path]++
		dialled, ok := want[path]
		if !ok {
			t.Errorf("unexpected entry %s", line)
			continue
		}
		var wantVia *protocols.Endpoint
		if dialled == svc {
			wantVia = &protocols.Endpoint{IP: svc.Addr(), Port: svc.Port()}
		}
		if e.Src.IP != client.IP || netip.AddrPortFrom(e.Dst.IP, e.Dst.Port) != pod ||
			(e.Via == nil) != (wantVia == nil) || e.Via != nil && *e.Via != *wantVia {
			t.Errorf("%s: %v -> %v:%d via %v; want %v -> %v via %v", path, e.Src.IP, e.Dst.IP, e.Dst.Port, e.Via, client.IP, pod, wantVia)
		}
		if e.Source != "ebpf" || e.Node != "lab" || e.Gap || e.Unmatched != protocols.Matched {
			t.Errorf("%s: source %q node %q gap %v unmatched %q", path, e.Source, e.Node, e.Gap, e.Unmatched)
		}
	}
	for path := range want {
		if seen[path] != 1 {
			t.Errorf("%s appears %d times, want once", path, seen[path])
		}
	}
	t.Logf("%d entries, %d NAT twins; captured %d packets, delivered %d, lost %d",
		out.len(), final["nat_twins"], final["capture_captured"], final["capture_delivered"], final["capture_lost"])
}

// lines collects a child's output line by line and lets a test wait for
// the lines it expects.
type lines struct {
	r      io.Reader
	mu     sync.Mutex
	all    []string
	change chan struct{} // closed and replaced on every new line
	done   chan struct{} // closed at EOF
}

func newLines(r io.Reader) *lines {
	return &lines{r: r, change: make(chan struct{}), done: make(chan struct{})}
}

func (l *lines) read() {
	defer close(l.done)
	sc := bufio.NewScanner(l.r)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		l.mu.Lock()
		l.all = append(l.all, sc.Text())
		close(l.change)
		l.change = make(chan struct{})
		l.mu.Unlock()
	}
}

func (l *lines) matching(match func(string) bool) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var m []string
	for _, s := range l.all {
		if match(s) {
			m = append(m, s)
		}
	}
	return m
}

func (l *lines) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.all)
}

func (l *lines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.all, "\n")
}

// awaitCount waits up to 15 s for n lines that match.
func (l *lines) awaitCount(n int, match func(string) bool) bool {
	timeout := time.After(15 * time.Second)
	for {
		l.mu.Lock()
		change := l.change
		l.mu.Unlock()
		if len(l.matching(match)) >= n {
			return true
		}
		select {
		case <-change:
		case <-l.done:
			return len(l.matching(match)) >= n
		case <-timeout:
			return false
		}
	}
}

func (l *lines) await(match func(string) bool) bool { return l.awaitCount(1, match) }

func isCounters(s string) bool { return strings.HasPrefix(s, "counters {") }

func counters(t *testing.T, line string) map[string]uint64 {
	t.Helper()
	var m map[string]uint64
	if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "counters ")), &m); err != nil {
		t.Fatalf("counters line %q: %v", line, err)
	}
	return m
}

// scrapeRaw GETs url from inside the namespace.
func scrapeRaw(t *testing.T, ns *netlab.Namespace, url string) string {
	t.Helper()
	hc := &http.Client{Transport: &http.Transport{DialContext: ns.DialContext}, Timeout: 10 * time.Second}
	resp, err := hc.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// scrape reads a Prometheus text page into series -> value.
func scrape(t *testing.T, ns *netlab.Namespace, url string) map[string]float64 {
	t.Helper()
	m := map[string]float64{}
	for line := range strings.Lines(scrapeRaw(t, ns, url)) {
		if strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(line[i+1:]), 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		m[line[:i]] = v
	}
	return m
}
