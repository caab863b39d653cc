package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"sync"

	"github.com/sondehq/sonde/agent/runner"
	"github.com/sondehq/sonde/lab/netlab"
)

const (
	// Namespace is the Kubernetes namespace the demo's pods pretend to be in.
	Namespace = "shop"
	// DefaultRate is how many requests a second the frontend makes.
	DefaultRate = 5
	// MaxRate bounds Config.Rate: the demo shares the machine with the UI.
	MaxRate = 200
	// Node is the node name the demo's entries carry.
	Node = "sonde-demo"
)

var (
	// ErrNotRoot says the demo cannot build its lab without root.
	ErrNotRoot = errors.New("the demo needs root: it creates network namespaces and attaches eBPF programs (run it with sudo)")
	// ErrTools says iproute2 or iptables is missing.
	ErrTools = errors.New("the demo needs the ip and iptables commands (Debian packages iproute2 and iptables)")
	// ErrRate says Config.Rate is out of bounds.
	ErrRate = fmt.Errorf("the request rate must be between 0 and %d a second", MaxRate)
	// ErrNoHub says Config.Hub is missing its URL or token.
	ErrNoHub = errors.New("the demo needs a hub to send its entries to: its URL and ingest token")

	errRanTwice = errors.New("a demo runs only once")
)

// The workloads of the shop, and the port each one serves.
const (
	frontend = "frontend"
	api      = "api"
	catalog  = "catalog"
	payments = "payments"
	worker   = "worker"
	redisW   = "redis"
	kafkaW   = "kafka"
	rabbitW  = "rabbitmq"

	apiPort      = 8080
	catalogPort  = 8080
	paymentsPort = 50051
	redisPort    = 6379
	kafkaPort    = 9092
	amqpPort     = 5672
)

// Pod is one pod of the demo's pretend cluster.
type Pod struct {
	Name     string // as Kubernetes would name it
	Workload string // the Deployment or StatefulSet it belongs to
	Service  string // the Service in front of it; empty for none
	port     uint16 // the port it serves; 0 for a client
}

var pods = []Pod{
	{"frontend-7c9d8f6b5-x2k4p", frontend, frontend, 0},
	{"api-5f6d7c8b9-q8w2e", api, api, apiPort},
	{"catalog-6b8c9d7f4-m3n7r", catalog, catalog, catalogPort},
	{"payments-7d4f9b6c8-k3j9m", payments, payments, paymentsPort},
	{"worker-84c6d5f7b-t5v1z", worker, "", 0},
	{"redis-0", redisW, redisW, redisPort},
	{"kafka-0", kafkaW, kafkaW, kafkaPort},
	{"rabbitmq-0", rabbitW, rabbitW, amqpPort},
}

// spec is the pod of a workload.
func spec(workload string) Pod {
	i := slices.IndexFunc(pods, func(p Pod) bool { return p.Workload == workload })
	return pods[i]
}

// services are the ClusterIPs clients dial, by workload, with their port;
// Kafka's clients dial the broker it advertises, as they would in a cluster.
var services = []struct {
	workload string
	port     uint16
}{
	{api, 80},
	{catalog, 80},
	{payments, paymentsPort},
	{redisW, redisPort},
	{rabbitW, amqpPort},
}

// host is the name a workload's service has in the cluster's DNS, as
// clients put it in Host headers and gRPC authorities.
func host(workload string) string { return workload + "." + Namespace + ".svc.cluster.local" }

// Pods lists the demo's pods.
func Pods() []Pod { return slices.Clone(pods) }

// Name says what a lab address stands for in the pretend cluster. A
// service IP has only Namespace and Service.
type Name struct {
	Addr                              netip.Addr
	Pod, Namespace, Service, Workload string
}

// Config configures New.
type Config struct {
	// Rate is how many requests a second the frontend makes at most; zero
	// means DefaultRate.
	Rate float64
	// Hub receives the captured entries over the ingest websocket, as
	// from `sonde agent --hub URL --token-file F`.
	Hub runner.Hub
	// Version is reported to the hub as the agent's.
	Version string
	// Out receives a line for each thing a person watching may want to
	// know: the lab, each protocol's server or why it is skipped, the
	// capture. Nil discards.
	Out io.Writer
	// Log receives the capture's structured log; nil discards.
	Log *slog.Logger
}

