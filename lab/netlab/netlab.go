package netlab

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/vishvananda/netns"
)

// The lab's address plan, valid only inside its namespaces.
var (
	podPrefix4  = netip.MustParsePrefix("10.77.0.0/24")
	podPrefix6  = netip.MustParsePrefix("fd00:77::/64")
	gateway4    = netip.MustParseAddr("10.77.0.1")
	gateway6    = netip.MustParseAddr("fd00:77::1")
	serviceBase = netip.MustParseAddr("10.96.0.10")
)

var (
	// ErrExists says a pod of that name is already in the lab.
	ErrExists = errors.New("pod already exists")
	// errFull says the lab's /24 has no address left.
	errFull = errors.New("no pod address left")
)

// routedGateway4 and routedGateway6 are the pods' gateway in a routed lab,
// as Calico's: a link-local address the node answers on every pod's veth
// (IPv4: an address of its loopback, which Linux answers ARP for on any
// interface; IPv6: a link-local address on each host-side veth).
var (
	routedGateway4 = netip.MustParseAddr("169.254.1.1")
	routedGateway6 = netip.MustParseAddr("fe80::1")
)

// Options shape a lab.
type Options struct {
	// Routed joins pods to the node by a route per pod to its veth instead
	// of a bridge, as Calico and Cilium do: a pod's address then leads to
	// its own interface alone.
	Routed bool
}

// Lab is one node and its pods.
type Lab struct {
	// Prefix starts every namespace and interface name of the lab.
	Prefix string
	// Node is the node namespace; Bridge is the bridge in it (empty in a
	// routed lab).
	Node   *Namespace
	Bridge string

	routed bool

	mu       sync.Mutex
	pods     map[string]*Pod
	nextHost int
	nextSvc  netip.Addr
	cmds     []*exec.Cmd
	closed   bool
}

// Namespace is a named network namespace (ip netns).
type Namespace struct {
	Name string
	// Handle is an open handle on it, valid until the lab is closed.
	Handle netns.NsHandle
}

// Pod is a namespace joined to the node's bridge by a veth pair.
type Pod struct {
	Name string
	*Namespace
	IP  netip.Addr // IPv4
	IP6 netip.Addr
	// HostIf is the host-side veth in the node namespace; the pod's side is
	// eth0.
	HostIf string
}

// New builds an empty node: its namespace and forwarding, and, unless
// routed, a bridge with the pods' gateway addresses, and bridged traffic
// passed through iptables (net.bridge.bridge-nf-call-iptables) so that DNAT
// works between pods on the same bridge, as kube-proxy requires.
func New(o Options) (*Lab, error) {
	var b [3]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, err
	}
	prefix := "sl" + hex.EncodeToString(b[:])
	l := &Lab{Prefix: prefix, routed: o.Routed, pods: map[string]*Pod{}, nextHost: 10, nextSvc: serviceBase}
	node, err := addNamespace(prefix + "-node")
	if err != nil {
		return nil, err
	}
	l.Node = node
	n := node.Name
	steps := [][]string{
		{"ip", "-n", n, "link", "set", "lo", "up"},
		{"ip", "netns", "exec", n, "sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1"},
	}
	if o.Routed {
		steps = append(steps, []string{"ip", "-n", n, "addr", "add", routedGateway4.String() + "/32", "dev", "lo"})
	} else {
		l.Bridge = prefix + "br"
		steps = append(steps, [][]string{
			{"ip", "-n", n, "link", "add", l.Bridge, "type", "bridge"},
			{"ip", "-n", n, "addr", "add", gateway4.String() + "/24", "dev", l.Bridge},
			{"ip", "-n", n, "addr", "add", gateway6.String() + "/64", "dev", l.Bridge, "nodad"},
			{"ip", "-n", n, "link", "set", l.Bridge, "up"},
			{"ip", "netns", "exec", n, "sysctl", "-qw", "net.bridge.bridge-nf-call-iptables=1", "net.bridge.bridge-nf-call-ip6tables=1"},
		}...)
	}
	for _, s := range steps {
		if err := run(s...); err != nil {
			l.Close()
			return nil, err
		}
	}
	return l, nil
}

