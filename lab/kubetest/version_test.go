package kubetest

import (
	"os"
	"strings"
	"testing"
)

// TestVersion: the cache directory the tests look in is the one build.sh
// fills, which it names after the version lab/testenv/go.mod pins.
func TestVersion(t *testing.T) {
	b, err := os.ReadFile("../testenv/go.mod")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(b)) {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "k8s.io/kubernetes" {
			if f[1] != Version {
				t.Errorf("lab/testenv/go.mod pins %s, the tests expect %s", f[1], Version)
			}
			return
		}
	}
	t.Error("lab/testenv/go.mod does not require k8s.io/kubernetes")
}
