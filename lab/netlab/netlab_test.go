package netlab

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

func serveHello(t *testing.T, p *Pod, addr string) {
	t.Helper()
	ln, err := p.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello from %s to %s", p.Name, r.RemoteAddr)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
}

// TestLab checks both shapes of lab: pods reach each other by pod
// address (IPv4 and IPv6) and through a service IP, and a removed pod is gone.
func TestLab(t *testing.T) {
	t.Run("bridge", func(t *testing.T) { testLab(t, Options{}) })
	t.Run("routed", func(t *testing.T) { testLab(t, Options{Routed: true}) })
}

func testLab(t *testing.T, o Options) {
	l := ForTestWith(t, o)
	server, err := l.AddPod("server")
	if err != nil {
		t.Fatal(err)
	}
	client, err := l.AddPod("client")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.AddPod("client"); err == nil {
		t.Error("adding a pod twice: no error")
	}
	serveHello(t, server, ":8080")
	svc, err := l.AddService(server, 80, 8080)
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Transport: &http.Transport{DialContext: client.DialContext}, Timeout: 10 * time.Second}
	tests := []struct {
		name string
		url  string
		want string
	}{
		{"pod ip", fmt.Sprintf("http://%s:8080/", server.IP), fmt.Sprintf("hello from server to %s:", client.IP)},
		{"pod ipv6", fmt.Sprintf("http://[%s]:8080/", server.IP6), fmt.Sprintf("hello from server to [%s]:", client.IP6)},
		{"service ip", fmt.Sprintf("http://%s/", svc), fmt.Sprintf("hello from server to %s:", client.IP)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := hc.Get(tt.url)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if got := string(b); len(got) < len(tt.want) || got[:len(tt.want)] != tt.want {
				t.Errorf("got %q, want prefix %q", got, tt.want)
			}
		})
	}
	if err := l.RemovePod("client"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if c, err := server.DialContext(ctx, "tcp", net.JoinHostPort(client.IP.String(), "9")); err == nil {
		c.Close()
		t.Error("a removed pod still answers")
	}
}
