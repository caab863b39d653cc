package kubetest

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"
)

// kwokConfig writes kwok's configuration: the stages that make nodes Ready
// (renewing their leases) and pods Running with an IP, and the port
// forwarding rules.
func kwokConfig(dir string, forwards []PortForward) (string, error) {
	stages, err := filepath.Glob(filepath.Join(stagesDir(), "*.yaml"))
	if err != nil || len(stages) == 0 {
		return "", fmt.Errorf("no kwok stages in %s: run lab/testenv/build.sh", stagesDir())
	}
	var b strings.Builder
	for _, s := range stages {
		data, err := os.ReadFile(s)
		if err != nil {
			return "", err
		}
		b.WriteString("---\n")
		b.Write(data)
		b.WriteString("\n")
	}
	for i, f := range forwards {
		host, port, ok := strings.Cut(f.Target, ":")
		if !ok {
			return "", fmt.Errorf("port forward target %q: want host:port", f.Target)
		}
		rule := map[string]any{
			"apiVersion": "kwok.x-k8s.io/v1alpha1",
			"kind":       "ClusterPortForward",
			"metadata":   map[string]any{"name": fmt.Sprintf("forward-%d", i)},
			"spec": map[string]any{
				"selector": map[string]any{"matchNamespaces": []string{f.Namespace}},
				"forwards": []any{map[string]any{
					"ports":  []int32{f.Port},
					"target": map[string]any{"address": host, "port": json.Number(port)},
				}},
			},
		}
		y, err := yaml.Marshal(rule)
		if err != nil {
			return "", err
		}
		b.WriteString("---\n")
		b.Write(y)
	}
	path := filepath.Join(dir, "kwok.yaml")
	return path, os.WriteFile(path, []byte(b.String()), 0o600)
}

// AddNode creates a node for kwok to play; with Options.Kwok it becomes
// Ready within a few seconds.
func (e *Env) AddNode(ctx context.Context, name string, taints ...corev1.Taint) (*corev1.Node, error) {
	n := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{
			"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64", "type": "kwok",
		}},
		Spec: corev1.NodeSpec{Taints: taints},
	}
	return e.Client.CoreV1().Nodes().Create(ctx, n, metav1.CreateOptions{})
}

// ServiceAccountConfig is a client configuration that authenticates as a
// ServiceAccount, with a token from the TokenRequest API, for checking what
// RBAC lets it do.
func (e *Env) ServiceAccountConfig(ctx context.Context, namespace, name string) (*rest.Config, error) {
	tr, err := e.Client.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, name,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{}}, metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("requesting a token for %s/%s: %w", namespace, name, err)
	}
	c := rest.AnonymousClientConfig(e.Config)
	c.BearerToken = tr.Status.Token
	return c, nil
}

// AuditEvent is one request the API server answered.
type AuditEvent struct {
	UserAgent string
	Verb      string
	URI       string
	Time      time.Time
}

// Audit returns the requests answered since a moment, from the audit log
// (Options.Audit). A long-running request (a watch, a port-forward) counts
// once, from when its response started.
func (e *Env) Audit(since time.Time) ([]AuditEvent, error) {
	f, err := os.Open(e.auditLog())
	if os.IsNotExist(err) {
		return nil, errNoAudit
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []AuditEvent
	seen := map[string]bool{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	for sc.Scan() {
		var ev struct {
			AuditID                  string
			Stage                    string
			Verb                     string
			RequestURI               string
			UserAgent                string
			RequestReceivedTimestamp metav1.MicroTime
		}
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			return nil, fmt.Errorf("audit log: %w", err)
		}
		// A long-running request is logged when its response starts and
		// again when it ends.
		if seen[ev.AuditID] || ev.RequestReceivedTimestamp.Time.Before(since) {
			continue
		}
		seen[ev.AuditID] = true
		out = append(out, AuditEvent{UserAgent: ev.UserAgent, Verb: ev.Verb, URI: ev.RequestURI, Time: ev.RequestReceivedTimestamp.Time})
	}
	return out, sc.Err()
}

// RunPod creates pod and then sets its status as a kubelet would: Running,
// with the addresses ips and a start time. Give the pod a Spec.NodeName to
// place it on a node.
func (e *Env) RunPod(ctx context.Context, pod *corev1.Pod, ips ...string) (*corev1.Pod, error) {
	if len(pod.Spec.Containers) == 0 {
		pod.Spec.Containers = []corev1.Container{{Name: "app", Image: "example.invalid/app"}}
	}
	p, err := e.Client.CoreV1().Pods(pod.Namespace).Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		return nil, err
	}
	now := metav1.Now()
	p.Status = corev1.PodStatus{Phase: corev1.PodRunning, StartTime: &now}
	if len(ips) == 0 {
		p.Status.Phase = corev1.PodPending
	}
	for i, ip := range ips {
		if i == 0 {
			p.Status.PodIP = ip
		}
		p.Status.PodIPs = append(p.Status.PodIPs, corev1.PodIP{IP: ip})
	}
	return e.Client.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, p, metav1.UpdateOptions{})
}

// RunService creates a ClusterIP Service with one TCP port and the
// EndpointSlice that the endpointslice controller would make for it, whose
// IPv4 endpoints are the pods' addresses; the test's control plane runs
// that controller only with Options.Controllers.
func (e *Env) RunService(ctx context.Context, namespace, name, clusterIP string, port int32, pods ...*corev1.Pod) error {
	if _, err := e.Client.CoreV1().Services(namespace).Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.ServiceSpec{ClusterIP: clusterIP, Selector: map[string]string{"app": name},
			Ports: []corev1.ServicePort{{Port: port}}},
	}, metav1.CreateOptions{}); err != nil {
		return err
	}
	es := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: name + "-1", Labels: map[string]string{discoveryv1.LabelServiceName: name}},
		AddressType: discoveryv1.AddressTypeIPv4,
	}
	for _, p := range pods {
		es.Endpoints = append(es.Endpoints, discoveryv1.Endpoint{Addresses: []string{p.Status.PodIP},
			TargetRef: &corev1.ObjectReference{Kind: "Pod", Namespace: p.Namespace, Name: p.Name}})
	}
	_, err := e.Client.DiscoveryV1().EndpointSlices(namespace).Create(ctx, es, metav1.CreateOptions{})
	return err
}

// CreateNamespaces creates namespaces. With Options.Controllers it returns
// once each has its "default" ServiceAccount, which the controller manager
// creates a moment later and without which the ServiceAccount admission
// plugin refuses the namespace's pods.
func (e *Env) CreateNamespaces(ctx context.Context, names ...string) error {
	for _, n := range names {
		if _, err := e.Client.CoreV1().Namespaces().Create(ctx,
			&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: n}}, metav1.CreateOptions{}); err != nil {
			return err
		}
	}
	if !e.controllers {
		return nil
	}
	for _, n := range names {
		err := wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
			_, err := e.Client.CoreV1().ServiceAccounts(n).Get(ctx, "default", metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				return false, nil
			}
			return err == nil, err
		})
		if err != nil {
			return fmt.Errorf("waiting for the default ServiceAccount of %s: %w", n, err)
		}
	}
	return nil
}

// CAFile is the cluster's certificate authority (PEM): it signed the API
// server's serving certificate and the admin's client certificate, so a
// kubelet trusts the API server's requests with it.
func (e *Env) CAFile() string { return filepath.Join(e.Dir, "ca.crt") }
