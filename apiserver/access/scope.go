package access

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/sondehq/sonde/protocols/wire"
)

// maxNamespaces bounds the namespaces one request asks about: entries name
// their namespaces as agents wrote them, and a hostile agent could write a
// new one per entry. Beyond it, entries of namespaces not yet asked about
// are withheld.
const maxNamespaces = 1024

// Scope is what one request's user may see. Namespaces are asked about as
// entries of each come up, once per request (and the Checker caches across
// requests). It is safe for concurrent use: a page scans in shards.
type Scope struct {
	ctx   context.Context
	check Checker
	user  *User
	all   bool

	mu   sync.Mutex
	seen map[string]bool
	err  error

	withheld atomic.Uint64
}

// NewScope returns user's scope, asking first whether they may see traffic
// at cluster scope (then every entry is theirs).
func NewScope(ctx context.Context, check Checker, user *User) (*Scope, error) {
	all, err := check.Allowed(ctx, user, "")
	if err != nil {
		return nil, err
	}
	return &Scope{ctx: ctx, check: check, user: user, all: all, seen: map[string]bool{}}, nil
}

// User is whom the scope is for.
func (s *Scope) User() *User { return s.user }

// All reports whether the user sees every entry.
func (s *Scope) All() bool { return s.all }

// SeesNamespace reports whether the user may see namespace ns's traffic.
// A failure to ask counts as no (and Err keeps it).
func (s *Scope) SeesNamespace(ns string) bool {
	if s.all {
		return true
	}
	if ns == "" {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if ok, asked := s.seen[ns]; asked {
		return ok
	}
	if len(s.seen) >= maxNamespaces {
		return false
	}
	ok, err := s.check.Allowed(s.ctx, s.user, ns)
	if err != nil && s.err == nil {
		// Kept as a no for the rest of the request: asking again for
		// every entry would only add load to a struggling API server.
		s.err = err
	}
	s.seen[ns] = ok && err == nil
	return ok
}

// Sees reports whether the user may see the entry of an index record: when
// allowed in the namespace of either end. What it refuses is counted in
// Withheld.
func (s *Scope) Sees(x *wire.Index) bool {
	if s.all {
		return true
	}
	if s.seesBytes(x.EndpointNamespace(false)) || s.seesBytes(x.EndpointNamespace(true)) {
		return true
	}
	s.withheld.Add(1)
	return false
}

// seesBytes is SeesNamespace for a namespace as a record holds it, without
// making a string of it once it has been asked about.
func (s *Scope) seesBytes(ns []byte) bool {
	if len(ns) == 0 {
		return false
	}
	s.mu.Lock()
	ok, asked := s.seen[string(ns)]
	s.mu.Unlock()
	if asked {
		return ok
	}
	return s.SeesNamespace(string(ns))
}

// Withheld is how many entries Sees refused.
func (s *Scope) Withheld() uint64 { return s.withheld.Load() }

// Err is the first failure to ask the cluster, if any: entries of that
// namespace were withheld.
func (s *Scope) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}
