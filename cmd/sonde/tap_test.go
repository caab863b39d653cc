package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/sondehq/sonde/apiserver"
	"github.com/sondehq/sonde/deploy"
	"github.com/sondehq/sonde/lab/kubetest"
	"github.com/sondehq/sonde/protocols"
)

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func waitCond(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(timeout)
	for !cond() {
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
	}
}

// TestTapDryRun lists exactly the pods the selection picks, and the objects
// it would apply, without changing the cluster. It also runs the other
// commands that only read: kubectl's server-side dry run of deploy/, check
// and version.
func TestTapDryRun(t *testing.T) {
	env := kubetest.Start(t, kubetest.Options{})
	ctx := t.Context()
	if err := env.CreateNamespaces(ctx, "shop", "payments", "kube-system"); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	for _, p := range []struct{ ns, name, node, ip string }{
		{"shop", "web-1", "node-1", "10.244.1.10"},
		{"shop", "web-2", "node-2", "10.244.2.10"},
		{"shop", "db-0", "node-1", "10.244.1.11"},
		{"payments", "web-pay", "node-2", "10.244.2.11"},
		{"kube-system", "web-dns", "node-1", "10.244.1.12"},
	} {
		if _, err := env.RunPod(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: p.ns, Name: p.name},
			Spec: corev1.PodSpec{NodeName: p.node}}, p.ip); err != nil {
			t.Fatal(err)
		}
	}
	host := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web-hostnet"},
		Spec: corev1.PodSpec{NodeName: "node-1", HostNetwork: true}}
	if _, err := env.RunPod(ctx, host, "192.0.2.1"); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name     string
		args     []string
		wantPods []string
	}{
		{"namespace and pattern", []string{"^web-", "-n", "shop"}, []string{"shop web-1", "shop web-2"}},
		{"kubeconfig's namespace", []string{"web"}, nil},
		{"two namespaces", []string{"-n", "shop,payments"}, []string{"payments web-pay", "shop db-0", "shop web-1", "shop web-2"}},
		{"all but excluded", []string{"^web-", "-A", "--exclude-namespaces", "kube-system"}, []string{"payments web-pay", "shop web-1", "shop web-2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out syncBuffer
			if err := execute(ctx, newTapCmd(), &out, append(tt.args, "--dry-run", "--kubeconfig", env.Kubeconfig)...); err != nil {
				t.Fatal(err)
			}
			var got []string
			listing := false
			for line := range strings.Lines(out.String()) {
				f := strings.Fields(line)
				switch {
				case len(f) > 0 && f[0] == "NAMESPACE":
					listing = true
				case len(f) == 0:
					listing = false
				case listing:
					got = append(got, f[0]+" "+f[1])
				}
			}
			if strings.Join(got, ",") != strings.Join(tt.wantPods, ",") {
				t.Errorf("listed %v, want %v\n%s", got, tt.wantPods, out.String())
			}
			for _, want := range []string{"DaemonSet sonde/sonde-agent", "Deployment sonde/sonde-hub", "ClusterRole sonde"} {
				if !strings.Contains(out.String(), want) {
					t.Errorf("no %q among the objects:\n%s", want, out.String())
				}
			}
		})
	}
	if _, err := env.Client.CoreV1().Namespaces().Get(ctx, deploy.DefaultNamespace, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("a dry run created namespace sonde (err %v)", err)
	}

	t.Run("kubectl server dry run", func(t *testing.T) {
		// Namespaced objects need their namespace, on any cluster.
		if _, err := env.Kubectl(ctx, "apply", "-f", "../../deploy/namespace.yaml"); err != nil {
			t.Fatal(err)
		}
		out, err := env.Kubectl(ctx, "apply", "--dry-run=server", "-k", "../../deploy")
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"daemonset.apps/sonde-agent", "deployment.apps/sonde-hub", "clusterrole.rbac.authorization.k8s.io/sonde",
			"secret/sonde-token", "service/sonde-hub"} {
			if !strings.Contains(string(out), want) {
				t.Errorf("no %s in\n%s", want, out)
			}
		}
	})

	t.Run("check", func(t *testing.T) {
		var out syncBuffer
		err := execute(ctx, newCheckCmd(), &out, "--kubeconfig", env.Kubeconfig)
		// No node exists: the only failure.
		if err == nil || !strings.Contains(out.String(), "the cluster has no nodes") {
			t.Errorf("err %v, output:\n%s", err, out.String())
		}
		if strings.Count(out.String(), "✗") != 1 || !strings.Contains(out.String(), "is admitted in sonde") {
			t.Errorf("want every permission and the policy to pass:\n%s", out.String())
		}
		// The agents' own account may read, and nothing more.
		cfg, err := env.ServiceAccountConfig(ctx, "sonde", "sonde")
		if err != nil {
			// The account exists only once deploy/ is applied.
			if _, err := env.Kubectl(ctx, "apply", "--server-side", "-k", "../../deploy"); err != nil {
				t.Fatal(err)
			}
			if cfg, err = env.ServiceAccountConfig(ctx, "sonde", "sonde"); err != nil {
				t.Fatal(err)
			}
		}
		kc := writeKubeconfig(t, cfg)
		out = syncBuffer{}
		if err := execute(ctx, newCheckCmd(), &out, "--kubeconfig", kc); err == nil {
			t.Errorf("check passed for an account that may only read:\n%s", out.String())
		}
		for _, want := range []string{"✗ may not create, patch, delete namespaces cluster-wide", "✓ may get, list, watch pods cluster-wide"} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("no %q in\n%s", want, out.String())
			}
		}
	})

	t.Run("version", func(t *testing.T) {
		var out syncBuffer
		if err := execute(ctx, newVersionCmd(), &out, "--kubeconfig", env.Kubeconfig); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out.String(), "cluster: "+kubetest.Version) {
			t.Errorf("output:\n%s", out.String())
		}
		out = syncBuffer{}
		if err := execute(ctx, newVersionCmd(), &out, "--server", "https://127.0.0.1:1", "--insecure-skip-tls-verify"); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out.String(), "cannot reach the cluster") {
			t.Errorf("output for an unreachable cluster:\n%s", out.String())
		}
	})
}

