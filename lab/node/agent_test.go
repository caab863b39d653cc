package node

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/yaml"

	"github.com/sondehq/sonde/deploy"
	"github.com/sondehq/sonde/lab/kubetest"
	"github.com/sondehq/sonde/protocols"
)

const sondeImage = "sonde.test/sonde:node-test"

// built holds what every test of the process shares: the image make image
// built and the sonde binary of the hub, each built once.
var built struct {
	sync.Mutex
	dir, image, sonde string
}

// builtDir is where they go; TestMain removes it.
func builtDir(t *testing.T) string {
	t.Helper()
	if built.dir == "" {
		d, err := os.MkdirTemp("", "sonde-node-test-")
		if err != nil {
			t.Fatal(err)
		}
		built.dir = d
	}
	return built.dir
}

// buildSondeImage builds the shipped image with `make image`, from the
// Dockerfile as a user would, and imports it into the node.
func buildSondeImage(t *testing.T, n *Node) {
	t.Helper()
	built.Lock()
	if built.image == "" {
		root, err := filepath.Abs("../..")
		if err != nil {
			t.Fatal(err)
		}
		tar := filepath.Join(builtDir(t), "sonde-image.tar")
		start := time.Now()
		cmd := exec.Command("make", "--no-print-directory", "-C", root, "image", "IMAGE="+sondeImage, "IMAGE_TAR="+tar)
		if out, err := cmd.CombinedOutput(); err != nil {
			built.Unlock()
			t.Fatalf("make image: %v\n%s", err, out)
		}
		fi, err := os.Stat(tar)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("make image: %d MB in %v", fi.Size()>>20, time.Since(start).Round(time.Millisecond))
		built.image = tar
	}
	tar := built.image
	built.Unlock()
	if err := n.Import(context.Background(), tar); err != nil {
		t.Fatal(err)
	}
}

// sondeBinary builds cmd/sonde once.
func sondeBinary(t *testing.T) string {
	t.Helper()
	built.Lock()
	defer built.Unlock()
	if built.sonde == "" {
		bin := filepath.Join(builtDir(t), "sonde")
		if err := BuildProgram(bin, "github.com/sondehq/sonde/cmd/sonde"); err != nil {
			t.Fatal(err)
		}
		built.sonde = bin
	}
	return built.sonde
}

// hub is a `sonde hub` process on the machine, which the node's agents
// (host network) reach on loopback.
type hub struct {
	url string
	log *bytes.Buffer
}

// With kubeconfig it names addresses after the cluster's pods, as the hub
// Deployment does with its in-cluster credentials.
func startHub(t *testing.T, token, kubeconfig string) *hub {
	t.Helper()
	dir := t.TempDir()
	bin := sondeBinary(t)
	tokFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	cmd := exec.Command(bin, "hub", "--listen", addr, "--data", filepath.Join(dir, "data"), "--token-file", tokFile,
		"--kubernetes", "--kubeconfig", kubeconfig)
	h := &hub{url: "http://" + addr, log: &bytes.Buffer{}}
	cmd.Stdout, cmd.Stderr = h.log, h.log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	if err := wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil, nil
	}); err != nil {
		t.Fatalf("hub not listening on %s: %v\n%s", addr, err, h.log)
	}
	return h
}

// entries waits until the hub holds at least want entries matching q.
func (h *hub) entries(t *testing.T, q string, want int, timeout time.Duration) []protocols.Entry {
	t.Helper()
	var page struct {
		Entries []protocols.Entry `json:"entries"`
	}
	err := wait.PollUntilContextTimeout(context.Background(), 250*time.Millisecond, timeout, true, func(context.Context) (bool, error) {
		resp, err := http.Get(h.url + "/api/v1/entries?limit=100&q=" + url.QueryEscape(q))
		if err != nil {
			return false, err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b, _ := io.ReadAll(resp.Body)
			return false, fmt.Errorf("entries?q=%s: %s: %s", q, resp.Status, b)
		}
		page.Entries = nil
		if err := json.NewDecoder(resp.Body).Decode(&page); err != nil {
			return false, err
		}
		return len(page.Entries) >= want, nil
	})
	if err != nil {
		t.Fatalf("%d entries matching %s: %v (have %d)", want, q, err, len(page.Entries))
	}
	return page.Entries
}

