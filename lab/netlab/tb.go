package netlab

import (
	"os"
	"os/exec"
)

// TB is the part of testing.TB that ForTest uses; the package does not
// import testing so that the demo (cmd/sonde-demo) can use it.
type TB interface {
	Helper()
	Skip(args ...any)
	Skipf(format string, args ...any)
	Fatal(args ...any)
	Errorf(format string, args ...any)
	Cleanup(func())
}

// ForTest builds a lab that is removed when the test ends, pass or fail, or
// skips the test saying exactly what is missing (root, ip, iptables).
func ForTest(t TB) *Lab {
	t.Helper()
	return ForTestWith(t, Options{})
}

// ForTestWith is ForTest for a lab shaped by o.
func ForTestWith(t TB, o Options) *Lab {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("the network lab needs root (network namespaces, BPF, TC); run the privileged tests as root")
	}
	for _, bin := range []string{"ip", "iptables"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("the network lab needs %s (Debian packages iproute2 and iptables)", bin)
		}
	}
	l, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("closing the lab: %v", err)
		}
	})
	return l
}
