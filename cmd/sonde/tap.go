package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	appslisters "k8s.io/client-go/listers/apps/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"

	agentkube "github.com/sondehq/sonde/agent/kube"
	"github.com/sondehq/sonde/apiserver"
	"github.com/sondehq/sonde/cmd/internal/browse"
	"github.com/sondehq/sonde/deploy"
)

// installFlags shape what tap and manifests install.
type installFlags struct {
	image        string
	storageLimit string
	storage      string
	storageClass string
	redact       bool
	noRedact     bool
	secrets      redactFlags
	exclude      []string
}

func (f *installFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.image, "image", defaultImage(), "image of the hub and the agents")
	fl.StringVar(&f.storageLimit, "storage-limit", "1GiB", "most bytes the hub's store may hold; the oldest entries go first")
	fl.StringVar(&f.storage, "storage", string(deploy.StorageEmptyDir),
		`where the hub keeps entries: "emptydir" (for the life of its pod) or "pvc" (a PersistentVolumeClaim)`)
	fl.StringVar(&f.storageClass, "storage-class", "", "storage class of the claim with --storage=pvc (default: the cluster's)")
	fl.BoolVar(&f.redact, "redact", true, "replace credentials, cookies and tokens with [REDACTED] on the nodes")
	fl.BoolVar(&f.noRedact, "no-redact", false, "keep credentials, cookies and tokens in entries")
	f.secrets.register(fl)
	fl.StringSliceVar(&f.exclude, "exclude-namespaces", nil, "never capture pods of these namespaces")
}

// defaultImage is the image released with this version of the CLI; a
// development build takes the files' image.
func defaultImage() string {
	if version == "dev" || version == "" {
		return ""
	}
	return "ghcr.io/sondehq/sonde:" + version
}

// options turns the flags into what Render takes; the capture selection
// is the caller's.
func (f *installFlags) options(cmd *cobra.Command, installNS string) (deploy.Options, error) {
	if cmd.Flags().Changed("redact") && cmd.Flags().Changed("no-redact") && f.redact == f.noRedact {
		return deploy.Options{}, errors.New("--redact and --no-redact say opposite things: give one")
	}
	// A pattern the agents would refuse is refused before anything is applied.
	if _, err := f.secrets.policy(); err != nil {
		return deploy.Options{}, err
	}
	limit, err := apiserver.ParseSize(f.storageLimit)
	if err != nil {
		return deploy.Options{}, fmt.Errorf("--storage-limit: %w", err)
	}
	o := deploy.Options{
		Namespace: installNS, Image: f.image, StorageLimit: limit,
		Storage: deploy.Storage(f.storage), StorageClass: f.storageClass,
		NoRedact:          f.noRedact || !f.redact,
		RedactNames:       f.secrets.names,
		RedactPatterns:    f.secrets.patterns,
		ExcludeNamespaces: f.exclude,
	}
	if limit == deploy.DefaultStorageLimit {
		o.StorageLimit = 0 // the files' own, so that the output matches them
	}
	return o, nil
}

