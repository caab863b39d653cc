package rabbit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

const (
	// Server is the start script of Debian's rabbitmq-server package.
	// /usr/sbin/rabbitmq-server wraps it to run as the rabbitmq user with
	// the system's directories, which a private node must not touch.
	Server = "/usr/lib/rabbitmq/bin/rabbitmq-server"
	// DefaultStartWait bounds the Erlang VM's start, which takes seconds.
	DefaultStartWait = 2 * time.Minute
	// stopWait bounds a clean stop before the node is killed.
	stopWait = 30 * time.Second
)

// The ports of a node alone in its network namespace.
const (
	amqpPort = 5672
	distPort = 25672
	epmdPort = 4369
)

var (
	// ErrNotInstalled says Debian's rabbitmq-server package is missing.
	ErrNotInstalled = errors.New("rabbitmq-server is not installed (" + Server + " is missing; Debian: apt-get install -y rabbitmq-server)")
	errExited       = errors.New("process exited")
)

// Installed reports whether Start can run a node here.
func Installed() bool {
	_, err := os.Stat(Server)
	return err == nil
}

// Config says where the node runs.
type Config struct {
	// IP is the address of the AMQP listener; zero means 127.0.0.1.
	IP netip.Addr
	// Netns is the network namespace to run in, as `ip netns` names it;
	// empty means the caller's. A namespace of its own has the standard
	// ports free, so the node uses them; otherwise it takes free loopback
	// ports.
	Netns string
	// Dial connects from the node's namespace, to see when it listens;
	// nil means a plain net.Dialer, right when Netns is empty.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// StartWait bounds the start; zero means DefaultStartWait.
	StartWait time.Duration
	// Name tells this node's processes from others'; it goes into the
	// Erlang node name. Empty means "sonde".
	Name string
}

// Node is a running broker.
type Node struct {
	// Addr is host:port of the AMQP listener.
	Addr string

	dir    string
	server *exec.Cmd
	epmd   *exec.Cmd
	exited chan struct{}
}

// Start starts a node and waits until it accepts AMQP connections.
func Start(ctx context.Context, cfg Config) (*Node, error) {
	if !Installed() {
		return nil, ErrNotInstalled
	}
	epmdPath, err := exec.LookPath("epmd")
	if err != nil {
		return nil, fmt.Errorf("epmd (from erlang-base, a dependency of rabbitmq-server) not found: %w", err)
	}
	if !cfg.IP.IsValid() {
		cfg.IP = netip.AddrFrom4([4]byte{127, 0, 0, 1})
	}
	if cfg.Dial == nil {
		cfg.Dial = (&net.Dialer{}).DialContext
	}
	if cfg.StartWait <= 0 {
		cfg.StartWait = DefaultStartWait
	}
	if cfg.Name == "" {
		cfg.Name = "sonde"
	}
	ports := [3]int{amqpPort, distPort, epmdPort}
	if cfg.Netns == "" {
		for i := range ports {
			if ports[i], err = freePort(); err != nil {
				return nil, err
			}
		}
	}
	amqp, dist, epmd := ports[0], ports[1], ports[2]

	dir, err := os.MkdirTemp("", "sonde-rabbitmq-")
	if err != nil {
		return nil, err
	}
	n := &Node{Addr: netip.AddrPortFrom(cfg.IP, uint16(amqp)).String(), dir: dir, exited: make(chan struct{})}
	files := map[string]string{
		// guest may log in from other hosts (pods), not only loopback.
		"rabbitmq.conf":     fmt.Sprintf("listeners.tcp.1 = %s\nloopback_users = none\n", n.Addr),
		"enabled_plugins":   "[].\n",
		"rabbitmq-env.conf": "",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
	}
	env := append(os.Environ(),
		// The Erlang cookie goes to $HOME; keep it out of the real one. The
		// variable also marks the node's processes (see waitGone).
		"HOME="+dir,
		fmt.Sprintf("ERL_EPMD_PORT=%d", epmd),
		"ERL_EPMD_ADDRESS=127.0.0.1",
		"RABBITMQ_CONF_ENV_FILE="+filepath.Join(dir, "rabbitmq-env.conf"),
		"RABBITMQ_CONFIG_FILE="+filepath.Join(dir, "rabbitmq"),
		"RABBITMQ_ENABLED_PLUGINS_FILE="+filepath.Join(dir, "enabled_plugins"),
		"RABBITMQ_MNESIA_BASE="+filepath.Join(dir, "mnesia"),
		"RABBITMQ_LOG_BASE="+filepath.Join(dir, "log"),
		fmt.Sprintf("RABBITMQ_NODENAME=%s-%d@localhost", cfg.Name, os.Getpid()),
		"RABBITMQ_NODE_IP_ADDRESS="+cfg.IP.String(),
		fmt.Sprintf("RABBITMQ_NODE_PORT=%d", amqp),
		fmt.Sprintf("RABBITMQ_DIST_PORT=%d", dist),
		"RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS=-kernel inet_dist_use_interface {127,0,0,1}",
	)

	// Our own epmd, in the foreground, so that the node does not start a
	// daemonised one that would outlive it.
	n.epmd = command(cfg.Netns, epmdPath, "-address", "127.0.0.1", "-port", strconv.Itoa(epmd))
	n.epmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := n.epmd.Start(); err != nil {
		n.Stop()
		return nil, fmt.Errorf("starting epmd: %w", err)
	}
	if err := waitListening(ctx, cfg.Dial, fmt.Sprintf("127.0.0.1:%d", epmd), 10*time.Second, nil); err != nil {
		n.Stop()
		return nil, fmt.Errorf("epmd: %w", err)
	}

	log, err := os.Create(filepath.Join(dir, "server.out"))
	if err != nil {
		n.Stop()
		return nil, err
	}
	n.server = command(cfg.Netns, Server)
	n.server.Dir, n.server.Env, n.server.Stdout, n.server.Stderr = dir, env, log, log
	// The start script turns SIGTERM into a clean stop of the VM; it gets
	// one if its owner dies without stopping it.
	n.server.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := n.server.Start(); err != nil {
		log.Close()
		n.Stop()
		return nil, fmt.Errorf("starting rabbitmq-server: %w", err)
	}
	go func() {
		n.server.Wait()
		log.Close()
		close(n.exited)
	}()
	if err := waitListening(ctx, cfg.Dial, n.Addr, cfg.StartWait, n.exited); err != nil {
		out, _ := os.ReadFile(filepath.Join(dir, "server.out"))
		n.Stop()
		return nil, fmt.Errorf("rabbitmq-server did not accept AMQP on %s: %w\n%s", n.Addr, err, out)
	}
	return n, nil
}

