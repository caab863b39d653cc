package main

// What the Kubernetes commands (tap, clean, proxy, check, version) share:
// kubectl's connection flags, applying and removing the manifests, and a
// port-forward to the hub that reconnects.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/go-logr/logr"
	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/transport/spdy"
	"k8s.io/klog/v2"
	streamhttp "k8s.io/streaming/pkg/httpstream"

	"github.com/sondehq/sonde/deploy"
)

// fieldManager owns the fields Sonde applies (server-side apply).
const fieldManager = "sonde"

// DefaultLocalPort is where `sonde tap` and `sonde proxy` serve the hub.
const DefaultLocalPort = 8899

var (
	errNotInstalled = errors.New("sonde is not installed")
	errNoHub        = errors.New("no hub pod is ready")
)

// kubeFlags are kubectl's connection flags, plus the namespace Sonde is
// installed in.
type kubeFlags struct {
	conn    *genericclioptions.ConfigFlags
	install string
}

// addKubeFlags declares the flags. -n/--namespace is declared only where it
// selects pods (tap); elsewhere Sonde's own namespace is --install-namespace.
func addKubeFlags(cmd *cobra.Command, podNamespace bool) *kubeFlags {
	f := &kubeFlags{conn: genericclioptions.NewConfigFlags(true)}
	if !podNamespace {
		f.conn.Namespace = nil
	}
	f.conn.AddFlags(cmd.Flags())
	cmd.Flags().StringVar(&f.install, "install-namespace", deploy.DefaultNamespace, "namespace Sonde is installed in")
	return f
}

// kube is a connection to one cluster.
type kube struct {
	rest *rest.Config
	cs   kubernetes.Interface
	dyn  dynamic.Interface
	host string
	// server is the API server's version.
	server string
}

// connect builds the clients and checks that the cluster answers, so that
// a wrong context fails here with one sentence rather than later in the
// middle of an install.
func (f *kubeFlags) connect(ctx context.Context) (*kube, error) {
	// client-go logs through klog what it also returns as errors; the
	// commands say what went wrong themselves.
	klog.SetLogger(logr.Discard())
	rc, err := f.conn.ToRESTConfig()
	if err != nil {
		return nil, fmt.Errorf("no cluster to talk to: %v (set --kubeconfig, KUBECONFIG or --context)", err)
	}
	rc.UserAgent = "sonde/" + version
	rc.QPS, rc.Burst = 20, 40
	k := &kube{rest: rc, host: rc.Host}
	if k.cs, err = kubernetes.NewForConfig(rc); err != nil {
		return nil, fmt.Errorf("configuring the client for %s: %w", rc.Host, err)
	}
	if k.dyn, err = dynamic.NewForConfig(rc); err != nil {
		return nil, fmt.Errorf("configuring the client for %s: %w", rc.Host, err)
	}
	vctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	var v struct{ GitVersion string }
	body, err := k.cs.Discovery().RESTClient().Get().AbsPath("/version").Do(vctx).Raw()
	if err == nil {
		err = json.Unmarshal(body, &v)
	}
	if err != nil {
		return nil, fmt.Errorf("cannot reach the cluster at %s: %v (check --kubeconfig and --context)", rc.Host, err)
	}
	k.server = v.GitVersion
	return k, nil
}

// resource is the client for u's kind and namespace.
func (k *kube) resource(u *unstructured.Unstructured) (dynamic.ResourceInterface, error) {
	gvr, ok := deploy.GVR(u.GroupVersionKind())
	if !ok {
		return nil, fmt.Errorf("no resource known for %s", u.GetKind())
	}
	if ns := u.GetNamespace(); ns != "" {
		return k.dyn.Resource(gvr).Namespace(ns), nil
	}
	return k.dyn.Resource(gvr), nil
}

func describe(u *unstructured.Unstructured) string {
	if ns := u.GetNamespace(); ns != "" {
		return fmt.Sprintf("%s %s/%s", u.GetKind(), ns, u.GetName())
	}
	return fmt.Sprintf("%s %s", u.GetKind(), u.GetName())
}