// hubFixture runs a hub in the test process with some entries, standing in
// for the hub's pod: kwok forwards the pod's port to it.
func hubFixture(t *testing.T) (addr string, n int) {
	t.Helper()
	srv, err := apiserver.New(apiserver.Config{Token: []byte("not-used")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	const entries = 20
	var batch []*protocols.Entry
	for i := range entries {
		batch = append(batch, &protocols.Entry{
			Protocol: protocols.HTTP1, Start: time.Now(), Duration: time.Millisecond,
			Src:     protocols.Endpoint{IP: netip.MustParseAddr("10.244.1.10"), Port: 40000},
			Dst:     protocols.Endpoint{IP: netip.MustParseAddr("10.244.2.10"), Port: 80},
			Summary: protocols.Summary{Method: "GET", Target: fmt.Sprintf("/tap-e2e/%d", i), Status: "200"},
		})
	}
	if err := srv.Ingest(batch...); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() { cancel(); <-done })
	return ln.Addr().String(), entries
}

// getEntries asks the hub through the forwarded port for its entries.
func getEntries(t *testing.T, port int) int {
	t.Helper()
	resp, err := http.Get(fmt.Sprintf("http://localhost:%d/api/v1/entries?limit=1000", port))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct{ Total int }
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("entries: %s %v", resp.Status, err)
	}
	return body.Total
}

// streamHistory opens the live stream through the forwarded port and
// reads until an entry of the history arrives.
func streamHistory(t *testing.T, port int) {
	t.Helper()
	c, _, err := websocket.DefaultDialer.Dial(fmt.Sprintf("ws://localhost:%d/api/v1/stream?q=", port), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		_, msg, err := c.ReadMessage()
		if err != nil {
			t.Fatalf("stream: %v", err)
		}
		if strings.Contains(string(msg), "/tap-e2e/") {
			return
		}
	}
}

