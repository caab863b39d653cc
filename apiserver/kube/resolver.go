package kube

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/sondehq/sonde/apiserver/enrich"
)

// Defaults for Config's zero values.
const (
	DefaultRetention = 15 * time.Minute
	DefaultLinger    = 30 * time.Second
	DefaultMaxEnded  = 100_000
)

// ErrNotSynced: the informers did not finish their first list.
var ErrNotSynced = errors.New("the pod, service and endpointslice caches did not sync")

// Config tunes a Resolver. The zero value is ready to use.
type Config struct {
	// Retention is how long an address's past holders are remembered
	// after they let go, for entries that arrive late (an agent that lost
	// the hub for a while sends what it kept). Zero means DefaultRetention.
	Retention time.Duration
	// Linger is how long after its holder let go an address still
	// resolves to it: a connection's last packets are captured after the
	// API server heard the pod was gone. Zero means DefaultLinger.
	Linger time.Duration
	// MaxEnded bounds the spans remembered after they ended; zero means
	// DefaultMaxEnded.
	MaxEnded int
	// Logger receives a line when the caches sync; nil discards.
	Logger *slog.Logger
}

// Resolver names addresses after pods and services. Make one with New and
// start it with Run.
type Resolver struct {
	factory informers.SharedInformerFactory
	synced  []cache.InformerSynced
	table   *table
	log     *slog.Logger
	now     func() time.Time
}

var _ enrich.Resolver = (*Resolver)(nil)

// New builds a Resolver on client. It registers informers on pods,
// services and endpointslices in all namespaces; Run starts them.
func New(client kubernetes.Interface, cfg Config) (*Resolver, error) {
	if cfg.Retention <= 0 {
		cfg.Retention = DefaultRetention
	}
	if cfg.Linger <= 0 {
		cfg.Linger = DefaultLinger
	}
	if cfg.MaxEnded <= 0 {
		cfg.MaxEnded = DefaultMaxEnded
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	r := &Resolver{
		// No resync: the handlers act on changes, and a periodic replay of
		// the cache would change nothing.
		factory: informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithTransform(strip)),
		table:   newTable(cfg.Retention, cfg.Linger, cfg.MaxEnded),
		log:     cfg.Logger,
		now:     time.Now,
	}
	type informer interface {
		AddEventHandler(cache.ResourceEventHandler) (cache.ResourceEventHandlerRegistration, error)
	}
	for _, reg := range []struct {
		inf informer
		fn  func(obj any, deleted bool)
	}{
		{r.factory.Core().V1().Pods().Informer(), r.pod},
		{r.factory.Core().V1().Services().Informer(), r.service},
		{r.factory.Discovery().V1().EndpointSlices().Informer(), r.slice},
	} {
		fn := reg.fn
		h, err := reg.inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc:    func(obj any) { fn(obj, false) },
			UpdateFunc: func(_, obj any) { fn(obj, false) },
			DeleteFunc: func(obj any) {
				if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
					obj = d.Obj
				}
				fn(obj, true)
			},
		})
		if err != nil {
			return nil, fmt.Errorf("registering with the informers: %w", err)
		}
		// Synced once this handler, not only the cache, saw the first list.
		r.synced = append(r.synced, h.HasSynced)
	}
	return r, nil
}

// Run starts the informers, waits for their first list, and then keeps
// following changes until ctx ends. It returns ErrNotSynced if ctx ends
// before the first list completed, nil otherwise.
func (r *Resolver) Run(ctx context.Context) error {
	r.factory.Start(ctx.Done())
	defer r.factory.Shutdown()
	start := r.now()
	if !cache.WaitForCacheSync(ctx.Done(), r.synced...) && !r.Synced() {
		return ErrNotSynced
	}
	st := r.Stats()
	r.log.Info("names of pods and services synced", "holders", st.Holders, "addresses", st.Addresses,
		"took", r.now().Sub(start).Round(time.Millisecond))
	<-ctx.Done()
	return nil
}

// Synced reports whether the first list of every kind completed.
func (r *Resolver) Synced() bool {
	for _, s := range r.synced {
		if !s() {
			return false
		}
	}
	return true
}

// Resolve implements enrich.Resolver.
func (r *Resolver) Resolve(addr netip.Addr, t time.Time) (enrich.Identity, bool) {
	info, ok := r.table.lookup(addr.Unmap(), t)
	return info.Identity, ok
}

// Lookup is Resolve with the node and the workload's kind.
func (r *Resolver) Lookup(addr netip.Addr, t time.Time) (Info, bool) {
	return r.table.lookup(addr.Unmap(), t)
}

// Stats reports the history's size and what its bound cost.
func (r *Resolver) Stats() Stats { return r.table.stats() }

func (r *Resolver) pod(obj any, deleted bool) {
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	h := &holder{uid: string(p.UID), pod: p.Namespace + "/" + p.Name}
	// A pod on the host's network has the node's address, shared with the
	// node and every such pod; a finished pod's address is free for the
	// next one even though its status still shows it.
	if !deleted && !p.Spec.HostNetwork && p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed {
		h.ips = podIPs(p)
		h.from = p.CreationTimestamp.Time
		if p.Status.StartTime != nil {
			h.from = p.Status.StartTime.Time
		}
		kind, name := workload(p)
		h.info = Info{
			Identity:     enrich.Identity{Pod: p.Name, Namespace: p.Namespace, Workload: name, Node: p.Spec.NodeName},
			WorkloadKind: kind,
		}
	}
	r.table.set(h, r.now())
}

