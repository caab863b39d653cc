package kubetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/sondehq/sonde/lab/proc"
)

// Version is the Kubernetes release lab/testenv/build.sh builds; its
// go.mod pins the same.
const Version = "v1.37.2"

// ServiceCIDR holds the cluster IPs the API server hands out and accepts;
// the network lab's service IPs (10.96.0.0/24) are inside it.
const ServiceCIDR = "10.96.0.0/16"

// BinDir is where lab/testenv/build.sh puts the binaries:
// $SONDE_K8S_CACHE (default /var/cache/sonde/k8s) / Version / bin.
func BinDir() string { return filepath.Join(cacheDir(), Version, "bin") }

// stagesDir holds kwok's stage files, copied from its module by build.sh.
func stagesDir() string { return filepath.Join(cacheDir(), Version, "kwok-stages") }

func cacheDir() string {
	if d := os.Getenv("SONDE_K8S_CACHE"); d != "" {
		return d
	}
	return "/var/cache/sonde/k8s"
}

// Options choose what runs besides etcd and kube-apiserver.
type Options struct {
	// Controllers starts kube-scheduler and kube-controller-manager: pods
	// get scheduled, DaemonSets and Deployments make pods, namespaces get
	// their default ServiceAccount and deleted namespaces go away,
	// service-account-token Secrets get their token, services their
	// endpointslices.
	Controllers bool
	// Kwok starts kwok as the kubelet of every node: nodes become Ready and
	// scheduled pods Running with an IP.
	Kwok bool
	// PortForwards are kwok rules that send a port of the pods of a
	// namespace to a local address, so that port-forwarding to those pods
	// reaches a local server.
	PortForwards []PortForward
	// Audit logs every request's user agent, verb and resource, for
	// counting what a client costs the API server (see Env.Audit).
	Audit bool
}

// PortForward sends Port of every pod in Namespace to Target ("host:port").
type PortForward struct {
	Namespace string
	Port      int32
	Target    string
}

func (o Options) binaries() []string {
	bins := []string{"etcd", "kube-apiserver", "kubectl"}
	if o.Controllers {
		bins = append(bins, "kube-scheduler", "kube-controller-manager")
	}
	if o.Kwok {
		bins = append(bins, "kwok")
	}
	return bins
}

// Env is a running control plane.
type Env struct {
	// Dir holds the certificates, the kubeconfig, etcd's data and logs.
	Dir string
	// Kubeconfig is an admin kubeconfig file (system:masters).
	Kubeconfig string
	// Config is the admin's client configuration and Client its clientset.
	Config *rest.Config
	Client kubernetes.Interface

	procs       []*proc.Process
	controllers bool // kube-controller-manager runs (Options.Controllers)
}

// Start runs a control plane for one test and stops it when the test ends.
func Start(t testing.TB, o Options) *Env {
	t.Helper()
	requireBinaries(t, o)
	e, err := start(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Stop)
	return e
}

// Binary returns the path of one of the built binaries (kubectl, say),
// failing or skipping the test as Start does when it is missing.
func Binary(t testing.TB, name string) string {
	t.Helper()
	require(t, []string{name})
	return filepath.Join(BinDir(), name)
}

// requireBinaries fails (in CI) or skips (elsewhere) when a binary is
// missing.
func requireBinaries(t testing.TB, o Options) {
	t.Helper()
	require(t, o.binaries())
}

