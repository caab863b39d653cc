package http1

import (
	"strings"
	"testing"

	"github.com/sondehq/sonde/protocols"
)

func TestDetect(t *testing.T) {
	tests := []struct {
		name       string
		prefix     string
		want       protocols.Verdict
		fromClient bool
	}{
		{"empty", "", protocols.NeedMore, false},
		{"get", "GET / HTTP/1.1\r\nHost: x\r\n\r\n", protocols.Match, true},
		{"post without headers yet", "POST /api/v1/items?x=1 HTTP/1.0\r\n", protocols.Match, true},
		{"bare LF", "GET / HTTP/1.1\n", protocols.Match, true},
		{"webdav", "PROPFIND /dav/ HTTP/1.1\r\n", protocols.Match, true},
		{"custom method", "CCM_POST /x HTTP/1.1\r\n", protocols.Match, true},
		{"options star", "OPTIONS * HTTP/1.1\r\n", protocols.Match, true},
		{"connect", "CONNECT example.com:443 HTTP/1.1\r\n", protocols.Match, true},
		{"method prefix", "GE", protocols.NeedMore, false},
		{"target prefix", "GET /index.ht", protocols.NeedMore, false},
		{"version prefix", "GET / HTTP/1", protocols.NeedMore, false},
		{"before the line end", "GET / HTTP/1.1", protocols.NeedMore, false},
		{"before the LF", "GET / HTTP/1.1\r", protocols.NeedMore, false},
		{"http/0.9", "GET /path\r\n", protocols.Match, true},
		{"http/0.9 needs a path", "GET key\r\n", protocols.NoMatch, false},
		{"redis inline ping", "PING\r\n", protocols.NoMatch, false},
		{"redis inline set", "SET key value\r\n", protocols.NoMatch, false},
		{"redis inline get with slash key", "GET /key extra\r\n", protocols.NoMatch, false},
		{"redis resp", "*1\r\n$4\r\nPING\r\n", protocols.NoMatch, false},
		{"http/2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", protocols.NoMatch, false},
		{"http/2 version", "GET / HTTP/2.0\r\n", protocols.NoMatch, false},
		{"tls", "\x16\x03\x01\x02\x00\x01", protocols.NoMatch, false},
		{"leading space", " GET / HTTP/1.1\r\n", protocols.NoMatch, false},
		{"two spaces", "GET  / HTTP/1.1\r\n", protocols.NoMatch, false},
		{"status", "HTTP/1.1 200 OK\r\n", protocols.Match, false},
		{"status 1.0", "HTTP/1.0 404 Not Found\r\n", protocols.Match, false},
		{"status prefix", "HTTP/1.1 2", protocols.NeedMore, false},
		{"status bad code", "HTTP/1.1 2x0", protocols.NoMatch, false},
		{"status http/2", "HTTP/2 200", protocols.NoMatch, false},
		{"long target, known method", "GET /" + strings.Repeat("a", detectWindow), protocols.Match, true},
		{"long target, unknown method", "FOO /" + strings.Repeat("a", detectWindow), protocols.NoMatch, false},
		{"long token", strings.Repeat("A", detectWindow), protocols.NoMatch, false},
	}
	d := New()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := d.Detect([]byte(tt.prefix), protocols.Ports{Src: 40000, Dst: 80})
			if got.Verdict != tt.want || got.FromClient != tt.fromClient {
				t.Errorf("Detect(%q) = %+v, want verdict %d fromClient %v", tt.prefix, got, tt.want, tt.fromClient)
			}
		})
	}
}

// TestDetectPrefixes checks that every proper prefix of something Detect
// matches is NeedMore, never NoMatch.
func TestDetectPrefixes(t *testing.T) {
	for _, full := range []string{"GET /a/b?c=d HTTP/1.1\r\n", "HTTP/1.1 200 OK\r\n", "GET /x\r\n", "M-SEARCH * HTTP/1.1\n"} {
		for i := range len(full) {
			p := full[:i]
			v := New().Detect([]byte(p), protocols.Ports{}).Verdict
			if v == protocols.NoMatch {
				t.Errorf("Detect(%q) = NoMatch for a prefix of %q", p, full)
			}
		}
	}
}