// agentManifests renders Sonde's manifests as `sonde manifests` does and
// changes only what this test node lacks, never the security context:
//   - the image was imported, not pushed: imagePullPolicy Never;
//   - the hub is a local process (hub.url), not the hub Deployment;
//   - the node runs no kube-proxy, so the kubernetes Service's ClusterIP
//     leads nowhere: the agent (host network) is pointed at the API server's
//     loopback address through the variables in-cluster clients read;
//   - a capability that the machine's own bounding set lacks cannot be
//     granted by any runtime (runc fails "unable to apply caps"), so it is
//     dropped from the list, and the test says which. The project's
//     machines lack CAP_SYS_RESOURCE, which the agent needs only on kernels
//     before 5.11 (to raise RLIMIT_MEMLOCK); theirs is newer.
func agentManifests(t *testing.T, env *kubetest.Env, h *hub, token string, o agentCase, namespaces ...string) string {
	t.Helper()
	objs, err := deploy.Render(deploy.Options{Image: sondeImage, Token: token, Namespaces: namespaces})
	if err != nil {
		t.Fatal(err)
	}
	api, err := url.Parse(env.Config.Host)
	if err != nil {
		t.Fatal(err)
	}
	var docs []string
	for _, u := range objs {
		switch u.GetKind() {
		case "Deployment", "Service", "NetworkPolicy":
			continue
		case "DaemonSet":
			var ds appsv1.DaemonSet
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &ds); err != nil {
				t.Fatal(err)
			}
			c := &ds.Spec.Template.Spec.Containers[0]
			c.ImagePullPolicy = corev1.PullNever
			for i, a := range c.Args {
				if strings.HasPrefix(a, "--hub=") {
					c.Args[i] = "--hub=" + h.url
				}
			}
			if sc := c.SecurityContext; sc != nil && sc.Capabilities != nil {
				var keep []corev1.Capability
				for _, cp := range sc.Capabilities.Add {
					if string(cp) == o.drop {
						continue
					}
					if bounded(t, string(cp)) {
						keep = append(keep, cp)
					} else {
						t.Logf("this machine's bounding set lacks CAP_%s: not asking for it", cp)
					}
				}
				sc.Capabilities.Add = keep
			}
			c.Env = append(c.Env,
				corev1.EnvVar{Name: "KUBERNETES_SERVICE_HOST", Value: api.Hostname()},
				corev1.EnvVar{Name: "KUBERNETES_SERVICE_PORT", Value: api.Port()})
			obj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&ds)
			if err != nil {
				t.Fatal(err)
			}
			u.Object = obj
		}
		y, err := yaml.Marshal(u.Object)
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, string(y))
	}
	file := filepath.Join(t.TempDir(), "sonde.yaml")
	if err := os.WriteFile(file, []byte(strings.Join(docs, "---\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}

// capBits numbers the capabilities the agent's manifest names
// (linux/capability.h).
var capBits = map[string]uint{"NET_ADMIN": 12, "NET_RAW": 13, "SYS_ADMIN": 21, "SYS_RESOURCE": 24, "PERFMON": 38, "BPF": 39}

// bounded says whether this process's bounding set holds the capability.
func bounded(t *testing.T, name string) bool {
	t.Helper()
	bit, ok := capBits[name]
	if !ok {
		t.Fatalf("capability %s: add its number to capBits", name)
	}
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "CapBnd:"); ok {
			var set uint64
			if _, err := fmt.Sscanf(strings.TrimSpace(v), "%x", &set); err != nil {
				t.Fatal(err)
			}
			return set&(1<<bit) != 0
		}
	}
	t.Fatal("no CapBnd in /proc/self/status")
	return false
}

// processStatus reads /proc/PID/status of a pod's first container's
// process, as the runtime started it.
func (n *Node) processStatus(t *testing.T, pod *corev1.Pod) map[string]string {
	t.Helper()
	if len(pod.Status.ContainerStatuses) == 0 {
		t.Fatalf("pod %s has no container status", pod.Name)
	}
	id := strings.TrimPrefix(pod.Status.ContainerStatuses[0].ContainerID, "containerd://")
	out, err := n.Ctr(context.Background(), "tasks", "ls")
	if err != nil {
		t.Fatal(err)
	}
	pid := ""
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == id {
			pid = f[1]
		}
	}
	if pid == "" {
		t.Fatalf("no task %s in:\n%s", id, out)
	}
	b, err := os.ReadFile(filepath.Join("/proc", pid, "status"))
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok {
			m[k] = strings.Join(strings.Fields(v), " ")
		}
	}
	return m
}

