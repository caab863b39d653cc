package enrich

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/sondehq/sonde/protocols"
)

var (
	// ErrSyntax: a static mapping line is not "ADDR key=value ...".
	ErrSyntax = errors.New("expected ADDR followed by pod=, namespace=, service=, workload= or node= pairs")
)

// Identity is what an address resolves to. Empty fields are unknown.
type Identity struct {
	Pod, Namespace, Service, Workload, Node string
}

// Resolver resolves an address as it was at time t.
type Resolver interface {
	Resolve(addr netip.Addr, t time.Time) (Identity, bool)
}

// Entry fills in the names of e's endpoints that are still empty, and
// reports whether it filled any. A nil resolver leaves e as it is.
func Entry(r Resolver, e *protocols.Entry) bool {
	if r == nil {
		return false
	}
	a := endpoint(r, &e.Src, e.Start)
	b := endpoint(r, &e.Dst, e.Start)
	// Via is the service address a client dialled before DNAT.
	if e.Via != nil && endpoint(r, e.Via, e.Start) {
		b = true
	}
	return a || b
}

func endpoint(r Resolver, ep *protocols.Endpoint, t time.Time) bool {
	if !ep.IP.IsValid() {
		return false
	}
	id, ok := r.Resolve(ep.IP, t)
	if !ok {
		return false
	}
	changed := fill(&ep.Pod, id.Pod)
	changed = fill(&ep.Namespace, id.Namespace) || changed
	changed = fill(&ep.Service, id.Service) || changed
	changed = fill(&ep.Workload, id.Workload) || changed
	return fill(&ep.Node, id.Node) || changed
}

func fill(dst *string, v string) bool {
	if *dst == "" && v != "" {
		*dst = v
		return true
	}
	return false
}

// Static maps fixed addresses to identities, whatever the time.
type Static map[netip.Addr]Identity

// Resolve implements Resolver.
func (s Static) Resolve(addr netip.Addr, _ time.Time) (Identity, bool) {
	id, ok := s[addr.Unmap()]
	return id, ok
}

// Add parses one mapping, "10.1.2.3 pod=frontend-7d9f namespace=shop
// service=frontend workload=frontend" (fields separated by spaces or commas),
// as a flag would give it.
func (s Static) Add(line string) error {
	f := strings.FieldsFunc(line, func(r rune) bool { return r == ' ' || r == '\t' || r == ',' })
	if len(f) < 2 {
		return fmt.Errorf("%q: %w", line, ErrSyntax)
	}
	addr, err := netip.ParseAddr(f[0])
	if err != nil {
		return fmt.Errorf("%q: %w", line, ErrSyntax)
	}
	id := s[addr.Unmap()]
	for _, kv := range f[1:] {
		k, v, ok := strings.Cut(kv, "=")
		switch {
		case !ok:
			return fmt.Errorf("%q: %w", line, ErrSyntax)
		case k == "pod":
			id.Pod = v
		case k == "namespace" || k == "ns":
			id.Namespace = v
		case k == "service" || k == "svc":
			id.Service = v
		case k == "workload":
			id.Workload = v
		case k == "node":
			id.Node = v
		default:
			return fmt.Errorf("%q: unknown key %q: %w", line, k, ErrSyntax)
		}
	}
	s[addr.Unmap()] = id
	return nil
}

// ParseStatic reads mappings, one per line; blank lines and lines starting
// with # are skipped.
func ParseStatic(r io.Reader) (Static, error) {
	s := Static{}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if err := s.Add(line); err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading names: %w", err)
	}
	return s, nil
}

// LoadStatic reads a file of mappings (see ParseStatic) and adds the ones
// given as flags (see Add).
func LoadStatic(path string, flags []string) (Static, error) {
	s := Static{}
	if path != "" {
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("reading names: %w", err)
		}
		defer f.Close()
		if s, err = ParseStatic(f); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
	}
	for _, l := range flags {
		if err := s.Add(l); err != nil {
			return nil, err
		}
	}
	return s, nil
}