func podIPs(p *corev1.Pod) []netip.Addr {
	var ips []netip.Addr
	add := func(s string) {
		if ip, err := netip.ParseAddr(s); err == nil && !slices.Contains(ips, ip.Unmap()) {
			ips = append(ips, ip.Unmap())
		}
	}
	add(p.Status.PodIP)
	for _, ip := range p.Status.PodIPs {
		add(ip.IP)
	}
	return ips
}

// workload names the pod's controller, following a Deployment's
// ReplicaSet to the Deployment by the hash the Deployment appends to its
// ReplicaSets' names: the ClusterRole grants no access to ReplicaSets, and
// reading them only for their owner would double the watches.
func workload(p *corev1.Pod) (kind, name string) {
	ref := metav1.GetControllerOf(p)
	if ref == nil {
		return "", ""
	}
	if ref.Kind == "ReplicaSet" {
		if hash := p.Labels["pod-template-hash"]; hash != "" {
			if d, ok := strings.CutSuffix(ref.Name, "-"+hash); ok && d != "" {
				return "Deployment", d
			}
		}
	}
	return ref.Kind, ref.Name
}

func (r *Resolver) service(obj any, deleted bool) {
	s, ok := obj.(*corev1.Service)
	if !ok {
		return
	}
	h := &holder{uid: string(s.UID)}
	if !deleted {
		for _, c := range append([]string{s.Spec.ClusterIP}, s.Spec.ClusterIPs...) {
			// "None" (headless) and "" (ExternalName) do not parse.
			if ip, err := netip.ParseAddr(c); err == nil && !slices.Contains(h.ips, ip.Unmap()) {
				h.ips = append(h.ips, ip.Unmap())
			}
		}
		h.from = s.CreationTimestamp.Time
		h.info = Info{Identity: enrich.Identity{Service: s.Name, Namespace: s.Namespace}}
	}
	r.table.set(h, r.now())
}

func (r *Resolver) slice(obj any, deleted bool) {
	es, ok := obj.(*discoveryv1.EndpointSlice)
	if !ok {
		return
	}
	m := sliceMembers{service: es.Labels[discoveryv1.LabelServiceName]}
	if !deleted && m.service != "" {
		for _, ep := range es.Endpoints {
			if ref := ep.TargetRef; ref != nil && ref.Kind == "Pod" {
				ns := ref.Namespace
				if ns == "" {
					ns = es.Namespace
				}
				m.pods = append(m.pods, ns+"/"+ref.Name)
			}
		}
	}
	r.table.setSlice(es.Namespace+"/"+es.Name, m)
}

// strip keeps of each object only what naming reads, so that the informers'
// caches of a large cluster stay small: no spec beyond the node and the
// host-network flag, no container statuses, no managed fields.
func strip(obj any) (any, error) {
	switch o := obj.(type) {
	case *corev1.Pod:
		p := &corev1.Pod{
			ObjectMeta: slimMeta(o.ObjectMeta),
			Spec:       corev1.PodSpec{NodeName: o.Spec.NodeName, HostNetwork: o.Spec.HostNetwork},
			Status: corev1.PodStatus{
				Phase: o.Status.Phase, PodIP: o.Status.PodIP, PodIPs: o.Status.PodIPs, StartTime: o.Status.StartTime,
			},
		}
		if h := o.Labels["pod-template-hash"]; h != "" {
			p.Labels = map[string]string{"pod-template-hash": h}
		}
		return p, nil
	case *corev1.Service:
		return &corev1.Service{
			ObjectMeta: slimMeta(o.ObjectMeta),
			Spec:       corev1.ServiceSpec{ClusterIP: o.Spec.ClusterIP, ClusterIPs: o.Spec.ClusterIPs},
		}, nil
	case *discoveryv1.EndpointSlice:
		s := &discoveryv1.EndpointSlice{ObjectMeta: slimMeta(o.ObjectMeta)}
		if n := o.Labels[discoveryv1.LabelServiceName]; n != "" {
			s.Labels = map[string]string{discoveryv1.LabelServiceName: n}
		}
		for _, ep := range o.Endpoints {
			if ep.TargetRef != nil {
				ref := *ep.TargetRef
				s.Endpoints = append(s.Endpoints, discoveryv1.Endpoint{TargetRef: &corev1.ObjectReference{
					Kind: ref.Kind, Namespace: ref.Namespace, Name: ref.Name,
				}})
			}
		}
		return s, nil
	}
	return obj, nil
}

// slimMeta keeps what the informer itself needs (name, namespace, UID,
// resource version) and what naming reads (owners, creation time).
func slimMeta(m metav1.ObjectMeta) metav1.ObjectMeta {
	return metav1.ObjectMeta{
		Name: m.Name, Namespace: m.Namespace, UID: m.UID, ResourceVersion: m.ResourceVersion,
		CreationTimestamp: m.CreationTimestamp, DeletionTimestamp: m.DeletionTimestamp,
		OwnerReferences: m.OwnerReferences,
	}
}