func newTapCmd() *cobra.Command {
	var (
		inst      installFlags
		all       bool
		dryRun    bool
		keep      bool
		noBrowser bool
		port      int
		timeout   time.Duration
	)
	cmd := &cobra.Command{
		Use:   "tap [POD-REGEX]",
		Short: "Install Sonde in the cluster and show the traffic of the matching pods on localhost:8899",
		Long: `tap installs the hub and an agent on every node (server-side apply of the
manifests 'sonde manifests' prints), waits for them to be ready saying why a pod is
stuck, forwards the hub to localhost:8899 (reconnecting when the connection drops)
and opens the browser. The agents capture the pods whose name matches POD-REGEX in
the namespaces -n names (the kubeconfig's by default; -A for all), following pods as
they come and go. Ctrl-C removes what tap created, unless --keep.`,
		Example: `  sonde tap                         # every pod of the current namespace
  sonde tap '^(web|api)-' -n shop   # pods starting with web- or api- in shop
  sonde tap -A --exclude-namespaces kube-system --dry-run`,
		Args: cobra.MaximumNArgs(1),
	}
	kf := addKubeFlags(cmd, true)
	inst.register(cmd)
	fl := cmd.Flags()
	fl.BoolVarP(&all, "all-namespaces", "A", false, "capture pods in every namespace")
	fl.BoolVar(&dryRun, "dry-run", false, "list the pods that would be captured and the objects that would be created, and stop")
	fl.BoolVar(&keep, "keep", false, "leave Sonde installed on exit ('sonde proxy' reconnects, 'sonde clean' removes it)")
	fl.BoolVar(&noBrowser, "no-browser", false, "do not open the browser")
	fl.IntVar(&port, "port", DefaultLocalPort, "local port to serve the hub on")
	fl.DurationVar(&timeout, "timeout", 5*time.Minute, "how long to wait for the hub and the agents to be ready")

	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		out := cmd.OutOrStdout()
		sel := agentkube.Selector{Exclude: slices.Concat([]string{kf.install}, inst.exclude)}
		if len(args) == 1 && args[0] != "" {
			re, err := regexp.Compile(args[0])
			if err != nil {
				return fmt.Errorf("the pod pattern %q is not a regular expression: %v", args[0], err)
			}
			sel.Pods = re
		}
		opts, err := inst.options(cmd, kf.install)
		if err != nil {
			return err
		}
		if all && kf.conn.Namespace != nil && *kf.conn.Namespace != "" {
			return errors.New("-n and -A say different things: give one")
		}
		if port <= 0 || port > 65535 {
			return fmt.Errorf("--port %d is not a TCP port", port)
		}
		k, err := kf.connect(ctx)
		if err != nil {
			return err
		}
		if !all {
			ns, _, err := kf.conn.ToRawKubeConfigLoader().Namespace()
			if err != nil {
				return fmt.Errorf("reading the kubeconfig's namespace: %w", err)
			}
			for n := range strings.SplitSeq(ns, ",") {
				if n = strings.TrimSpace(n); n != "" {
					sel.Namespaces = append(sel.Namespaces, n)
				}
			}
		}
		opts.Pods = ""
		if sel.Pods != nil {
			opts.Pods = sel.Pods.String()
		}
		opts.Namespaces = sel.Namespaces
		pods, err := selectedPods(ctx, k, sel)
		if err != nil {
			return err
		}
		printPods(out, pods, sel)

		if !dryRun {
			if opts.Token, err = k.ingestToken(ctx, kf.install); err != nil {
				return err
			}
		}
		objs, err := deploy.Render(opts)
		if err != nil {
			return err
		}
		if dryRun {
			fmt.Fprintf(out, "\nwould apply (server-side) to %s:\n", k.host)
			for _, u := range objs {
				fmt.Fprintf(out, "  %s\n", describe(u))
			}
			return nil
		}

		if objs, err = k.withoutForeignNamespace(ctx, objs); err != nil {
			return err
		}
		p := newProgress(out)
		started := time.Now()
		created, err := k.apply(ctx, objs)
		if !keep {
			defer func() { removeCreated(k, created, p) }()
		}
		if err != nil {
			p.fail("%v", err)
			return &exitError{err}
		}
		p.done("applied %d objects to %s (%d new)", len(objs), k.host, len(created))
		if err := waitReady(ctx, k, kf.install, p, timeout, started); err != nil {
			if ctx.Err() != nil {
				return nil // Ctrl-C: the deferred removal runs
			}
			return &exitError{err}
		}
		local := net.JoinHostPort("localhost", strconv.Itoa(port))
		url := "http://" + local
		onExit := "remove Sonde"
		if keep {
			onExit = "leave Sonde installed"
		}
		first := true
		fw := &forwarder{k: k, ns: kf.install, local: local,
			status: func(format string, args ...any) { p.status("hub", fmt.Sprintf(format, args...)) },
			onReady: func(pod string) {
				if first {
					first = false
					p.done("forwarding %s to %s/%s (Ctrl-C to stop and %s)", url, kf.install, pod, onExit)
					if !noBrowser {
						browse.Open(url, out)
					}
					return
				}
				p.done("reconnected %s to %s/%s", url, kf.install, pod)
			}}
		if err := fw.run(ctx); err != nil {
			return err
		}
		if keep {
			p.done("left Sonde installed in %s: 'sonde proxy' reconnects, 'sonde clean' removes it", kf.install)
		}
		return nil
	}
	return cmd
}

