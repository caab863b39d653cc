package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/sondehq/sonde/lab/kubetest"
	"github.com/sondehq/sonde/lab/proc"
)

// PauseImage is the sandbox image containerd is configured with; Start
// builds and imports it.
const PauseImage = "sonde.test/pause:1"

// PodNetwork holds every node's pod range: one /24 per node, handed out in
// order. Nothing else on the project's machines routes 10.209.0.0/16 (the
// network lab uses 10.77.0.0/24 inside its own namespaces, the service IPs
// are 10.96.0.0/16).
const PodNetwork = "10.209.0.0/16"

var nodeSeq atomic.Int32

// Options choose the node's name; the zero value is a node named after
// the test process.
type Options struct {
	Name string
}

// Node is a running kubelet and containerd, registered with an Env.
type Node struct {
	Name string
	// Dir holds containerd's and the kubelet's state, configuration and logs.
	Dir string
	// PodCIDR is the range its pods' addresses come from; Bridge is the
	// interface in the host's network namespace that their veths join, and
	// Gateway its address.
	PodCIDR string
	Bridge  string
	Gateway string
	// Socket is containerd's; Ctr runs ctr against it.
	Socket string

	env   *kubetest.Env
	procs []*proc.Process
}

// the Debian packages the node runs, by the program each installs.
var hostPrograms = map[string]string{
	"containerd":              "containerd",
	"containerd-shim-runc-v2": "containerd",
	"ctr":                     "containerd",
	"runc":                    "runc",
	"/usr/lib/cni/bridge":     "containernetworking-plugins",
	"/usr/lib/cni/host-local": "containernetworking-plugins",
	"/usr/lib/cni/loopback":   "containernetworking-plugins",
}

// Start runs a node joined to env and stops it when the test ends. env
// should run the controllers (kubetest.Options.Controllers) and not kwok,
// which would take the node over.
func Start(t testing.TB, env *kubetest.Env, o Options) *Node {
	t.Helper()
	requireHost(t)
	kubelet := kubetest.Binary(t, "kubelet")
	n, err := start(env, kubelet, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Stop)
	return n
}

func requireHost(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		// containerd, runc and the CNI plugins make namespaces, cgroups,
		// bridges and mounts: root only.
		t.Skip("a real node needs root (containerd, runc, CNI)")
	}
	var missing []string
	pkgs := map[string]bool{}
	for prog, pkg := range hostPrograms {
		if _, err := exec.LookPath(prog); err != nil {
			missing = append(missing, prog)
			pkgs[pkg] = true
		}
	}
	if len(missing) == 0 {
		return
	}
	var names []string
	for p := range pkgs {
		names = append(names, p)
	}
	msg := fmt.Sprintf("%s missing: install the Debian packages %s (make deps)", strings.Join(missing, ", "), strings.Join(names, ", "))
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

func start(env *kubetest.Env, kubelet string, o Options) (_ *Node, err error) {
	seq := nodeSeq.Add(1) - 1
	if o.Name == "" {
		o.Name = fmt.Sprintf("node-%d-%d", os.Getpid(), seq)
	}
	// One /24 per node of this process; the pid keeps two test processes
	// apart.
	third := (os.Getpid()*7 + int(seq)) % 250
	dir, err := os.MkdirTemp("", "sonde-node-")
	if err != nil {
		return nil, err
	}
	n := &Node{
		Name:    o.Name,
		Dir:     dir,
		PodCIDR: fmt.Sprintf("10.209.%d.0/24", third),
		Gateway: fmt.Sprintf("10.209.%d.1", third),
		Bridge:  fmt.Sprintf("sonde%d", third),
		Socket:  filepath.Join(dir, "containerd.sock"),
		env:     env,
	}
	defer func() {
		if err != nil {
			n.Stop()
		}
	}()
	for _, d := range []string{"cni", "kubelet", "images"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return nil, err
		}
	}
	if err := n.writeConfigs(); err != nil {
		return nil, err
	}
	if err := n.makeCgroupRoot(); err != nil {
		return nil, err
	}
	ctrd, err := n.run("containerd", "containerd", "--config", filepath.Join(dir, "containerd.toml"))
	if err != nil {
		return nil, err
	}
	if err := waitFor(30*time.Second, ctrd, func() error {
		_, err := n.Ctr(context.Background(), "version")
		return err
	}); err != nil {
		return nil, err
	}
	if err := n.importPause(); err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	kcfg := filepath.Join(dir, "kubelet.yaml")
	if err := os.WriteFile(kcfg, []byte(n.kubeletConfig(port)), 0o600); err != nil {
		return nil, err
	}
	kl, err := n.run("kubelet", kubelet,
		"--config", kcfg,
		"--kubeconfig", env.Kubeconfig,
		"--hostname-override", n.Name,
		"--root-dir", filepath.Join(dir, "kubelet"),
		"--cert-dir", filepath.Join(dir, "kubelet", "pki"),
		"--v", "2")
	if err != nil {
		return nil, err
	}
	if err := waitFor(90*time.Second, kl, func() error {
		node, err := env.Client.CoreV1().Nodes().Get(context.Background(), n.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		for _, c := range node.Status.Conditions {
			if c.Type == corev1.NodeReady {
				if c.Status == corev1.ConditionTrue {
					return nil
				}
				return fmt.Errorf("node %s not ready: %s", n.Name, c.Message)
			}
		}
		return fmt.Errorf("node %s has no Ready condition", n.Name)
	}); err != nil {
		return nil, err
	}
	return n, nil
}

