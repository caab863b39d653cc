package kube

import (
	"regexp"
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