// removeCreated deletes what tap created, with a context of its own since
// the command's ended with Ctrl-C.
func removeCreated(k *kube, created []*unstructured.Unstructured, p *progress) {
	if len(created) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	n, err := k.remove(ctx, created)
	if err != nil {
		p.fail("removed %d of %d objects: %v", n, len(created), err)
		return
	}
	p.done("removed the %d objects tap created", n)
}

// selectedPods lists the pods the agents would capture now.
func selectedPods(ctx context.Context, k *kube, sel agentkube.Selector) ([]corev1.Pod, error) {
	namespaces := sel.Namespaces
	if len(namespaces) == 0 {
		namespaces = []string{metav1.NamespaceAll}
	}
	var out []corev1.Pod
	for _, ns := range namespaces {
		list, err := k.cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return nil, fmt.Errorf("listing pods: %w", err)
		}
		for _, p := range list.Items {
			if sel.Selects(&p) {
				out = append(out, p)
			}
		}
	}
	slices.SortFunc(out, func(a, b corev1.Pod) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
	return out, nil
}

func printPods(out io.Writer, pods []corev1.Pod, sel agentkube.Selector) {
	where := "all namespaces"
	if len(sel.Namespaces) > 0 {
		where = "namespace " + strings.Join(sel.Namespaces, ", ")
	}
	pattern := ""
	if sel.Pods != nil {
		pattern = fmt.Sprintf(" matching %q", sel.Pods.String())
	}
	if len(pods) == 0 {
		fmt.Fprintf(out, "no pods%s in %s now; the agents will capture them as they appear\n", pattern, where)
		return
	}
	fmt.Fprintf(out, "capturing %d pods%s in %s:\n", len(pods), pattern, where)
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAMESPACE\tPOD\tNODE\tIP")
	for _, p := range pods {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", p.Namespace, p.Name, p.Spec.NodeName, p.Status.PodIP)
	}
	tw.Flush()
}

// waitReady shows the hub's and the agents' progress until both are ready,
// following them with watches on Sonde's namespace that stop once they are.
func waitReady(ctx context.Context, k *kube, ns string, p *progress, timeout time.Duration, since time.Time) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	f := informers.NewSharedInformerFactoryWithOptions(k.cs, 0, informers.WithNamespace(ns))
	pods, events := f.Core().V1().Pods(), f.Core().V1().Events()
	deps, dss := f.Apps().V1().Deployments(), f.Apps().V1().DaemonSets()
	poke := make(chan struct{}, 1)
	signal := func(any) {
		select {
		case poke <- struct{}{}:
		default:
		}
	}
	h := cache.ResourceEventHandlerFuncs{AddFunc: signal, UpdateFunc: func(_, o any) { signal(o) }, DeleteFunc: signal}
	for _, inf := range []cache.SharedIndexInformer{pods.Informer(), events.Informer(), deps.Informer(), dss.Informer()} {
		if _, err := inf.AddEventHandler(h); err != nil {
			return err
		}
	}
	f.Start(ctx.Done())
	// Shutdown waits for the informers, which stop when ctx ends.
	defer func() { cancel(); f.Shutdown() }()
	f.WaitForCacheSync(ctx.Done())
	st := rolloutState{ns: ns, since: since, pods: pods.Lister(), events: events.Lister(), deps: deps.Lister(), dss: dss.Lister()}

	tick := time.NewTicker(spinPeriod)
	defer tick.Stop()
	hubDone, agentsDone := false, false
	for {
		hubReady, hubText := st.hub()
		agentsReady, agentsText := st.agents()
		if !hubDone && hubReady {
			hubDone = true
			p.done("hub ready (%s)", hubText)
		}
		if hubDone && !agentsDone && agentsReady {
			agentsDone = true
			p.done("agents ready (%s)", agentsText)
		}
		switch {
		case hubDone && agentsDone:
			return nil
		case !hubDone:
			p.status("hub", hubText)
		default:
			p.status("agents", agentsText)
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				err := fmt.Errorf("not ready after %v: hub: %s; agents: %s", timeout, hubText, agentsText)
				p.fail("%v", err)
				return err
			}
			return ctx.Err()
		case <-poke:
		case <-tick.C:
			p.tick()
		}
	}
}

