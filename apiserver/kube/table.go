package kube

import (
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/sondehq/sonde/apiserver/enrich"
)

// Info is what an address resolved to, with what enrich.Identity has no
// room for.
type Info struct {
	enrich.Identity
	// WorkloadKind is the kind of Identity.Workload: Deployment,
	// StatefulSet, DaemonSet, Job, ReplicaSet...
	WorkloadKind string
}

// holder is one object that holds addresses: a pod or a service.
type holder struct {
	uid string
	// pod is "ns/name" for a pod, empty for a service.
	pod  string
	info Info
	ips  []netip.Addr
	from time.Time
}

// span is the time one holder held one address.
type span struct {
	from, until time.Time // until is zero while it holds it
	info        Info
	uid         string // of the holder
	// pod is the "ns/name" whose service membership fills info.Service
	// while the span is open; empty for services.
	pod string
}

type endedSpan struct {
	ip netip.Addr
	s  *span
}

// table is the address history. Its zero value is not usable: see newTable.
type table struct {
	retention, linger time.Duration
	maxEnded          int

	mu    sync.RWMutex
	byIP  map[netip.Addr][]*span // ordered by from
	open  map[string]*holder     // by uid
	ended []endedSpan            // in the order they ended
	// members: pod "ns/name" → service name → endpointslices listing it.
	members map[string]map[string]int
	// bySlice: what each endpointslice contributed to members, so that an
	// update can take it back.
	bySlice map[string]sliceMembers
	// openByPod finds the open spans whose service follows members.
	openByPod map[string][]*span
	evicted   uint64
}

type sliceMembers struct {
	service string
	pods    []string
}

func newTable(retention, linger time.Duration, maxEnded int) *table {
	return &table{
		retention: retention, linger: linger, maxEnded: maxEnded,
		byIP:      map[netip.Addr][]*span{},
		open:      map[string]*holder{},
		members:   map[string]map[string]int{},
		bySlice:   map[string]sliceMembers{},
		openByPod: map[string][]*span{},
	}
}

// set records that h holds h.ips from now on (and none it held before but
// no longer lists). A nil or empty h.ips releases them all.
func (t *table) set(h *holder, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	old := t.open[h.uid]
	if old != nil {
		for _, ip := range old.ips {
			if s := t.current(ip); s != nil && s.uid == h.uid && !slices.Contains(h.ips, ip) {
				t.close(ip, s, now)
			}
		}
	}
	if len(h.ips) == 0 {
		delete(t.open, h.uid)
		t.expire(now)
		return
	}
	for _, ip := range h.ips {
		if old != nil && slices.Contains(old.ips, ip) {
			// Still held: only what it resolves to may have changed (a
			// node assigned, an owner set).
			if s := t.current(ip); s != nil && s.uid == h.uid {
				svc := s.info.Service
				s.info = h.info
				s.info.Service = svc
			}
			continue
		}
		t.begin(ip, h, now)
	}
	t.open[h.uid] = h
	t.expire(now)
}

// begin opens a span of ip for h, ending the span of any other holder.
func (t *table) begin(ip netip.Addr, h *holder, now time.Time) {
	from := h.from
	if from.IsZero() || from.After(now) {
		from = now
	}
	spans := t.byIP[ip]
	if n := len(spans); n > 0 {
		switch last := spans[n-1]; {
		case last.until.IsZero():
			// The previous holder never let go that we saw: the address
			// changed hands when the new one started at the latest.
			from = maxTime(from, last.from)
			t.close(ip, last, from)
		case from.Before(last.until):
			from = last.until
		}
	}
	s := &span{from: from, info: h.info, uid: h.uid, pod: h.pod}
	if h.pod != "" {
		s.info.Service = firstService(t.members[h.pod])
		t.openByPod[h.pod] = append(t.openByPod[h.pod], s)
	}
	t.byIP[ip] = append(spans, s)
}

