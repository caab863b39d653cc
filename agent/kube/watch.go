package kube

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

var (
	// ErrNoNode: Config.Node is empty; the agent learns it from the
	// downward API (spec.nodeName).
	ErrNoNode = errors.New("the node's name is needed to watch its pods")
	// ErrNotSynced: the pod list did not complete before the context ended.
	ErrNotSynced = errors.New("the node's pods were not listed")
)

// Pod is a pod to capture.
type Pod struct {
	Namespace, Name string
	// IPs are its addresses, IPv4 and IPv6.
	IPs []netip.Addr
}

// Config says whose pods to watch and where to report them.
type Config struct {
	// Node is the name of the agent's node.
	Node     string
	Selector Selector
	// OnChange receives the selected pods, ordered by namespace and name,
	// once after the first list and then whenever the set or an address
	// changes; calls never overlap. The slice is the receiver's.
	OnChange func([]Pod)
	// Logger receives a line per change; nil discards.
	Logger *slog.Logger
}

// Watcher follows the pods of one node.
type Watcher struct {
	cfg      Config
	factory  informers.SharedInformerFactory
	store    cache.Store
	synced   cache.InformerSynced
	mu       sync.Mutex // serialises update and guards the fields below
	started  bool       // the first list is in
	selected []Pod
}

// New builds a Watcher on client; Run starts it.
func New(client kubernetes.Interface, cfg Config) (*Watcher, error) {
	if cfg.Node == "" {
		return nil, ErrNoNode
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	w := &Watcher{cfg: cfg}
	w.factory = informers.NewSharedInformerFactoryWithOptions(client, 0,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("spec.nodeName", cfg.Node).String()
		}),
		informers.WithTransform(strip))
	inf := w.factory.Core().V1().Pods().Informer()
	reg, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { w.update(false) },
		UpdateFunc: func(any, any) { w.update(false) },
		DeleteFunc: func(any) { w.update(false) },
	})
	if err != nil {
		return nil, fmt.Errorf("registering with the pod informer: %w", err)
	}
	w.store, w.synced = inf.GetStore(), reg.HasSynced
	return w, nil
}

// Run lists the node's pods, reports the selection, and follows changes
// until ctx ends. It returns ErrNotSynced if ctx ends before the first list
// completed, nil otherwise.
func (w *Watcher) Run(ctx context.Context) error {
	w.factory.Start(ctx.Done())
	defer w.factory.Shutdown()
	if !cache.WaitForCacheSync(ctx.Done(), w.synced) && !w.synced() {
		return ErrNotSynced
	}
	w.update(true)
	<-ctx.Done()
	return nil
}

// Pods returns the pods selected now; nil before the first list.
func (w *Watcher) Pods() []Pod {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.selected)
}

// Addrs are the addresses of pods, for the capture's configuration.
func Addrs(pods []Pod) []netip.Addr {
	var out []netip.Addr
	for _, p := range pods {
		out = append(out, p.IPs...)
	}
	return out
}

// Changes names, as "namespace/name", the pods of next that prev lacks
// and those of prev that next lacks; a pod whose addresses changed is in
// both lists.
func Changes(prev, next []Pod) (added, removed []string) {
	diff := func(a, b []Pod) []string {
		var out []string
		for _, p := range a {
			if !slices.ContainsFunc(b, func(q Pod) bool { return samePod(p, q) }) {
				out = append(out, p.Namespace+"/"+p.Name)
			}
		}
		return out
	}
	return diff(next, prev), diff(prev, next)
}

func samePod(a, b Pod) bool {
	return a.Namespace == b.Namespace && a.Name == b.Name && slices.Equal(a.IPs, b.IPs)
}

// update recomputes the selection from the informer's cache, which holds
// at most the node's pods (a hundred or so), and reports it if it changed.
// Events before the first list completed are left to the update that Run
// makes then.
func (w *Watcher) update(first bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if first {
		w.started = true
	}
	if !w.started {
		return
	}
	var sel []Pod
	for _, obj := range w.store.List() {
		p, ok := obj.(*corev1.Pod)
		if !ok || !w.capturable(p) {
			continue
		}
		sel = append(sel, Pod{Namespace: p.Namespace, Name: p.Name, IPs: podIPs(p)})
	}
	slices.SortFunc(sel, func(a, b Pod) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
	if !first && slices.EqualFunc(sel, w.selected, samePod) {
		return
	}
	w.selected = sel
	w.cfg.Logger.Info("pods to capture", "node", w.cfg.Node, "pods", len(sel))
	if w.cfg.OnChange != nil {
		w.cfg.OnChange(slices.Clone(sel))
	}
}

func (w *Watcher) capturable(p *corev1.Pod) bool {
	// The field selector already holds the watch to this node; the check
	// keeps a misbehaving server from widening it.
	return p.Spec.NodeName == w.cfg.Node && len(podIPs(p)) > 0 && w.cfg.Selector.Selects(p)
}

func podIPs(p *corev1.Pod) []netip.Addr {
	var ips []netip.Addr
	for _, s := range append([]string{p.Status.PodIP}, podIPStrings(p)...) {
		if ip, err := netip.ParseAddr(s); err == nil && !slices.Contains(ips, ip.Unmap()) {
			ips = append(ips, ip.Unmap())
		}
	}
	return ips
}

func podIPStrings(p *corev1.Pod) []string {
	out := make([]string, len(p.Status.PodIPs))
	for i, ip := range p.Status.PodIPs {
		out[i] = ip.IP
	}
	return out
}

// strip keeps what selection reads, so that the cache stays small.
func strip(obj any) (any, error) {
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return obj, nil
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: p.Name, Namespace: p.Namespace, UID: p.UID, ResourceVersion: p.ResourceVersion},
		Spec:       corev1.PodSpec{NodeName: p.Spec.NodeName, HostNetwork: p.Spec.HostNetwork},
		Status:     corev1.PodStatus{Phase: p.Status.Phase, PodIP: p.Status.PodIP, PodIPs: p.Status.PodIPs},
	}, nil
}