// waitAgent waits until the node's agent pod is Ready and returns it.
func waitAgent(t *testing.T, env *kubetest.Env, n *Node, timeout time.Duration) *corev1.Pod {
	t.Helper()
	var pod *corev1.Pod
	var last string
	err := wait.PollUntilContextTimeout(context.Background(), 250*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		pods, err := env.Client.CoreV1().Pods(deploy.DefaultNamespace).List(ctx, metav1.ListOptions{
			LabelSelector: deploy.LabelName + "=" + deploy.AgentName, FieldSelector: "spec.nodeName=" + n.Name})
		if err != nil || len(pods.Items) == 0 {
			last = fmt.Sprint("no agent pod on the node ", err)
			return false, nil
		}
		pod = &pods.Items[0]
		for _, cs := range pod.Status.ContainerStatuses {
			if cs.Ready {
				return true, nil
			}
			if w := cs.State.Waiting; w != nil {
				last = w.Reason + ": " + w.Message
			} else if tm := cs.LastTerminationState.Terminated; tm != nil {
				last = fmt.Sprintf("exited %d (%s): %s", tm.ExitCode, tm.Reason, tm.Message)
			}
		}
		return false, nil
	})
	if err != nil {
		t.Fatalf("the agent is not ready after %v: %s\nits log:\n%s", timeout, last, n.containerLogs(deploy.DefaultNamespace, "agent"))
	}
	return pod
}

// TestAgentDaemonSet runs Sonde's agent DaemonSet, from the image built
// from the Dockerfile, on a real node under the security context its
// manifest declares, and sees the HTTP exchanges between two real pods of
// the node arrive at a hub: the agent loaded its eBPF programs (no
// AF_PACKET fallback) and attached them to the veths the CNI made.
//
// The manifest declares seccompProfile RuntimeDefault, and the runtime
// enforces it (Seccomp 2 in /proc/PID/status): containerd 1.6's default
// profile lets bpf(2) through for a process holding CAP_BPF (the profile
// podman and CRI-O take from containers-common 0.50 lets it through only
// with CAP_SYS_ADMIN, and the agent there falls back to AF_PACKET).
func TestAgentDaemonSet(t *testing.T) {
	testAgentDaemonSet(t, agentCase{name: "as-rendered", wantSeccomp: "2", wantSource: "ebpf"})
}

// TestAgentMissingCapability takes one capability at a time from the
// agent's manifest: without BPF or NET_ADMIN (loading TC programs needs
// both) it falls back to AF_PACKET, says so in one line, and still
// captures; PERFMON the TC capture does not need on this kernel (the TLS
// uprobes do).
func TestAgentMissingCapability(t *testing.T) {
	for _, tc := range []agentCase{
		{name: "BPF", drop: "BPF", wantSeccomp: "2", wantSource: "afpacket"},
		{name: "NET_ADMIN", drop: "NET_ADMIN", wantSeccomp: "2", wantSource: "afpacket"},
		{name: "PERFMON", drop: "PERFMON", wantSeccomp: "2", wantSource: "ebpf"},
	} {
		t.Run(tc.name, func(t *testing.T) { testAgentDaemonSet(t, tc) })
	}
}

