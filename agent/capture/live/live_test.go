package live

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sondehq/sonde/agent/packet"
	"github.com/sondehq/sonde/bpf"
	"github.com/sondehq/sonde/lab/netlab"
)

func newLab(t testing.TB) *netlab.Lab { return netlab.ForTest(t) }

func addPod(t testing.TB, l *netlab.Lab, name string) *netlab.Pod {
	t.Helper()
	p, err := l.AddPod(name)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// ifindex returns the index of the pod's host-side veth.
func ifindex(t testing.TB, l *netlab.Lab, p *netlab.Pod) int {
	t.Helper()
	var idx int
	err := l.Node.Do(func() error {
		i, err := net.InterfaceByName(p.HostIf)
		if err == nil {
			idx = i.Index
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return idx
}

// sizedServer answers /?n=N with N bytes and reads any request body.
func sizedServer(t testing.TB, p *netlab.Pod, port int) {
	t.Helper()
	ln, err := p.Listen("tcp", fmt.Sprintf(":%d", port))
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		w.Header().Set("Content-Length", strconv.Itoa(n))
		w.Write(make([]byte, n))
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
}

// conversation is what a client sent and received on one connection.
type conversation struct {
	client, server netip.AddrPort
	sent, recv     int64
}

type countingConn struct {
	net.Conn
	c  *conversation
	mu *sync.Mutex
}

func (c countingConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.mu.Lock()
	c.c.recv += int64(n)
	c.mu.Unlock()
	return n, err
}

// Write counts before writing: the peer may answer, and the test read the
// count, before a counting-after-write would have run.
func (c countingConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	c.c.sent += int64(len(b))
	c.mu.Unlock()
	n, err := c.Conn.Write(b)
	if n < len(b) {
		c.mu.Lock()
		c.c.sent -= int64(len(b) - n)
		c.mu.Unlock()
	}
	return n, err
}

// workload makes n HTTP requests from the pod, each on its own connection,
// with request and response bodies from a few bytes to a few hundred KiB
// (so that GSO super-packets of every size class occur). It returns what
// each connection carried as the client counted it.
func workload(t testing.TB, from *netlab.Pod, url string, n int) []*conversation {
	t.Helper()
	var mu sync.Mutex
	var convs []*conversation
	tr := &http.Transport{
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := from.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			conv := &conversation{
				client: c.LocalAddr().(*net.TCPAddr).AddrPort(),
				server: c.RemoteAddr().(*net.TCPAddr).AddrPort(),
			}
			mu.Lock()
			convs = append(convs, conv)
			mu.Unlock()
			return countingConn{c, conv, &mu}, nil
		},
	}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 20 * time.Second}
	for i := range n {
		size := (i * i * 997) % 300000
		resp, err := hc.Post(fmt.Sprintf("%s/?n=%d", url, size*2/3), "application/octet-stream", io.LimitReader(zeros{}, int64(size)))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	mu.Lock()
	defer mu.Unlock()
	return slices.Clone(convs)
}

type zeros struct{}

func (zeros) Read(b []byte) (int, error) { clear(b); return len(b), nil }

// flowKey is one direction of a connection as seen on one interface.
type flowKey struct {
	ifindex  int
	src, dst netip.AddrPort
}

// flow is what was captured of one flowKey.
type flow struct {
	isn     uint32
	synSeen bool
	spans   []span // payload byte ranges, relative to isn+1, merged
	dirs    map[Direction]int
	missing int // payload bytes cut by the snap length
	early   int // payload before the SYN was seen
}

type span struct{ start, end int64 }

func (f *flow) add(start, end int64) {
	f.spans = append(f.spans, span{start, end})
	slices.SortFunc(f.spans, func(a, b span) int { return int(a.start - b.start) })
	merged := f.spans[:1]
	for _, s := range f.spans[1:] {
		last := &merged[len(merged)-1]
		if s.start <= last.end {
			last.end = max(last.end, s.end)
			continue
		}
		merged = append(merged, s)
	}
	f.spans = merged
}

// bytes is the payload captured, and whether it is one hole-free run from
// the first byte.
func (f *flow) bytes() (n int64, contiguous bool) {
	for _, s := range f.spans {
		n += s.end - s.start
	}
	return n, len(f.spans) == 1 && f.spans[0].start == 0 || len(f.spans) == 0
}

// recorder decodes what a Source delivers, as the pipeline will.
type recorder struct {
	mu     sync.Mutex
	dec    *packet.Decoder
	seg    packet.Segment
	flows  map[flowKey]*flow
	frames int
	maxLen int // the largest frame, to see GSO super-packets pass whole
	segs   map[segKey]int
	notTCP int
}

// segKey names a segment on one interface, to compare two captures.
type segKey struct {
	flowKey
	dir      Direction
	seq, ack uint32
	flags    packet.Flags
	len      int
}

func newRecorder() *recorder {
	d, err := packet.NewDecoder(packet.LinkEthernet)
	if err != nil {
		panic(err)
	}
	return &recorder{dec: d, flows: map[flowKey]*flow{}, segs: map[segKey]int{}}
}

func (r *recorder) deliver(f *Frame) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.frames++
	r.maxLen = max(r.maxLen, len(f.Data))
	if err := r.dec.Decode(f.Data, f.WireLen, f.Time, &r.seg); err != nil {
		r.notTCP++
		return
	}
	s := &r.seg
	k := flowKey{f.Ifindex, s.Src, s.Dst}
	fl := r.flows[k]
	if fl == nil {
		fl = &flow{dirs: map[Direction]int{}}
		r.flows[k] = fl
	}
	fl.dirs[f.Dir]++
	fl.missing += s.Missing
	r.segs[segKey{k, f.Dir, s.Seq, s.Ack, s.Flags, len(s.Payload) + s.Missing}]++
	if s.Flags&packet.SYN != 0 {
		fl.isn, fl.synSeen = s.Seq, true
		return
	}
	if n := len(s.Payload) + s.Missing; n > 0 {
		if !fl.synSeen {
			fl.early += n
			return
		}
		start := int64(s.Seq - fl.isn - 1)
		fl.add(start, start+int64(n))
	}
}

func (r *recorder) flow(k flowKey) *flow {
	r.mu.Lock()
	defer r.mu.Unlock()
	if f := r.flows[k]; f != nil {
		cp := *f
		cp.spans = slices.Clone(f.spans)
		return &cp
	}
	return &flow{}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	if !waitUntil(cond) {
		t.Fatalf("timed out waiting for %s", what)
	}
}

func waitUntil(cond func() bool) bool {
	deadline := time.Now().Add(15 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		<-tick.C
	}
	return true
}

// running starts the source and returns a function that stops it and
// returns its final Stats.
func running(t testing.TB, s Source, deliver func(*Frame)) (stop func() Stats) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, deliver) }()
	var once sync.Once
	stop = func() Stats {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		})
		return s.Stats()
	}
	t.Cleanup(func() { stop() })
	return stop
}

