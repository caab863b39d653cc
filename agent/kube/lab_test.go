package kube_test

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"regexp"
	"slices"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/sondehq/sonde/agent/capture/live"
	"github.com/sondehq/sonde/agent/kube"
	"github.com/sondehq/sonde/agent/runner"
	"github.com/sondehq/sonde/apiserver/enrich"
	hubkube "github.com/sondehq/sonde/apiserver/kube"
	"github.com/sondehq/sonde/lab/kubetest"
	"github.com/sondehq/sonde/lab/netlab"
	"github.com/sondehq/sonde/protocols"
)

// capture runs the eBPF capture of addrs in the lab's node through the
// agent's runtime; stop ends it and returns the entries.
func capture(t *testing.T, l *netlab.Lab, addrs []netip.Addr) (stop func() ([]*protocols.Entry, live.Stats)) {
	t.Helper()
	var mu sync.Mutex
	var entries []*protocols.Entry
	rt, err := runner.Open(runner.Config{
		Live: &live.Config{Source: "ebpf", Pods: addrs, Netns: l.Node.Handle},
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
	stopped := false
	stop = func() ([]*protocols.Entry, live.Stats) {
		if !stopped {
			stopped = true
			cancel()
			if err := <-done; err != nil { // Run closed every connection
				t.Error(err)
			}
		}
		mu.Lock()
		defer mu.Unlock()
		return entries, rt.Stats().Capture
	}
	t.Cleanup(func() { stop() })
	return stop
}

func serve(t *testing.T, p *netlab.Pod) {
	t.Helper()
	srv, err := p.ServeHTTP(":8080", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s says hello to %s", p.Name, r.URL.Path)
	}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
}

func get(t *testing.T, from *netlab.Pod, url string) {
	t.Helper()
	if _, err := from.Get(t.Context(), url); err != nil {
		t.Fatal(err)
	}
}

// TestLab gives pods created through the API server the addresses of the
// network lab's pods. The agent's watcher picks the selected ones of its
// node; the capture of their addresses sees their traffic and none of the
// others'; the hub's resolver names the entries after the pods and the
// service, at each entry's own time. When a selected pod appears later, the
// watcher reports it and a capture of the new set sees it too.
func TestLab(t *testing.T) {
	l := netlab.ForTest(t)
	env := kubetest.Shared(t, kubetest.Options{Audit: true})
	ctx := t.Context()
	cs := agentClient(t, env, "sonde-agent-lab")

	server, client := mustPod(t, l, "server"), mustPod(t, l, "client")
	bystander, other := mustPod(t, l, "bystander"), mustPod(t, l, "other")
	serve(t, server)
	serve(t, other)
	svc, err := l.AddService(server, 80, 8080)
	if err != nil {
		t.Fatal(err)
	}

	const node = "lab-node"
	if err := env.CreateNamespaces(ctx, "lab"); err != nil {
		t.Fatal(err)
	}
	var serverPod *corev1.Pod
	for name, p := range map[string]*netlab.Pod{"web-server": server, "web-client": client, "bystander": bystander} {
		kp, err := env.RunPod(ctx, pod("lab", name, node), p.IP.String(), p.IP6.String())
		if err != nil {
			t.Fatal(err)
		}
		if p == server {
			serverPod = kp
		}
	}
	if err := env.RunService(ctx, "lab", "web", svc.Addr().String(), int32(svc.Port()), serverPod); err != nil {
		t.Fatal(err)
	}

	resolver, err := hubkube.New(cs, hubkube.Config{})
	if err != nil {
		t.Fatal(err)
	}
	rctx, rcancel := context.WithCancel(context.Background())
	rdone := make(chan error, 1)
	go func() { rdone <- resolver.Run(rctx) }()
	t.Cleanup(func() { rcancel(); <-rdone })

	changes := watch(t, cs, kube.Config{Node: node, Selector: kube.Selector{Pods: regexp.MustCompile("^web-")}})
	want := fmt.Sprintf("lab/web-client[%s %s] lab/web-server[%s %s]", client.IP, client.IP6, server.IP, server.IP6)
	selected := next(t, changes, want)

	stop := capture(t, l, kube.Addrs(selected))
	const n = 5
	for i := range n {
		get(t, client, fmt.Sprintf("http://%s/through-service/%d", svc, i))
	}
	get(t, bystander, fmt.Sprintf("http://%s:8080/unselected", other.IP))
	entries, st := stop()
	if st.Filtered == 0 {
		t.Errorf("capture stats %+v: the kernel filtered nothing, yet unselected pods talked", st)
	}
	waitFor(t, "the resolver's first list", resolver.Synced)
	paths := map[string]int{}
	for _, e := range entries {
		enrich.Entry(resolver, e)
		if e.HTTP == nil || e.HTTP.Request == nil {
			t.Errorf("entry %s %v is not an HTTP exchange", e.Protocol, e.Summary)
			continue
		}
		paths[e.HTTP.Request.Path]++
		if e.Src.Pod != "web-client" || e.Src.Namespace != "lab" || e.Dst.Service != "web" || e.Dst.Namespace != "lab" {
			t.Errorf("%s: src %+v dst %+v, want web-client to service web", e.HTTP.Request.Path, e.Src, e.Dst)
		}
		if e.Dst.Pod != "" && e.Dst.Pod != "web-server" {
			t.Errorf("%s: dst pod %q", e.HTTP.Request.Path, e.Dst.Pod)
		}
	}
	for i := range n {
		if got := paths[fmt.Sprintf("/through-service/%d", i)]; got != 1 {
			t.Errorf("/through-service/%d seen %d times, want once", i, got)
		}
	}
	if paths["/unselected"] != 0 {
		t.Error("the capture saw traffic between two unselected pods")
	}

	// A selected pod appears on the node: the watcher reports it, and the
	// capture of the new set sees its traffic, named after it.
	late := pod("lab", "web-late", node)
	if _, err := env.RunPod(ctx, late, other.IP.String()); err != nil {
		t.Fatal(err)
	}
	selected = next(t, changes, fmt.Sprintf("lab/web-client[%s %s] lab/web-late[%s] lab/web-server[%s %s]",
		client.IP, client.IP6, other.IP, server.IP, server.IP6))
	if !slices.Contains(kube.Addrs(selected), other.IP) {
		t.Fatalf("selection %v lacks the new pod's address", selected)
	}
	stop = capture(t, l, kube.Addrs(selected))
	get(t, bystander, fmt.Sprintf("http://%s:8080/late", other.IP))
	entries, _ = stop()
	found := false
	for _, e := range entries {
		enrich.Entry(resolver, e)
		if e.HTTP != nil && e.HTTP.Request != nil && e.HTTP.Request.Path == "/late" {
			found = true
			if e.Dst.Pod != "web-late" || e.Src.Pod != "bystander" {
				t.Errorf("/late: src %+v dst %+v, want bystander to web-late", e.Src, e.Dst)
			}
		}
	}
	if !found {
		t.Error("the capture of the new selection missed the new pod's request")
	}
}

func mustPod(t *testing.T, l *netlab.Lab, name string) *netlab.Pod {
	t.Helper()
	p, err := l.AddPod(name)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(30 * time.Second)
	for !cond() {
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}