func addNamespace(name string) (*Namespace, error) {
	if err := run("ip", "netns", "add", name); err != nil {
		return nil, err
	}
	h, err := netns.GetFromName(name)
	if err != nil {
		run("ip", "netns", "del", name)
		return nil, fmt.Errorf("opening network namespace %s: %w", name, err)
	}
	return &Namespace{Name: name, Handle: h}, nil
}

func run(args ...string) error {
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// AddPod adds a pod with the next free addresses.
func (l *Lab) AddPod(name string) (*Pod, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.pods[name]; ok {
		return nil, fmt.Errorf("pod %s: %w", name, ErrExists)
	}
	host := l.nextHost
	if host > 250 {
		return nil, errFull
	}
	l.nextHost++
	ip4 := podPrefix4.Addr().As4()
	ip4[3] = byte(host)
	ip6 := podPrefix6.Addr().As16()
	ip6[15] = byte(host)
	p := &Pod{Name: name, IP: netip.AddrFrom4(ip4), IP6: netip.AddrFrom16(ip6), HostIf: fmt.Sprintf("%sh%d", l.Prefix, host)}
	ns, err := addNamespace(fmt.Sprintf("%s-%s", l.Prefix, name))
	if err != nil {
		return nil, err
	}
	p.Namespace = ns
	n, pn := l.Node.Name, ns.Name
	steps := [][]string{
		{"ip", "-n", pn, "link", "set", "lo", "up"},
		{"ip", "-n", n, "link", "add", p.HostIf, "type", "veth", "peer", "name", "eth0", "netns", pn},
	}
	if l.routed {
		steps = append(steps, [][]string{
			{"ip", "-n", n, "addr", "add", routedGateway6.String() + "/64", "dev", p.HostIf, "nodad"},
			{"ip", "-n", n, "link", "set", p.HostIf, "up"},
			{"ip", "-n", n, "route", "add", p.IP.String() + "/32", "dev", p.HostIf},
			{"ip", "-n", n, "-6", "route", "add", p.IP6.String() + "/128", "dev", p.HostIf},
			{"ip", "-n", pn, "addr", "add", p.IP.String() + "/32", "dev", "eth0"},
			{"ip", "-n", pn, "addr", "add", p.IP6.String() + "/128", "dev", "eth0", "nodad"},
			{"ip", "-n", pn, "link", "set", "eth0", "up"},
			{"ip", "-n", pn, "route", "add", routedGateway4.String(), "dev", "eth0", "scope", "link"},
			{"ip", "-n", pn, "route", "add", "default", "via", routedGateway4.String(), "dev", "eth0"},
			{"ip", "-n", pn, "-6", "route", "add", "default", "via", routedGateway6.String(), "dev", "eth0"},
		}...)
	} else {
		steps = append(steps, [][]string{
			{"ip", "-n", n, "link", "set", p.HostIf, "master", l.Bridge},
			{"ip", "-n", n, "link", "set", p.HostIf, "up"},
			{"ip", "-n", pn, "addr", "add", p.IP.String() + "/24", "dev", "eth0"},
			{"ip", "-n", pn, "addr", "add", p.IP6.String() + "/64", "dev", "eth0", "nodad"},
			{"ip", "-n", pn, "link", "set", "eth0", "up"},
			{"ip", "-n", pn, "route", "add", "default", "via", gateway4.String()},
			{"ip", "-n", pn, "-6", "route", "add", "default", "via", gateway6.String()},
		}...)
	}
	for _, s := range steps {
		if err := run(s...); err != nil {
			ns.Handle.Close()
			run("ip", "netns", "del", pn)
			return nil, fmt.Errorf("adding pod %s: %w", name, err)
		}
	}
	l.pods[name] = p
	return p, nil
}

// Pod returns the pod of that name, or nil.
func (l *Lab) Pod(name string) *Pod {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.pods[name]
}

// RemovePod deletes the pod's namespace; its veth pair goes with it.
func (l *Lab) RemovePod(name string) error {
	l.mu.Lock()
	p := l.pods[name]
	delete(l.pods, name)
	l.mu.Unlock()
	if p == nil {
		return nil
	}
	p.Handle.Close()
	return run("ip", "netns", "del", p.Namespace.Name)
}

// SetHostIfUp brings the pod's host-side veth up or down.
func (l *Lab) SetHostIfUp(p *Pod, up bool) error {
	state := "down"
	if up {
		state = "up"
	}
	return run("ip", "-n", l.Node.Name, "link", "set", p.HostIf, state)
}

// AddService gives the pod's port a service IP on port: connections to
// svcIP:port are DNATed to the pod in the node namespace, like a ClusterIP.
func (l *Lab) AddService(p *Pod, port, podPort uint16) (netip.AddrPort, error) {
	l.mu.Lock()
	ip := l.nextSvc
	l.nextSvc = ip.Next()
	l.mu.Unlock()
	err := run("ip", "netns", "exec", l.Node.Name, "iptables", "-t", "nat", "-A", "PREROUTING",
		"-d", ip.String()+"/32", "-p", "tcp", "--dport", fmt.Sprint(port),
		"-j", "DNAT", "--to-destination", netip.AddrPortFrom(p.IP, podPort).String())
	if err != nil {
		return netip.AddrPort{}, err
	}
	return netip.AddrPortFrom(ip, port), nil
}

// Close stops the commands started in pods and removes every namespace of
// the lab. It may be called more than once.
func (l *Lab) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	for _, c := range l.cmds {
		if c.Process != nil {
			c.Process.Kill()
			c.Wait()
		}
	}
	var errs []error
	for _, p := range l.pods {
		p.Handle.Close()
		if err := run("ip", "netns", "del", p.Namespace.Name); err != nil {
			errs = append(errs, err)
		}
	}
	if l.Node != nil {
		l.Node.Handle.Close()
		if err := run("ip", "netns", "del", l.Node.Name); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Do runs fn on a thread in the namespace. Sockets fn creates stay in the
// namespace and may be used from any goroutine afterwards.
func (ns *Namespace) Do(fn func() error) error {
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer orig.Close()
	if err := netns.Set(ns.Handle); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("entering %s: %w", ns.Name, err)
	}
	fnErr := fn()
	if err := netns.Set(orig); err != nil {
		// The thread stays locked and the runtime discards it.
		return errors.Join(fnErr, err)
	}
	runtime.UnlockOSThread()
	return fnErr
}

// Listen listens in the namespace.
func (ns *Namespace) Listen(network, addr string) (net.Listener, error) {
	var ln net.Listener
	err := ns.Do(func() error {
		var err error
		ln, err = net.Listen(network, addr)
		return err
	})
	return ln, err
}

// DialContext connects from the namespace; it fits http.Transport.DialContext
// and grpc.WithContextDialer.
func (ns *Namespace) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	var c net.Conn
	err := ns.Do(func() error {
		var err error
		c, err = (&net.Dialer{}).DialContext(ctx, network, addr)
		return err
	})
	return c, err
}

// Command prepares a program to run in the pod's namespace. Started
// commands are registered with Track so that Close stops them.
func (ns *Namespace) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns.Name, name}, args...)...)
}

// Track makes Close kill the command if it still runs.
func (l *Lab) Track(c *exec.Cmd) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.cmds = append(l.cmds, c)
}

// ServeHTTP serves h on addr ("tcp") in the namespace until the returned
// server is closed.
func (ns *Namespace) ServeHTTP(addr string, h http.Handler) (*http.Server, error) {
	ln, err := ns.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	return srv, nil
}

// Get makes one GET request from the namespace on a connection of its own
// and returns the response's body.
func (ns *Namespace) Get(ctx context.Context, url string) (string, error) {
	tr := &http.Transport{DialContext: ns.DialContext, DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}