// checkReconciled checks that every packet is accounted for once Run returned.
func checkReconciled(t testing.TB, st Stats) {
	t.Helper()
	if st.Source == "ebpf" && st.Seen != st.Filtered+st.Captured+st.Lost {
		t.Errorf("seen %d != filtered %d + captured %d + lost %d", st.Seen, st.Filtered, st.Captured, st.Lost)
	}
	if st.Captured != st.Read || st.Read != st.Delivered+st.Malformed+st.Skipped {
		t.Errorf("captured %d, read %d, delivered %d + malformed %d + skipped %d do not reconcile",
			st.Captured, st.Read, st.Delivered, st.Malformed, st.Skipped)
	}
	if st.Malformed != 0 {
		t.Errorf("%d malformed records", st.Malformed)
	}
}

// TestHTTPAcrossPods captures N HTTP exchanges between two pods on both
// host-side veths and accounts for every payload byte of every connection,
// in both directions, on both interfaces.
func TestHTTPAcrossPods(t *testing.T) {
	for _, mode := range []bpf.AttachMode{bpf.AttachTCX, bpf.AttachClsact} {
		t.Run(mode.String(), func(t *testing.T) {
			testHTTPAcrossPods(t, Config{Source: "ebpf", Attach: mode})
		})
	}
	t.Run("afpacket", func(t *testing.T) { testHTTPAcrossPods(t, Config{Source: "afpacket"}) })
}