func require(t testing.TB, bins []string) {
	t.Helper()
	var missing []string
	for _, b := range bins {
		if _, err := os.Stat(filepath.Join(BinDir(), b)); err != nil {
			missing = append(missing, b)
		}
	}
	if len(missing) == 0 {
		return
	}
	msg := fmt.Sprintf("%s not built in %s: run lab/testenv/build.sh (make deps) to build the test control plane",
		strings.Join(missing, ", "), BinDir())
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

var shared struct {
	sync.Mutex
	envs map[string]*Env
	errs map[string]error
}

// Shared returns the Env for these options that the test binary shares,
// starting it on first use. Main stops it.
func Shared(t testing.TB, o Options) *Env {
	t.Helper()
	requireBinaries(t, o)
	key := fmt.Sprintf("%+v", o)
	shared.Lock()
	defer shared.Unlock()
	if err := shared.errs[key]; err != nil {
		t.Fatal(err)
	}
	if e := shared.envs[key]; e != nil {
		return e
	}
	e, err := start(o)
	if err != nil {
		if shared.errs == nil {
			shared.errs = map[string]error{}
		}
		shared.errs[key] = err
		t.Fatal(err)
	}
	if shared.envs == nil {
		shared.envs = map[string]*Env{}
	}
	shared.envs[key] = e
	return e
}

// Main runs the tests and then stops the shared Envs: call it from
// TestMain as os.Exit(kubetest.Main(m)).
func Main(m *testing.M) int {
	code := m.Run()
	shared.Lock()
	defer shared.Unlock()
	for _, e := range shared.envs {
		e.Stop()
	}
	shared.envs = nil
	return code
}

func start(o Options) (e *Env, err error) {
	dir, err := os.MkdirTemp("", "sonde-kube-")
	if err != nil {
		return nil, err
	}
	e = &Env{Dir: dir}
	defer func() {
		if err != nil {
			e.Stop()
		}
	}()
	p, err := newPKI(dir)
	if err != nil {
		return nil, fmt.Errorf("making certificates: %w", err)
	}
	ports, err := freePorts(4)
	if err != nil {
		return nil, err
	}
	etcdURL := fmt.Sprintf("http://127.0.0.1:%d", ports[0])
	peerURL := fmt.Sprintf("http://127.0.0.1:%d", ports[1])
	if _, err := e.run("etcd",
		"--data-dir", filepath.Join(dir, "etcd"),
		"--listen-client-urls", etcdURL, "--advertise-client-urls", etcdURL,
		"--listen-peer-urls", peerURL, "--initial-advertise-peer-urls", peerURL,
		"--initial-cluster", "default="+peerURL,
		// A test's cluster lives for seconds: durability buys nothing.
		"--unsafe-no-fsync", "--log-level", "error"); err != nil {
		return nil, err
	}
	if err := waitHTTP(http.DefaultClient, etcdURL+"/health", e.procs[0], 30*time.Second); err != nil {
		return nil, err
	}

	apiArgs := []string{
		"--etcd-servers", etcdURL,
		"--bind-address", "127.0.0.1", "--advertise-address", "127.0.0.1",
		"--secure-port", strconv.Itoa(ports[2]),
		"--tls-cert-file", p.path("serving.crt"), "--tls-private-key-file", p.path("serving.key"),
		"--client-ca-file", p.path("ca.crt"),
		"--service-account-issuer", "https://kubernetes.default.svc",
		"--service-account-key-file", p.path("sa.pub"),
		"--service-account-signing-key-file", p.path("sa.key"),
		"--service-cluster-ip-range", ServiceCIDR,
		"--authorization-mode", "RBAC",
		// The "kubernetes" Service's endpoint would be 127.0.0.1, which
		// endpoint validation refuses.
		"--endpoint-reconciler-type", "none",
		"--allow-privileged=true",
		// Port-forwarding reaches kwok at the nodes' InternalIP.
		"--kubelet-preferred-address-types", "InternalIP,Hostname",
		"--kubelet-client-certificate", p.path("admin.crt"), "--kubelet-client-key", p.path("admin.key"),
		"--profiling=false",
		// The aggregation layer: requests to an APIService go to its
		// Service's endpoints (there is no kube-proxy to reach a ClusterIP)
		// with the user's identity in headers, under the front-proxy
		// client certificate.
		"--requestheader-client-ca-file", p.path("front-proxy-ca.crt"),
		"--requestheader-allowed-names", FrontProxyClient,
		"--requestheader-username-headers", "X-Remote-User",
		"--requestheader-uid-headers", "X-Remote-Uid",
		"--requestheader-group-headers", "X-Remote-Group",
		"--requestheader-extra-headers-prefix", "X-Remote-Extra-",
		"--proxy-client-cert-file", p.path("front-proxy-client.crt"),
		"--proxy-client-key-file", p.path("front-proxy-client.key"),
		"--enable-aggregator-routing=true",
	}
	if !o.Controllers {
		// Nothing would create the default ServiceAccount that this
		// admission plugin makes every pod wait for.
		apiArgs = append(apiArgs, "--disable-admission-plugins", "ServiceAccount")
	}
	if o.Audit {
		policy := filepath.Join(dir, "audit-policy.yaml")
		if err := os.WriteFile(policy, []byte(auditPolicy), 0o600); err != nil {
			return nil, err
		}
		apiArgs = append(apiArgs, "--audit-policy-file", policy,
			"--audit-log-path", e.auditLog(), "--audit-log-mode", "blocking", "--audit-log-format", "json")
	}
	api, err := e.run("kube-apiserver", apiArgs...)
	if err != nil {
		return nil, err
	}

	host := fmt.Sprintf("https://127.0.0.1:%d", ports[2])
	e.Kubeconfig = filepath.Join(dir, "kubeconfig")
	kc := clientcmdapi.NewConfig()
	kc.Clusters["test"] = &clientcmdapi.Cluster{Server: host, CertificateAuthorityData: p.caCert}
	kc.AuthInfos["admin"] = &clientcmdapi.AuthInfo{ClientCertificateData: p.adminCert, ClientKeyData: p.adminKey}
	kc.Contexts["test"] = &clientcmdapi.Context{Cluster: "test", AuthInfo: "admin", Namespace: "default"}
	kc.CurrentContext = "test"
	if err := clientcmd.WriteToFile(*kc, e.Kubeconfig); err != nil {
		return nil, err
	}
	if e.Config, err = clientcmd.BuildConfigFromFlags("", e.Kubeconfig); err != nil {
		return nil, err
	}
	// Tests create objects by the thousand; client-side throttling would
	// only slow them down.
	e.Config.QPS, e.Config.Burst = 500, 1000
	e.Config.UserAgent = "sonde-test-admin"
	if e.Client, err = kubernetes.NewForConfig(e.Config); err != nil {
		return nil, err
	}
	hc, err := rest.HTTPClientFor(e.Config)
	if err != nil {
		return nil, err
	}
	if err := waitHTTP(hc, host+"/readyz", api, 90*time.Second); err != nil {
		return nil, err
	}

	if o.Controllers {
		e.controllers = true
		if _, err := e.run("kube-controller-manager",
			"--kubeconfig", e.Kubeconfig, "--leader-elect=false",
			"--bind-address", "127.0.0.1", "--secure-port", "0",
			"--controllers", strings.Join(controllers, ","),
			"--service-account-private-key-file", p.path("sa.key"),
			"--root-ca-file", p.path("ca.crt"),
			"--use-service-account-credentials=false",
			// Answer in a second rather than after the default backoffs.
			"--concurrent-daemonset-syncs", "2"); err != nil {
			return nil, err
		}
		if _, err := e.run("kube-scheduler",
			"--kubeconfig", e.Kubeconfig, "--leader-elect=false",
			"--bind-address", "127.0.0.1", "--secure-port", "0"); err != nil {
			return nil, err
		}
	}
	if o.Kwok {
		cfg, err := kwokConfig(dir, o.PortForwards)
		if err != nil {
			return nil, err
		}
		if _, err := e.run("kwok",
			"--kubeconfig", e.Kubeconfig, "--config", cfg,
			"--manage-all-nodes=true",
			"--node-ip", "127.0.0.1", "--node-port", strconv.Itoa(ports[3]),
			"--server-address", fmt.Sprintf("127.0.0.1:%d", ports[3]),
			"--tls-cert-file", p.path("serving.crt"), "--tls-private-key-file", p.path("serving.key"),
			"--cidr", "10.244.0.1/16"); err != nil {
			return nil, err
		}
	}
	return e, nil
}

// The controllers the tests need; the others only cost CPU.
var controllers = []string{
	"serviceaccount-controller", "serviceaccount-token-controller", "root-ca-certificate-publisher-controller",
	"namespace-controller", "garbage-collector-controller",
	"daemonset-controller", "deployment-controller", "replicaset-controller",
	"endpointslice-controller",
	// Admission taints every new node not-ready; this controller lifts the
	// taint once kwok reports the node Ready.
	"node-lifecycle-controller",
}

// Audit records at the Metadata level, once per request.
const auditPolicy = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: Metadata
`

func (e *Env) run(name string, args ...string) (*proc.Process, error) {
	p, err := proc.Start(e.Dir, name, filepath.Join(BinDir(), name), args...)
	if err != nil {
		return nil, err
	}
	e.procs = append(e.procs, p)
	return p, nil
}

// Stop ends every process, the last started first, and removes Dir.
func (e *Env) Stop() {
	for i := len(e.procs) - 1; i >= 0; i-- {
		e.procs[i].Stop(10 * time.Second)
	}
	e.procs = nil
	if e.Dir != "" {
		os.RemoveAll(e.Dir)
	}
}

func waitHTTP(c *http.Client, url string, p *proc.Process, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := c.Do(req)
		if err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("%s: %s", resp.Status, bytes.TrimSpace(body))
		}
		last = err
		select {
		case <-p.Done():
			return p.Exited()
		case <-ctx.Done():
			return fmt.Errorf("%s not ready after %v: %w", p.Name, timeout, last)
		case <-tick.C:
		}
	}
}

// freePorts finds n loopback ports nobody listens on now. Another process
// may take one before it is used; the control plane then fails to start
// and says which port.
func freePorts(n int) ([]int, error) {
	var ports []int
	var lns []net.Listener
	defer func() {
		for _, l := range lns {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		lns = append(lns, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// Kubectl runs the kubectl built with the control plane as the admin.
func (e *Env) Kubectl(ctx context.Context, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(BinDir(), "kubectl"), append([]string{"--kubeconfig", e.Kubeconfig}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(stderr.Bytes()))
	}
	return out, nil
}

var errNoAudit = errors.New("the Env was started without Options.Audit")

func (e *Env) auditLog() string { return filepath.Join(e.Dir, "audit.log") }
