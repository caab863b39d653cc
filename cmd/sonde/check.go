package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	appsv1 "k8s.io/api/apps/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/sondehq/sonde/deploy"
)

// access is one permission the CLI needs, checked with a
// SelfSubjectAccessReview.
type access struct {
	group, resource, subresource string
	verbs                        []string
	// namespaced checks in the install namespace; otherwise cluster-wide.
	namespaced bool
	why        string
}

// needs are the permissions tap, clean and proxy use. The ClusterRole that
// tap creates grants reading pods, services, endpointslices, nodes and
// namespaces; RBAC lets only who holds a permission grant it, hence those.
var needs = []access{
	{"", "namespaces", "", []string{"get", "create", "patch", "delete"}, false, "install and remove the namespace"},
	{"rbac.authorization.k8s.io", "clusterroles", "", []string{"get", "create", "patch", "delete"}, false, "the agents' and hub's read-only role"},
	{"rbac.authorization.k8s.io", "clusterrolebindings", "", []string{"get", "create", "patch", "delete"}, false, "bind it"},
	{"", "serviceaccounts", "", []string{"get", "create", "patch", "delete"}, true, "the account Sonde runs as"},
	{"", "secrets", "", []string{"get", "create", "patch", "delete"}, true, "the ingest token"},
	{"", "services", "", []string{"get", "create", "patch", "delete"}, true, "the hub's Service"},
	{"", "persistentvolumeclaims", "", []string{"get", "create", "patch", "delete"}, true, "the hub's store with --storage=pvc"},
	{"apps", "deployments", "", []string{"get", "list", "watch", "create", "patch", "delete"}, true, "the hub"},
	{"apps", "daemonsets", "", []string{"get", "list", "watch", "create", "patch", "delete"}, true, "the agents"},
	{"", "events", "", []string{"list", "watch"}, true, "say why a pod is stuck"},
	{"", "pods", "portforward", []string{"create"}, true, "forward the hub to localhost"},
	{"", "pods", "", []string{"get", "list", "watch"}, false, "list the pods to capture; granted to the agents and hub"},
	{"", "services", "", []string{"get", "list", "watch"}, false, "granted to the hub"},
	{"discovery.k8s.io", "endpointslices", "", []string{"get", "list", "watch"}, false, "granted to the hub"},
	{"", "nodes", "", []string{"get", "list", "watch"}, false, "granted to the agents; read by check"},
	{"", "namespaces", "", []string{"list", "watch"}, false, "granted to the hub"},
}

var errChecks = errors.New("some checks failed")

func newCheckCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Check that Sonde can be installed in this cluster and capture on its nodes",
		Long: `check reaches the cluster, asks the API server whether you may do what 'sonde tap'
does (SelfSubjectAccessReview), checks with a server-side dry run that policies admit
the agent's pod (host network and capabilities), and shows for every node what the
API says about its kernel, operating system and architecture against what the agent
needs. It exits non-zero if anything would stop an install.`,
		Args: cobra.NoArgs,
	}
	kf := addKubeFlags(cmd, false)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		ctx := cmd.Context()
		out := cmd.OutOrStdout()
		k, err := kf.connect(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "✓ reached %s (Kubernetes %s)\n", k.host, k.server)
		failed := false
		failed = checkAccess(ctx, k, kf.install, out) || failed
		failed = checkPolicy(ctx, k, kf.install, out) || failed
		failed = checkNodes(ctx, k, out) || failed
		if failed {
			return &exitError{errChecks}
		}
		return nil
	}
	return cmd
}

// checkAccess reports the permissions, one line per resource.
func checkAccess(ctx context.Context, k *kube, ns string, out io.Writer) (failed bool) {
	for _, a := range needs {
		var missing []string
		for _, verb := range a.verbs {
			attr := &authorizationv1.ResourceAttributes{Group: a.group, Resource: a.resource, Subresource: a.subresource, Verb: verb}
			if a.namespaced {
				attr.Namespace = ns
			}
			r, err := k.cs.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx,
				&authorizationv1.SelfSubjectAccessReview{Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: attr}},
				metav1.CreateOptions{})
			if err != nil {
				fmt.Fprintf(out, "✗ cannot ask whether you may %s %s: %v\n", verb, a.resource, err)
				return true
			}
			if !r.Status.Allowed {
				missing = append(missing, verb)
			}
		}
		name := a.resource
		if a.subresource != "" {
			name += "/" + a.subresource
		}
		if a.group != "" {
			name += "." + a.group
		}
		where := "cluster-wide"
		if a.namespaced {
			where = "in " + ns
		}
		if len(missing) > 0 {
			failed = true
			fmt.Fprintf(out, "✗ may not %s %s %s (%s)\n", strings.Join(missing, ", "), name, where, a.why)
			continue
		}
		fmt.Fprintf(out, "✓ may %s %s %s\n", strings.Join(a.verbs, ", "), name, where)
	}
	return failed
}

