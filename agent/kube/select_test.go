package kube

import (
	"net/netip"
	"regexp"
	"slices"
	"testing"

	"github.com/spf13/pflag"
	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/sondehq/sonde/deploy"
)

func TestMatch(t *testing.T) {
	s := Selector{Pods: regexp.MustCompile("^web-"), Namespaces: []string{"shop", "sonde"}, Exclude: []string{"sonde"}}
	tests := []struct {
		ns, name string
		want     bool
	}{
		{"shop", "web-1", true},
		{"shop", "db-0", false},
		{"payments", "web-1", false},
		{"sonde", "web-1", false}, // excluded wins
	}
	for _, tt := range tests {
		if got := s.Match(tt.ns, tt.name); got != tt.want {
			t.Errorf("Match(%s, %s) = %v, want %v", tt.ns, tt.name, got, tt.want)
		}
	}
	var all Selector
	if !all.Match("any", "pod") {
		t.Error("the zero Selector must match every pod")
	}
}

// selectorFrom parses the arguments the rendered DaemonSet gives the agent
// with the flags AddFlags declares.
func selectorFrom(t *testing.T, o deploy.Options) Selector {
	t.Helper()
	objs, err := deploy.Render(o)
	if err != nil {
		t.Fatal(err)
	}
	var ds appsv1.DaemonSet
	for _, u := range objs {
		if u.GetKind() == "DaemonSet" {
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &ds); err != nil {
				t.Fatal(err)
			}
		}
	}
	var s Selector
	fs := pflag.NewFlagSet("agent", pflag.ContinueOnError)
	fs.ParseErrorsAllowlist.UnknownFlags = true
	s.AddFlags(fs)
	if err := fs.Parse(ds.Spec.Template.Spec.Containers[0].Args); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestDaemonSetFlags: a flag renamed on one side fails here rather than in
// a cluster.
func TestDaemonSetFlags(t *testing.T) {
	s := selectorFrom(t, deploy.Options{Pods: "^(web|api)-", Namespaces: []string{"shop"}, ExcludeNamespaces: []string{"kube-system"}})
	if s.Pods == nil || s.Pods.String() != "^(web|api)-" || len(s.Namespaces) != 1 || s.Namespaces[0] != "shop" {
		t.Errorf("selector %+v", s)
	}
	if !s.Match("shop", "api-1") || s.Match("sonde", "web-1") || s.Match("kube-system", "web-1") {
		t.Errorf("selector %+v picks the wrong pods", s)
	}
	// The files' defaults: every pod outside Sonde's namespace.
	s = selectorFrom(t, deploy.Options{})
	if s.Pods != nil || len(s.Namespaces) != 0 || !s.Match("default", "anything") || s.Match("sonde", "sonde-hub-1") {
		t.Errorf("default selector %+v", s)
	}
}

func TestChanges(t *testing.T) {
	a1 := netip.MustParseAddr("10.0.0.1")
	a2 := netip.MustParseAddr("10.0.0.2")
	web := Pod{Namespace: "shop", Name: "web", IPs: []netip.Addr{a1}}
	db := Pod{Namespace: "shop", Name: "db", IPs: []netip.Addr{a2}}
	moved := Pod{Namespace: "shop", Name: "web", IPs: []netip.Addr{a2}}
	tests := []struct {
		name              string
		prev, next        []Pod
		wantAdd, wantGone []string
	}{
		{"first list", nil, []Pod{web, db}, []string{"shop/web", "shop/db"}, nil},
		{"one goes", []Pod{web, db}, []Pod{db}, nil, []string{"shop/web"}},
		{"same", []Pod{web}, []Pod{web}, nil, nil},
		{"new address", []Pod{web}, []Pod{moved}, []string{"shop/web"}, []string{"shop/web"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			add, gone := Changes(tt.prev, tt.next)
			if !slices.Equal(add, tt.wantAdd) || !slices.Equal(gone, tt.wantGone) {
				t.Errorf("Changes = %v, %v; want %v, %v", add, gone, tt.wantAdd, tt.wantGone)
			}
		})
	}
}
