package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/sondehq/sonde/lab/demo"
	"github.com/sondehq/sonde/apiserver"
	"github.com/sondehq/sonde/apiserver/enrich"
	"github.com/sondehq/sonde/protocols"
	"github.com/sondehq/sonde/web"
)

type demoFlags struct {
	listen    string
	noBrowser bool
	duration  time.Duration
	rate      float64
}

func newDemoCmd() *cobra.Command {
	var f demoFlags
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run a small shop of real services on this machine, capture it, and show it in the browser",
		Long: `demo builds a pretend Kubernetes node out of network namespaces: pods named like
a shop's (frontend, api, catalog, payments, worker, redis-0, kafka-0, rabbitmq-0),
service IPs, and real servers of every protocol Sonde reads (HTTP/1, HTTP/2, gRPC,
Debian's redis-server, a Kafka broker, Debian's rabbitmq-server) with clients
making varied traffic, errors and slow calls included. It captures the traffic
with the eBPF agent and serves the UI with the pods named. A protocol whose
server is not installed is skipped, saying so. Ctrl-C removes every namespace,
interface, process and eBPF attachment it made. It needs root.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runDemo(cmd, f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.listen, "listen", apiserver.DefaultServeListen, "address to serve the UI and API on")
	fl.BoolVar(&f.noBrowser, "no-browser", false, "print the URL without opening a browser")
	fl.DurationVar(&f.duration, "duration", 0, "stop after this long (0: until Ctrl-C)")
	fl.Float64Var(&f.rate, "rate", demo.DefaultRate, "requests a second the shop's frontend makes")
	return cmd
}

func runDemo(cmd *cobra.Command, f demoFlags) error {
	if f.duration < 0 {
		return errors.New("--duration must not be negative")
	}
	out := cmd.ErrOrStderr()
	log := slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: slog.LevelWarn}))
	var srv *apiserver.Server // set before the demo runs
	d, err := demo.New(demo.Config{Rate: f.rate, Out: out, Log: log,
		Sink: func(es []*protocols.Entry) error { return srv.Ingest(es...) }})
	switch {
	case errors.Is(err, demo.ErrNotRoot):
		return errors.New("sonde demo needs root: it creates network namespaces and attaches eBPF programs (try: sudo sonde demo)")
	case errors.Is(err, demo.ErrRate):
		return fmt.Errorf("--rate %v: %w", f.rate, demo.ErrRate)
	case err != nil:
		return err
	}
	names := enrich.Static{}
	for _, n := range d.Names() {
		names[n.Addr] = enrich.Identity{Pod: n.Pod, Namespace: n.Namespace, Service: n.Service, Workload: n.Workload}
	}
	srv, err = apiserver.New(apiserver.Config{UI: web.Handler(), Resolver: names, Version: version})
	if err != nil {
		return errors.Join(err, d.Close())
	}
	defer srv.Close()
	ln, err := net.Listen("tcp", f.listen)
	if err != nil {
		return errors.Join(fmt.Errorf("listening on %s: %w", f.listen, err), d.Close())
	}

	ctx, cancel := context.WithCancel(cmd.Context())
	defer cancel()
	if f.duration > 0 {
		ctx, cancel = context.WithTimeout(ctx, f.duration)
		defer cancel()
	}
	served := make(chan error, 1)
	go func() {
		served <- srv.Serve(ctx, ln)
		cancel() // a hub that cannot serve ends the demo
	}()
	url := "http://" + browsable(ln.Addr())
	fmt.Fprintf(out, "serving Sonde on %s (Ctrl-C to stop and clean up)\n", url)
	if !f.noBrowser {
		openBrowser(url, out)
	}
	runErr := d.Run(ctx)
	cancel()
	return errors.Join(runErr, <-served)
}

// openBrowser opens url with xdg-open when there is a display to open it
// on, as the user who ran sudo (browsers refuse to run as root); without
// either, the printed URL is all there is.
func openBrowser(url string, out io.Writer) {
	if os.Getenv("DISPLAY") == "" && os.Getenv("WAYLAND_DISPLAY") == "" {
		return
	}
	path, err := exec.LookPath("xdg-open")
	if err != nil {
		return
	}
	c := exec.Command(path, url)
	if u, err := user.LookupId(os.Getenv("SUDO_UID")); err == nil {
		uid, _ := strconv.ParseUint(u.Uid, 10, 32)
		gid, _ := strconv.ParseUint(u.Gid, 10, 32)
		c.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
		c.Env = append(os.Environ(), "HOME="+u.HomeDir, "USER="+u.Username)
	}
	if err := c.Start(); err != nil {
		return
	}
	fmt.Fprintln(out, "opening it in your browser")
	go c.Wait() // xdg-open returns once the browser has the URL
}