// checkPolicy asks admission (Pod Security, or whatever policy engine runs)
// with a server-side dry run whether the agent's pod may run in ns.
func checkPolicy(ctx context.Context, k *kube, ns string, out io.Writer) (failed bool) {
	if _, err := k.cs.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); apierrors.IsNotFound(err) {
		fmt.Fprintf(out, "- namespace %s does not exist yet: policies are checked when tap creates it\n", ns)
		return false
	}
	objs, err := deploy.Render(deploy.Options{Namespace: ns})
	if err != nil {
		fmt.Fprintf(out, "✗ %v\n", err)
		return true
	}
	var ds appsv1.DaemonSet
	for _, u := range objs {
		if u.GetKind() == "DaemonSet" {
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &ds); err != nil {
				fmt.Fprintf(out, "✗ %v\n", err)
				return true
			}
		}
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{GenerateName: deploy.AgentName + "-check-", Namespace: ns, Labels: ds.Spec.Template.Labels},
		Spec:       ds.Spec.Template.Spec,
	}
	_, err = k.cs.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
	if err != nil {
		fmt.Fprintf(out, "✗ the agent's pod is not admitted in %s: %v\n", ns, err)
		return true
	}
	fmt.Fprintf(out, "✓ the agent's pod (host network, BPF, NET_ADMIN, PERFMON, SYS_RESOURCE, NET_RAW) is admitted in %s\n", ns)
	return false
}

// checkNodes shows each node's kernel, OS and architecture against what
// the agent needs.
func checkNodes(ctx context.Context, k *kube, out io.Writer) (failed bool) {
	nodes, err := k.cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		fmt.Fprintf(out, "✗ cannot list nodes: %v\n", err)
		return true
	}
	if len(nodes.Items) == 0 {
		fmt.Fprintln(out, "✗ the cluster has no nodes")
		return true
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "\nNODE\tKERNEL\tOS/ARCH\tREADY\tCAPTURE")
	for _, n := range nodes.Items {
		info := n.Status.NodeInfo
		ok, notes := nodeNotes(info)
		mark := "✓"
		if !ok {
			mark, failed = "✗", true
		}
		fmt.Fprintf(tw, "%s\t%s\t%s/%s\t%v\t%s %s\n", n.Name, info.KernelVersion, info.OperatingSystem, info.Architecture,
			nodeReady(&n), mark, notes)
	}
	tw.Flush()
	fmt.Fprintln(out, "BTF (/sys/kernel/btf/vmlinux) is not visible through the API; each agent logs the source it runs at start.")
	return failed
}

func nodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// nodeNotes says whether the agent can capture on a node, from what its
// status reports: eBPF's ring buffer and CAP_BPF need Linux 5.8, TCX 6.6
// (before it the programs attach with clsact), and the image is built for
// amd64 and arm64.
func nodeNotes(info corev1.NodeSystemInfo) (bool, string) {
	if info.OperatingSystem != "" && info.OperatingSystem != "linux" {
		return false, "not Linux: no agent runs here"
	}
	if a := info.Architecture; a != "" && a != "amd64" && a != "arm64" {
		return false, "no image for " + a
	}
	major, minor, ok := kernelVersion(info.KernelVersion)
	switch {
	case !ok:
		return true, "kernel version unknown"
	case major < 5 || major == 5 && minor < 8:
		return false, "eBPF capture needs Linux 5.8 (ring buffer, CAP_BPF)"
	case major < 6 || major == 6 && minor < 6:
		return true, "eBPF, attached with clsact (TCX needs 6.6)"
	}
	return true, "eBPF with TCX"
}

// kernelVersion reads "6.1.0-18-amd64" as 6, 1.
func kernelVersion(s string) (major, minor int, ok bool) {
	a, rest, found := strings.Cut(s, ".")
	if !found {
		return 0, 0, false
	}
	b := rest
	if i := strings.IndexFunc(rest, func(r rune) bool { return r < '0' || r > '9' }); i >= 0 {
		b = rest[:i]
	}
	var err1, err2 error
	major, err1 = strconv.Atoi(a)
	minor, err2 = strconv.Atoi(b)
	return major, minor, err1 == nil && err2 == nil
}