// apply installs objs with server-side apply, in order, and returns those
// that did not exist before: what removing the install may delete.
func (k *kube) apply(ctx context.Context, objs []*unstructured.Unstructured) (created []*unstructured.Unstructured, err error) {
	force := true
	for _, u := range objs {
		ri, err := k.resource(u)
		if err != nil {
			return created, err
		}
		_, err = ri.Get(ctx, u.GetName(), metav1.GetOptions{})
		existed := err == nil
		if err != nil && !apierrors.IsNotFound(err) {
			return created, fmt.Errorf("reading %s: %w", describe(u), err)
		}
		data, err := json.Marshal(u.Object)
		if err != nil {
			return created, err
		}
		if _, err := ri.Patch(ctx, u.GetName(), types.ApplyPatchType, data,
			metav1.PatchOptions{FieldManager: fieldManager, Force: &force}); err != nil {
			return created, fmt.Errorf("applying %s: %w", describe(u), err)
		}
		if !existed {
			created = append(created, u)
		}
	}
	return created, nil
}

// withoutForeignNamespace drops the Namespace from objs when it exists
// without Sonde's label: a namespace a user chose to install into is
// neither adopted by an apply nor deleted by a clean.
func (k *kube) withoutForeignNamespace(ctx context.Context, objs []*unstructured.Unstructured) ([]*unstructured.Unstructured, error) {
	i := slices.IndexFunc(objs, func(u *unstructured.Unstructured) bool { return u.GetKind() == "Namespace" })
	if i < 0 {
		return objs, nil
	}
	ns, err := k.cs.CoreV1().Namespaces().Get(ctx, objs[i].GetName(), metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return objs, nil
	case err != nil:
		return nil, fmt.Errorf("reading namespace %s: %w", objs[i].GetName(), err)
	case ns.Labels[deploy.LabelPartOf] == deploy.PartOf:
		return objs, nil
	}
	return slices.Delete(slices.Clone(objs), i, i+1), nil
}

// remove deletes objs, the last applied first, and says how many it found.
func (k *kube) remove(ctx context.Context, objs []*unstructured.Unstructured) (int, error) {
	background := metav1.DeletePropagationBackground
	n := 0
	var errs []error
	for _, u := range slices.Backward(objs) {
		ri, err := k.resource(u)
		if err != nil {
			return n, err
		}
		err = ri.Delete(ctx, u.GetName(), metav1.DeleteOptions{PropagationPolicy: &background})
		switch {
		case err == nil:
			n++
		case !apierrors.IsNotFound(err):
			errs = append(errs, fmt.Errorf("deleting %s: %w", describe(u), err))
		}
	}
	return n, errors.Join(errs...)
}

// ingestToken is the token to install: the one already in the cluster, so
// that running agents and hub keep agreeing, or a new random one. Empty
// means the Secret is one the cluster fills (installed with kubectl apply -k).
func (k *kube) ingestToken(ctx context.Context, ns string) (string, error) {
	s, err := k.cs.CoreV1().Secrets(ns).Get(ctx, deploy.TokenSecret, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
	case err != nil:
		return "", fmt.Errorf("reading the ingest token: %w", err)
	case s.Type == corev1.SecretTypeServiceAccountToken:
		return "", nil
	case len(s.Data[deploy.TokenKey]) > 0:
		return string(s.Data[deploy.TokenKey]), nil
	}
	b := make([]byte, 32)
	rand.Read(b)
	return hex.EncodeToString(b), nil
}

// hubSelector picks the hub's pods.
var hubSelector = labels.Set{deploy.LabelName: deploy.HubName}.String()

// readyHub returns a ready hub pod, waiting (with a watch, not polling)
// for one to become ready.
func (k *kube) readyHub(ctx context.Context, ns string) (string, error) {
	pods := k.cs.CoreV1().Pods(ns)
	list, err := pods.List(ctx, metav1.ListOptions{LabelSelector: hubSelector})
	if err != nil {
		return "", fmt.Errorf("looking for the hub: %w", err)
	}
	for i := range list.Items {
		if podReady(&list.Items[i]) {
			return list.Items[i].Name, nil
		}
	}
	if _, err := k.cs.AppsV1().Deployments(ns).Get(ctx, deploy.HubName, metav1.GetOptions{}); apierrors.IsNotFound(err) {
		return "", fmt.Errorf("%w in namespace %s: run 'sonde tap'", errNotInstalled, ns)
	}
	w, err := pods.Watch(ctx, metav1.ListOptions{LabelSelector: hubSelector, ResourceVersion: list.ResourceVersion})
	if err != nil {
		return "", fmt.Errorf("waiting for the hub: %w", err)
	}
	defer w.Stop()
	for {
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("%w: %w", errNoHub, ctx.Err())
		case ev, ok := <-w.ResultChan():
			if !ok {
				return k.readyHub(ctx, ns) // the watch timed out: list again
			}
			if p, isPod := ev.Object.(*corev1.Pod); isPod && ev.Type != watch.Deleted && podReady(p) {
				return p.Name, nil
			}
		}
	}
}

