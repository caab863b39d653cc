package main

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/sondehq/sonde/agent/runner"
	"github.com/sondehq/sonde/apiserver"
	"github.com/sondehq/sonde/apiserver/enrich"
	"github.com/sondehq/sonde/cmd/internal/browse"
	"github.com/sondehq/sonde/lab/demo"
	"github.com/sondehq/sonde/web"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// errNotRoot is said before anything is built or listened on.
var errNotRoot = errors.New("sonde-demo needs root: it creates network namespaces and attaches eBPF programs (try: sudo make demo)")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newDemoCmd().ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "sonde-demo: %v\n", err)
		os.Exit(1)
	}
}

type demoFlags struct {
	listen    string
	noBrowser bool
	duration  time.Duration
	rate      float64
}

func newDemoCmd() *cobra.Command {
	var f demoFlags
	cmd := &cobra.Command{
		Use:   "sonde-demo",
		Short: "Run a small shop of real services on this machine, capture it, and show it in the browser",
		Long: `sonde-demo builds a pretend Kubernetes node out of network namespaces: pods named
like a shop's (frontend, api, catalog, payments, worker, redis-0, kafka-0,
rabbitmq-0), service IPs, and real servers of every protocol Sonde reads (HTTP/1,
HTTP/2, gRPC, Debian's redis-server, a Kafka broker, Debian's rabbitmq-server)
with clients making varied traffic, errors and slow calls included. It captures
the traffic with the eBPF agent, sends it to a hub over the agents' ingest
websocket, and serves the UI with the pods named. A protocol whose server is not
installed is skipped, saying so. Ctrl-C removes every namespace, interface,
process and eBPF attachment it made. It needs root.`,
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version,
		RunE:          func(cmd *cobra.Command, _ []string) error { return runDemo(cmd, f) },
	}
	cmd.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return fmt.Errorf("%w (see '%s --help')", err, c.CommandPath())
	})
	fl := cmd.Flags()
	fl.StringVar(&f.listen, "listen", apiserver.DefaultServeListen, "address to serve the UI and API on")
	fl.BoolVar(&f.noBrowser, "no-browser", false, "print the URL without opening a browser")
	fl.DurationVar(&f.duration, "duration", 0, "stop after this long (0: until Ctrl-C)")
	fl.Float64Var(&f.rate, "rate", demo.DefaultRate, "requests a second the shop's frontend makes")
	return cmd
}

func runDemo(cmd *cobra.Command, f demoFlags) error {
	// Bad flags and a missing root are said before the hub listens.
	if f.duration < 0 {
		return errors.New("--duration must not be negative")
	}
	if f.rate < 0 || f.rate > demo.MaxRate {
		return fmt.Errorf("--rate %v: %w", f.rate, demo.ErrRate)
	}
	if os.Geteuid() != 0 {
		return errNotRoot
	}
	out := cmd.ErrOrStderr()
	log := slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: slog.LevelWarn}))
	token, err := newToken()
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", f.listen)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", f.listen, err)
	}
	defer ln.Close() // until the hub serves on it
	d, err := demo.New(demo.Config{Rate: f.rate, Out: out, Log: log, Version: version,
		Hub: runner.Hub{URL: "http://" + loopback(ln.Addr()), Token: token}})
	switch {
	case errors.Is(err, demo.ErrNotRoot):
		return errNotRoot
	case errors.Is(err, demo.ErrRate):
		return fmt.Errorf("--rate %v: %w", f.rate, demo.ErrRate)
	case err != nil:
		return err
	}
	names := enrich.Static{}
	for _, n := range d.Names() {
		names[n.Addr] = enrich.Identity{Pod: n.Pod, Namespace: n.Namespace, Service: n.Service, Workload: n.Workload}
	}
	// The hub serves on this machine: only the holder of the URL printed
	// below may read the lab's traffic (see apiserver.Session).
	session, err := apiserver.NewSessionToken()
	if err != nil {
		return errors.Join(err, d.Close())
	}
	srv, err := apiserver.New(apiserver.Config{UI: web.Handler(), Resolver: names, Version: version, Token: token,
		Session: &apiserver.Session{Token: session}})
	if err != nil {
		return errors.Join(err, d.Close())
	}
	defer srv.Close()

	ctx, cancel := context.WithCancel(cmd.Context())
	defer cancel()
	if f.duration > 0 {
		ctx, cancel = context.WithTimeout(ctx, f.duration)
		defer cancel()
	}
	// The hub outlives the demo's run: the capture's last entries reach
	// it after the clients stopped.
	hubCtx, stopHub := context.WithCancel(context.Background())
	defer stopHub()
	served := make(chan error, 1)
	go func() {
		served <- srv.Serve(hubCtx, ln)
		cancel() // a hub that cannot serve ends the demo
	}()
	url := apiserver.SessionURL("http://"+browse.Addr(ln.Addr()), session)
	fmt.Fprintf(out, "serving Sonde on %s (Ctrl-C to stop and clean up)\n", url)
	if !f.noBrowser {
		browse.Open(url, out)
	}
	runErr := d.Run(ctx)
	stopHub()
	return errors.Join(runErr, <-served)
}

// newToken makes the ingest token of this run: the hub refuses any agent
// but the demo's own, also from other users of the machine.
func newToken() ([]byte, error) {
	var b [32]byte
	if _, err := crand.Read(b[:]); err != nil {
		return nil, fmt.Errorf("making the ingest token: %w", err)
	}
	return []byte(hex.EncodeToString(b[:])), nil
}

// loopback is the address the demo's agent dials: the listener's own, or
// the loopback address of its family when it listens on all of them.
func loopback(a net.Addr) string {
	tcp, ok := a.(*net.TCPAddr)
	if !ok {
		return a.String()
	}
	ip := tcp.IP
	if ip.IsUnspecified() {
		ip = net.IPv6loopback
		if ip4 := tcp.IP.To4(); ip4 != nil {
			ip = net.IPv4(127, 0, 0, 1)
		}
	}
	return net.JoinHostPort(ip.String(), strconv.Itoa(tcp.Port))
}
