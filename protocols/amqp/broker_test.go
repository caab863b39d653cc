package amqp

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The live tests run against Debian's rabbitmq-server, started once per
// test binary on loopback with its own epmd, ports, node name and
// directories, and stopped in TestMain.

const (
	// rabbitmqServer is the start script of Debian's rabbitmq-server
	// package. /usr/sbin/rabbitmq-server wraps it to run as the rabbitmq
	// user with the system's directories, which a test must not touch.
	rabbitmqServer = "/usr/lib/rabbitmq/bin/rabbitmq-server"
	// brokerStartWait bounds the Erlang VM's start, which takes seconds.
	brokerStartWait = 120 * time.Second
	brokerStopWait  = 30 * time.Second
)

var (
	errNoRabbitMQ = errors.New("rabbitmq-server is not installed (" + rabbitmqServer + " is missing): the live AMQP tests need Debian's rabbitmq-server package (apt-get install -y rabbitmq-server)")

	brokerOnce sync.Once
	theBroker  *broker
	brokerErr  error
)

type broker struct {
	addr   string // host:port of the AMQP listener
	dir    string
	server *exec.Cmd
	epmd   *exec.Cmd
	exited chan struct{}
}

func TestMain(m *testing.M) {
	code := m.Run()
	if theBroker != nil {
		if err := theBroker.stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stopping rabbitmq-server:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// rabbitMQ returns the shared broker, starting it on first use. Without
// Debian's rabbitmq-server package the test skips, saying so; `make test`
// installs it first, so in CI these tests run.
func rabbitMQ(t *testing.T) *broker {
	t.Helper()
	brokerOnce.Do(func() { theBroker, brokerErr = startBroker() })
	if errors.Is(brokerErr, errNoRabbitMQ) {
		t.Skip(brokerErr)
	}
	if brokerErr != nil {
		t.Fatal(brokerErr)
	}
	return theBroker
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func startBroker() (*broker, error) {
	if _, err := os.Stat(rabbitmqServer); err != nil {
		return nil, errNoRabbitMQ
	}
	epmdPath, err := exec.LookPath("epmd")
	if err != nil {
		return nil, fmt.Errorf("epmd (from erlang-base, a dependency of rabbitmq-server) not found: %w", err)
	}
	dir, err := os.MkdirTemp("", "sonde-rabbitmq-")
	if err != nil {
		return nil, err
	}
	var ports [3]int
	for i := range ports {
		if ports[i], err = freePort(); err != nil {
			return nil, err
		}
	}
	amqpPort, distPort, epmdPort := ports[0], ports[1], ports[2]
	files := map[string]string{
		"rabbitmq.conf":     fmt.Sprintf("listeners.tcp.1 = 127.0.0.1:%d\n", amqpPort),
		"enabled_plugins":   "[].\n",
		"rabbitmq-env.conf": "",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			return nil, err
		}
	}
	env := append(os.Environ(),
		// The Erlang cookie goes to $HOME; keep it out of the real one.
		"HOME="+dir,
		fmt.Sprintf("ERL_EPMD_PORT=%d", epmdPort),
		"ERL_EPMD_ADDRESS=127.0.0.1",
		"RABBITMQ_CONF_ENV_FILE="+filepath.Join(dir, "rabbitmq-env.conf"),
		"RABBITMQ_CONFIG_FILE="+filepath.Join(dir, "rabbitmq"),
		"RABBITMQ_ENABLED_PLUGINS_FILE="+filepath.Join(dir, "enabled_plugins"),
		"RABBITMQ_MNESIA_BASE="+filepath.Join(dir, "mnesia"),
		"RABBITMQ_LOG_BASE="+filepath.Join(dir, "log"),
		fmt.Sprintf("RABBITMQ_NODENAME=sonde-test-%d@localhost", os.Getpid()),
		"RABBITMQ_NODE_IP_ADDRESS=127.0.0.1",
		fmt.Sprintf("RABBITMQ_NODE_PORT=%d", amqpPort),
		fmt.Sprintf("RABBITMQ_DIST_PORT=%d", distPort),
		"RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS=-kernel inet_dist_use_interface {127,0,0,1}",
	)
	b := &broker{addr: fmt.Sprintf("127.0.0.1:%d", amqpPort), dir: dir, exited: make(chan struct{})}

	// Our own epmd, in the foreground, so that the node does not start a
	// daemonised one that would outlive the test.
	b.epmd = exec.Command(epmdPath, "-address", "127.0.0.1", "-port", fmt.Sprint(epmdPort))
	b.epmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := b.epmd.Start(); err != nil {
		return nil, fmt.Errorf("starting epmd: %w", err)
	}
	if err := waitListening(fmt.Sprintf("127.0.0.1:%d", epmdPort), 10*time.Second, nil); err != nil {
		b.stop()
		return nil, fmt.Errorf("epmd: %w", err)
	}

	log, err := os.Create(filepath.Join(dir, "server.out"))
	if err != nil {
		b.stop()
		return nil, err
	}
	b.server = exec.Command(rabbitmqServer)
	b.server.Dir, b.server.Env, b.server.Stdout, b.server.Stderr = dir, env, log, log
	// The start script turns SIGTERM into a clean stop of the VM; it gets
	// one if the test binary dies without stopping it.
	b.server.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := b.server.Start(); err != nil {
		log.Close()
		b.stop()
		return nil, fmt.Errorf("starting rabbitmq-server: %w", err)
	}
	go func() {
		b.server.Wait()
		log.Close()
		close(b.exited)
	}()
	if err := waitListening(b.addr, brokerStartWait, b.exited); err != nil {
		out, _ := os.ReadFile(filepath.Join(dir, "server.out"))
		b.stop()
		return nil, fmt.Errorf("rabbitmq-server did not accept AMQP on %s: %w\n%s", b.addr, err, out)
	}
	return b, nil
}

// waitListening waits until addr accepts a TCP connection, the process
// behind exited closes, or the wait is over.
func waitListening(addr string, wait time.Duration, exited <-chan struct{}) error {
	deadline := time.Now().Add(wait)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not listening after %v: %w", wait, err)
		}
		select {
		case <-exited:
			return errors.New("process exited")
		case <-tick.C:
		}
	}
}

// stop ends the broker's process group with SIGTERM (a clean stop of the
// VM and its port programs), SIGKILL after brokerStopWait, then epmd, and
// removes the directory.
func (b *broker) stop() error {
	var errs []error
	if b.server != nil && b.server.Process != nil {
		pgid := b.server.Process.Pid
		syscall.Kill(-pgid, syscall.SIGTERM)
		select {
		case <-b.exited:
		case <-time.After(brokerStopWait):
			syscall.Kill(-pgid, syscall.SIGKILL)
			<-b.exited
			errs = append(errs, fmt.Errorf("rabbitmq-server ignored SIGTERM for %v; killed", brokerStopWait))
		}
		// The VM's port programs (erl_child_setup, inet_gethost) run in
		// their own sessions; they end with the VM. Make sure of it.
		if err := waitGone(b.dir, brokerStopWait); err != nil {
			errs = append(errs, err)
		}
	}
	if b.epmd != nil && b.epmd.Process != nil {
		b.epmd.Process.Kill()
		b.epmd.Wait()
	}
	errs = append(errs, os.RemoveAll(b.dir))
	return errors.Join(errs...)
}

// waitGone waits until no process has dir in its environment, which is
// how the broker's processes, whatever their session, can be told apart
// from anyone else's.
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