func podReady(p *corev1.Pod) bool {
	if p.DeletionTimestamp != nil || p.Status.Phase != corev1.PodRunning {
		return false
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// forwarder keeps a local port forwarded to the hub.
type forwarder struct {
	k      *kube
	ns     string
	local  string // host:port
	status func(format string, args ...any)
	// onReady is called each time a forward is up, with the pod's name.
	onReady func(pod string)
}

// run forwards until ctx ends. When the connection drops or the pod goes
// away, it forwards again to whichever hub pod is ready, backing off while
// none is.
func (f *forwarder) run(ctx context.Context) error {
	// Fail at once with a clear sentence when the port is taken, rather
	// than after reaching the cluster.
	ln, err := net.Listen("tcp", f.local)
	if err != nil {
		return fmt.Errorf("cannot serve on %s: %v (pass --port to pick another)", f.local, err)
	}
	ln.Close()
	const minWait, maxWait = 250 * time.Millisecond, 5 * time.Second
	wait := minWait
	for {
		pod, err := f.k.readyHub(ctx, f.ns)
		if err == nil {
			start := time.Now()
			err = f.once(ctx, pod)
			if time.Since(start) > 10*time.Second {
				wait = minWait
			}
		}
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, errNotInstalled) {
			return err
		}
		f.status("connection to the hub lost (%v); reconnecting in %v", err, wait)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
		wait = min(2*wait, maxWait)
	}
}

// once forwards to one pod until the connection drops, the pod goes away
// or ctx ends.
func (f *forwarder) once(ctx context.Context, pod string) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go f.watchPod(ctx, pod, cancel)

	u := f.k.cs.CoreV1().RESTClient().Post().Resource("pods").Namespace(f.ns).Name(pod).SubResource("portforward").URL()
	dialer, err := f.k.dialer(u)
	if err != nil {
		return err
	}
	host, port, err := net.SplitHostPort(f.local)
	if err != nil {
		return err
	}
	ready := make(chan struct{})
	pf, err := portforward.NewOnAddressesForStreamingWithContext(ctx, dialer, []string{host},
		[]string{port + ":" + strconv.Itoa(deploy.HubPort)}, ready, io.Discard, io.Discard)
	if err != nil {
		return err
	}
	go func() {
		select {
		case <-ready:
			f.onReady(pod)
		case <-ctx.Done():
		}
	}()
	err = pf.ForwardPorts()
	if cause := context.Cause(ctx); err == nil && errors.Is(cause, errPodGone) {
		err = cause
	}
	return err
}

var errPodGone = errors.New("the hub pod went away")

// watchPod ends the forward when its pod is deleted or stops being ready:
// connections to a gone pod fail only one by one otherwise.
func (f *forwarder) watchPod(ctx context.Context, pod string, cancel context.CancelCauseFunc) {
	opts := metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("metadata.name", pod).String()}
	// The API server ends a watch after 30 to 60 minutes; watch again from
	// where the last one stopped.
	for ctx.Err() == nil {
		w, err := f.k.cs.CoreV1().Pods(f.ns).Watch(ctx, opts)
		if err != nil {
			return // the forward goes on; a dead pod then fails it
		}
		for ev := range w.ResultChan() {
			p, ok := ev.Object.(*corev1.Pod)
			if !ok {
				continue
			}
			if ev.Type == watch.Deleted || !podReady(p) {
				w.Stop()
				cancel(fmt.Errorf("%w: %s", errPodGone, pod))
				return
			}
			opts.ResourceVersion = p.ResourceVersion
		}
		w.Stop()
	}
}

// dialer opens port-forward connections the way kubectl does: over a
// websocket, falling back to SPDY where the server does not upgrade.
func (k *kube) dialer(u *url.URL) (streamhttp.Dialer, error) {
	transport, upgrader, err := spdy.RoundTripperFor(k.rest)
	if err != nil {
		return nil, err
	}
	spdyDialer := spdy.NewDialerForStreaming(upgrader, &http.Client{Transport: transport}, http.MethodPost, u)
	ws, err := portforward.NewSPDYOverWebsocketDialerForStreaming(u, k.rest)
	if err != nil {
		return nil, err
	}
	return portforward.NewFallbackDialerForStreaming(ws, spdyDialer, func(err error) bool {
		return streamhttp.IsUpgradeFailure(err) || streamhttp.IsHTTPSProxyError(err)
	}), nil
}
