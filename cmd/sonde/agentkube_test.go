package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sondehq/sonde/lab/kubetest"
	"github.com/sondehq/sonde/lab/netlab"
	"github.com/sondehq/sonde/protocols"
)

// sondeProcess is this test binary running a sonde command as a child.
type sondeProcess struct {
	cmd    *exec.Cmd
	stderr *lines
}

// startSonde runs `sonde ARGS...` in a child process that the test's end
// interrupts (SIGINT, as Ctrl-C) and then kills if it lingers.
func startSonde(t *testing.T, l *netlab.Lab, args ...string) *sondeProcess {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, exe, args...)
	cmd.Env = append(os.Environ(), asSonde+"=1")
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 15 * time.Second
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &sondeProcess{cmd: cmd, stderr: newLines(stderr)}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	l.Track(cmd)
	go p.stderr.read()
	t.Cleanup(func() {
		cancel()
		<-p.stderr.done
		cmd.Wait()
	})
	return p
}

// interrupt stops the process as Ctrl-C does and reports whether it exited
// cleanly.
func (p *sondeProcess) interrupt(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.stderr.done:
	case <-time.After(20 * time.Second):
		p.cmd.Process.Kill()
		t.Fatalf("%s did not exit on SIGINT; stderr:\n%s", p.cmd.Args[1], p.stderr)
	}
	if err := p.cmd.Wait(); err != nil {
		t.Errorf("%s exited with %v; stderr:\n%s", p.cmd.Args[1], err, p.stderr)
	}
}

