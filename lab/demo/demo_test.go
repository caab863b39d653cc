package demo

import (
	"errors"
	"testing"

	"github.com/sondehq/sonde/agent/runner"
)

// TestNewRefusesBadConfig: a bad configuration is refused before anything
// is built (the demo itself runs in cmd/sonde-demo's TestDemo, as root).
func TestNewRefusesBadConfig(t *testing.T) {
	hub := runner.Hub{URL: "http://127.0.0.1:1", Token: []byte("t")}
	tests := []struct {
		name    string
		cfg     Config
		wantErr error
	}{
		{"no hub", Config{}, ErrNoHub},
		{"hub without a token", Config{Hub: runner.Hub{URL: hub.URL}}, ErrNoHub},
		{"negative rate", Config{Hub: hub, Rate: -1}, ErrRate},
		{"rate past the bound", Config{Hub: hub, Rate: MaxRate + 1}, ErrRate},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := New(tt.cfg)
			if d != nil {
				d.Close()
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("New: %v, want %v", err, tt.wantErr)
			}
		})
	}
}

// TestTopology: every service and every server port belongs to a pod, and
// pod names are unique, since the lab and the names depend on it.
func TestTopology(t *testing.T) {
	seen := map[string]bool{}
	for _, p := range pods {
		if seen[p.Name] || seen[p.Workload] {
			t.Errorf("pod %s or workload %s appears twice", p.Name, p.Workload)
		}
		seen[p.Name], seen[p.Workload] = true, true
	}
	for _, s := range services {
		if p := spec(s.workload); p.port == 0 || p.Service != s.workload {
			t.Errorf("service %s: pod %+v serves no port or names another service", s.workload, p)
		}
	}
}
