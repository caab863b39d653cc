package main

import (
	"context"
	"flag"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	agentkube "github.com/sondehq/sonde/agent/kube"
	hubkube "github.com/sondehq/sonde/apiserver/kube"
	"github.com/sondehq/sonde/lab/kubetest"
)

var steadyWindow = flag.Duration("steady-window", time.Minute,
	"how long TestSteadyStateRequests counts requests; the informers re-watch every 5 to 10 minutes, so 10m gives a fair average")

// TestSteadyStateRequests counts, in the API server's audit log, the
// requests the hub's resolver and the agents (one per node) make once they
// have listed 1,000 pods on 10 nodes, 100 services and their endpointslices
// and nothing changes: a handful of re-watches, never a poll. The figures
// are logged; the test fails only on a rate that only polling would reach.
func TestSteadyStateRequests(t *testing.T) {
	const nodes, podsPerNode, services = 10, 100, 100
	env := kubetest.Start(t, kubetest.Options{Audit: true})
	ctx := t.Context()
	if _, err := env.Kubectl(ctx, "apply", "--server-side", "-k", "../../deploy"); err != nil {
		t.Fatal(err)
	}
	namespaces := make([]string, 10)
	for i := range namespaces {
		namespaces[i] = fmt.Sprintf("app-%d", i)
	}
	if err := env.CreateNamespaces(ctx, namespaces...); err != nil {
		t.Fatal(err)
	}
	setupStart := time.Now()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for n := range nodes {
		for i := range podsPerNode {
			g.Go(func() error {
				ns := namespaces[i%len(namespaces)]
				_, err := env.RunPod(gctx, &corev1.Pod{
					ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("web-%d-%d", n, i), Labels: map[string]string{"app": fmt.Sprintf("svc-%d", i)}},
					Spec:       corev1.PodSpec{NodeName: fmt.Sprintf("node-%d", n)},
				}, fmt.Sprintf("10.244.%d.%d", n, i+2))
				return err
			})
		}
	}
	for i := range services {
		g.Go(func() error {
			ns := namespaces[i%len(namespaces)]
			name := fmt.Sprintf("svc-%d", i)
			if _, err := env.Client.CoreV1().Services(ns).Create(gctx, &corev1.Service{
				ObjectMeta: metav1.ObjectMeta{Name: name},
				Spec:       corev1.ServiceSpec{Selector: map[string]string{"app": name}, Ports: []corev1.ServicePort{{Port: 80}}},
			}, metav1.CreateOptions{}); err != nil {
				return err
			}
			es := &discoveryv1.EndpointSlice{
				ObjectMeta:  metav1.ObjectMeta{Name: name + "-1", Labels: map[string]string{discoveryv1.LabelServiceName: name}},
				AddressType: discoveryv1.AddressTypeIPv4,
			}
			for n := range nodes {
				es.Endpoints = append(es.Endpoints, discoveryv1.Endpoint{Addresses: []string{fmt.Sprintf("10.244.%d.%d", n, i+2)},
					TargetRef: &corev1.ObjectReference{Kind: "Pod", Namespace: ns, Name: fmt.Sprintf("web-%d-%d", n, i)}})
			}
			_, err := env.Client.DiscoveryV1().EndpointSlices(ns).Create(gctx, es, metav1.CreateOptions{})
			return err
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	t.Logf("created %d pods, %d services and endpointslices in %v", nodes*podsPerNode, services, time.Since(setupStart).Round(time.Millisecond))

	client := func(userAgent string) kubernetes.Interface {
		cfg, err := env.ServiceAccountConfig(ctx, "sonde", "sonde")
		if err != nil {
			t.Fatal(err)
		}
		cfg.UserAgent = userAgent
		cs, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			t.Fatal(err)
		}
		return cs
	}
	runCtx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { stop(); wg.Wait() })
	started := time.Now()
	resolver, err := hubkube.New(client("sonde-hub"), hubkube.Config{})
	if err != nil {
		t.Fatal(err)
	}
	wg.Go(func() { resolver.Run(runCtx) })
	listed := make(chan int, nodes)
	for n := range nodes {
		w, err := agentkube.New(client("sonde-agent"), agentkube.Config{Node: fmt.Sprintf("node-%d", n),
			Selector: agentkube.Selector{Exclude: []string{"sonde"}},
			OnChange: func(p []agentkube.Pod) { listed <- len(p) }})
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() { w.Run(runCtx) })
	}
	for range nodes {
		if got := <-listed; got != podsPerNode {
			t.Fatalf("an agent selected %d pods, want %d", got, podsPerNode)
		}
	}
	waitCond(t, "the resolver's first list", time.Minute, resolver.Synced)
	syncedAt := time.Now()
	st := resolver.Stats()
	// Besides: the "kubernetes" Service and the hub's own.
	if want := nodes*podsPerNode + services + 2; st.Holders != want {
		t.Errorf("the resolver knows %d pods and services holding addresses, want %d", st.Holders, want)
	}
	startup := count(t, env, started)
	t.Logf("start-up: hub and %d agents listed and synced in %v with %s", nodes, syncedAt.Sub(started).Round(time.Millisecond), startup)

	window := time.NewTimer(*steadyWindow)
	select {
	case <-window.C:
	case <-ctx.Done():
		t.Fatal(ctx.Err())
	}
	steady := count(t, env, syncedAt)
	perMinute := float64(steady.total) / steadyWindow.Minutes()
	t.Logf("steady state over %v: %s (%.1f requests per minute)", *steadyWindow, steady, perMinute)
	// Polling even one resource per agent every ten seconds would make 60.
	if perMinute > 30 {
		t.Errorf("%.1f requests per minute in a steady state: something polls", perMinute)
	}
}

type requestCount struct {
	total int
	by    map[string]int // "user-agent verb resource"
}

func (c requestCount) String() string {
	keys := make([]string, 0, len(c.by))
	for k := range c.by {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	fmt.Fprintf(&b, "%d requests", c.total)
	for _, k := range keys {
		fmt.Fprintf(&b, "; %s: %d", k, c.by[k])
	}
	return b.String()
}

// count tallies the hub's and the agents' requests since a moment.
func count(t *testing.T, env *kubetest.Env, since time.Time) requestCount {
	t.Helper()
	evs, err := env.Audit(since)
	if err != nil {
		t.Fatal(err)
	}
	c := requestCount{by: map[string]int{}}
	for _, ev := range evs {
		if !strings.HasPrefix(ev.UserAgent, "sonde-hub") && !strings.HasPrefix(ev.UserAgent, "sonde-agent") {
			continue
		}
		path, _, _ := strings.Cut(ev.URI, "?")
		parts := strings.Split(strings.Trim(path, "/"), "/")
		c.total++
		c.by[fmt.Sprintf("%s %s %s", ev.UserAgent, ev.Verb, parts[len(parts)-1])]++
	}
	return c
}