func exists(t *testing.T, env *kubetest.Env, u *unstructured.Unstructured) bool {
	t.Helper()
	dyn, err := dynamic.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	gvr, _ := deploy.GVR(u.GroupVersionKind())
	var ri dynamic.ResourceInterface = dyn.Resource(gvr)
	if u.GetNamespace() != "" {
		ri = dyn.Resource(gvr).Namespace(u.GetNamespace())
	}
	_, err = ri.Get(t.Context(), u.GetName(), metav1.GetOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
	return err == nil
}

// writeKubeconfig writes a kubeconfig for cfg's bearer token.
func writeKubeconfig(t *testing.T, cfg *rest.Config) string {
	t.Helper()
	kc := clientcmdapi.NewConfig()
	kc.Clusters["c"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData}
	kc.AuthInfos["u"] = &clientcmdapi.AuthInfo{Token: cfg.BearerToken}
	kc.Contexts["c"] = &clientcmdapi.Context{Cluster: "c", AuthInfo: "u"}
	kc.CurrentContext = "c"
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestTap runs `sonde tap` end to end against a control plane whose nodes
// kwok plays: the progress says why the hub is stuck while no node exists,
// the objects are applied with the right permissions, the agents run on
// every node (a tainted one too), the hub's port reaches a real hub through
// the API server's port-forward for REST and websocket traffic, survives
// the hub's pod being replaced, and Ctrl-C removes everything. Then `tap
// --keep` leaves the install for `sonde proxy` and `sonde clean`.
func TestTap(t *testing.T) {
	hubAddr, ingested := hubFixture(t)
	env := kubetest.Start(t, kubetest.Options{Controllers: true, Kwok: true, Audit: true, PortForwards: []kubetest.PortForward{
		{Namespace: deploy.DefaultNamespace, Port: deploy.HubPort, Target: hubAddr},
	}})
	ctx := t.Context()
	if err := env.CreateNamespaces(ctx, "shop"); err != nil {
		t.Fatal(err)
	}
	// Pods bound to nodes that kwok will run once the nodes exist.
	for _, p := range []struct{ name, node string }{{"web-1", "node-1"}, {"web-2", "node-2"}, {"db-0", "node-1"}} {
		if _, err := env.Client.CoreV1().Pods("shop").Create(ctx, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: p.name},
			Spec:       corev1.PodSpec{NodeName: p.node, Containers: []corev1.Container{{Name: "app", Image: "example.invalid/app"}}},
		}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	port := freePort(t)
	kc := []string{"--kubeconfig", env.Kubeconfig, "--no-browser", "--port", strconv.Itoa(port), "--timeout", "3m"}

	var out syncBuffer
	tapCtx, interrupt := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- execute(tapCtx, newTapCmd(), &out, append([]string{"^web-", "-n", "shop"}, kc...)...) }()

	// No node yet: the hub cannot be scheduled, and tap says so.
	out.waitFor(t, "Unschedulable: ", 60*time.Second)
	for _, n := range []string{"node-1", "node-2"} {
		if _, err := env.AddNode(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := env.AddNode(ctx, "node-db", corev1.Taint{Key: "dedicated", Value: "db", Effect: corev1.TaintEffectNoSchedule}); err != nil {
		t.Fatal(err)
	}
	out.waitFor(t, "forwarding http://localhost:"+strconv.Itoa(port), 3*time.Minute)
	forwarding := time.Now()
	for _, want := range []string{"capturing 2 pods", "shop       web-1", "hub ready (sonde-hub-", "agents ready (3/3 nodes)", "applied 8 objects"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("no %q in the output:\n%s", want, out.String())
		}
	}

	// The agents run on every node, the tainted one too.
	agents, err := env.Client.CoreV1().Pods(deploy.DefaultNamespace).List(ctx, metav1.ListOptions{LabelSelector: deploy.LabelName + "=" + deploy.AgentName})
	if err != nil {
		t.Fatal(err)
	}
	nodes := map[string]bool{}
	for _, p := range agents.Items {
		if p.Status.Phase == corev1.PodRunning {
			nodes[p.Spec.NodeName] = true
		}
	}
	if len(nodes) != 3 || !nodes["node-db"] {
		t.Errorf("agents run on %v, want node-1, node-2 and node-db", nodes)
	}
	checkRBAC(t, env)

	if got := getEntries(t, port); got != ingested {
		t.Errorf("%d entries through the forward, want %d", got, ingested)
	}
	streamHistory(t, port)
	// Once forwarding, tap asks the API server for nothing: the browser's
	// traffic rides the one port-forward connection.
	evs, err := env.Audit(forwarding)
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range evs {
		if strings.HasPrefix(ev.UserAgent, "sonde/") {
			t.Errorf("tap asked %s %s while forwarding", ev.Verb, ev.URI)
		}
	}

	// The hub's pod is replaced: the forward follows to the new one.
	hubs, err := env.Client.CoreV1().Pods(deploy.DefaultNamespace).List(ctx, metav1.ListOptions{LabelSelector: hubSelector})
	if err != nil || len(hubs.Items) != 1 {
		t.Fatalf("hub pods: %v %v", hubs, err)
	}
	if err := env.Client.CoreV1().Pods(deploy.DefaultNamespace).Delete(ctx, hubs.Items[0].Name,
		metav1.DeleteOptions{GracePeriodSeconds: new(int64)}); err != nil {
		t.Fatal(err)
	}
	out.waitFor(t, "reconnected http://localhost:", 2*time.Minute)
	if got := getEntries(t, port); got != ingested {
		t.Errorf("%d entries after reconnecting, want %d", got, ingested)
	}
	streamHistory(t, port)

	// Ctrl-C: everything tap created goes.
	interrupt()
	if err := <-done; err != nil {
		t.Fatalf("tap: %v\n%s", err, out.String())
	}
	t.Logf("sonde tap said:\n%s", out.String())
	if !strings.Contains(out.String(), "removed the 8 objects tap created") || strings.Contains(out.String(), "db-0") {
		t.Errorf("output:\n%s", out.String())
	}
	objs, err := deploy.Render(deploy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	waitCond(t, "every object gone", 2*time.Minute, func() bool {
		for _, u := range objs {
			if exists(t, env, u) {
				return false
			}
		}
		return true
	})

	// --keep leaves it installed; proxy reconnects; clean removes it.
	out = syncBuffer{}
	tapCtx, interrupt = context.WithCancel(ctx)
	go func() { done <- execute(tapCtx, newTapCmd(), &out, append([]string{"-A", "--keep"}, kc...)...) }()
	out.waitFor(t, "forwarding http://localhost:", 3*time.Minute)
	interrupt()
	if err := <-done; err != nil {
		t.Fatalf("tap --keep: %v\n%s", err, out.String())
	}
	// tap installs its own random token: no ServiceAccount for the
	// cluster to sign one for.
	installedObjs, err := deploy.Render(deploy.Options{Token: "t"})
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range installedObjs {
		if !exists(t, env, u) {
			t.Errorf("%s is gone after tap --keep", describe(u))
		}
	}
	out = syncBuffer{}
	proxyCtx, stopProxy := context.WithCancel(ctx)
	go func() {
		done <- execute(proxyCtx, newProxyCmd(), &out, "--kubeconfig", env.Kubeconfig, "--no-browser", "--port", strconv.Itoa(port))
	}()
	out.waitFor(t, "forwarding http://localhost:", time.Minute)
	if got := getEntries(t, port); got != ingested {
		t.Errorf("%d entries through sonde proxy, want %d", got, ingested)
	}
	stopProxy()
	if err := <-done; err != nil {
		t.Fatalf("proxy: %v", err)
	}

	out = syncBuffer{}
	if err := execute(ctx, newCleanCmd(), &out, "--kubeconfig", env.Kubeconfig); err != nil {
		t.Fatalf("clean: %v\n%s", err, out.String())
	}
	for _, u := range objs {
		if exists(t, env, u) {
			t.Errorf("%s remains after clean", describe(u))
		}
	}
	out = syncBuffer{}
	if err := execute(ctx, newCleanCmd(), &out, "--kubeconfig", env.Kubeconfig); err != nil || !strings.Contains(out.String(), "not installed") {
		t.Errorf("a second clean: %v\n%s", err, out.String())
	}
}

// checkRBAC asks the API server what the agents' and hub's account may do:
// read pods, services, endpointslices, nodes and namespaces, and nothing
// else.
func checkRBAC(t *testing.T, env *kubetest.Env) {
	t.Helper()
	user := "system:serviceaccount:sonde:sonde"
	tests := []struct {
		group, resource, verb, ns string
		want                      bool
	}{
		{"", "pods", "list", "", true},
		{"", "pods", "watch", "shop", true},
		{"", "services", "get", "", true},
		{"discovery.k8s.io", "endpointslices", "watch", "", true},
		{"", "nodes", "list", "", true},
		{"", "namespaces", "get", "", true},
		{"", "pods", "create", "shop", false},
		{"", "pods", "delete", "shop", false},
		{"", "secrets", "get", "sonde", false},
		{"", "configmaps", "list", "", false},
		{"apps", "deployments", "list", "", false},
		{"apps", "replicasets", "get", "", false},
		{"discovery.k8s.io", "endpointslices", "update", "", false},
	}
	for _, tt := range tests {
		r, err := env.Client.AuthorizationV1().SubjectAccessReviews().Create(t.Context(), &authorizationv1.SubjectAccessReview{
			Spec: authorizationv1.SubjectAccessReviewSpec{User: user, Groups: []string{"system:serviceaccounts", "system:serviceaccounts:sonde", "system:authenticated"},
				ResourceAttributes: &authorizationv1.ResourceAttributes{Group: tt.group, Resource: tt.resource, Verb: tt.verb, Namespace: tt.ns}},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if r.Status.Allowed != tt.want {
			t.Errorf("%s may %s %s in %q: %v, want %v", user, tt.verb, tt.resource, tt.ns, r.Status.Allowed, tt.want)
		}
	}
}
