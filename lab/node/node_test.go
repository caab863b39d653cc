package node

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sondehq/sonde/lab/kubetest"
)

func TestMain(m *testing.M) {
	code := kubetest.Main(m)
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
	os.Exit(code)
}

const webImage = "sonde.test/web:1"

// importWeb builds the web program and imports it as webImage.
func importWeb(t *testing.T, n *Node) {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "web")
	if err := BuildProgram(bin, "github.com/sondehq/sonde/lab/node/web"); err != nil {
		t.Fatal(err)
	}
	tar := filepath.Join(dir, "web.tar")
	im := Image{Ref: webImage, Files: map[string]string{"/web": bin}, Entrypoint: []string{"/web"}, User: "65532:65532"}
	if err := im.WriteArchive(tar); err != nil {
		t.Fatal(err)
	}
	if err := n.Import(context.Background(), tar); err != nil {
		t.Fatal(err)
	}
}

func webPod(ns, name, node string, args ...string) *corev1.Pod {
	no := false
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{"app": name}},
		Spec: corev1.PodSpec{
			NodeName:                     node,
			AutomountServiceAccountToken: &no,
			RestartPolicy:                corev1.RestartPolicyNever,
			Containers: []corev1.Container{{
				Name: "web", Image: webImage, ImagePullPolicy: corev1.PullNever, Args: args,
			}},
		},
	}
}

// A pod from an imported image runs on the node with an address from the
// node's pod range, on a veth joined to the node's bridge, and answers
// HTTP from the host.
func TestPodRunsAndAnswers(t *testing.T) {
	env := kubetest.Start(t, kubetest.Options{Controllers: true})
	start := time.Now()
	n := Start(t, env, Options{})
	t.Logf("node %s Ready in %v (pods in %s on %s)", n.Name, time.Since(start).Round(time.Millisecond), n.PodCIDR, n.Bridge)
	importWeb(t, n)

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := env.CreateNamespaces(ctx, "web"); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	if _, err := env.Client.CoreV1().Pods("web").Create(ctx, webPod("web", "server", n.Name, "serve", ":8080"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pod, err := n.WaitPod(ctx, "web", "server", 2*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("pod Running with IP %s in %v", pod.Status.PodIP, time.Since(start).Round(time.Millisecond))
	if !strings.HasPrefix(pod.Status.PodIP, strings.TrimSuffix(n.PodCIDR, "0/24")) {
		t.Errorf("pod IP %s is not in the node's range %s", pod.Status.PodIP, n.PodCIDR)
	}

	c := &http.Client{Timeout: 5 * time.Second}
	url := fmt.Sprintf("http://%s:8080/from-host", pod.Status.PodIP)
	var body []byte
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := c.Get(url)
		if err == nil {
			body, _ = io.ReadAll(resp.Body)
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: %v", url, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if want := "hello from server: /from-host\n"; string(body) != want {
		t.Errorf("GET %s = %q, want %q", url, body, want)
	}
}
