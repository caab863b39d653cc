package main

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sondehq/sonde/deploy"
)

// syncBuffer is an output a command writes while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitFor waits until the output holds want.
func (s *syncBuffer) waitFor(t *testing.T, want string, timeout time.Duration) {
	t.Helper()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(timeout)
	for !strings.Contains(s.String(), want) {
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("no %q in the output after %v:\n%s", want, timeout, s.String())
		}
	}
}

// execute runs one command as the root would, writing to out.
func execute(ctx context.Context, c *cobra.Command, out *syncBuffer, args ...string) error {
	c.SilenceUsage, c.SilenceErrors = true, true
	c.SetArgs(args)
	c.SetOut(out)
	c.SetErr(out)
	return c.ExecuteContext(ctx)
}

func TestPodReason(t *testing.T) {
	now := metav1.Now()
	tests := []struct {
		name string
		pod  corev1.Pod
		want string
	}{
		{"unschedulable", corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodPending, Conditions: []corev1.PodCondition{{
			Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: "Unschedulable", Message: "0/3 nodes are available: 3 Insufficient memory.",
		}}}}, "Unschedulable: 0/3 nodes are available: 3 Insufficient memory."},
		{"image pull", corev1.Pod{Spec: corev1.PodSpec{NodeName: "n1"}, Status: corev1.PodStatus{Phase: corev1.PodPending,
			ContainerStatuses: []corev1.ContainerStatus{{Name: "agent", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{
				Reason: "ImagePullBackOff", Message: `Back-off pulling image "ghcr.io/sondehq/sonde:v0"`}}}}}},
			`ImagePullBackOff: Back-off pulling image "ghcr.io/sondehq/sonde:v0"`},
		{"creating", corev1.Pod{Spec: corev1.PodSpec{NodeName: "n1"}, Status: corev1.PodStatus{Phase: corev1.PodPending,
			ContainerStatuses: []corev1.ContainerStatus{{State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}}}}}},
			"starting on n1"},
		{"crashed", corev1.Pod{Spec: corev1.PodSpec{NodeName: "n1"}, Status: corev1.PodStatus{Phase: corev1.PodRunning,
			ContainerStatuses: []corev1.ContainerStatus{{Name: "hub", State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
				ExitCode: 1, Reason: "Error"}}}}}}, "container hub exited with 1: Error"},
		{"probe", corev1.Pod{Spec: corev1.PodSpec{NodeName: "n1"}, Status: corev1.PodStatus{Phase: corev1.PodRunning}},
			"running, not ready yet (readiness probe)"},
		{"not scheduled yet", corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodPending}}, "waiting to be scheduled"},
		{"terminating", corev1.Pod{ObjectMeta: metav1.ObjectMeta{DeletionTimestamp: &now}}, "terminating"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := podReason(&tt.pod); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestNodeNotes(t *testing.T) {
	tests := []struct {
		info   corev1.NodeSystemInfo
		wantOK bool
		want   string
	}{
		{corev1.NodeSystemInfo{KernelVersion: "6.12.9-amd64", OperatingSystem: "linux", Architecture: "amd64"}, true, "eBPF with TCX"},
		{corev1.NodeSystemInfo{KernelVersion: "6.1.0-18-cloud-amd64", OperatingSystem: "linux", Architecture: "arm64"}, true, "clsact"},
		{corev1.NodeSystemInfo{KernelVersion: "5.4.0-1103-aws", OperatingSystem: "linux", Architecture: "amd64"}, false, "needs Linux 5.8"},
		{corev1.NodeSystemInfo{KernelVersion: "5.10-rc1", OperatingSystem: "linux"}, true, "clsact"},
		{corev1.NodeSystemInfo{KernelVersion: "10.0.17763.1", OperatingSystem: "windows", Architecture: "amd64"}, false, "not Linux"},
		{corev1.NodeSystemInfo{KernelVersion: "6.8.0", OperatingSystem: "linux", Architecture: "s390x"}, false, "no image for s390x"},
		{corev1.NodeSystemInfo{}, true, "unknown"},
	}
	for _, tt := range tests {
		ok, got := nodeNotes(tt.info)
		if ok != tt.wantOK || !strings.Contains(got, tt.want) {
			t.Errorf("%+v: got %v %q, want %v and %q", tt.info, ok, got, tt.wantOK, tt.want)
		}
	}
}

// TestManifestsCmd: `sonde manifests` prints what Render makes of its
// flags, and refuses bad ones in one sentence.
func TestManifestsCmd(t *testing.T) {
	var out syncBuffer
	if err := execute(t.Context(), newManifestsCmd(), &out, "^web-", "-n", "shop,payments", "--storage", "pvc",
		"--storage-limit", "2GiB", "--image", "registry.example/sonde:v1", "--no-redact"); err != nil {
		t.Fatal(err)
	}
	objs, err := deploy.Render(deploy.Options{Pods: "^web-", Namespaces: []string{"shop", "payments"}, Storage: deploy.StoragePVC,
		StorageLimit: 2 << 30, Image: "registry.example/sonde:v1", NoRedact: true})
	if err != nil {
		t.Fatal(err)
	}
	var want bytes.Buffer
	if err := deploy.YAML(&want, objs); err != nil {
		t.Fatal(err)
	}
	if out.String() != want.String() {
		t.Errorf("output differs from Render:\n%s", out.String())
	}
	if strings.Contains(out.String(), "token: ") {
		t.Error("the manifests carry a token")
	}

	for _, tt := range []struct {
		args    []string
		wantErr string
	}{
		{[]string{"web-("}, "pod pattern"},
		{[]string{"--storage", "tmpfs"}, "storage"},
		{[]string{"--storage-limit", "lots"}, "--storage-limit"},
		{[]string{"--redact", "--no-redact"}, "opposite"},
		{[]string{"-n", "Not_A_Namespace"}, "namespace"},
	} {
		err := execute(t.Context(), newManifestsCmd(), &syncBuffer{}, tt.args...)
		if err == nil || !strings.Contains(err.Error(), tt.wantErr) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%v: err = %v, want one line containing %q", tt.args, err, tt.wantErr)
		}
	}
}
