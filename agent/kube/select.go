package kube

import (
	"regexp"
	"slices"
	"strings"

	"github.com/spf13/pflag"
	corev1 "k8s.io/api/core/v1"
)

// Selector picks the pods to capture among those of the node.
type Selector struct {
	// Pods must match a pod's name somewhere; nil matches every pod.
	Pods *regexp.Regexp
	// Namespaces, when not empty, are the only namespaces captured.
	Namespaces []string
	// Exclude are namespaces never captured, whatever Namespaces says.
	Exclude []string
}

// Match reports whether the pod namespace/name is selected.
func (s *Selector) Match(namespace, name string) bool {
	if slices.Contains(s.Exclude, namespace) {
		return false
	}
	if len(s.Namespaces) > 0 && !slices.Contains(s.Namespaces, namespace) {
		return false
	}
	return s.Pods == nil || s.Pods.MatchString(name)
}

// Selects reports whether p is a pod to capture, whatever its node and
// whether it has an address yet: it must match, run in its own network
// namespace (a pod on the host's network has the node's address, and
// capturing it would capture the node) and not have finished.
func (s *Selector) Selects(p *corev1.Pod) bool {
	return !p.Spec.HostNetwork && p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed &&
		s.Match(p.Namespace, p.Name)
}

// AddFlags declares the flags the agent's DaemonSet sets: --pods,
// --namespaces and --exclude-namespaces.
func (s *Selector) AddFlags(fs *pflag.FlagSet) {
	fs.Var(&regexpValue{&s.Pods}, "pods", "capture only pods whose name matches this regular expression (empty: all)")
	fs.StringSliceVar(&s.Namespaces, "namespaces", nil, "capture only pods of these namespaces (empty: all)")
	fs.StringSliceVar(&s.Exclude, "exclude-namespaces", nil, "never capture pods of these namespaces")
}

// regexpValue is a flag holding a regular expression; empty means none.
type regexpValue struct{ re **regexp.Regexp }

func (v *regexpValue) String() string {
	if v.re == nil || *v.re == nil {
		return ""
	}
	return (*v.re).String()
}

func (v *regexpValue) Set(s string) error {
	if strings.TrimSpace(s) == "" {
		*v.re = nil
		return nil
	}
	re, err := regexp.Compile(s)
	if err != nil {
		return err
	}
	*v.re = re
	return nil
}

func (v *regexpValue) Type() string { return "regexp" }
