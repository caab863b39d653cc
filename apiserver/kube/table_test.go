package kube

import (
	"net/netip"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sondehq/sonde/apiserver/enrich"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func at(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }

func pod(uid, ns, name string, from time.Time, ips ...string) *holder {
	h := &holder{uid: uid, pod: ns + "/" + name, from: from,
		info: Info{Identity: enrich.Identity{Pod: name, Namespace: ns, Node: "node-1"}}}
	for _, ip := range ips {
		h.ips = append(h.ips, netip.MustParseAddr(ip))
	}
	return h
}

// gone is the event of a pod that finished or was deleted.
func gone(uid string) *holder { return &holder{uid: uid} }

type query struct {
	ip      string
	at      int
	wantPod string // "" expects no answer
	wantSvc string
}

func check(t *testing.T, tb *table, qs []query) {
	t.Helper()
	for _, q := range qs {
		info, ok := tb.lookup(netip.MustParseAddr(q.ip), at(q.at))
		if !ok && q.wantPod == "" && q.wantSvc == "" {
			continue
		}
		if !ok || info.Pod != q.wantPod || info.Service != q.wantSvc {
			t.Errorf("%s at %ds: got %+v (found %v), want pod %q service %q", q.ip, q.at, info, ok, q.wantPod, q.wantSvc)
		}
	}
}

func TestReusedAddress(t *testing.T) {
	tb := newTable(time.Hour, 30*time.Second, 1000)
	tb.set(pod("a", "shop", "web-a", at(0), "10.1.0.5"), at(1))
	tb.set(gone("a"), at(100))
	tb.set(pod("b", "shop", "web-b", at(90), "10.1.0.5"), at(120))
	check(t, tb, []query{
		{ip: "10.1.0.5", at: -50, wantPod: "web-a"}, // before the hub knew: the first holder
		{ip: "10.1.0.5", at: 10, wantPod: "web-a"},
		{ip: "10.1.0.5", at: 99, wantPod: "web-a"},
		// b started before a was gone, but took the address only then.
		{ip: "10.1.0.5", at: 100, wantPod: "web-b"},
		{ip: "10.1.0.5", at: 5000, wantPod: "web-b"},
		{ip: "10.1.0.6", at: 10},
	})
}

func TestOverlappingHolders(t *testing.T) {
	tb := newTable(time.Hour, 30*time.Second, 1000)
	tb.set(pod("a", "shop", "old", at(0), "10.1.0.5"), at(1))
	// The new pod's address shows up before the old pod's deletion does.
	tb.set(pod("b", "shop", "new", at(50), "10.1.0.5"), at(55))
	tb.set(gone("a"), at(60)) // must not end b's span
	check(t, tb, []query{
		{ip: "10.1.0.5", at: 49, wantPod: "old"},
		{ip: "10.1.0.5", at: 50, wantPod: "new"},
		{ip: "10.1.0.5", at: 500, wantPod: "new"},
	})
}

func TestLingerAndRetention(t *testing.T) {
	tb := newTable(10*time.Minute, 30*time.Second, 1000)
	tb.set(pod("a", "shop", "web-a", at(0), "10.1.0.5", "fd00::5"), at(1))
	tb.set(gone("a"), at(100))
	check(t, tb, []query{
		{ip: "10.1.0.5", at: 130, wantPod: "web-a"},
		{ip: "fd00::5", at: 130, wantPod: "web-a"},
		{ip: "10.1.0.5", at: 131},
	})
	// Any change past the retention forgets the ended spans.
	tb.set(pod("x", "other", "x", at(800), "10.9.9.9"), at(800))
	check(t, tb, []query{{ip: "10.1.0.5", at: 50}})
	if st := tb.stats(); st.Addresses != 1 || st.Holders != 1 || st.Evicted != 0 {
		t.Errorf("stats %+v, want one address, one holder, nothing evicted", st)
	}
}

func TestMaxEnded(t *testing.T) {
	tb := newTable(time.Hour, 30*time.Second, 2)
	for i, ip := range []string{"10.0.0.1", "10.0.0.2", "10.0.0.3"} {
		uid := string(rune('a' + i))
		tb.set(pod(uid, "ns", uid, at(i), ip), at(i))
		tb.set(gone(uid), at(10+i))
	}
	check(t, tb, []query{
		{ip: "10.0.0.1", at: 5},
		{ip: "10.0.0.2", at: 5, wantPod: "b"},
		{ip: "10.0.0.3", at: 5, wantPod: "c"},
	})
	if st := tb.stats(); st.Evicted != 1 || st.Spans != 2 {
		t.Errorf("stats %+v, want 1 evicted and 2 spans", st)
	}
}

func TestAddressesChange(t *testing.T) {
	tb := newTable(time.Hour, 30*time.Second, 1000)
	tb.set(pod("a", "shop", "web-a", at(0), "10.1.0.5"), at(1))
	h := pod("a", "shop", "web-a", at(0), "10.1.0.7")
	h.info.Workload = "web"
	tb.set(h, at(20))
	check(t, tb, []query{
		{ip: "10.1.0.5", at: 10, wantPod: "web-a"},
		{ip: "10.1.0.5", at: 51},
		{ip: "10.1.0.7", at: 30, wantPod: "web-a"},
	})
	if info, _ := tb.lookup(netip.MustParseAddr("10.1.0.7"), at(30)); info.Workload != "web" {
		t.Errorf("workload %q after the update", info.Workload)
	}
}

func TestServiceMembership(t *testing.T) {
	tb := newTable(time.Hour, 30*time.Second, 1000)
	tb.setSlice("shop/web-x1", sliceMembers{service: "web", pods: []string{"shop/web-a"}})
	tb.set(pod("a", "shop", "web-a", at(0), "10.1.0.5"), at(1))
	tb.set(&holder{uid: "svc", from: at(0), ips: []netip.Addr{netip.MustParseAddr("10.96.0.10")},
		info: Info{Identity: enrich.Identity{Service: "web", Namespace: "shop"}}}, at(1))
	// A second service selecting the same pod: the first name in order
	// wins, every time.
	tb.setSlice("shop/api-x1", sliceMembers{service: "api", pods: []string{"shop/web-a"}})
	// The pod leaves both services on its way out, then goes.
	tb.setSlice("shop/web-x1", sliceMembers{service: "web"})
	tb.setSlice("shop/api-x1", sliceMembers{service: "api"})
	tb.set(gone("a"), at(100))
	// Its successor at the same address is in no service.
	tb.set(pod("b", "shop", "batch", at(110), "10.1.0.5"), at(110))
	check(t, tb, []query{
		{ip: "10.1.0.5", at: 50, wantPod: "web-a", wantSvc: "api"},
		{ip: "10.1.0.5", at: 120, wantPod: "batch"},
		{ip: "10.96.0.10", at: 50, wantSvc: "web"},
	})
}

func TestWorkload(t *testing.T) {
	owned := func(kind, name, hash string) *corev1.Pod {
		yes := true
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p"}}
		if kind != "" {
			p.OwnerReferences = []metav1.OwnerReference{{Kind: kind, Name: name, Controller: &yes}}
		}
		if hash != "" {
			p.Labels = map[string]string{"pod-template-hash": hash}
		}
		return p
	}
	tests := []struct {
		name               string
		pod                *corev1.Pod
		wantKind, wantName string
	}{
		{"deployment", owned("ReplicaSet", "web-7d9f8c6b5", "7d9f8c6b5"), "Deployment", "web"},
		{"bare replicaset", owned("ReplicaSet", "web", ""), "ReplicaSet", "web"},
		{"hash not a suffix", owned("ReplicaSet", "web-abc", "7d9f8c6b5"), "ReplicaSet", "web-abc"},
		{"statefulset", owned("StatefulSet", "db", ""), "StatefulSet", "db"},
		{"daemonset", owned("DaemonSet", "sonde-agent", ""), "DaemonSet", "sonde-agent"},
		{"job", owned("Job", "backup-28990", ""), "Job", "backup-28990"},
		{"no controller", owned("", "", ""), "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kind, name := workload(tt.pod)
			if kind != tt.wantKind || name != tt.wantName {
				t.Errorf("got %s %q, want %s %q", kind, name, tt.wantKind, tt.wantName)
			}
		})
	}
}