// Demo is a lab ready to run.
type Demo struct {
	cfg   Config
	out   io.Writer // cfg.Out, one line at a time
	lab   *netlab.Lab
	pods  map[string]*netlab.Pod    // by workload
	svc   map[string]netip.AddrPort // service addresses by workload
	names []Name
	ran   bool
	once  sync.Once
	err   error
}

// New builds the lab: the node, the pods and the service IPs. Nothing runs
// in it until Run.
func New(cfg Config) (*Demo, error) {
	if cfg.Hub.URL == "" || len(cfg.Hub.Token) == 0 {
		return nil, ErrNoHub
	}
	if cfg.Rate == 0 {
		cfg.Rate = DefaultRate
	}
	if cfg.Rate < 0 || cfg.Rate > MaxRate {
		return nil, fmt.Errorf("%v: %w", cfg.Rate, ErrRate)
	}
	if cfg.Out == nil {
		cfg.Out = io.Discard
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if os.Geteuid() != 0 {
		return nil, ErrNotRoot
	}
	for _, bin := range []string{"ip", "iptables"} {
		if _, err := exec.LookPath(bin); err != nil {
			return nil, fmt.Errorf("%w: %s not found", ErrTools, bin)
		}
	}
	lab, err := netlab.New(netlab.Options{})
	if err != nil {
		return nil, fmt.Errorf("building the lab: %w", err)
	}
	d := &Demo{cfg: cfg, out: &lineWriter{w: cfg.Out}, lab: lab, pods: map[string]*netlab.Pod{}, svc: map[string]netip.AddrPort{}}
	for _, p := range pods {
		lp, err := lab.AddPod(p.Name)
		if err != nil {
			return nil, errors.Join(err, d.Close())
		}
		d.pods[p.Workload] = lp
		for _, ip := range []netip.Addr{lp.IP, lp.IP6} {
			d.names = append(d.names, Name{Addr: ip, Pod: p.Name, Namespace: Namespace, Service: p.Service, Workload: p.Workload})
		}
	}
	for _, s := range services {
		a, err := lab.AddService(d.pods[s.workload], s.port, spec(s.workload).port)
		if err != nil {
			return nil, errors.Join(fmt.Errorf("adding service %s: %w", s.workload, err), d.Close())
		}
		d.svc[s.workload] = a
		d.names = append(d.names, Name{Addr: a.Addr(), Namespace: Namespace, Service: s.workload})
	}
	fmt.Fprintf(d.out, "lab: %d pods of namespace %s in network namespaces %s-*, %d service IPs\n",
		len(pods), Namespace, lab.Prefix, len(services))
	return d, nil
}

// Names lists every lab address with what it stands for.
func (d *Demo) Names() []Name { return slices.Clone(d.names) }

// Close removes the lab: the namespaces, their interfaces and iptables
// rules, and the processes started in pods. Run calls it; call it yourself
// only when Run is not called. It may be called more than once.
func (d *Demo) Close() error {
	d.once.Do(func() { d.err = d.lab.Close() })
	return d.err
}

// Run starts the servers, the capture and the clients, makes traffic until
// ctx ends, then stops everything in reverse order and removes the lab.
func (d *Demo) Run(ctx context.Context) (err error) {
	if d.ran {
		return errRanTwice
	}
	d.ran = true
	var down teardown
	defer func() {
		fmt.Fprintln(d.out, "stopping: clients, capture, servers, then the lab")
		stopErr, closeErr := down.run(), d.Close()
		if closeErr == nil {
			fmt.Fprintf(d.out, "stopped: network namespaces %s-* removed\n", d.lab.Prefix)
		}
		err = errors.Join(err, stopErr, closeErr)
	}()

	s, err := d.startServers(ctx, &down)
	if err != nil {
		return err
	}
	capErr := make(chan error, 1)
	stopCapture, err := d.startCapture(capErr)
	if err != nil {
		return err
	}
	down.add(stopCapture)
	if err := d.startClients(ctx, s, &down); err != nil {
		return err
	}
	select {
	case <-ctx.Done():
		return nil
	case err := <-capErr:
		return err
	}
}

// teardown stops what was started, last first.
type teardown []func() error

func (t *teardown) add(stop func() error) { *t = append(*t, stop) }

func (t *teardown) run() error {
	var errs []error
	for i := len(*t) - 1; i >= 0; i-- {
		errs = append(errs, (*t)[i]())
	}
	*t = nil
	return errors.Join(errs...)
}

// lineWriter serialises the lines that goroutines write.
type lineWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lineWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}