func testHTTPAcrossPods(t *testing.T, cfg Config) {
	l := newLab(t)
	server, client := addPod(t, l, "server"), addPod(t, l, "client")
	addPod(t, l, "bystander")
	sizedServer(t, server, 8080)
	cfg.Pods = []netip.Addr{server.IP, client.IP}
	cfg.Netns = l.Node.Handle
	s, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if e, ok := s.(*EBPF); ok {
		for idx, m := range e.Modes() {
			if m != cfg.Attach {
				t.Errorf("interface %d attached with %v, want %v", idx, m, cfg.Attach)
			}
		}
	}
	rec := newRecorder()
	stop := running(t, s, rec.deliver)
	const n = 40
	convs := workload(t, client, fmt.Sprintf("http://%s:8080", server.IP), n)
	if len(convs) != n {
		t.Fatalf("%d connections for %d requests", len(convs), n)
	}
	cIf, sIf := ifindex(t, l, client), ifindex(t, l, server)
	type want struct {
		k     flowKey
		bytes int64
		dir   Direction
	}
	var wants []want
	for _, c := range convs {
		wants = append(wants,
			want{flowKey{cIf, c.client, c.server}, c.sent, PodEgress},
			want{flowKey{cIf, c.server, c.client}, c.recv, PodIngress},
			want{flowKey{sIf, c.client, c.server}, c.sent, PodIngress},
			want{flowKey{sIf, c.server, c.client}, c.recv, PodEgress})
	}
	complete := func() bool {
		for _, w := range wants {
			if got, _ := rec.flow(w.k).bytes(); got < w.bytes {
				return false
			}
		}
		return true
	}
	if !waitUntil(complete) {
		for _, w := range wants {
			if got, _ := rec.flow(w.k).bytes(); got < w.bytes {
				f := rec.flow(w.k)
				t.Errorf("%v on %d: captured %d of %d payload bytes, spans %v", w.k.src, w.k.ifindex, got, w.bytes, f.spans)
			}
		}
		t.FailNow()
	}
	st := stop()
	checkReconciled(t, st)
	if st.Lost != 0 || st.Truncated != 0 {
		t.Errorf("lost %d, truncated %d; want none", st.Lost, st.Truncated)
	}
	for _, w := range wants {
		f := rec.flow(w.k)
		got, contiguous := f.bytes()
		if got != w.bytes || !contiguous || f.missing != 0 || f.early != 0 || !f.synSeen {
			t.Errorf("%v: captured %d payload bytes (contiguous %v, missing %d, before SYN %d, SYN %v), want %d",
				w.k, got, contiguous, f.missing, f.early, f.synSeen, w.bytes)
		}
		if cfg.Source == "afpacket" {
			continue
		}
		if len(f.dirs) != 1 || f.dirs[w.dir] == 0 {
			t.Errorf("%v: directions %v, want all %v", w.k, f.dirs, w.dir)
		}
	}
	for k := range rec.flows {
		if !slices.Contains([]int{cIf, sIf}, k.ifindex) {
			t.Errorf("captured on interface %d, which carries neither pod", k.ifindex)
		}
	}
	t.Logf("%s: %d frames, largest %d bytes, %+v", cfg.Source, rec.frames, rec.maxLen, st)
	if rec.maxLen <= 32768 {
		t.Errorf("largest frame %d bytes: no GSO super-packet went through the largest record class", rec.maxLen)
	}
	if n, err := bpf.RemoveStaleFilters(l.Node.Handle); err != nil || n != 0 {
		t.Errorf("after Run: %d capture filters left behind (%v)", n, err)
	}
}