// rolloutState reads the install's state from the informers' caches.
type rolloutState struct {
	ns     string
	since  time.Time // events before the install are not about it
	pods   corelisters.PodLister
	events corelisters.EventLister
	deps   appslisters.DeploymentLister
	dss    appslisters.DaemonSetLister
}

// hub says whether the hub is available, and what it is doing.
func (s *rolloutState) hub() (bool, string) {
	d, err := s.deps.Deployments(s.ns).Get(deploy.HubName)
	if err != nil {
		return false, "waiting for its Deployment"
	}
	pods := s.podsOf(deploy.HubName)
	available := d.Status.ObservedGeneration >= d.Generation && d.Status.UpdatedReplicas >= 1 && d.Status.AvailableReplicas >= 1
	for _, p := range pods {
		switch {
		case !podReady(p):
			return false, fmt.Sprintf("%s: %s", p.Name, podReason(p))
		case available:
			return true, fmt.Sprintf("%s on %s", p.Name, p.Spec.NodeName)
		default:
			return false, fmt.Sprintf("%s is ready; waiting for the Deployment to count it", p.Name)
		}
	}
	if msg := s.failedCreate("ReplicaSet", deploy.HubName+"-"); msg != "" {
		return false, msg
	}
	return false, "waiting for its pod"
}

// agents says whether every node's agent is ready, and what is missing.
func (s *rolloutState) agents() (bool, string) {
	ds, err := s.dss.DaemonSets(s.ns).Get(deploy.AgentName)
	if err != nil {
		return false, "waiting for their DaemonSet"
	}
	st := ds.Status
	if st.ObservedGeneration < ds.Generation {
		return false, "waiting for the DaemonSet controller"
	}
	want := st.DesiredNumberScheduled
	text := fmt.Sprintf("%d/%d nodes", st.NumberReady, want)
	if want > 0 && st.NumberReady == want && st.UpdatedNumberScheduled == want {
		return true, text
	}
	if want == 0 {
		text = "no node to run on"
	}
	var stuck []string
	for _, p := range s.podsOf(deploy.AgentName) {
		if !podReady(p) {
			stuck = append(stuck, fmt.Sprintf("%s: %s", cmp.Or(p.Spec.NodeName, p.Name), podReason(p)))
		}
	}
	slices.Sort(stuck)
	if len(stuck) > 3 {
		stuck = append(stuck[:3], fmt.Sprintf("%d more", len(stuck)-3))
	}
	if msg := s.failedCreate("DaemonSet", deploy.AgentName); msg != "" {
		stuck = append(stuck, msg)
	}
	if len(stuck) > 0 {
		text += "; " + strings.Join(stuck, "; ")
	}
	return false, text
}

func (s *rolloutState) podsOf(name string) []*corev1.Pod {
	pods, _ := s.pods.Pods(s.ns).List(labels.SelectorFromSet(labels.Set{deploy.LabelName: name}))
	slices.SortFunc(pods, func(a, b *corev1.Pod) int { return b.CreationTimestamp.Compare(a.CreationTimestamp.Time) })
	return pods
}

// failedCreate is the newest warning that a controller could not create
// a pod (a policy forbids it, a quota is full), for objects of kind whose
// name starts with prefix.
func (s *rolloutState) failedCreate(kind, prefix string) string {
	evs, _ := s.events.Events(s.ns).List(labels.Everything())
	var newest *corev1.Event
	for _, e := range evs {
		if e.Type != corev1.EventTypeWarning || e.Reason != "FailedCreate" || e.InvolvedObject.Kind != kind ||
			!strings.HasPrefix(e.InvolvedObject.Name, prefix) || eventTime(e).Before(s.since.Add(-time.Second)) {
			continue
		}
		if newest == nil || eventTime(e).After(eventTime(newest)) {
			newest = e
		}
	}
	if newest == nil {
		return ""
	}
	return newest.Message
}

func eventTime(e *corev1.Event) time.Time {
	switch {
	case !e.LastTimestamp.IsZero():
		return e.LastTimestamp.Time
	case !e.EventTime.IsZero():
		return e.EventTime.Time
	}
	return e.CreationTimestamp.Time
}