func (n *Node) writeConfigs() error {
	d := n.Dir
	// containerd 1.6's configuration (version 2). Its own root, state and
	// socket, so that it never meets a containerd the machine runs; the
	// snapshotters that need kernel pieces or tools this machine lacks are
	// off, which also keeps their errors out of the log.
	ctrd := fmt.Sprintf(`version = 2
root = %[1]q
state = %[2]q
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs"]
[grpc]
  address = %[3]q
[plugins."io.containerd.internal.v1.opt"]
  path = %[4]q
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %[5]q
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  # Pod sandboxes ask for an oom_score_adj of -998, which only
  # CAP_SYS_RESOURCE may set; where the node's own processes lack it (the
  # project's machines drop it from the bounding set) runc fails to start
  # any pod. This clamps the value to containerd's own instead.
  restrict_oom_score_adj = true
  # Pods' network namespaces under the node's state, not /run/netns, so
  # that Stop finds and unmounts every one.
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = %[6]q
`, filepath.Join(d, "root"), filepath.Join(d, "state"), n.Socket, filepath.Join(d, "opt"), PauseImage, filepath.Join(d, "cni"))
	if err := os.WriteFile(filepath.Join(d, "containerd.toml"), []byte(ctrd), 0o600); err != nil {
		return err
	}
	// The bridge plugin with host-local addresses, as many clusters'
	// simplest CNI is: each pod a veth whose host end joins the bridge.
	// No masquerading: pods reach nothing beyond the node, and the node's
	// iptables stay as they were.
	cni := fmt.Sprintf(`{
  "cniVersion": "0.4.0",
  "name": "sonde-test",
  "plugins": [{
    "type": "bridge",
    "bridge": %q,
    "isGateway": true,
    "ipMasq": false,
    "hairpinMode": true,
    "ipam": {"type": "host-local", "ranges": [[{"subnet": %q, "gateway": %q}]], "dataDir": %q}
  }]
}
`, n.Bridge, n.PodCIDR, n.Gateway, filepath.Join(d, "ipam"))
	return os.WriteFile(filepath.Join(d, "cni", "10-sonde.conflist"), []byte(cni), 0o600)
}

