package main

import (
	"context"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestReadServeSession: `sonde read --serve` prints an address that carries
// the session's token, and its hub answers nobody without it, nor under a
// name that is not this machine's (another local user, or a web page
// rebinding its name to 127.0.0.1, could otherwise read the capture).
func TestReadServeSession(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var stderr syncBuffer
	root := newRoot()
	root.SetArgs([]string{"read", "--serve", "--listen", "127.0.0.1:0", "testdata/sample.pcapng"})
	root.SetOut(&stderr)
	root.SetErr(&stderr)
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("read --serve: %v", err)
		}
	}()

	served := regexp.MustCompile(`serving Sonde on (http://\S+)`)
	var session string
	for deadline := time.Now().Add(time.Minute); session == ""; {
		if m := served.FindStringSubmatch(stderr.String()); m != nil {
			session = m[1]
		} else if time.Now().After(deadline) {
			t.Fatalf("read --serve never said where it serves:\n%s", stderr.String())
		} else {
			time.Sleep(20 * time.Millisecond)
		}
	}
	base, token, ok := strings.Cut(session, "/?token=")
	if !ok || len(token) < 32 {
		t.Fatalf("read --serve printed %s: want its address with the session's token", session)
	}
	get := func(url, host string) int {
		req, _ := http.NewRequest("GET", url, nil)
		if host != "" {
			req.Host = host
		}
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := get(base+"/api/v1/entries", ""); code != http.StatusUnauthorized {
		t.Errorf("entries without the token: %d, want 401", code)
	}
	if code := get(base+"/api/v1/entries?token="+token, ""); code != http.StatusOK {
		t.Errorf("entries with the token: %d, want 200", code)
	}
	if code := get(base+"/api/v1/entries?token="+token, "rebind.evil.example"); code != http.StatusMisdirectedRequest {
		t.Errorf("entries under a rebinding name: %d, want 421", code)
	}
}

// TestReadStopsOnSignal: reading a FIFO that nothing writes blocks for
// good; Ctrl-C or SIGTERM (the command's context) still ends the command,
// with a sentence and a non-zero exit.
func TestReadStopsOnSignal(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "capture")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	root := newRoot()
	root.SetArgs([]string{"read", fifo})
	var out syncBuffer
	root.SetOut(&out)
	root.SetErr(&out)
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()
	cancel()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "stopped") {
			t.Errorf("read of a silent FIFO after a signal: %v, want a stop", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("read of a silent FIFO ignored the signal")
	}
}