// agentCase is one way to run the agent's DaemonSet.
type agentCase struct {
	name string
	// drop is a capability taken from the manifest's list.
	drop string
	// wantSeccomp is the agent's Seccomp line in /proc/PID/status (0
	// unconfined, 2 filtered); wantSource the capture source it chooses.
	wantSeccomp, wantSource string
}

func testAgentDaemonSet(t *testing.T, tc agentCase) {
	env := kubetest.Start(t, kubetest.Options{Controllers: true})
	n := Start(t, env, Options{})
	importWeb(t, n)
	buildSondeImage(t, n)
	const token = "node-test-token-0123456789abcdef"
	h := startHub(t, token, env.Kubeconfig)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := env.CreateNamespaces(ctx, "web"); err != nil {
		t.Fatal(err)
	}
	if out, err := env.Kubectl(ctx, "apply", "-f", agentManifests(t, env, h, token, tc, "web")); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	start := time.Now()
	agent := waitAgent(t, env, n, 2*time.Minute)
	t.Logf("agent pod %s Ready in %v", agent.Name, time.Since(start).Round(time.Millisecond))
	status := n.processStatus(t, agent)
	if got := status["Seccomp"]; got != tc.wantSeccomp {
		t.Errorf("the agent runs with Seccomp %s, want %s", got, tc.wantSeccomp)
	}
	t.Logf("the agent's process: uid %s, CapEff %s, Seccomp %s, NoNewPrivs %s", status["Uid"], status["CapEff"], status["Seccomp"], status["NoNewPrivs"])
	ds, err := env.Client.AppsV1().DaemonSets(deploy.DefaultNamespace).Get(ctx, deploy.AgentName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var want uint64
	for _, c := range ds.Spec.Template.Spec.Containers[0].SecurityContext.Capabilities.Add {
		want |= 1 << capBits[string(c)]
	}
	if got := fmt.Sprintf("%016x", want); status["CapEff"] != got {
		t.Errorf("the agent's effective capabilities are %s, want %s (the manifest's)", status["CapEff"], got)
	}
	if status["NoNewPrivs"] != "1" {
		t.Errorf("the agent runs with NoNewPrivs %s: allowPrivilegeEscalation: false was not enforced", status["NoNewPrivs"])
	}

	if _, err := env.Client.CoreV1().Pods("web").Create(ctx, webPod("web", "server", n.Name, "serve", ":8080"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	server, err := n.WaitPod(ctx, "web", "server", 2*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	agentLog := func() string {
		out, err := env.Kubectl(ctx, "logs", "-n", deploy.DefaultNamespace, agent.Name)
		if err != nil {
			t.Fatal(err)
		}
		return string(out)
	}
	// The agent says which pods it captures once their interfaces are
	// attached; traffic before that would be missed.
	if err := wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, time.Minute, true, func(context.Context) (bool, error) {
		return strings.Contains(agentLog(), "web/server"), nil
	}); err != nil {
		t.Fatalf("the agent never said it captures web/server:\n%s", agentLog())
	}
	const count = 5
	client := webPod("web", "client", n.Name, "get", fmt.Sprintf("http://%s:8080", server.Status.PodIP), fmt.Sprint(count))
	if _, err := env.Client.CoreV1().Pods("web").Create(ctx, client, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		p, err := env.Client.CoreV1().Pods("web").Get(ctx, "client", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		if p.Status.Phase == corev1.PodFailed {
			return false, fmt.Errorf("the client pod failed: %+v", p.Status.ContainerStatuses)
		}
		return p.Status.Phase == corev1.PodSucceeded, nil
	}); err != nil {
		t.Fatal(err)
	}
	clientPod, err := env.Client.CoreV1().Pods("web").Get(ctx, "client", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}

	es := h.entries(t, `path.startsWith("/req/")`, count, time.Minute)
	for _, e := range es {
		if e.Src.IP.String() != clientPod.Status.PodIP || e.Dst.IP.String() != server.Status.PodIP || e.HTTP == nil || e.HTTP.Response == nil || e.HTTP.Response.StatusCode != 200 {
			t.Errorf("entry %+v: want an answered HTTP exchange from %s to %s", e, clientPod.Status.PodIP, server.Status.PodIP)
		}
		if e.Src.Pod != "client" || e.Src.Namespace != "web" || e.Dst.Pod != "server" || e.Dst.Namespace != "web" || e.Src.Node != n.Name {
			t.Errorf("entry src %+v dst %+v: want web/client on %s to web/server", e.Src, e.Dst, n.Name)
		}
	}
	log := agentLog()
	var sources []string
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, `msg="capture source"`) {
			sources = append(sources, line)
		}
	}
	if len(sources) != 1 || !strings.Contains(sources[0], "source="+tc.wantSource+" ") {
		t.Errorf("the agent's capture source lines are %q, want one saying source=%s:\n%s", sources, tc.wantSource, log)
	}
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, "capture source") || strings.Contains(line, "msg=capturing") {
			t.Log(line)
		}
	}
	if tc.wantSource != "ebpf" {
		// The fallback's one line names what the manifest took away.
		if tc.drop != "" && !strings.Contains(sources[0], "lacks CAP_"+tc.drop) {
			t.Errorf("the fallback line does not name CAP_%s: %s", tc.drop, sources[0])
		}
		return
	}

	// The programs sit on the host end of the server's veth, which the CNI
	// joined to the node's bridge; the client's went with its pod.
	progs := bridgePrograms(t, n.Bridge)
	t.Logf("eBPF programs on the ports of %s: %v", n.Bridge, progs)
	if len(progs) != 1 {
		t.Errorf("programs on the bridge's ports: %v, want on the server's veth only", progs)
	}
	// Deleting the DaemonSet, as sonde clean does, leaves no program on
	// any pod's interface.
	if _, err := env.Kubectl(ctx, "delete", "-n", deploy.DefaultNamespace, "daemonset", deploy.AgentName, "--wait"); err != nil {
		t.Fatal(err)
	}
	if err := wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, time.Minute, true, func(context.Context) (bool, error) {
		return len(bridgePrograms(t, n.Bridge)) == 0, nil
	}); err != nil {
		t.Errorf("programs left on the bridge's ports after the agent went: %v", bridgePrograms(t, n.Bridge))
	}
}

// bridgePrograms maps each port of the bridge (in this, the node's network
// namespace) that has eBPF programs attached, by TCX or as clsact filters,
// to their number.
func bridgePrograms(t *testing.T, bridge string) map[string]int {
	t.Helper()
	br, err := netlink.LinkByName(bridge)
	if err != nil {
		t.Fatal(err)
	}
	links, err := netlink.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]int{}
	for _, l := range links {
		if l.Attrs().MasterIndex != br.Attrs().Index {
			continue
		}
		name := l.Attrs().Name
		for _, at := range []ebpf.AttachType{ebpf.AttachTCXIngress, ebpf.AttachTCXEgress} {
			if res, err := link.QueryPrograms(link.QueryOptions{Target: l.Attrs().Index, Attach: at}); err == nil {
				m[name] += len(res.Programs)
			}
		}
		for _, parent := range []uint32{netlink.HANDLE_MIN_INGRESS, netlink.HANDLE_MIN_EGRESS} {
			filters, _ := netlink.FilterList(l, parent)
			for _, f := range filters {
				if _, ok := f.(*netlink.BpfFilter); ok {
					m[name]++
				}
			}
		}
		if m[name] == 0 {
			delete(m, name)
		}
	}
	return m
}