// TestAgentKubernetes runs `sonde hub --kubernetes` and `sonde agent
// --kubernetes` against a real API server, with the permissions of Sonde's
// own ServiceAccount, while pods created through that API server carry the
// addresses of a routed network lab's pods. The agent attaches to exactly
// the interfaces of the pods its flags select, follows pods that appear,
// change and go without a restart, and the hub names every entry after
// the pods and the service at the entry's own time, also when a new pod
// reuses a deleted pod's address.
func TestAgentKubernetes(t *testing.T) {
	l := netlab.ForTestWith(t, netlab.Options{Routed: true})
	env := kubetest.Start(t, kubetest.Options{})
	ctx := t.Context()
	server, client := mustLabPod(t, l, "server"), mustLabPod(t, l, "client")
	bystander, other := mustLabPod(t, l, "bystander"), mustLabPod(t, l, "other")
	for _, p := range []*netlab.Pod{server, other} {
		srv, err := p.ServeHTTP(":8080", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "%s serves %s", p.Name, r.URL.Path)
		}))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { srv.Close() })
	}
	svc, err := l.AddService(server, 80, 8080)
	if err != nil {
		t.Fatal(err)
	}

	// The cluster: Sonde's RBAC, pods with the lab's addresses on one node
	// (web-other matches the name pattern but lives in a namespace the
	// agent is not asked to capture), and the service of web-server.
	if _, err := env.Kubectl(ctx, "apply", "--server-side", "-k", "../../deploy"); err != nil {
		t.Fatal(err)
	}
	sa, err := env.ServiceAccountConfig(ctx, "sonde", "sonde")
	if err != nil {
		t.Fatal(err)
	}
	kubeconfig := writeKubeconfig(t, sa)
	const node = "lab-node"
	if err := env.CreateNamespaces(ctx, "shop", "elsewhere"); err != nil {
		t.Fatal(err)
	}
	runPod := func(ns, name string, p *netlab.Pod) *corev1.Pod {
		t.Helper()
		kp, err := env.RunPod(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Spec: corev1.PodSpec{NodeName: node}}, p.IP.String(), p.IP6.String())
		if err != nil {
			t.Fatal(err)
		}
		return kp
	}
	web := runPod("shop", "web-server", server)
	runPod("shop", "web-client", client)
	runPod("shop", "bystander", bystander)
	runPod("elsewhere", "web-other", other)
	if err := env.RunService(ctx, "shop", "web", svc.Addr().String(), int32(svc.Port()), web); err != nil {
		t.Fatal(err)
	}

	token := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(token, []byte("lab-token-0123456789abcdef\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	hubAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	hub := "http://" + hubAddr
	startSonde(t, l, "hub", "--listen", hubAddr, "--data", t.TempDir(), "--token-file", token,
		"--kubernetes", "--kubeconfig", kubeconfig)
	metricsAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	agent := startSonde(t, l, "agent", "--kubernetes", "--kubeconfig", kubeconfig, "--node", node,
		"--pods", "^web-", "--namespaces", "shop", "--netns", "/run/netns/"+l.Node.Name,
		"--hub", hub, "--token-file", token, "--metrics", metricsAddr)
	// following waits until the agent says it captures a pod, which it
	// says once the pod's interface is attached.
	following := func(pod string) {
		t.Helper()
		if !agent.stderr.await(func(s string) bool {
			_, added, ok := strings.Cut(s, "msg=capturing ")
			added, _, _ = strings.Cut(added, " removed=")
			return ok && strings.Contains(added, pod)
		}) {
			t.Fatalf("the agent never said it captures %s:\n%s", pod, agent.stderr)
		}
	}
	waitCond(t, "the agent's readiness", 30*time.Second, func() bool {
		resp, err := http.Get("http://" + metricsAddr + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	tapped := func(want ...*netlab.Pod) {
		t.Helper()
		var names []string
		for _, p := range want {
			names = append(names, p.HostIf)
		}
		slices.Sort(names)
		waitCond(t, fmt.Sprintf("programs on exactly %v", names), 15*time.Second, func() bool {
			return slices.Equal(tappedInterfaces(t, l.Node.Name), names)
		})
	}
	tapped(client, server)

	get := func(from *netlab.Pod, url string) {
		t.Helper()
		if _, err := from.Get(ctx, url); err != nil {
			t.Fatal(err)
		}
	}
	const n = 5
	for i := range n {
		get(client, fmt.Sprintf("http://%s/svc/%d", svc, i))
	}
	get(bystander, fmt.Sprintf("http://%s:8080/unselected", other.IP))
	viaService := hubEntries(t, hub, `path.startsWith("/svc/")`, n)
	for _, e := range viaService {
		if e.Src.Pod != "web-client" || e.Src.Namespace != "shop" || e.Src.Node != node ||
			e.Dst.Pod != "web-server" || e.Dst.Service != "web" || e.Dst.Namespace != "shop" {
			t.Errorf("%s: src %+v dst %+v; want shop/web-client on %s to shop/web-server behind service web", e.HTTP.Request.Path, e.Src, e.Dst, node)
		}
	}

	// A selected pod appears with the unselected pod's address: the agent
	// attaches to its interface without a restart.
	if err := env.Client.CoreV1().Pods("elsewhere").Delete(ctx, "web-other", metav1.DeleteOptions{GracePeriodSeconds: new(int64)}); err != nil {
		t.Fatal(err)
	}
	runPod("shop", "web-late", other)
	tapped(client, server, other)
	get(bystander, fmt.Sprintf("http://%s:8080/late", other.IP))
	// The pod is deleted and its address given to a new pod: entries before
	// and after name the pod that had the address at their time.
	if err := env.Client.CoreV1().Pods("shop").Delete(ctx, "web-late", metav1.DeleteOptions{GracePeriodSeconds: new(int64)}); err != nil {
		t.Fatal(err)
	}
	runPod("shop", "web-reuse", other)
	following("shop/web-reuse")
	get(bystander, fmt.Sprintf("http://%s:8080/reuse", other.IP))
	for path, pod := range map[string]string{"/late": "web-late", "/reuse": "web-reuse"} {
		es := hubEntries(t, hub, fmt.Sprintf("path == %q", path), 1)
		if e := es[0]; e.Dst.Pod != pod || e.Dst.Namespace != "shop" || e.Src.Pod != "bystander" {
			t.Errorf("%s: src %+v dst %+v; want bystander to %s", path, e.Src, e.Dst, pod)
		}
	}
	if es := hubEntries(t, hub, `path == "/unselected"`, 0); len(es) != 0 {
		t.Errorf("the hub has %d entries between two unselected pods", len(es))
	}

	// A pod that goes is no longer captured.
	if err := env.Client.CoreV1().Pods("shop").Delete(ctx, "web-client", metav1.DeleteOptions{GracePeriodSeconds: new(int64)}); err != nil {
		t.Fatal(err)
	}
	tapped(server, other)

	agent.interrupt(t)
	if left := tappedInterfaces(t, l.Node.Name); len(left) != 0 {
		t.Errorf("programs left on %v after the agent exited", left)
	}
	final := agent.stderr.matching(isCounters)
	if len(final) == 0 {
		t.Fatalf("no counters at exit:\n%s", agent.stderr)
	}
	for _, line := range agent.stderr.matching(func(s string) bool { return strings.Contains(s, "msg=capturing") }) {
		t.Log(line)
	}
	c := counters(t, final[len(final)-1])
	if c["capture_lost"] != 0 || c["entries"] < n+2 {
		t.Errorf("counters at exit: entries %d, capture_lost %d", c["entries"], c["capture_lost"])
	}
}

func mustLabPod(t *testing.T, l *netlab.Lab, name string) *netlab.Pod {
	t.Helper()
	p, err := l.AddPod(name)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// hubEntries waits until the hub holds want entries matching q and returns
// them, failing if there are more. With want 0 it looks once: call it after
// entries made later than those q must not find have arrived.
func hubEntries(t *testing.T, hub, q string, want int) []protocols.Entry {
	t.Helper()
	var page struct {
		Entries []protocols.Entry `json:"entries"`
	}
	waitCond(t, fmt.Sprintf("%d entries matching %s", want, q), 30*time.Second, func() bool {
		resp, err := http.Get(hub + "/api/v1/entries?limit=100&q=" + url.QueryEscape(q))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b, _ := io.ReadAll(resp.Body)
			t.Fatalf("entries?q=%s: %s: %s", q, resp.Status, b)
		}
		if err := json.NewDecoder(resp.Body).Decode(&page); err != nil {
			t.Fatal(err)
		}
		return len(page.Entries) >= want
	})
	if len(page.Entries) > want {
		t.Errorf("%d entries match %s, want %d", len(page.Entries), q, want)
	}
	return page.Entries
}

// tappedInterfaces lists, sorted, the interfaces of a namespace that have
// an eBPF program attached.
func tappedInterfaces(t *testing.T, nsName string) []string {
	t.Helper()
	m, err := netlab.Programs(nsName)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for name := range m {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}
