package apiserver_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/sondehq/sonde/apiserver"
	"github.com/sondehq/sonde/protocols/wire"
)

// TestSession: a hub serving a local session (sonde read --serve, the demo)
// answers only the holder of its token, and only under this machine's own
// names, so that neither another local user nor a web page that rebinds its
// name to 127.0.0.1 reads the traffic. /healthz and agents' ingest stay as
// they were.
func TestSession(t *testing.T) {
	token, err := apiserver.NewSessionToken()
	if err != nil {
		t.Fatal(err)
	}
	h := startHub(t, apiserver.Config{DataDir: t.TempDir(), StorageLimit: 64 << 20,
		UI: http.NotFoundHandler(), Session: &apiserver.Session{Token: token}}, "127.0.0.1:0")
	if err := h.srv.Ingest(makeEntry(1, time.Now())); err != nil {
		t.Fatal(err)
	}

	do := func(path, host string, set func(*http.Request)) *http.Response {
		t.Helper()
		req, _ := http.NewRequest("GET", h.url+path, nil)
		if host != "" {
			req.Host = host
		}
		if set != nil {
			set(req)
		}
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	bearer := func(tok string) func(*http.Request) {
		return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) }
	}
	tests := []struct {
		name, path, host string
		set              func(*http.Request)
		want             int
	}{
		{"health needs nothing", "/healthz", "", nil, http.StatusOK},
		{"entries without the token", "/api/v1/entries", "", nil, http.StatusUnauthorized},
		{"the page without the token", "/", "", nil, http.StatusUnauthorized},
		{"metrics without the token", "/metrics", "", nil, http.StatusUnauthorized},
		{"HAR export without the token", "/api/v1/export/har", "", nil, http.StatusUnauthorized},
		{"a wrong token", "/api/v1/entries?token=" + strings.Repeat("0", 64), "", nil, http.StatusUnauthorized},
		{"a wrong bearer", "/api/v1/entries", "", bearer("nope"), http.StatusUnauthorized},
		{"the token in the URL", "/api/v1/entries?token=" + string(token), "", nil, http.StatusOK},
		{"the token as bearer", "/api/v1/entries", "", bearer(string(token)), http.StatusOK},
		{"the token as the cookie", "/api/v1/stats", "", func(r *http.Request) {
			r.AddCookie(&http.Cookie{Name: "sonde_session", Value: string(token)})
		}, http.StatusOK},
		{"localhost", "/api/v1/entries", "localhost:8899", bearer(string(token)), http.StatusOK},
		{"IPv6 loopback", "/api/v1/entries", "[::1]:8899", bearer(string(token)), http.StatusOK},
		{"a rebinding name, with the token", "/api/v1/entries", "rebind.evil.example:8899", bearer(string(token)), http.StatusMisdirectedRequest},
		{"a rebinding name, health", "/healthz", "rebind.evil.example", nil, http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := do(tt.path, tt.host, tt.set).StatusCode; got != tt.want {
				t.Errorf("GET %s (Host %q) = %d, want %d", tt.path, tt.host, got, tt.want)
			}
		})
	}

	t.Run("opening the page sets the cookie the page's own requests carry", func(t *testing.T) {
		resp := do("/?token="+string(token), "", nil)
		var c *http.Cookie
		for _, k := range resp.Cookies() {
			if k.Name == "sonde_session" {
				c = k
			}
		}
		if c == nil || c.Value != string(token) || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode {
			t.Fatalf("cookie %+v: want the token, HttpOnly, SameSite=Strict", c)
		}
	})

	t.Run("the stream", func(t *testing.T) {
		_, resp, err := websocket.DefaultDialer.Dial(h.wsURL("/api/v1/stream"), nil)
		if err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("stream without the token: %v, %v; want 401", err, resp)
		}
		c, _, err := websocket.DefaultDialer.Dial(h.wsURL("/api/v1/stream?token="+string(token)), nil)
		if err != nil {
			t.Fatalf("stream with the token: %v", err)
		}
		c.Close()
	})

	t.Run("agents still ingest with their own token", func(t *testing.T) {
		c, _, err := rawAgent(t, h, string(testToken))
		if err != nil {
			t.Fatalf("ingest with the agent token: %v", err)
		}
		c.WriteJSON(wire.Hello{Type: wire.TypeHello, AgentID: "a1"})
		c.Close()
	})
}
