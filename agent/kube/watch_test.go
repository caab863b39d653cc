package kube_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/sondehq/sonde/agent/kube"
	"github.com/sondehq/sonde/lab/kubetest"
)

func TestMain(m *testing.M) { os.Exit(kubetest.Main(m)) }

// agentClient is a client with the credentials the agents run with, so that
// the ClusterRole is shown to be enough.
func agentClient(t *testing.T, env *kubetest.Env, userAgent string) kubernetes.Interface {
	t.Helper()
	if _, err := env.Kubectl(t.Context(), "apply", "--server-side", "-k", "../../deploy"); err != nil {
		t.Fatal(err)
	}
	cfg, err := env.ServiceAccountConfig(t.Context(), "sonde", "sonde")
	if err != nil {
		t.Fatal(err)
	}
	cfg.UserAgent = userAgent
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// watch runs a Watcher until the test ends and returns its reports.
func watch(t *testing.T, cs kubernetes.Interface, cfg kube.Config) <-chan []kube.Pod {
	t.Helper()
	changes := make(chan []kube.Pod, 64)
	cfg.OnChange = func(p []kube.Pod) { changes <- p }
	w, err := kube.New(cs, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("watcher: %v", err)
		}
	})
	return changes
}

func names(pods []kube.Pod) string {
	var s []string
	for _, p := range pods {
		s = append(s, fmt.Sprintf("%s/%s%v", p.Namespace, p.Name, p.IPs))
	}
	return strings.Join(s, " ")
}

// next waits for the report that reads want, skipping earlier ones, and
// returns it.
func next(t *testing.T, changes <-chan []kube.Pod, want string) []kube.Pod {
	t.Helper()
	timeout := time.After(30 * time.Second)
	last := "(none)"
	for {
		select {
		case p := <-changes:
			if last = names(p); last == want {
				return p
			}
		case <-timeout:
			t.Fatalf("pods to capture: last report %q, want %q", last, want)
		}
	}
}

func pod(ns, name, node string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: corev1.PodSpec{NodeName: node}}
}

// TestWatchNode: an agent reports exactly the selected pods of its node as
// they come, change and go, and asks the API server only for its node's
// pods.
func TestWatchNode(t *testing.T) {
	env := kubetest.Shared(t, kubetest.Options{Audit: true})
	ctx := t.Context()
	start := time.Now()
	cs := agentClient(t, env, "sonde-agent-test")
	if err := env.CreateNamespaces(ctx, "shop", "other"); err != nil {
		t.Fatal(err)
	}
	run := func(p *corev1.Pod, ips ...string) {
		t.Helper()
		if _, err := env.RunPod(ctx, p, ips...); err != nil {
			t.Fatal(err)
		}
	}
	run(pod("shop", "web-1", "node-1"), "10.77.0.10", "fd00:77::a")
	run(pod("shop", "db-0", "node-1"), "10.77.0.11")   // name not selected
	run(pod("other", "web-2", "node-1"), "10.77.0.12") // namespace not selected
	run(pod("shop", "web-3", "node-2"), "10.77.0.13")  // another node
	run(pod("shop", "web-pending", "node-1"))          // no address yet
	host := pod("shop", "web-host", "node-1")          // the node's address
	host.Spec.HostNetwork = true
	run(host, "192.0.2.1")

	changes := watch(t, cs, kube.Config{Node: "node-1", Selector: kube.Selector{
		Pods: regexp.MustCompile("^web-"), Namespaces: []string{"shop"},
	}})
	next(t, changes, "shop/web-1[10.77.0.10 fd00:77::a]")

	run(pod("shop", "web-4", "node-1"), "10.77.0.14")
	next(t, changes, "shop/web-1[10.77.0.10 fd00:77::a] shop/web-4[10.77.0.14]")
	if err := env.Client.CoreV1().Pods("shop").Delete(ctx, "web-1", metav1.DeleteOptions{GracePeriodSeconds: new(int64)}); err != nil {
		t.Fatal(err)
	}
	next(t, changes, "shop/web-4[10.77.0.14]")
	p, err := env.Client.CoreV1().Pods("shop").Get(ctx, "web-4", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p.Status.Phase = corev1.PodSucceeded
	if _, err := env.Client.CoreV1().Pods("shop").UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	next(t, changes, "")

	evs, err := env.Audit(start)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, ev := range evs {
		if ev.UserAgent != "sonde-agent-test" {
			continue
		}
		n++
		if !strings.Contains(ev.URI, "fieldSelector=spec.nodeName%3Dnode-1") {
			t.Errorf("the agent asked for %s %s, beyond its node's pods", ev.Verb, ev.URI)
		}
	}
	if n == 0 {
		t.Error("no request from the agent in the audit log")
	}
}

func TestNoNode(t *testing.T) {
	if _, err := kube.New(nil, kube.Config{}); !errors.Is(err, kube.ErrNoNode) {
		t.Errorf("err = %v, want ErrNoNode", err)
	}
}