// current is ip's open span, if any.
func (t *table) current(ip netip.Addr) *span {
	spans := t.byIP[ip]
	if n := len(spans); n > 0 && spans[n-1].until.IsZero() {
		return spans[n-1]
	}
	return nil
}

func (t *table) close(ip netip.Addr, s *span, at time.Time) {
	s.until = at
	if s.pod != "" {
		open := t.openByPod[s.pod]
		open = slices.DeleteFunc(open, func(o *span) bool { return o == s })
		if len(open) == 0 {
			delete(t.openByPod, s.pod)
		} else {
			t.openByPod[s.pod] = open
		}
	}
	t.ended = append(t.ended, endedSpan{ip, s})
}

// expire forgets ended spans past the retention or beyond the cap.
func (t *table) expire(now time.Time) {
	n := 0
	for n < len(t.ended) {
		e := t.ended[n]
		over := len(t.ended)-n > t.maxEnded
		if !over && now.Sub(e.s.until) <= t.retention {
			break
		}
		if over {
			t.evicted++
		}
		spans := slices.DeleteFunc(t.byIP[e.ip], func(s *span) bool { return s == e.s })
		if len(spans) == 0 {
			delete(t.byIP, e.ip)
		} else {
			t.byIP[e.ip] = spans
		}
		n++
	}
	if n > 0 {
		t.ended = slices.Delete(t.ended, 0, n)
	}
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// setSlice records which pods an endpointslice lists for its service.
func (t *table) setSlice(key string, m sliceMembers) {
	t.mu.Lock()
	defer t.mu.Unlock()
	touched := map[string]bool{}
	if old, ok := t.bySlice[key]; ok {
		for _, p := range old.pods {
			if set := t.members[p]; set != nil {
				if set[old.service]--; set[old.service] <= 0 {
					delete(set, old.service)
				}
				if len(set) == 0 {
					delete(t.members, p)
				}
			}
			touched[p] = true
		}
	}
	if len(m.pods) == 0 {
		delete(t.bySlice, key)
	} else {
		t.bySlice[key] = m
	}
	for _, p := range m.pods {
		set := t.members[p]
		if set == nil {
			set = map[string]int{}
			t.members[p] = set
		}
		set[m.service]++
		touched[p] = true
	}
	for p := range touched {
		// A pod taken out of its service keeps the name it had: that is
		// what its endpoints were until then, and a pod leaves its service
		// mostly on its way out.
		if svc := firstService(t.members[p]); svc != "" {
			for _, s := range t.openByPod[p] {
				s.info.Service = svc
			}
		}
	}
}

// firstService picks one name when several services select a pod, the
// same one every time.
func firstService(set map[string]int) string {
	first := ""
	for s := range set {
		if first == "" || s < first {
			first = s
		}
	}
	return first
}

// lookup answers for ip at time at.
func (t *table) lookup(ip netip.Addr, at time.Time) (Info, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	spans := t.byIP[ip]
	if len(spans) == 0 {
		return Info{}, false
	}
	// The last span that began at or before at; before the first, the
	// first.
	i, _ := slices.BinarySearchFunc(spans, at, func(s *span, at time.Time) int {
		if s.from.After(at) {
			return 1
		}
		return -1
	})
	s := spans[max(i-1, 0)]
	if !s.until.IsZero() && at.Sub(s.until) > t.linger {
		return Info{}, false
	}
	return s.info, true
}

// Stats are the resolver's counters.
type Stats struct {
	// Holders are the pods and services that hold addresses now.
	Holders int
	// Addresses are the addresses with a known holder now or in the
	// retained past; Spans counts their spans.
	Addresses, Spans int
	// Evicted counts ended spans forgotten early because of MaxEnded.
	Evicted uint64
}

func (t *table) stats() Stats {
	t.mu.RLock()
	defer t.mu.RUnlock()
	st := Stats{Holders: len(t.open), Addresses: len(t.byIP), Evicted: t.evicted}
	for _, s := range t.byIP {
		st.Spans += len(s)
	}
	return st
}
