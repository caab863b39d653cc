package main

import (
	"regexp"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/sondehq/sonde/deploy"
)

// envRef is Kubernetes' $(VAR) expansion in a container's arguments.
var envRef = regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)

// TestManifestArgs parses the arguments the manifests give each container
// with the flags of the command they name, for the files as they are and
// for what `sonde tap` renders from its options: a flag the binary does
// not know, or a value it refuses, would crash-loop every pod of the
// install.
func TestManifestArgs(t *testing.T) {
	tests := []struct {
		name string
		o    deploy.Options
	}{
		{"files", deploy.Options{}},
		{"tap", deploy.Options{Namespace: "observe", Image: "registry.example/sonde:1.2.3", StorageLimit: 5 << 30,
			Storage: deploy.StoragePVC, NoRedact: true, Pods: "^(web|api)-", Namespaces: []string{"shop", "payments"},
			ExcludeNamespaces: []string{"kube-system"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			objs, err := deploy.Render(tt.o)
			if err != nil {
				t.Fatal(err)
			}
			containers := 0
			for _, u := range objs {
				var spec *corev1.PodSpec
				switch u.GetKind() {
				case "Deployment":
					var d appsv1.Deployment
					if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &d); err != nil {
						t.Fatal(err)
					}
					spec = &d.Spec.Template.Spec
				case "DaemonSet":
					var d appsv1.DaemonSet
					if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &d); err != nil {
						t.Fatal(err)
					}
					spec = &d.Spec.Template.Spec
				default:
					continue
				}
				for _, c := range spec.Containers {
					containers++
					checkArgs(t, u.GetName()+"/"+c.Name, c)
				}
			}
			if containers != 2 {
				t.Errorf("checked %d containers, want the hub's and the agent's", containers)
			}
		})
	}
}

// checkArgs finds the subcommand the container's arguments name and parses
// the rest with its flags, with $(VAR) references expanded from the
// container's environment as the kubelet would.
func checkArgs(t *testing.T, what string, c corev1.Container) {
	t.Helper()
	env := map[string]bool{}
	for _, e := range c.Env {
		env[e.Name] = true
	}
	var args []string
	for _, a := range c.Args {
		args = append(args, envRef.ReplaceAllStringFunc(a, func(ref string) string {
			name := envRef.FindStringSubmatch(ref)[1]
			if !env[name] {
				t.Errorf("%s: argument %q refers to $(%s), which the container's environment lacks", what, a, name)
			}
			return "value-of-" + strings.ToLower(name)
		}))
	}
	if len(args) == 0 {
		t.Fatalf("%s: no arguments", what)
	}
	cmd, rest, err := newRoot().Find(args)
	if err != nil || cmd.Name() != args[0] {
		t.Fatalf("%s: %v names no sonde command (%v)", what, args, err)
	}
	if err := cmd.ParseFlags(rest); err != nil {
		t.Errorf("%s: sonde %s refuses %q: %v", what, args[0], rest, err)
	}
	if err := cmd.ValidateArgs(cmd.Flags().Args()); err != nil {
		t.Errorf("%s: sonde %s: %v", what, args[0], err)
	}
}
