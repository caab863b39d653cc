package apiserver_test

import (
	"crypto/tls"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sondehq/sonde/agent/emit"
	"github.com/sondehq/sonde/apiserver"
	"github.com/sondehq/sonde/apiserver/access"
)

// TestIngestOverTLS: an agent sends to a hub that serves TLS only when the
// hub's certificate chains to the agent's CA file: under another CA it
// sends nothing, and once the file holds the hub's CA (as a ConfigMap
// mount changes under a running agent) the buffered entries arrive
// without a restart.
func TestIngestOverTLS(t *testing.T) {
	certPEM, keyPEM, err := access.NewServingCert([]string{"localhost"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	otherPEM, _, err := access.NewServingCert([]string{"localhost"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	h := startHub(t, apiserver.Config{TLS: &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}}, "127.0.0.1:0")
	caFile := filepath.Join(t.TempDir(), "ca.crt")
	if err := os.WriteFile(caFile, otherPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	url := "https://localhost:" + h.addr[strings.LastIndex(h.addr, ":")+1:]
	s := newSender(t, url, emit.Config{Dialer: emit.NewDialer(emit.CAFileTLS(caFile))})
	const n = 50
	for i := range n {
		s.Send(makeEntry(i, time.Now()))
	}
	time.Sleep(time.Second)
	if st := s.Stats(); st.Acked != 0 {
		t.Fatalf("%d entries acknowledged by a hub whose certificate the agent's CA does not vouch for", st.Acked)
	}
	// The file changes under the running agent; a mount's update can keep
	// the modification time's second, so the size tells it too.
	if err := os.WriteFile(caFile, append(certPEM, '\n'), 0o600); err != nil {
		t.Fatal(err)
	}
	flush(t, s)
	// Read in process: the hub answers TLS only.
	rec := httptest.NewRecorder()
	h.srv.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/v1/entries?limit=1000", nil))
	var p page
	if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil || len(p.Entries) != n {
		t.Errorf("%d entries stored over TLS (%v), want %d", len(p.Entries), err, n)
	}
}
