package kube_test

import (
	"context"
	"net/netip"
	"os"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/sondehq/sonde/apiserver/enrich"
	"github.com/sondehq/sonde/apiserver/kube"
	"github.com/sondehq/sonde/lab/kubetest"
	"github.com/sondehq/sonde/protocols"
)

func TestMain(m *testing.M) { os.Exit(kubetest.Main(m)) }

// hub starts a Resolver as the hub runs it: with the credentials of
// Sonde's ServiceAccount, so that the ClusterRole is shown to be enough.
func hub(t *testing.T, env *kubetest.Env) *kube.Resolver {
	t.Helper()
	ctx := t.Context()
	if _, err := env.Kubectl(ctx, "apply", "--server-side", "-k", "../../deploy"); err != nil {
		t.Fatal(err)
	}
	cfg, err := env.ServiceAccountConfig(ctx, "sonde", "sonde")
	if err != nil {
		t.Fatal(err)
	}
	cfg.UserAgent = "sonde-hub-test"
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r, err := kube.New(cs, kube.Config{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("resolver: %v", err)
		}
	})
	waitFor(t, "the resolver's first list", r.Synced)
	return r
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

// runPod creates a pod on node-1, owned by owner, running at ip.
func runPod(t *testing.T, env *kubetest.Env, ns, name, ip string, owner *metav1.OwnerReference, labels map[string]string) {
	t.Helper()
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels},
		Spec:       corev1.PodSpec{NodeName: "node-1"},
	}
	if owner != nil {
		p.OwnerReferences = []metav1.OwnerReference{*owner}
	}
	if _, err := env.RunPod(t.Context(), p, ip); err != nil {
		t.Fatal(err)
	}
}

func controller(kind, name string) *metav1.OwnerReference {
	yes := true
	return &metav1.OwnerReference{APIVersion: "apps/v1", Kind: kind, Name: name, UID: "0", Controller: &yes}
}

// TestNames resolves pods and services created through a real API server:
// the workload is followed from a ReplicaSet to its Deployment, a pod gets
// the name of the service whose endpointslice lists it, and a service IP
// resolves to the service.
func TestNames(t *testing.T) {
	env := kubetest.Shared(t, kubetest.Options{})
	r := hub(t, env)
	ctx := t.Context()
	if err := env.CreateNamespaces(ctx, "shop"); err != nil {
		t.Fatal(err)
	}
	runPod(t, env, "shop", "web-7d9f8c6b5-x2x4q", "10.77.0.10", controller("ReplicaSet", "web-7d9f8c6b5"),
		map[string]string{"app": "web", "pod-template-hash": "7d9f8c6b5"})
	runPod(t, env, "shop", "db-0", "10.77.0.11", controller("StatefulSet", "db"), nil)
	if _, err := env.Client.CoreV1().Services("shop").Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: corev1.ServiceSpec{ClusterIP: "10.96.0.10", Selector: map[string]string{"app": "web"},
			Ports: []corev1.ServicePort{{Port: 80}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := env.Client.DiscoveryV1().EndpointSlices("shop").Create(ctx, &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: "web-abcde", Labels: map[string]string{discoveryv1.LabelServiceName: "web"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints: []discoveryv1.Endpoint{{Addresses: []string{"10.77.0.10"},
			TargetRef: &corev1.ObjectReference{Kind: "Pod", Namespace: "shop", Name: "web-7d9f8c6b5-x2x4q"}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the pod's service", func() bool {
		id, _ := r.Resolve(netip.MustParseAddr("10.77.0.10"), time.Now())
		return id.Service != ""
	})

	tests := []struct {
		ip   string
		want kube.Info
	}{
		{"10.77.0.10", kube.Info{Identity: enrich.Identity{Pod: "web-7d9f8c6b5-x2x4q", Namespace: "shop", Service: "web", Workload: "web", Node: "node-1"},
			WorkloadKind: "Deployment"}},
		{"10.77.0.11", kube.Info{Identity: enrich.Identity{Pod: "db-0", Namespace: "shop", Workload: "db", Node: "node-1"},
			WorkloadKind: "StatefulSet"}},
		{"10.96.0.10", kube.Info{Identity: enrich.Identity{Service: "web", Namespace: "shop"}}},
		{"::ffff:10.96.0.10", kube.Info{Identity: enrich.Identity{Service: "web", Namespace: "shop"}}},
	}
	for _, tt := range tests {
		got, ok := r.Lookup(netip.MustParseAddr(tt.ip), time.Now())
		if !ok || got != tt.want {
			t.Errorf("%s: got %+v (found %v), want %+v", tt.ip, got, ok, tt.want)
		}
	}
	e := &protocols.Entry{Start: time.Now(),
		Src: protocols.Endpoint{IP: netip.MustParseAddr("10.77.0.11"), Port: 40000},
		Dst: protocols.Endpoint{IP: netip.MustParseAddr("10.96.0.10"), Port: 80}}
	if !enrich.Entry(r, e) || e.Src.Pod != "db-0" || e.Src.Workload != "db" || e.Dst.Service != "web" {
		t.Errorf("entry named src %+v dst %+v", e.Src, e.Dst)
	}
}

// TestReusedPodIP deletes a pod and gives its address to a new one: entries
// from before the deletion resolve to the old pod, entries from after the
// new pod started to the new one.
func TestReusedPodIP(t *testing.T) {
	env := kubetest.Shared(t, kubetest.Options{})
	r := hub(t, env)
	ctx := t.Context()
	if err := env.CreateNamespaces(ctx, "reuse"); err != nil {
		t.Fatal(err)
	}
	const ip = "10.77.0.20"
	addr := netip.MustParseAddr(ip)
	resolvesTo := func(at time.Time, pod string) func() bool {
		return func() bool {
			id, ok := r.Resolve(addr, at)
			return ok && id.Pod == pod
		}
	}

	runPod(t, env, "reuse", "first", ip, controller("DaemonSet", "agent"), nil)
	waitFor(t, "the first pod", resolvesTo(time.Now(), "first"))
	before := time.Now()
	if err := env.Client.CoreV1().Pods("reuse").Delete(ctx, "first", metav1.DeleteOptions{GracePeriodSeconds: new(int64)}); err != nil {
		t.Fatal(err)
	}
	// The deletion is seen before the next pod takes the address, as a
	// kubelet tears down a sandbox before its IP is handed out again.
	waitFor(t, "the first pod's deletion", func() bool {
		_, ok := r.Resolve(addr, time.Now().Add(kube.DefaultLinger+time.Second))
		return !ok
	})
	after := time.Now()
	runPod(t, env, "reuse", "second", ip, controller("Job", "backup"), nil)
	waitFor(t, "the second pod", resolvesTo(time.Now(), "second"))

	for _, q := range []struct {
		at   time.Time
		want string
	}{{before, "first"}, {after, "second"}, {time.Now(), "second"}} {
		id, ok := r.Resolve(addr, q.at)
		if !ok || id.Pod != q.want {
			t.Errorf("at %v: got %+v (found %v), want %s", q.at.Format(time.StampMicro), id, ok, q.want)
		}
	}
}
