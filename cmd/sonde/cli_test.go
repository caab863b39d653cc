package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCommandsRefuseBadFlags: each command says in one sentence what is
// missing or wrong, before touching anything.
func TestCommandsRefuseBadFlags(t *testing.T) {
	token := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(token, []byte("s3cret-0123456789abcdef\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"agent without a target", []string{"agent", "--json"}, "say what to capture"},
		{"agent without a destination", []string{"agent", "--iface", "lo"}, "say where entries go"},
		{"agent hub without token", []string{"agent", "--iface", "lo", "--hub", "http://x"}, "--hub needs --token-file"},
		{"agent CA for a plain hub", []string{"agent", "--iface", "lo", "--hub", "http://x", "--token-file", token, "--hub-ca", token}, "--hub-ca is for a hub reached over TLS"},
		{"agent bad port", []string{"agent", "--iface", "lo", "--json", "--port", "70000"}, "is not a TCP port"},
		{"agent negative snap length", []string{"agent", "--iface", "lo", "--json", "--snap-len", "-1"}, "--snap-len -1: give 128 to"},
		{"agent tiny snap length", []string{"agent", "--iface", "lo", "--json", "--snap-len", "20"}, "--snap-len 20"},
		{"agent ring size not a power of two", []string{"agent", "--iface", "lo", "--json", "--ring-size", "1000"}, "--ring-size 1000: give a power of two"},
		{"agent bad address", []string{"agent", "--pod-ip", "nope", "--json"}, `--pod-ip "nope" is not an IP address`},
		{"agent with two kinds of target", []string{"agent", "--kubernetes", "--iface", "lo", "--json"}, "--kubernetes picks the pods itself"},
		{"agent selection without kubernetes", []string{"agent", "--iface", "lo", "--json", "--pods", "web"}, "--pods selects pods of the cluster: add --kubernetes"},
		{"agent bad pod pattern", []string{"agent", "--kubernetes", "--json", "--pods", "web("}, "invalid argument"},
		{"agent outside a cluster", []string{"agent", "--kubernetes", "--json"}, "--kubernetes needs to run inside a cluster, or --kubeconfig"},
		{"agent missing kubeconfig", []string{"agent", "--kubernetes", "--json", "--kubeconfig", "/nonexistent/kc"}, "--kubeconfig /nonexistent/kc"},
		{"hub without data", []string{"hub", "--token-file", "t"}, "--data DIR is required"},
		{"hub without token", []string{"hub", "--data", t.TempDir()}, "--token-file is required"},
		{"hub missing token file", []string{"hub", "--data", t.TempDir(), "--token-file", "/nonexistent/t"}, "reading the token"},
		{"hub outside a cluster", []string{"hub", "--data", t.TempDir(), "--token-file", token, "--kubernetes"}, "--kubernetes needs to run inside a cluster"},
		{"hub access without the cluster", []string{"hub", "--data", t.TempDir(), "--token-file", token, "--kubernetes-access"}, "--kubernetes-access needs --kubernetes"},
		{"hub access without a certificate", []string{"hub", "--data", t.TempDir(), "--token-file", token, "--kubernetes", "--kubeconfig", token, "--kubernetes-access"}, "needs --tls-secret, or --tls-cert-file and --tls-key-file"},
		{"bad storage limit", []string{"read", "--serve", "--storage-limit", "lots", "testdata/sample.pcapng"}, "--storage-limit"},
		{"bad name line", []string{"read", "--serve", "--name", "not-an-ip pod=x", "testdata/sample.pcapng"}, "not-an-ip"},
		{"demo, a program of its own", []string{"demo", "--no-browser"}, "run `make demo`"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := run(t, tt.args...)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error is more than one line: %q", err)
			}
		})
	}
}
