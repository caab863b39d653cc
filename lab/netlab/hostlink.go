package netlab

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
)

// HostLink is a namespace joined to the host's own namespace by a veth
// pair, so that a process of the host (a kube-apiserver, say, that no
// address of 127.0.0.0/8 may be given to as an endpoint) reaches a server
// in it at an ordinary address.
type HostLink struct {
	*Namespace
	// IP is the namespace's address, HostIP the host side's.
	IP, HostIP netip.Addr
	hostIf     string
}

// NewHostLink makes a namespace at 10.78.N.2 with the host at 10.78.N.1,
// N chosen at random so that concurrent tests do not meet.
func NewHostLink() (*HostLink, error) {
	var b [3]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, err
	}
	name := "sh" + hex.EncodeToString(b[:])
	ns, err := addNamespace(name)
	if err != nil {
		return nil, err
	}
	l := &HostLink{Namespace: ns, IP: netip.AddrFrom4([4]byte{10, 78, b[0], 2}),
		HostIP: netip.AddrFrom4([4]byte{10, 78, b[0], 1}), hostIf: name + "h"}
	for _, s := range [][]string{
		{"ip", "-n", name, "link", "set", "lo", "up"},
		{"ip", "link", "add", l.hostIf, "type", "veth", "peer", "name", "eth0", "netns", name},
		{"ip", "addr", "add", l.HostIP.String() + "/30", "dev", l.hostIf},
		{"ip", "link", "set", l.hostIf, "up"},
		{"ip", "-n", name, "addr", "add", l.IP.String() + "/30", "dev", "eth0"},
		{"ip", "-n", name, "link", "set", "eth0", "up"},
	} {
		if err := run(s...); err != nil {
			l.Close()
			return nil, fmt.Errorf("linking %s to the host: %w", name, err)
		}
	}
	return l, nil
}

// HostLinkForTest is NewHostLink, removed when the test ends, or a skip
// saying what is missing.
func HostLinkForTest(t TB) *HostLink {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("linking a network namespace to the host needs root; run the privileged tests as root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("linking a network namespace to the host needs ip (Debian package iproute2)")
	}
	l, err := NewHostLink()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("closing the host link: %v", err)
		}
	})
	return l
}

// Close removes the namespace and both ends of the veth.
func (l *HostLink) Close() error {
	l.Handle.Close()
	var errs []error
	if err := run("ip", "netns", "del", l.Name); err != nil {
		errs = append(errs, err)
	}
	// Deleting the namespace deletes its end, and with it the pair; the
	// host's end may take a moment, and may be gone already.
	run("ip", "link", "del", l.hostIf)
	return errors.Join(errs...)
}