// TestFollowInterfaces takes a pod's interface down, removes the pod and
// adds a new one while the capture runs: the new pod is captured without a
// restart.
func TestFollowInterfaces(t *testing.T) {
	l := newLab(t)
	server, old := addPod(t, l, "server"), addPod(t, l, "old")
	sizedServer(t, server, 8080)
	events := make(chan string, 16)
	s, err := NewEBPF(Config{
		Pods:  []netip.Addr{server.IP},
		Netns: l.Node.Handle,
		OnInterface: func(_ int, name string, attached bool) {
			events <- fmt.Sprintf("%s %v", name, attached)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 { // the initial attachments: server and old, behind the bridge
		<-events
	}
	rec := newRecorder()
	stop := running(t, s, rec.deliver)
	url := fmt.Sprintf("http://%s:8080", server.IP)
	first := workload(t, old, url, 2)

	if err := l.SetHostIfUp(old, false); err != nil {
		t.Fatal(err)
	}
	if err := l.RemovePod("old"); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, events, old.HostIf+" false")
	fresh := addPod(t, l, "fresh")
	waitEvent(t, events, fresh.HostIf+" true")
	second := workload(t, fresh, url, 3)

	fIf := ifindex(t, l, fresh)
	for _, c := range second {
		k := flowKey{fIf, c.client, c.server}
		waitFor(t, "the new pod's requests", func() bool { got, _ := rec.flow(k).bytes(); return got == c.sent })
	}
	st := stop()
	checkReconciled(t, st)
	if st.Interfaces != 0 {
		t.Errorf("%d interfaces still attached after Run", st.Interfaces)
	}
	if len(first) != 2 {
		t.Errorf("%d connections from the old pod, want 2", len(first))
	}
}

func waitEvent(t testing.TB, events <-chan string, want string) {
	t.Helper()
	timeout := time.After(15 * time.Second)
	for {
		select {
		case got := <-events:
			if got == want {
				return
			}
		case <-timeout:
			t.Fatalf("no interface event %q", want)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr error
	}{
		{"nothing to capture", Config{}, ErrNoTargets},
		{"unknown source", Config{AllIfaces: true, Source: "pcap"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Open(tt.cfg)
			if err == nil || (tt.wantErr != nil && !errors.Is(err, tt.wantErr)) {
				t.Errorf("Open: %v, want %v", err, tt.wantErr)
			}
		})
	}
}

// TestServiceIP captures connections to a service IP. The client's veth
// carries them to the service address (before DNAT), the server's veth to
// the pod address (after); both copies have the same initial sequence
// numbers, which is how the pipeline can tell they are one connection.
func TestServiceIP(t *testing.T) {
	l := newLab(t)
	server, client := addPod(t, l, "server"), addPod(t, l, "client")
	sizedServer(t, server, 8080)
	svc, err := l.AddService(server, 80, 8080)
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewEBPF(Config{Pods: []netip.Addr{server.IP, client.IP}, Netns: l.Node.Handle})
	if err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	stop := running(t, s, rec.deliver)
	convs := workload(t, client, "http://"+svc.String(), 5)
	cIf, sIf := ifindex(t, l, client), ifindex(t, l, server)
	podAddr := netip.AddrPortFrom(server.IP, 8080)
	for _, c := range convs {
		if c.server != svc {
			t.Fatalf("client connected to %v, want the service %v", c.server, svc)
		}
		before := flowKey{cIf, c.client, svc}
		after := flowKey{sIf, c.client, podAddr}
		replyBefore := flowKey{cIf, svc, c.client}
		replyAfter := flowKey{sIf, podAddr, c.client}
		waitFor(t, "both copies of the exchange", func() bool {
			b, _ := rec.flow(before).bytes()
			a, _ := rec.flow(after).bytes()
			rb, _ := rec.flow(replyBefore).bytes()
			ra, _ := rec.flow(replyAfter).bytes()
			return b == c.sent && a == c.sent && rb == c.recv && ra == c.recv
		})
		fb, fa := rec.flow(before), rec.flow(after)
		if !fb.synSeen || !fa.synSeen || fb.isn != fa.isn {
			t.Errorf("%v: ISN %d (SYN %v) before DNAT, %d (SYN %v) after: want the same", c.client, fb.isn, fb.synSeen, fa.isn, fa.synSeen)
		}
		if fb.dirs[PodEgress] == 0 || fa.dirs[PodIngress] == 0 {
			t.Errorf("%v: directions %v before DNAT, %v after", c.client, fb.dirs, fa.dirs)
		}
	}
	checkReconciled(t, stop())
}

// TestSetPods changes the pods of a running capture in a routed lab, where
// each pod's address leads to its own veth: the capture attaches to exactly
// the interfaces of the pods it is given, sees their traffic whole from the
// first connection after the change, and sees nothing of the others'.
func TestSetPods(t *testing.T) {
	t.Run("ebpf", func(t *testing.T) { testSetPods(t, "ebpf") })
	t.Run("afpacket", func(t *testing.T) { testSetPods(t, "afpacket") })
}

func testSetPods(t *testing.T, source string) {
	l := netlab.ForTestWith(t, netlab.Options{Routed: true})
	server, client, other := addPod(t, l, "server"), addPod(t, l, "client"), addPod(t, l, "other")
	sizedServer(t, server, 8080)
	var mu sync.Mutex
	attached := map[string]bool{}
	s, err := Open(Config{Source: source, FollowPods: true, Netns: l.Node.Handle,
		OnInterface: func(_ int, name string, on bool) {
			mu.Lock()
			defer mu.Unlock()
			if on {
				attached[name] = true
			} else {
				delete(attached, name)
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	checkAttached := func(want ...*netlab.Pod) {
		t.Helper()
		mu.Lock()
		defer mu.Unlock()
		var got, names []string
		for name := range attached {
			got = append(got, name)
		}
		for _, p := range want {
			names = append(names, p.HostIf)
		}
		slices.Sort(got)
		slices.Sort(names)
		if !slices.Equal(got, names) {
			t.Errorf("attached to %v, want %v", got, names)
		}
		if n := s.Stats().Interfaces; n != len(want) {
			t.Errorf("Stats.Interfaces = %d, want %d", n, len(want))
		}
	}
	checkAttached()
	rec := newRecorder()
	stop := running(t, s, rec.deliver)
	url := fmt.Sprintf("http://%s:8080", server.IP)
	sIf, cIf, oIf := ifindex(t, l, server), ifindex(t, l, client), ifindex(t, l, other)
	// captured checks that each conversation was captured whole on the
	// interface at and nowhere else.
	captured := func(convs []*conversation, at int) {
		t.Helper()
		for _, c := range convs {
			req, resp := flowKey{at, c.client, c.server}, flowKey{at, c.server, c.client}
			waitFor(t, fmt.Sprintf("%v on interface %d", c.client, at), func() bool {
				a, _ := rec.flow(req).bytes()
				b, _ := rec.flow(resp).bytes()
				return a == c.sent && b == c.recv
			})
			for _, idx := range []int{sIf, cIf, oIf} {
				if n, _ := rec.flow(flowKey{idx, c.client, c.server}).bytes(); idx != at && n != 0 {
					t.Errorf("%v: %d bytes on interface %d too", c.client, n, idx)
				}
			}
		}
	}

	if err := s.SetPods([]netip.Addr{server.IP, server.IP6}); err != nil {
		t.Fatal(err)
	}
	checkAttached(server)
	captured(workload(t, client, url, 3), sIf)

	if err := s.SetPods([]netip.Addr{client.IP}); err != nil {
		t.Fatal(err)
	}
	checkAttached(client)
	unseen := workload(t, other, url, 2)
	captured(workload(t, client, url, 3), cIf)
	rec.mu.Lock()
	for k := range rec.flows {
		for _, c := range unseen {
			if k.src == c.client || k.dst == c.client {
				t.Errorf("captured %v of the unselected pod", k)
			}
		}
	}
	rec.mu.Unlock()

	if err := s.SetPods(nil); err != nil {
		t.Fatal(err)
	}
	checkAttached()
	st := stop()
	checkReconciled(t, st)
	if err := s.SetPods([]netip.Addr{server.IP}); !errors.Is(err, ErrStopped) {
		t.Errorf("SetPods after Run: %v, want ErrStopped", err)
	}
}

// TestMissingInterfaceSaid: an interface named on the command line that
// does not exist is said at once, rather than captured from silently never,
// and its appearance is said too (the capture waits for it, as for a pod's
// veth not made yet).
func TestMissingInterfaceSaid(t *testing.T) {
	l := netlab.ForTest(t)
	var logs lockedLog
	s, err := Open(Config{Ifaces: []string{"sondemiss0"}, Netns: l.Node.Handle,
		Log: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	stop := running(t, s, func(*Frame) {})
	defer stop()
	waitFor(t, "the missing interface said", func() bool {
		return strings.Contains(logs.String(), "no interface of that name") && strings.Contains(logs.String(), "sondemiss0")
	})
	if out, err := exec.Command("ip", "-n", l.Node.Name, "link", "add", "sondemiss0", "type", "veth", "peer", "name", "sondemiss1").CombinedOutput(); err != nil {
		t.Fatalf("ip link add: %v: %s", err, out)
	}
	exec.Command("ip", "-n", l.Node.Name, "link", "set", "sondemiss0", "up").Run()
	waitFor(t, "the interface's appearance said", func() bool {
		return strings.Contains(logs.String(), "interface appeared")
	})
}

// lockedLog is a log written by the capture's goroutines and read by a test.
type lockedLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
