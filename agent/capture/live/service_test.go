package live

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/sondehq/sonde/agent/packet"
	"github.com/sondehq/sonde/agent/pipeline"
	"github.com/sondehq/sonde/lab/netlab"
	"github.com/sondehq/sonde/protocols"
	"github.com/sondehq/sonde/protocols/all"
)

// TestServiceEntries runs HTTP/1 requests and gRPC calls from one pod to
// another, some through service IPs (DNAT in the node namespace) and some to
// the pod address, at the same time, with both pods' veths captured. Every
// exchange must come out once. Through a service the client's veth carries
// the service address and the server's veth the pod address: the entry has
// Dst = the pod and Via = the service, and the second copy is counted as a
// NAT twin. Between pod addresses both veths carry the same 4-tuple: the
// assembly keeps one stream and counts the second copy as retransmitted.
// Both sources must give the same entries.
func TestServiceEntries(t *testing.T) {
	for _, source := range []string{"ebpf", "afpacket"} {
		t.Run(source, func(t *testing.T) { testServiceEntries(t, source) })
	}
}

func testServiceEntries(t *testing.T, source string) {
	l := newLab(t)
	server, client := addPod(t, l, "server"), addPod(t, l, "client")
	sizedServer(t, server, 8080)
	gln, err := server.Listen("tcp", ":9090")
	if err != nil {
		t.Fatal(err)
	}
	hs := health.NewServer()
	gs := grpc.NewServer()
	healthpb.RegisterHealthServer(gs, hs)
	go gs.Serve(gln)
	t.Cleanup(gs.Stop)
	httpSvc, err := l.AddService(server, 80, 8080)
	if err != nil {
		t.Fatal(err)
	}
	grpcSvc, err := l.AddService(server, 9090, 9090)
	if err != nil {
		t.Fatal(err)
	}
	httpPod, grpcPod := netip.AddrPortFrom(server.IP, 8080), netip.AddrPortFrom(server.IP, 9090)

	src, err := Open(Config{Source: source, Pods: []netip.Addr{server.IP, client.IP}, Netns: l.Node.Handle})
	if err != nil {
		t.Fatal(err)
	}
	var entries []*protocols.Entry
	p := pipeline.New(pipeline.DefaultConfig(all.Dissectors()), func(e *protocols.Entry) { entries = append(entries, e) })
	frames := pipeline.NewFrames(p)
	// rec keeps what each interface carried of each direction, to compare
	// the pipeline's counts with.
	rec := newRecorder()
	// Run calls deliver from one goroutine and stop waits for Run to
	// return, so p and entries need no lock.
	stop := running(t, src, func(f *Frame) {
		rec.deliver(f)
		frames.Frame(f.Data, f.WireLen, f.Time, packet.LinkEthernet)
	})
	retransBefore := retransmits(t, client) + retransmits(t, server)

	// Four HTTP workloads and two gRPC ones run at once, so that connections
	// through the service and to the pod are open side by side.
	const nOwn, nKeep, nCalls = 12, 12, 10
	type job struct {
		name string
		via  netip.AddrPort // what the client dials
		keep bool           // one kept-alive connection rather than one per request
		grpc bool
	}
	jobs := []job{
		{name: "svc-own", via: httpSvc},
		{name: "svc-keep", via: httpSvc, keep: true},
		{name: "pod-own", via: httpPod},
		{name: "pod-keep", via: httpPod, keep: true},
		{name: "svc-grpc", via: grpcSvc, grpc: true},
		{name: "pod-grpc", via: grpcPod, grpc: true},
	}
	for _, j := range jobs {
		if j.grpc {
			for i := range nCalls {
				hs.SetServingStatus(fmt.Sprintf("%s-%d", j.name, i), healthpb.HealthCheckResponse_SERVING)
			}
		}
	}
	d := &recordingDialer{from: client}
	errs := make(chan error, len(jobs))
	for _, j := range jobs {
		go func() {
			if j.grpc {
				errs <- healthChecks(d, j.via, j.name, nCalls)
				return
			}
			n := nOwn
			if j.keep {
				n = nKeep
			}
			tr := &http.Transport{DisableKeepAlives: !j.keep, DialContext: d.DialContext}
			err := httpRequests(tr, j.via, j.name, n)
			tr.CloseIdleConnections()
			errs <- err
		}()
	}
	for range jobs {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	// Once every connection is closed on both sides, every payload byte
	// has crossed both veths, and Run drains the ring after detaching.
	waitFor(t, "the connections to close", func() bool { return closed(t, client) && closed(t, server) })
	st := stop()
	p.Close(time.Now())
	ps := p.Stats()
	retrans := retransmits(t, client) + retransmits(t, server) - retransBefore

	checkReconciled(t, st)
	if st.Lost != 0 || st.LostBytes != 0 || st.Truncated != 0 {
		t.Errorf("capture lost %d packets (%d bytes), truncated %d: want none", st.Lost, st.LostBytes, st.Truncated)
	}
	a := ps.Assembly
	if ps.Gaps != 0 || a.GapBytes != 0 || ps.EntriesWithGap != 0 || ps.Unmatched != 0 || a.ConnsEvicted != 0 ||
		a.ConnBufferFull+a.SegmentsFull+a.TotalBufferFull != 0 || ps.OpaqueConns != 0 || ps.LeftoverOverflows != 0 {
		t.Errorf("pipeline lost or could not read something: %+v", ps)
	}
	cIf, sIf := ifindex(t, l, client), ifindex(t, l, server)
	for k := range rec.flows {
		if k.ifindex != cIf && k.ifindex != sIf {
			t.Errorf("captured %v on interface %d, which carries neither pod", k.src, k.ifindex)
		}
	}

	// Each connection the client opened, and whether it went through a
	// service.
	convs := d.conversations()
	if want := 2*nOwn + 2 + 2; len(convs) != want {
		t.Fatalf("the client opened %d connections, want %d", len(convs), want)
	}
	// The payload bytes of each connection, both ways, as the client's veth
	// carried them; the server's veth must have carried the same (after
	// DNAT, for a service connection), and at least what the client wrote
	// and read (the client may close before reading the server's last
	// bytes).
	ports := map[uint16]bool{}
	var svcConns, podConns int
	var svcBytes, podBytes int64
	for _, c := range convs {
		ports[c.client.Port()] = true
		pod := c.server
		if c.server == httpSvc {
			pod = httpPod
		} else if c.server == grpcSvc {
			pod = grpcPod
		}
		up, _ := rec.flow(flowKey{cIf, c.client, c.server}).bytes()
		down, _ := rec.flow(flowKey{cIf, c.server, c.client}).bytes()
		upAfter, _ := rec.flow(flowKey{sIf, c.client, pod}).bytes()
		downAfter, _ := rec.flow(flowKey{sIf, pod, c.client}).bytes()
		if up != upAfter || down != downAfter || up < c.sent || down < c.recv {
			t.Errorf("%v -> %v: client wrote %d, read %d; client's veth carried %d and %d, server's %d and %d",
				c.client, c.server, c.sent, c.recv, up, down, upAfter, downAfter)
		}
		if pod != c.server {
			svcConns++
			svcBytes += up + down
		} else {
			podConns++
			podBytes += up + down
		}
	}

	// Each exchange once, with the right addresses.
	want := map[string]exchange{}
	for _, j := range jobs {
		x := exchange{dst: httpPod}
		n := nOwn
		switch {
		case j.grpc:
			x.dst, n = grpcPod, nCalls
		case j.keep:
			n = nKeep
		}
		if j.via != x.dst {
			x.via = &protocols.Endpoint{IP: j.via.Addr(), Port: j.via.Port()}
		}
		for i := range n {
			if j.grpc {
				want[fmt.Sprintf("%s-%d", j.name, i)] = x
			} else {
				want[fmt.Sprintf("/%s/%d", j.name, i)] = x
			}
		}
	}
	checkExchanges(t, entries, client.IP, want)
	for _, e := range entries {
		if !ports[e.Src.Port] {
			t.Errorf("%s %v from port %d, which the client did not dial from", e.Protocol, e.Summary, e.Src.Port)
		}
	}

	// The copies: one NAT twin per service connection, its bytes not read
	// again; the pod-address copies merged by the assembly.
	if ps.NATTwins != uint64(svcConns) {
		t.Errorf("%d NAT twins, want one per service connection: %d", ps.NATTwins, svcConns)
	}
	if ps.NATTwinBytes != uint64(svcBytes) {
		t.Errorf("NAT twins carried %d bytes, the service connections %d", ps.NATTwinBytes, svcBytes)
	}
	if ps.Connections != uint64(len(convs)) {
		t.Errorf("the pipeline counted %d connections, the client opened %d", ps.Connections, len(convs))
	}
	if want := uint64(2*svcConns + podConns); a.Conns != want {
		t.Errorf("the assembly made %d streams, want %d: two per service connection, one per pod connection", a.Conns, want)
	}
	// A real retransmission adds to the count; without one, the second
	// copy of each pod connection is exactly the retransmitted bytes.
	if retrans == 0 && a.RetransmittedBytes != uint64(podBytes) {
		t.Errorf("%d bytes counted retransmitted, want the %d bytes of the pod connections' second copy", a.RetransmittedBytes, podBytes)
	}
	if retrans != 0 && a.RetransmittedBytes < uint64(podBytes) {
		t.Errorf("%d bytes counted retransmitted, want at least the %d bytes of the pod connections' second copy", a.RetransmittedBytes, podBytes)
	}
	t.Logf("%d entries; %d service connections (%d bytes), %d pod connections (%d bytes); %d TCP retransmissions",
		len(entries), svcConns, svcBytes, podConns, podBytes, retrans)
	t.Logf("pipeline: nat_twins %d, nat_twin_bytes %d, connections %d, streams %d, retransmitted bytes %d",
		ps.NATTwins, ps.NATTwinBytes, ps.Connections, a.Conns, a.RetransmittedBytes)
	t.Logf("capture %+v", st)
}

// recordingDialer dials from a pod and counts what each connection carried,
// as the client saw it.
type recordingDialer struct {
	from  *netlab.Pod
	mu    sync.Mutex
	convs []*conversation
}

func (d *recordingDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	c, err := d.from.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	conv := &conversation{
		client: c.LocalAddr().(*net.TCPAddr).AddrPort(),
		server: c.RemoteAddr().(*net.TCPAddr).AddrPort(),
	}
	d.mu.Lock()
	d.convs = append(d.convs, conv)
	d.mu.Unlock()
	return countingConn{c, conv, &d.mu}, nil
}

func (d *recordingDialer) conversations() []*conversation {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.convs)
}

