package deploy

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
)

// kinds lists "Kind/namespace/name" in order.
func kinds(objs []*unstructured.Unstructured) []string {
	var out []string
	for _, u := range objs {
		out = append(out, u.GetKind()+"/"+u.GetNamespace()+"/"+u.GetName())
	}
	return out
}

func typed[T runtime.Object](t *testing.T, objs []*unstructured.Unstructured, kind, name string, into T) T {
	t.Helper()
	for _, u := range objs {
		if u.GetKind() == kind && u.GetName() == name {
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, into); err != nil {
				t.Fatal(err)
			}
			return into
		}
	}
	t.Fatalf("no %s %s in %v", kind, name, kinds(objs))
	return into
}

func agentArgs(t *testing.T, objs []*unstructured.Unstructured) map[string]string {
	t.Helper()
	ds := typed(t, objs, "DaemonSet", AgentName, &appsv1.DaemonSet{})
	args := map[string]string{}
	for _, a := range ds.Spec.Template.Spec.Containers[0].Args[1:] {
		k, v, _ := strings.Cut(a, "=")
		args[k] = v
	}
	return args
}

func TestRenderDefaults(t *testing.T) {
	objs, err := Render(Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"Namespace//sonde",
		"ServiceAccount/sonde/sonde",
		"ClusterRole//sonde",
		"ClusterRoleBinding//sonde",
		"ServiceAccount/sonde/sonde-ingest",
		"Secret/sonde/sonde-token",
		"Deployment/sonde/sonde-hub",
		"Service/sonde/sonde-hub",
		"DaemonSet/sonde/sonde-agent",
	}
	if got := kinds(objs); !slices.Equal(got, want) {
		t.Fatalf("objects\n got %v\nwant %v", got, want)
	}
	for _, u := range objs {
		if u.GetLabels()[LabelPartOf] != PartOf {
			t.Errorf("%s %s has no %s label", u.GetKind(), u.GetName(), LabelPartOf)
		}
		if _, ok := u.Object["status"]; ok {
			t.Errorf("%s %s carries a status", u.GetKind(), u.GetName())
		}
	}

	role := typed(t, objs, "ClusterRole", "sonde", &rbacv1.ClusterRole{})
	var granted []string
	for _, r := range role.Rules {
		for _, g := range r.APIGroups {
			for _, res := range r.Resources {
				granted = append(granted, g+"/"+res+":"+strings.Join(r.Verbs, ","))
			}
		}
	}
	slices.Sort(granted)
	wantGranted := []string{
		"/namespaces:get,list,watch", "/nodes:get,list,watch", "/pods:get,list,watch", "/services:get,list,watch",
		"discovery.k8s.io/endpointslices:get,list,watch",
	}
	if !slices.Equal(granted, wantGranted) {
		t.Errorf("ClusterRole grants %v, want exactly %v", granted, wantGranted)
	}

	ds := typed(t, objs, "DaemonSet", AgentName, &appsv1.DaemonSet{})
	spec := ds.Spec.Template.Spec
	if !spec.HostNetwork || spec.DNSPolicy != corev1.DNSClusterFirstWithHostNet {
		t.Errorf("agent: hostNetwork %v dnsPolicy %q", spec.HostNetwork, spec.DNSPolicy)
	}
	if len(spec.Tolerations) != 1 || spec.Tolerations[0].Operator != corev1.TolerationOpExists || spec.Tolerations[0].Key != "" {
		t.Errorf("agent tolerations %+v, want one that tolerates every taint", spec.Tolerations)
	}
	c := spec.Containers[0]
	sc := c.SecurityContext
	if sc.Privileged != nil && *sc.Privileged {
		t.Error("agent is privileged")
	}
	if got := sc.Capabilities.Add; !slices.Equal(got, []corev1.Capability{"BPF", "NET_ADMIN", "PERFMON", "SYS_RESOURCE", "NET_RAW"}) {
		t.Errorf("agent capabilities %v", got)
	}
	if !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) {
		t.Errorf("agent drops %v, want ALL", sc.Capabilities.Drop)
	}
	for _, m := range c.VolumeMounts {
		if !m.ReadOnly {
			t.Errorf("agent mounts %s writable", m.MountPath)
		}
	}
	if c.ReadinessProbe == nil || c.Resources.Limits.Memory().IsZero() || c.Resources.Requests.Cpu().IsZero() {
		t.Errorf("agent: readiness probe %v, resources %v", c.ReadinessProbe, c.Resources)
	}
	args := agentArgs(t, objs)
	if _, ok := args["--no-redact"]; ok || args["--hub"] != "http://sonde-hub.sonde.svc:8898" || args["--exclude-namespaces"] != "sonde" {
		t.Errorf("agent args %v", args)
	}

	hub := typed(t, objs, "Deployment", HubName, &appsv1.Deployment{})
	hs := hub.Spec.Template.Spec
	if want := "--storage-limit=" + formatSize(DefaultStorageLimit); !slices.Contains(hs.Containers[0].Args, want) {
		t.Errorf("hub args %v lack %s, the limit Render assumes", hs.Containers[0].Args, want)
	}
	if hs.SecurityContext.RunAsNonRoot == nil || !*hs.SecurityContext.RunAsNonRoot {
		t.Error("hub may run as root")
	}
	hc := hs.Containers[0].SecurityContext
	if hc.ReadOnlyRootFilesystem == nil || !*hc.ReadOnlyRootFilesystem {
		t.Error("hub's root filesystem is writable")
	}
	for _, v := range hs.Volumes {
		if v.Name == hubDataVolume && (v.EmptyDir == nil || v.EmptyDir.SizeLimit.String() != "1280Mi") {
			t.Errorf("hub data volume %+v, want an emptyDir of 1280Mi", v.VolumeSource)
		}
	}
	secret := typed(t, objs, "Secret", TokenSecret, &corev1.Secret{})
	if secret.Type != corev1.SecretTypeServiceAccountToken || len(secret.Data) != 0 {
		t.Errorf("default token Secret: type %q with %d keys, want one the cluster fills", secret.Type, len(secret.Data))
	}
}

