package live_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/sondehq/sonde/agent/capture/live"
	"github.com/sondehq/sonde/agent/runner"
	"github.com/sondehq/sonde/lab/netlab"
	"github.com/sondehq/sonde/protocols"
)

// TestEntries runs HTTP/1 requests, gRPC calls and Redis commands between
// pods through the eBPF capture and the agent's runtime: every exchange must
// come out as exactly one entry with the client and server addresses, and
// nothing may be lost. Each connection is captured on both pods' veths; the
// copies carry the same sequence numbers, so the assembly keeps one.
func TestEntries(t *testing.T) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Skip("TestEntries needs redis-server (Debian package redis-server)")
	}
	l := netlab.ForTest(t)
	server, client := mustPod(t, l, "server"), mustPod(t, l, "client")

	ln, err := server.Listen("tcp", ":8080")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "path %s", r.URL.Path)
	})}
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })
	gln, err := server.Listen("tcp", ":9090")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	healthpb.RegisterHealthServer(gs, health.NewServer())
	go gs.Serve(gln)
	t.Cleanup(gs.Stop)

	rctx, rcancel := context.WithCancel(context.Background())
	t.Cleanup(rcancel)
	rs := server.Command(rctx, "redis-server", "--port", "6379", "--bind", server.IP.String(),
		"--save", "", "--appendonly", "no", "--protected-mode", "no")
	if err := rs.Start(); err != nil {
		t.Fatal(err)
	}
	l.Track(rs)
	newRedis := func() *redis.Client {
		return redis.NewClient(&redis.Options{
			Addr: fmt.Sprintf("%s:6379", server.IP),
			Dialer: func(ctx context.Context, network, addr string) (net.Conn, error) {
				return client.DialContext(ctx, network, addr)
			},
			Protocol:        2,
			DisableIdentity: true,
		})
	}
	rdb := newRedis()
	t.Cleanup(func() { rdb.Close() })
	// Wait for redis-server to listen before the capture starts, so that the
	// probing is not part of what is counted.
	ready := false
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for deadline := time.Now().Add(10 * time.Second); !ready && time.Now().Before(deadline); <-tick.C {
		ready = rdb.Ping(context.Background()).Err() == nil
	}
	if !ready {
		t.Fatal("redis-server did not answer PING")
	}
	rdb.Close()
	// A fresh connection, opened while the capture runs.
	rdb = newRedis()

	var mu sync.Mutex
	var entries []*protocols.Entry
	rt, err := runner.Open(runner.Config{
		Live: &live.Config{Source: "ebpf", Pods: []netip.Addr{server.IP, client.IP}, Netns: l.Node.Handle},
		Emit: func(e *protocols.Entry) {
			mu.Lock()
			entries = append(entries, e)
			mu.Unlock()
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- rt.Run(ctx) }()

	const nHTTP, nGRPC, nRedis = 30, 20, 25
	hc := &http.Client{Transport: &http.Transport{DialContext: client.DialContext}, Timeout: 10 * time.Second}
	for i := range nHTTP {
		resp, err := hc.Get(fmt.Sprintf("http://%s:8080/e2e/%d", server.IP, i))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	hc.CloseIdleConnections()
	cc, err := grpc.NewClient(fmt.Sprintf("%s:9090", server.IP),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
			return client.DialContext(ctx, "tcp", addr)
		}))
	if err != nil {
		t.Fatal(err)
	}
	hcli := healthpb.NewHealthClient(cc)
	for range nGRPC {
		if _, err := hcli.Check(context.Background(), &healthpb.HealthCheckRequest{}); err != nil {
			t.Fatal(err)
		}
	}
	cc.Close()
	for i := range nRedis {
		key := fmt.Sprintf("e2e:%d", i)
		if err := rdb.Set(context.Background(), key, i, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	rdb.Close()

	// Every byte an entry needs crossed TC before the client read it, and
	// Run drains the ring after detaching: stopping now loses nothing.
	cancel()
	if err := <-done; err != nil { // Run closed every connection
		t.Fatal(err)
	}
	st := rt.Stats().Capture
	if st.Lost != 0 || st.Read != st.Captured || st.Delivered != st.Read {
		t.Errorf("capture stats %+v: want nothing lost and everything delivered", st)
	}

	paths := map[string]int{}
	grpcCalls := 0
	redisKeys := map[string]int{}
	for _, e := range entries {
		if e.Src.IP != client.IP || e.Dst.IP != server.IP {
			t.Errorf("entry %s %v: %v -> %v, want %v -> %v", e.Protocol, e.Summary, e.Src.IP, e.Dst.IP, client.IP, server.IP)
		}
		if e.Gap || e.Unmatched != protocols.Matched {
			t.Errorf("entry %s %v: gap %v unmatched %q", e.Protocol, e.Summary, e.Gap, e.Unmatched)
		}
		switch {
		case e.HTTP != nil && e.HTTP.Request != nil:
			paths[e.HTTP.Request.Path]++
			if e.Dst.Port != 8080 {
				t.Errorf("HTTP entry to port %d, want 8080", e.Dst.Port)
			}
		case e.Redis != nil:
			if e.Redis.Command == "SET" {
				redisKeys[e.Redis.Key]++
			}
			if e.Dst.Port != 6379 {
				t.Errorf("Redis entry to port %d, want 6379", e.Dst.Port)
			}
		case e.GRPC != nil:
			if e.GRPC.Service == "grpc.health.v1.Health" && e.GRPC.Method == "Check" {
				grpcCalls++
			}
		}
	}
	for i := range nHTTP {
		if n := paths[fmt.Sprintf("/e2e/%d", i)]; n != 1 {
			t.Errorf("GET /e2e/%d appears %d times, want once", i, n)
		}
	}
	for i := range nRedis {
		if n := redisKeys[fmt.Sprintf("e2e:%d", i)]; n != 1 {
			t.Errorf("SET e2e:%d appears %d times, want once", i, n)
		}
	}
	if grpcCalls != nGRPC {
		t.Errorf("%d gRPC Check entries, want %d", grpcCalls, nGRPC)
	}
	t.Logf("%d entries; capture %+v", len(entries), st)
}

func mustPod(t *testing.T, l *netlab.Lab, name string) *netlab.Pod {
	t.Helper()
	p, err := l.AddPod(name)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