// httpRequests POSTs n requests to /name/i at addr through tr, with bodies
// of up to 40 KB both ways.
func httpRequests(tr *http.Transport, addr netip.AddrPort, name string, n int) error {
	hc := &http.Client{Transport: tr, Timeout: 20 * time.Second}
	for i := range n {
		size := (i*7919 + 100) % 40000
		url := fmt.Sprintf("http://%s/%s/%d?n=%d", addr, name, i, size/2)
		resp, err := hc.Post(url, "application/octet-stream", io.LimitReader(zeros{}, int64(size)))
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	return nil
}

// healthChecks makes n gRPC health checks on one connection to addr, for
// the services name-0 ... name-(n-1).
func healthChecks(d *recordingDialer, addr netip.AddrPort, name string, n int) error {
	cc, err := grpc.NewClient(addr.String(),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, a string) (net.Conn, error) {
			return d.DialContext(ctx, "tcp", a)
		}))
	if err != nil {
		return err
	}
	defer cc.Close()
	hc := healthpb.NewHealthClient(cc)
	for i := range n {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		_, err := hc.Check(ctx, &healthpb.HealthCheckRequest{Service: fmt.Sprintf("%s-%d", name, i)})
		cancel()
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	return nil
}

// closed says whether the pod's TCP sockets are all listening or closed
// (TIME_WAIT included): no data is left to send.
func closed(t testing.TB, p *netlab.Pod) bool {
	t.Helper()
	var tables []byte
	err := p.Do(func() error {
		for _, f := range []string{"/proc/thread-self/net/tcp", "/proc/thread-self/net/tcp6"} {
			b, err := os.ReadFile(f)
			if err != nil {
				return err
			}
			tables = append(tables, b...)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(tables)) {
		// "sl local_address rem_address st ...": st is the state in hex.
		f := strings.Fields(line)
		if len(f) < 4 || f[0] == "sl" {
			continue
		}
		switch f[3] {
		case "0A", "06", "07": // LISTEN, TIME_WAIT, CLOSE
		default:
			return false
		}
	}
	return true
}

// retransmits reads the pod's TCP RetransSegs counter.
func retransmits(t testing.TB, p *netlab.Pod) uint64 {
	t.Helper()
	var snmp []byte
	err := p.Do(func() error {
		var err error
		snmp, err = os.ReadFile("/proc/thread-self/net/snmp")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for line := range strings.Lines(string(snmp)) {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] != "Tcp:" {
			continue
		}
		if names == nil {
			names = f
			continue
		}
		if i := slices.Index(names, "RetransSegs"); i > 0 && i < len(f) {
			n, err := strconv.ParseUint(f[i], 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatalf("no Tcp RetransSegs in %s's /proc/net/snmp", p.Name)
	return 0
}

// exchange is where an entry must say an exchange went.
type exchange struct {
	dst netip.AddrPort
	via *protocols.Endpoint
}

// exchangeKey names an entry by what the client sent: the HTTP path, or
// the service a gRPC health check asked about.
func exchangeKey(e *protocols.Entry) string {
	switch {
	case e.HTTP != nil && e.HTTP.Request != nil:
		return e.HTTP.Request.Path
	case e.GRPC != nil && len(e.GRPC.Requests.Messages) == 1:
		// HealthCheckRequest{service: name}: field 1, its length, the name.
		if msg := e.GRPC.Requests.Messages[0].Data; len(msg) > 2 {
			return string(msg[2:])
		}
	}
	return ""
}

// checkExchanges checks that every exchange appears exactly once, from the
// client, to the pod it reached, via the service the client dialled if any,
// whole.
func checkExchanges(t *testing.T, entries []*protocols.Entry, client netip.Addr, want map[string]exchange) {
	t.Helper()
	seen := map[string]int{}
	for _, e := range entries {
		k := exchangeKey(e)
		seen[k]++
		x, ok := want[k]
		if !ok {
			t.Errorf("unexpected %s entry %v", e.Protocol, e.Summary)
			continue
		}
		if e.Src.IP != client {
			t.Errorf("%s %q from %v, want the client %v", e.Protocol, k, e.Src.IP, client)
		}
		if got := netip.AddrPortFrom(e.Dst.IP, e.Dst.Port); got != x.dst {
			t.Errorf("%s %q to %v, want %v", e.Protocol, k, got, x.dst)
		}
		if (e.Via == nil) != (x.via == nil) || e.Via != nil && *e.Via != *x.via {
			t.Errorf("%s %q via %v, want %v", e.Protocol, k, e.Via, x.via)
		}
		if e.Gap || e.Unmatched != protocols.Matched {
			t.Errorf("%s %q: gap %v, unmatched %q", e.Protocol, k, e.Gap, e.Unmatched)
		}
	}
	for k := range want {
		if seen[k] != 1 {
			t.Errorf("%q appears %d times, want once", k, seen[k])
		}
	}
	if len(entries) != len(want) {
		t.Errorf("%d entries for %d exchanges", len(entries), len(want))
	}
}

// TestServiceSharedClientPort: the kernel gives a client port to
// connections to different destinations at the same time (only the
// 4-tuple must be unique). A pod with a connection open to a pod that then
// dials a service may do so from the same port; that connection is no copy
// of the first, and each must keep its own addresses. When the service
// leads to the pod already connected to, conntrack must give the
// connection after DNAT another client port, and its copy on the server's
// veth is still the same connection. The client's port range is narrowed
// to one port so that the kernel shares it every time rather than now and
// then.
func TestServiceSharedClientPort(t *testing.T) {
	tests := []struct {
		name string
		// direct is the pod the client connects to first: "other", or
		// "server", the one behind the service.
		direct string
	}{
		{"another pod", "other"},
		{"the service's pod", "server"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newLab(t)
			server, other, client := addPod(t, l, "server"), addPod(t, l, "other"), addPod(t, l, "client")
			sizedServer(t, server, 8080)
			sizedServer(t, other, 8080)
			svc, err := l.AddService(server, 80, 8080)
			if err != nil {
				t.Fatal(err)
			}
			if out, err := client.Command(context.Background(), "sysctl", "-qw", "net.ipv4.ip_local_port_range=40000 40000").CombinedOutput(); err != nil {
				t.Fatalf("narrowing the client's port range: %v: %s", err, out)
			}
			src, err := NewEBPF(Config{Pods: []netip.Addr{server.IP, other.IP, client.IP}, Netns: l.Node.Handle})
			if err != nil {
				t.Fatal(err)
			}
			var entries []*protocols.Entry
			p := pipeline.New(pipeline.DefaultConfig(all.Dissectors()), func(e *protocols.Entry) { entries = append(entries, e) })
			frames := pipeline.NewFrames(p)
			rec := newRecorder()
			stop := running(t, src, func(f *Frame) {
				rec.deliver(f)
				frames.Frame(f.Data, f.WireLen, f.Time, packet.LinkEthernet)
			})

			// A kept-alive connection to a pod, a request through the
			// service while it is open, and one more on the first
			// connection.
			d := &recordingDialer{from: client}
			direct := netip.AddrPortFrom(l.Pod(tt.direct).IP, 8080)
			kept := &http.Transport{DialContext: d.DialContext}
			once := &http.Transport{DisableKeepAlives: true, DialContext: d.DialContext}
			steps := []struct {
				name string
				tr   *http.Transport
				to   netip.AddrPort
			}{{"direct-a", kept, direct}, {"svc", once, svc}, {"direct-b", kept, direct}}
			for _, s := range steps {
				if err := httpRequests(s.tr, s.to, s.name, 1); err != nil {
					t.Fatal(err)
				}
			}
			kept.CloseIdleConnections()
			convs := d.conversations()
			if len(convs) != 2 || convs[0].client != convs[1].client {
				t.Fatalf("connections %v: want two from one client port", convs)
			}
			st := stop()
			p.Close(time.Now())
			checkReconciled(t, st)
			if st.Lost != 0 {
				t.Errorf("capture lost %d packets", st.Lost)
			}
			// The client ports the server's veth saw, to show whether
			// conntrack moved the service connection to another one.
			sIf := ifindex(t, l, server)
			var after []uint16
			for k := range rec.flows {
				if k.ifindex == sIf && k.src.Addr() == client.IP && !slices.Contains(after, k.src.Port()) {
					after = append(after, k.src.Port())
				}
			}
			via := &protocols.Endpoint{IP: svc.Addr(), Port: svc.Port()}
			checkExchanges(t, entries, client.IP, map[string]exchange{
				"/direct-a/0": {dst: direct},
				"/svc/0":      {dst: netip.AddrPortFrom(server.IP, 8080), via: via},
				"/direct-b/0": {dst: direct},
			})
			for _, e := range entries {
				if e.Src.Port != convs[0].client.Port() {
					t.Errorf("%v from port %d, want the client's %d", e.Summary, e.Src.Port, convs[0].client.Port())
				}
			}
			if ps := p.Stats(); ps.NATTwins != 1 || ps.Connections != 2 {
				t.Errorf("%d NAT twins, %d connections; want 1 and 2", ps.NATTwins, ps.Connections)
			}
			t.Logf("client port %d; client ports on the server's veth %v", convs[0].client.Port(), after)
		})
	}
}
