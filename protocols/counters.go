package protocols

import (
	"fmt"
	"sync/atomic"
)

// CounterNames are the stable names a protocol counts caps hit and problems
// recovered from under ("kafka_pending_evicted", "amqp_heartbeat"). A package
// makes its list once; every report has every name, at zero until hit, so
// that the series exist before the first hit.
type CounterNames struct {
	names []string
	index map[string]int
	loss  []string
}

// NewCounterNames fixes a protocol's counter names. A name listed twice is a
// programming error and panics.
func NewCounterNames(names ...string) CounterNames {
	n := CounterNames{names: names, index: make(map[string]int, len(names))}
	for i, name := range names {
		if _, dup := n.index[name]; dup {
			panic(fmt.Sprintf("protocols: counter %q named twice", name))
		}
		n.index[name] = i
	}
	return n
}

// WithLoss marks some of the names as loss: a non-zero value means traffic
// the user cannot see in full (bytes passed over, values cut, a request left
// unpaired), so the hub and the UI show it as loss. A name not in the list
// is a programming error and panics.
func (n CounterNames) WithLoss(names ...string) CounterNames {
	for _, name := range names {
		if _, ok := n.index[name]; !ok {
			panic(fmt.Sprintf("protocols: loss counter %q is not declared", name))
		}
	}
	n.loss = append([]string(nil), names...)
	return n
}

// Loss returns the names marked as loss.
func (n CounterNames) Loss() []string { return append([]string(nil), n.loss...) }

// LossCounters is implemented by a Dissector whose counters include loss;
// the agent tells the hub their names (wire.Hello.Loss).
type LossCounters interface {
	LossCounters() []string
}

// LossCounterNames gathers the loss counters of every dissector given.
func LossCounterNames(ds []Dissector) []string {
	var out []string
	for _, d := range ds {
		if l, ok := d.(LossCounters); ok {
			out = append(out, l.LossCounters()...)
		}
	}
	return out
}

// New returns a zeroed set of these counters.
func (n CounterNames) New() *CounterSet {
	return &CounterSet{names: n, counts: make([]atomic.Uint64, len(n.names))}
}

// CounterSet is one set of a protocol's counters: a Conn's own, or a
// Dissector's that its Conns share. It is safe for concurrent use, and
// implements Counters.
type CounterSet struct {
	names  CounterNames
	counts []atomic.Uint64
}

// Add counts n hits of the counter called name; n <= 0 counts nothing. A
// name not in the list is a programming error and panics.
func (s *CounterSet) Add(name string, n int) {
	if n <= 0 {
		return
	}
	i, ok := s.names.index[name]
	if !ok {
		panic(fmt.Sprintf("protocols: counter %q is not declared", name))
	}
	s.counts[i].Add(uint64(n))
}

// Counters returns every counter by name, zeros included.
func (s *CounterSet) Counters() map[string]uint64 {
	m := make(map[string]uint64, len(s.names.names))
	for i, name := range s.names.names {
		m[name] = s.counts[i].Load()
	}
	return m
}