func (n *Node) kubeletConfig(port int) string {
	return fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# The machines mount cgroup v1 (cgroup2 only at /sys/fs/cgroup/unified).
failCgroupV1: false
cgroupDriver: cgroupfs
# Its own cgroup subtree, so that two nodes on one machine do not share one.
cgroupRoot: %[5]s
containerRuntimeEndpoint: unix://%[2]s
port: %[3]d
readOnlyPort: 0
healthzPort: 0
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
  x509: {clientCAFile: %[4]q}
authorization:
  mode: AlwaysAllow
failSwapOn: false
resolvConf: ""
# Containers' logs under the node's directory, not the machine's /var/log/pods.
podLogsDir: %[6]s
# Images are imported, never pulled: garbage collection must not remove them.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {}
syncFrequency: 5s
nodeStatusUpdateFrequency: 2s
`, n.Name, n.Socket, port, n.env.CAFile(), n.cgroupRoot(), filepath.Join(n.Dir, "pod-logs"))
}

// Ctr runs containerd's ctr in the CRI's namespace.
func (n *Node) Ctr(ctx context.Context, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "ctr", append([]string{"--address", n.Socket, "--namespace", "k8s.io"}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("ctr %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(stderr.Bytes()))
	}
	return out, nil
}

// Import loads an OCI archive (make image's, or Image.WriteArchive's) into
// the node's containerd, where pods find it by its name.
func (n *Node) Import(ctx context.Context, archive string) error {
	_, err := n.Ctr(ctx, "images", "import", "--no-unpack=false", archive)
	return err
}

// importPause builds the pause program and imports it as PauseImage.
func (n *Node) importPause() error {
	bin := filepath.Join(n.Dir, "images", "pause")
	if err := BuildProgram(bin, "github.com/sondehq/sonde/lab/node/pause"); err != nil {
		return err
	}
	tar := filepath.Join(n.Dir, "images", "pause.tar")
	im := Image{Ref: PauseImage, Files: map[string]string{"/pause": bin}, Entrypoint: []string{"/pause"}, User: "65535:65535"}
	if err := im.WriteArchive(tar); err != nil {
		return err
	}
	return n.Import(context.Background(), tar)
}

// BuildProgram builds a static Go program of this module into out.
func BuildProgram(out, pkg string) error {
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", out, pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("building %s: %w: %s", pkg, err, b)
	}
	return nil
}

// Stop ends the kubelet, then containerd's pods and containerd itself,
// and removes Dir.
func (n *Node) Stop() {
	for i := len(n.procs) - 1; i >= 0; i-- {
		p := n.procs[i]
		if p.Name == "containerd" {
			n.removePods()
		}
		p.Stop(15 * time.Second)
	}
	n.procs = nil
	n.killShims()
	if os.Getenv("SONDE_NODE_KEEP") != "" {
		return
	}
	// The bridge outlives containerd; its veths went with the pods.
	exec.Command("ip", "link", "del", n.Bridge).Run()
	n.unmountAll()
	n.removeCgroupRoot()
	os.RemoveAll(n.Dir)
}

// cgroupRoot is the node's own subtree in every cgroup v1 hierarchy; the
// kubelet puts its QoS classes and pods below it.
func (n *Node) cgroupRoot() string { return "/sonde-" + n.Name }

// cgroupHierarchies lists the cgroup v1 hierarchies the machine mounts,
// and with v2 the cgroup2 mount beside them too (runc makes the node's
// cgroups there as well).
func cgroupHierarchies(v2 ...bool) []string {
	b, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		return nil
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 2 && (f[2] == "cgroup" || f[2] == "cgroup2" && len(v2) > 0 && v2[0]) {
			out = append(out, f[1])
		}
	}
	return out
}

// makeCgroupRoot creates cgroupRoot in every hierarchy: the kubelet wants
// its root to exist. A new cpuset cgroup has no CPUs or memory nodes until
// given its parent's.
func (n *Node) makeCgroupRoot() error {
	for _, h := range cgroupHierarchies() {
		d := filepath.Join(h, n.cgroupRoot())
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("making the node's cgroup: %w", err)
		}
		for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
			if b, err := os.ReadFile(filepath.Join(h, f)); err == nil {
				if err := os.WriteFile(filepath.Join(d, f), b, 0o644); err != nil {
					return fmt.Errorf("making the node's cgroup: %w", err)
				}
			}
		}
	}
	return nil
}

// removeCgroupRoot removes the node's cgroups, deepest first; a cgroup
// that still holds a process stays (and would be a bug of Stop's).
func (n *Node) removeCgroupRoot() {
	// A killed container's cgroup empties a moment after its shim is gone.
	deadline := time.Now().Add(10 * time.Second)
	for {
		left := 0
		for _, h := range cgroupHierarchies(true) {
			var dirs []string
			filepath.WalkDir(filepath.Join(h, n.cgroupRoot()), func(p string, d os.DirEntry, err error) error {
				if err == nil && d.IsDir() {
					dirs = append(dirs, p)
				}
				return nil
			})
			for i := len(dirs) - 1; i >= 0; i-- {
				if os.Remove(dirs[i]) != nil {
					left++
				}
			}
		}
		if left == 0 || time.Now().After(deadline) {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// removePods kills and deletes every container and pod sandbox, so that no
// shim outlives the node (shims outlive containerd by design).
func (n *Node) removePods() {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := n.Ctr(ctx, "containers", "ls", "-q")
	if err != nil {
		return
	}
	for _, id := range strings.Fields(string(out)) {
		n.Ctr(ctx, "tasks", "delete", "--force", id)
		n.Ctr(ctx, "containers", "delete", id)
	}
}

// killShims ends the runc shims of this node's containerd that are still
// there: a shim whose pod was deleted waits for containerd to tell it to
// go, which a containerd that is stopping may not do. They are told apart
// from any other shim by the node's own socket on their command line.
func (n *Node) killShims() {
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, f := range procs {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		args := strings.Split(string(b), "\x00")
		if len(args) == 0 || !strings.HasSuffix(args[0], "containerd-shim-runc-v2") {
			continue
		}
		for i := 0; i+1 < len(args); i++ {
			if args[i] == "-address" && args[i+1] == n.Socket {
				if pid, err := strconv.Atoi(filepath.Base(filepath.Dir(f))); err == nil {
					syscall.Kill(pid, syscall.SIGKILL)
				}
			}
		}
	}
}

// unmountAll lazily unmounts whatever containerd and the kubelet left
// mounted under Dir (overlay roots, shm, secret volumes), deepest first.
func (n *Node) unmountAll() {
	b, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		return
	}
	var under []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 1 && strings.HasPrefix(f[1], n.Dir+"/") {
			under = append(under, f[1])
		}
	}
	for i := len(under) - 1; i >= 0; i-- {
		syscall.Unmount(under[i], syscall.MNT_DETACH)
	}
}

// WaitPod waits until the pod is Running and has an IP, failing early when
// a container cannot start.
func (n *Node) WaitPod(ctx context.Context, namespace, name string, timeout time.Duration) (*corev1.Pod, error) {
	var pod *corev1.Pod
	var last error
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		p, err := n.env.Client.CoreV1().Pods(namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			last = err
			return false, nil
		}
		pod = p
		for _, cs := range p.Status.ContainerStatuses {
			if w := cs.State.Waiting; w != nil && (w.Reason == "ErrImageNeverPull" || w.Reason == "CreateContainerError" ||
				w.Reason == "CrashLoopBackOff" || w.Reason == "CreateContainerConfigError" || w.Reason == "RunContainerError") {
				return false, fmt.Errorf("pod %s/%s container %s: %s: %s", namespace, name, cs.Name, w.Reason, w.Message)
			}
		}
		last = fmt.Errorf("pod %s/%s is %s", namespace, name, p.Status.Phase)
		return p.Status.Phase == corev1.PodRunning && p.Status.PodIP != "", nil
	})
	if err != nil && last != nil && !strings.Contains(err.Error(), "container") {
		err = fmt.Errorf("%w (last: %v); kubelet log: %s", err, last, proc.Tail(filepath.Join(n.Dir, "kubelet.log")))
	}
	return pod, err
}

// containerLogs returns the logs the kubelet kept of a namespace's
// containers of that name, every restart's, read from the node's disk so
// that they are there when the API cannot serve them.
func (n *Node) containerLogs(namespace, container string) string {
	files, _ := filepath.Glob(filepath.Join(n.Dir, "pod-logs", namespace+"_*", container, "*.log"))
	var b strings.Builder
	for _, f := range files {
		fmt.Fprintf(&b, "== %s\n%s", f, proc.Tail(f))
	}
	return b.String()
}

func (n *Node) run(name, bin string, args ...string) (*proc.Process, error) {
	p, err := proc.Start(n.Dir, name, bin, args...)
	if err != nil {
		return nil, err
	}
	n.procs = append(n.procs, p)
	return p, nil
}

var errNotYet = errors.New("not yet")

// waitFor polls check until it succeeds, p exits, or the time is up.
func waitFor(timeout time.Duration, p *proc.Process, check func() error) error {
	deadline := time.Now().Add(timeout)
	last := errNotYet
	for time.Now().Before(deadline) {
		if last = check(); last == nil {
			return nil
		}
		select {
		case <-p.Done():
			return p.Exited()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s: not ready after %v: %w; the end of its log:\n%s", p.Name, timeout, last, proc.Tail(p.Log))
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