// command runs name in the network namespace ns, or here when ns is empty.
// `ip netns exec` replaces itself with the program, so the process, its
// group and its parent-death signal are the program's.
func command(ns, name string, args ...string) *exec.Cmd {
	if ns == "" {
		return exec.Command(name, args...)
	}
	return exec.Command("ip", append([]string{"netns", "exec", ns, name}, args...)...)
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// waitListening waits until addr accepts a TCP connection, the process
// behind exited closes, ctx ends or the wait is over.
func waitListening(ctx context.Context, dial func(context.Context, string, string) (net.Conn, error), addr string, wait time.Duration, exited <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		dctx, done := context.WithTimeout(ctx, time.Second)
		c, err := dial(dctx, "tcp", addr)
		done()
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not listening after %v: %w", wait, errors.Join(ctx.Err(), err))
		case <-exited:
			return errExited
		case <-tick.C:
		}
	}
}

// Stop ends the node's process group with SIGTERM (a clean stop of the VM
// and its port programs), SIGKILL if it ignores that, then epmd, and
// removes the node's directory.
func (n *Node) Stop() error {
	var errs []error
	if n.server != nil && n.server.Process != nil {
		pgid := n.server.Process.Pid
		syscall.Kill(-pgid, syscall.SIGTERM)
		select {
		case <-n.exited:
		case <-time.After(stopWait):
			syscall.Kill(-pgid, syscall.SIGKILL)
			<-n.exited
			errs = append(errs, fmt.Errorf("rabbitmq-server ignored SIGTERM for %v; killed", stopWait))
		}
		// The VM's port programs (erl_child_setup, inet_gethost) run in
		// their own sessions; they end with the VM. Make sure of it.
		if err := waitGone(n.dir, stopWait); err != nil {
			errs = append(errs, err)
		}
	}
	if n.epmd != nil && n.epmd.Process != nil {
		n.epmd.Process.Kill()
		n.epmd.Wait()
	}
	errs = append(errs, os.RemoveAll(n.dir))
	return errors.Join(errs...)
}

// waitGone waits until no process has dir as its HOME, which is how the
// node's processes, whatever their session, can be told apart from anyone
// else's.
func waitGone(dir string, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for range tick.C {
		left := processesWith("HOME=" + dir)
		if len(left) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			for _, pid := range left {
				syscall.Kill(pid, syscall.SIGKILL)
			}
			return fmt.Errorf("broker processes %v outlived the VM; killed", left)
		}
	}
	return nil
}

// processesWith lists the processes whose environment holds the variable.
func processesWith(variable string) []int {
	procs, _ := filepath.Glob("/proc/[0-9]*/environ")
	var pids []int
	for _, p := range procs {
		env, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		for _, v := range bytes.Split(env, []byte{0}) {
			if string(v) == variable {
				pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(p)))
				pids = append(pids, pid)
				break
			}
		}
	}
	return pids
}
