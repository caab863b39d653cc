package deploy_test

import (
	"bytes"
	"io"
	"os/exec"
	"reflect"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	"github.com/sondehq/sonde/deploy"
	"github.com/sondehq/sonde/lab/kubetest"
)

// TestSameAsKustomize: what Render makes of the files with no options is
// what `kubectl apply -k deploy/` applies, object for object.
func TestSameAsKustomize(t *testing.T) {
	out, err := exec.Command(kubetest.Binary(t, "kubectl"), "kustomize", ".").Output()
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]*unstructured.Unstructured{}
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(out), 4096)
	for {
		u := &unstructured.Unstructured{}
		if err := dec.Decode(&u.Object); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		byName[u.GetKind()+"/"+u.GetName()] = u
	}
	objs, err := deploy.Render(deploy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != len(byName) {
		t.Errorf("Render made %d objects, kustomize %d", len(objs), len(byName))
	}
	for _, u := range objs {
		k := byName[u.GetKind()+"/"+u.GetName()]
		if k == nil {
			t.Errorf("kustomize has no %s %s", u.GetKind(), u.GetName())
			continue
		}
		if !reflect.DeepEqual(normal(t, u), normal(t, k)) {
			t.Errorf("%s %s differs:\nRender:    %v\nkustomize: %v", u.GetKind(), u.GetName(), u.Object, k.Object)
		}
	}
}

// normal is an object as JSON numbers and defaults make it comparable:
// through a JSON round trip, so that 8898 is the same whichever decoder
// read it.
func normal(t *testing.T, u *unstructured.Unstructured) map[string]any {
	t.Helper()
	b, err := u.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	var n unstructured.Unstructured
	if err := n.UnmarshalJSON(b); err != nil {
		t.Fatal(err)
	}
	return n.Object
}
