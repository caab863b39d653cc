package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/vishvananda/netns"
	"k8s.io/client-go/kubernetes"

	"github.com/sondehq/sonde/agent/capture/live"
	agentkube "github.com/sondehq/sonde/agent/kube"
	"github.com/sondehq/sonde/agent/runner"
	"github.com/sondehq/sonde/protocols/wire"
)

type agentFlags struct {
	ifaces      []string
	allIfaces   bool
	podIPs      []string
	ports       []uint
	source      string
	ringSize    int
	snapLen     int
	asJSON      bool
	hubURL      string
	hubCA       string
	tokenFile   string
	node        string
	metricsAddr string
	noRedact    bool
	redact      redactFlags
	netnsPath   string
	kubernetes  bool
	kubeconfig  string
	selector    agentkube.Selector
}

func newAgentCmd() *cobra.Command {
	var f agentFlags
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Capture live traffic with eBPF (or AF_PACKET) and print or send its entries",
		Long: `agent attaches traffic-control eBPF programs to network interfaces, runs what
they capture through TCP reassembly and the dissectors, and prints each entry as a
JSON line (--json) or sends it to a hub (--hub). It needs root (CAP_BPF and
CAP_NET_ADMIN). Where eBPF cannot load it falls back to AF_PACKET and says so.
Counters go to stderr at exit and on SIGUSR1, and to Prometheus with --metrics.

With --kubernetes (as in Sonde's DaemonSet) it watches the pods of its node
(--node) and captures those that --pods, --namespaces and --exclude-namespaces
select, following them as they come, go and change address.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runAgent(cmd, f) },
	}
	fl := cmd.Flags()
	fl.StringSliceVar(&f.ifaces, "iface", nil, "interfaces to capture (comma-separated)")
	fl.BoolVar(&f.allIfaces, "all-ifaces", false, "capture every interface but loopback")
	fl.StringSliceVar(&f.podIPs, "pod-ip", nil, "capture only traffic of these addresses, on the interfaces that route to them")
	fl.UintSliceVar(&f.ports, "port", nil, "capture only these TCP ports")
	fl.StringVar(&f.source, "source", "", `force the capture source: "ebpf" or "afpacket"`)
	fl.IntVar(&f.ringSize, "ring-size", 0, "ring buffer bytes (a power of two; default 16 MiB)")
	fl.IntVar(&f.snapLen, "snap-len", 0, "bytes captured per packet (default: the program's)")
	fl.BoolVar(&f.asJSON, "json", false, "print one JSON entry per line on stdout")
	fl.StringVar(&f.hubURL, "hub", "", "send entries to this hub (http://host:8898)")
	fl.StringVar(&f.tokenFile, "token-file", "", "file holding the hub's ingest token")
	fl.StringVar(&f.hubCA, "hub-ca", "", "PEM file of the CA the hub's certificate must chain to (--hub https://...); read again when it changes")
	fl.StringVar(&f.node, "node", "", "node name stamped on entries (default: the host name)")
	fl.StringVar(&f.metricsAddr, "metrics", "", "serve Prometheus metrics and /healthz on this address (e.g. :9101)")
	fl.BoolVar(&f.noRedact, "no-redact", false, "keep credentials, cookies and tokens in entries")
	f.redact.register(fl)
	fl.StringVar(&f.netnsPath, "netns", "", "capture the interfaces of the network namespace at this path (e.g. /run/netns/NAME) instead of the agent's own")
	fl.BoolVar(&f.kubernetes, "kubernetes", false, "capture the selected pods of this node, following them (in-cluster credentials, or --kubeconfig)")
	fl.StringVar(&f.kubeconfig, "kubeconfig", "", "with --kubernetes: a kubeconfig file to use instead of the in-cluster credentials")
	f.selector.AddFlags(fl)
	return cmd
}

// checkTargets refuses flag combinations that do not say one clear thing
// to capture.
func (f *agentFlags) checkTargets(fl *pflag.FlagSet) error {
	explicit := len(f.ifaces) > 0 || f.allIfaces || len(f.podIPs) > 0
	if f.kubernetes {
		if explicit {
			return errors.New("--kubernetes picks the pods itself: drop --iface, --all-ifaces and --pod-ip")
		}
		return nil
	}
	for _, name := range []string{"pods", "namespaces", "exclude-namespaces", "kubeconfig"} {
		if fl.Changed(name) {
			return fmt.Errorf("--%s selects pods of the cluster: add --kubernetes", name)
		}
	}
	if !explicit {
		return errors.New("say what to capture: --iface NAME, --all-ifaces, --pod-ip ADDR or --kubernetes")
	}
	return nil
}

func runAgent(cmd *cobra.Command, f agentFlags) error {
	if err := f.checkTargets(cmd.Flags()); err != nil {
		return err
	}
	if !f.asJSON && f.hubURL == "" {
		return errors.New("say where entries go: --json (stdout) or --hub URL")
	}
	if f.hubURL != "" && f.tokenFile == "" {
		return errors.New("--hub needs --token-file with the hub's ingest token")
	}
	tlsHub := strings.HasPrefix(f.hubURL, "https://") || strings.HasPrefix(f.hubURL, "wss://")
	if f.hubCA != "" && !tlsHub {
		return fmt.Errorf("--hub-ca is for a hub reached over TLS: give --hub https://..., not %q", f.hubURL)
	}
	secrets, err := f.redact.policy()
	if err != nil {
		return err
	}
	if cmd.Flags().Changed("snap-len") && (f.snapLen < live.MinSnapLen || f.snapLen > live.MaxSnapLen) {
		return fmt.Errorf("--snap-len %d: give %d to %d bytes (leave it out to keep whole packets)", f.snapLen, live.MinSnapLen, live.MaxSnapLen)
	}
	if cmd.Flags().Changed("ring-size") && (f.ringSize <= 0 || f.ringSize&(f.ringSize-1) != 0) {
		return fmt.Errorf("--ring-size %d: give a power of two, such as 16777216 (16 MiB)", f.ringSize)
	}
	var ports []uint16
	for _, p := range f.ports {
		if p == 0 || p > 65535 {
			return fmt.Errorf("--port %d is not a TCP port", p)
		}
		ports = append(ports, uint16(p))
	}
	var pods []netip.Addr
	for _, s := range f.podIPs {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return fmt.Errorf("--pod-ip %q is not an IP address", s)
		}
		pods = append(pods, a)
	}
	node := f.node
	if node == "" {
		node, _ = os.Hostname()
	}
	log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil))
	ctx := cmd.Context()

	// The watcher hands the node's pods to the capture from its Run, which
	// starts once src is open.
	var src live.Source
	var watcher *agentkube.Watcher
	// ready says whether the agent captures what it was asked to: with
	// --kubernetes, once the node's pods were listed and handed over.
	var listed atomic.Bool
	ready := func() bool { return !f.kubernetes || listed.Load() }
	if f.kubernetes {
		rc, err := clusterConfig(f.kubeconfig, "sonde-agent/"+version)
		if err != nil {
			return err
		}
		cs, err := kubernetes.NewForConfig(rc)
		if err != nil {
			return fmt.Errorf("connecting to the cluster: %w", err)
		}
		var prev []agentkube.Pod // calls of OnChange never overlap
		watcher, err = agentkube.New(cs, agentkube.Config{Node: node, Selector: f.selector, Logger: log,
			OnChange: func(sel []agentkube.Pod) {
				if err := src.SetPods(agentkube.Addrs(sel)); err != nil && !errors.Is(err, live.ErrStopped) {
					log.Error("following the node's pods", "err", err)
					return
				}
				listed.Store(true)
				added, removed := agentkube.Changes(prev, sel)
				prev = sel
				log.Info("capturing", "pods", len(sel), "interfaces", src.Stats().Interfaces,
					"added", added, "removed", removed)
			}})
		if err != nil {
			return err
		}
	}
	if os.Geteuid() != 0 {
		return errors.New("sonde agent needs root (CAP_BPF and CAP_NET_ADMIN) to attach to interfaces")
	}
	var ns netns.NsHandle
	if f.netnsPath != "" {
		h, err := netns.GetFromPath(f.netnsPath)
		if err != nil {
			return fmt.Errorf("--netns %s: %w", f.netnsPath, err)
		}
		defer h.Close()
		ns = h
	}
	cfg := runner.Config{
		Live: &live.Config{
			Pods: pods, Ifaces: f.ifaces, AllIfaces: f.allIfaces, Ports: ports, FollowPods: f.kubernetes,
			Source: f.source, RingSize: f.ringSize, SnapLen: f.snapLen, Netns: ns, Log: log,
		},
		Node: node, Version: version, KeepSecrets: f.noRedact, Log: log,
		Secrets: secrets,
	}
	if f.asJSON {
		cfg.JSON = cmd.OutOrStdout()
	}
	if f.hubURL != "" {
		token, err := wire.ReadTokenFile(f.tokenFile)
		if err != nil {
			return err
		}
		cfg.Hub = &runner.Hub{URL: f.hubURL, Token: token, CAFile: f.hubCA}
		if u, err := url.Parse(f.hubURL); !tlsHub && (err != nil || !loopbackHost(u.Hostname())) {
			log.Warn("the hub is reached without TLS: the ingest token and every entry travel in the clear; give --hub https://... and --hub-ca", "hub", f.hubURL)
		}
	}
	rt, err := runner.Open(cfg)
	if err != nil {
		return err
	}
	src = rt.Source()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	if f.metricsAddr != "" {
		if err := serveAgentMetrics(ctx, f.metricsAddr, src, rt.Counters, ready, &wg); err != nil {
			return err
		}
	}
	if watcher != nil {
		wg.Go(func() {
			if err := watcher.Run(ctx); err != nil && ctx.Err() == nil {
				log.Error("watching the node's pods stopped", "err", err)
			}
		})
	}
	wg.Go(func() {
		usr1 := make(chan os.Signal, 1)
		signal.Notify(usr1, syscall.SIGUSR1)
		defer signal.Stop(usr1)
		for {
			select {
			case <-ctx.Done():
				return
			case <-usr1:
				printCounters(cmd.ErrOrStderr(), rt.Counters())
			}
		}
	})
	runErr := rt.Run(ctx)
	cancel()
	wg.Wait()
	printCounters(cmd.ErrOrStderr(), rt.Counters())
	return runErr
}

func printCounters(w io.Writer, m map[string]uint64) {
	b, _ := json.Marshal(m) // sorted keys, one line
	fmt.Fprintf(w, "counters %s\n", b)
}

// serveAgentMetrics serves /metrics and /healthz, which the DaemonSet's
// readiness probe reads: it answers 503 until ready says the agent
// captures what it was asked to.
func serveAgentMetrics(ctx context.Context, addr string, src live.Source, stats func() map[string]uint64, ready func() bool, wg *sync.WaitGroup) error {
	reg := prometheus.NewRegistry()
	reg.MustRegister(live.NewCollector(src), counterCollector{stats})
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		if !ready() {
			http.Error(w, "listing the node's pods", http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ok\n")
	})
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("--metrics %s: %w", addr, err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	wg.Add(2)
	go func() { defer wg.Done(); srv.Serve(ln) }()
	go func() {
		defer wg.Done()
		<-ctx.Done()
		shut, done := context.WithTimeout(context.Background(), 2*time.Second)
		srv.Shutdown(shut)
		done()
	}()
	return nil
}

// counterCollector exports the agent's counters as sonde_agent_<name>_total.
type counterCollector struct{ stats func() map[string]uint64 }

var agentCounterDesc = prometheus.NewDesc("sonde_agent_events_total",
	"What the agent's pipeline counted, by counter name (loss counters included).", []string{"counter"}, nil)

func (counterCollector) Describe(ch chan<- *prometheus.Desc) { ch <- agentCounterDesc }

func (c counterCollector) Collect(ch chan<- prometheus.Metric) {
	for name, n := range c.stats() {
		ch <- prometheus.MustNewConstMetric(agentCounterDesc, prometheus.CounterValue, float64(n), name)
	}
}