func TestRenderOptions(t *testing.T) {
	objs, err := Render(Options{
		Namespace:         "traffic",
		Image:             "registry.example/sonde:v9",
		Token:             "s3cret",
		StorageLimit:      4 << 30,
		Storage:           StoragePVC,
		StorageClass:      "fast",
		NoRedact:          true,
		RedactNames:       []string{"X-Tenant", "pin"},
		RedactPatterns:    []string{"ghp_[a-z]+"},
		Pods:              "^web-",
		Namespaces:        []string{"shop", "payments"},
		ExcludeNamespaces: []string{"kube-system"},
		Labels:            map[string]string{"sonde.dev/session": "abc"},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"Namespace//traffic",
		"ServiceAccount/traffic/sonde",
		"ClusterRole//sonde-traffic",
		"ClusterRoleBinding//sonde-traffic",
		"Secret/traffic/sonde-token",
		"PersistentVolumeClaim/traffic/sonde-hub-data",
		"Deployment/traffic/sonde-hub",
		"Service/traffic/sonde-hub",
		"DaemonSet/traffic/sonde-agent",
	}
	if got := kinds(objs); !slices.Equal(got, want) {
		t.Fatalf("objects\n got %v\nwant %v", got, want)
	}
	for _, u := range objs {
		if u.GetLabels()["sonde.dev/session"] != "abc" {
			t.Errorf("%s %s lacks the extra label", u.GetKind(), u.GetName())
		}
	}
	crb := typed(t, objs, "ClusterRoleBinding", "sonde-traffic", &rbacv1.ClusterRoleBinding{})
	if crb.RoleRef.Name != "sonde-traffic" || crb.Subjects[0].Namespace != "traffic" {
		t.Errorf("binding %+v", crb)
	}
	secret := typed(t, objs, "Secret", TokenSecret, &corev1.Secret{})
	if secret.Type != corev1.SecretTypeOpaque || string(secret.Data[TokenKey]) != "s3cret" || len(secret.Annotations) != 0 {
		t.Errorf("token Secret %+v", secret)
	}
	args := agentArgs(t, objs)
	wantArgs := map[string]string{
		"--hub": "http://sonde-hub.traffic.svc:8898", "--no-redact": "true", "--pods": "^web-",
		"--namespaces": "shop,payments", "--exclude-namespaces": "kube-system,traffic",
	}
	for k, v := range wantArgs {
		if args[k] != v {
			t.Errorf("agent %s=%q, want %q", k, args[k], v)
		}
	}
	ds := typed(t, objs, "DaemonSet", AgentName, &appsv1.DaemonSet{})
	// Repeatable flags are added one argument each, in order.
	if a := ds.Spec.Template.Spec.Containers[0].Args; !slices.Equal(a[len(a)-3:], []string{"--redact-name=X-Tenant", "--redact-name=pin", "--redact-pattern=ghp_[a-z]+"}) {
		t.Errorf("agent args %v", a)
	}
	hub := typed(t, objs, "Deployment", HubName, &appsv1.Deployment{})
	for _, c := range []corev1.Container{ds.Spec.Template.Spec.Containers[0], hub.Spec.Template.Spec.Containers[0]} {
		if c.Image != "registry.example/sonde:v9" {
			t.Errorf("%s image %q", c.Name, c.Image)
		}
	}
	if !slices.Contains(hub.Spec.Template.Spec.Containers[0].Args, "--storage-limit=4GiB") {
		t.Errorf("hub args %v", hub.Spec.Template.Spec.Containers[0].Args)
	}
	pvc := typed(t, objs, "PersistentVolumeClaim", hubDataClaim, &corev1.PersistentVolumeClaim{})
	if got := pvc.Spec.Resources.Requests[corev1.ResourceStorage]; got.String() != "5Gi" || *pvc.Spec.StorageClassName != "fast" {
		t.Errorf("claim asks for %s of class %v", got.String(), pvc.Spec.StorageClassName)
	}
	for _, v := range hub.Spec.Template.Spec.Volumes {
		if v.Name == hubDataVolume && (v.PersistentVolumeClaim == nil || v.PersistentVolumeClaim.ClaimName != hubDataClaim) {
			t.Errorf("hub data volume %+v", v.VolumeSource)
		}
	}
}

func TestRenderErrors(t *testing.T) {
	tests := []struct {
		name string
		o    Options
	}{
		{"namespace", Options{Namespace: "Not_A_Label"}},
		{"pattern", Options{Pods: "web-("}},
		{"capture namespace", Options{Namespaces: []string{"a b"}}},
		{"storage", Options{Storage: "tmpfs"}},
		{"limit", Options{StorageLimit: -1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Render(tt.o); !errors.Is(err, ErrOptions) {
				t.Errorf("err = %v, want ErrOptions", err)
			}
		})
	}
}

func TestYAML(t *testing.T) {
	objs, err := Render(Options{Token: "t"})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := YAML(&buf, objs); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(buf.String(), "\n---\n"); n != len(objs)-1 {
		t.Errorf("%d separators for %d objects", n, len(objs))
	}
	if strings.Contains(buf.String(), "creationTimestamp") {
		t.Error("YAML carries creationTimestamp")
	}
}
