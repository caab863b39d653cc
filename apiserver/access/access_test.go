package access

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/sondehq/sonde/protocols"
	"github.com/sondehq/sonde/protocols/wire"
)

// issuer signs client certificates under a CA of its own.
type issuer struct {
	ca  *x509.Certificate
	key *ecdsa.PrivateKey
}

func newIssuer(t *testing.T) *issuer {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ca"}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(der)
	return &issuer{ca: ca, key: key}
}

func (is *issuer) client(t *testing.T, cn string, usage x509.ExtKeyUsage) *x509.Certificate {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: cn}, ExtKeyUsage: []x509.ExtKeyUsage{usage},
		KeyUsage: x509.KeyUsageDigitalSignature, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, is.ca, &key.PublicKey, is.key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return c
}

func (is *issuer) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(is.ca)
	return p
}

func TestFrontProxyAuthenticate(t *testing.T) {
	proxyCA, otherCA := newIssuer(t), newIssuer(t)
	fp := NewFrontProxy(FrontProxyConfig{CAs: proxyCA.pool(), AllowedNames: []string{"front-proxy-client"},
		UserHeaders: []string{"X-Remote-User"}, UIDHeaders: []string{"X-Remote-Uid"}, GroupHeaders: []string{"X-Remote-Group"},
		ExtraPrefixes: []string{"X-Remote-Extra-"}})
	request := func(cert *x509.Certificate, headers ...string) *http.Request {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		if cert != nil {
			r.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{cert}}
		}
		for i := 0; i < len(headers); i += 2 {
			r.Header.Add(headers[i], headers[i+1])
		}
		return r
	}
	good := proxyCA.client(t, "front-proxy-client", x509.ExtKeyUsageClientAuth)
	u, err := fp.Authenticate(request(good, "X-Remote-User", "alice", "X-Remote-Uid", "42", "X-Remote-Group", "dev",
		"X-Remote-Group", "system:authenticated", "X-Remote-Extra-Scopes%2fread", "a", "x-remote-extra-scopes%2fread", "b"))
	if err != nil {
		t.Fatal(err)
	}
	if u.Name != "alice" || u.UID != "42" || len(u.Groups) != 2 || len(u.Extra["scopes/read"]) != 2 {
		t.Errorf("user: %+v", u)
	}
	for _, tt := range []struct {
		name string
		r    *http.Request
		want error
	}{
		{"no certificate, forged header", request(nil, "X-Remote-User", "system:admin"), ErrNoCertificate},
		{"another CA's certificate", request(otherCA.client(t, "front-proxy-client", x509.ExtKeyUsageClientAuth), "X-Remote-User", "system:admin"), ErrUntrusted},
		{"the CA's certificate of another name", request(proxyCA.client(t, "someone", x509.ExtKeyUsageClientAuth), "X-Remote-User", "system:admin"), ErrUntrusted},
		{"a serving certificate", request(proxyCA.client(t, "front-proxy-client", x509.ExtKeyUsageServerAuth), "X-Remote-User", "system:admin"), ErrUntrusted},
		{"no user", request(good), ErrNoUser},
	} {
		if _, err := fp.Authenticate(tt.r); !errors.Is(err, tt.want) {
			t.Errorf("%s: %v, want %v", tt.name, err, tt.want)
		}
	}
}

// checker allows the namespaces it holds, fails for "broken", and counts.
type checker struct {
	allowed map[string]bool
	asked   int
}

func (c *checker) Allowed(_ context.Context, _ *User, ns string) (bool, error) {
	c.asked++
	if ns == "broken" {
		return false, errors.New("the API server is away")
	}
	return c.allowed[ns], nil
}

func TestScopeSees(t *testing.T) {
	c := &checker{allowed: map[string]bool{"a": true}}
	sc, err := NewScope(t.Context(), c, &User{Name: "alice"})
	if err != nil || sc.All() {
		t.Fatalf("scope: %v, all %v", err, sc != nil && sc.All())
	}
	index := func(srcNS, dstNS string) *wire.Index {
		var x wire.Index
		x.Reset(wire.AppendIndex(nil, &protocols.Entry{Protocol: protocols.HTTP1,
			Src: protocols.Endpoint{IP: netip.MustParseAddr("10.0.0.1"), Namespace: srcNS},
			Dst: protocols.Endpoint{IP: netip.MustParseAddr("10.0.0.2"), Namespace: dstNS}}))
		return &x
	}
	for _, tt := range []struct {
		src, dst string
		want     bool
	}{{"a", "a", true}, {"b", "a", true}, {"a", "", true}, {"b", "b", false}, {"", "", false}, {"broken", "b", false}} {
		if got := sc.Sees(index(tt.src, tt.dst)); got != tt.want {
			t.Errorf("%q → %q: %v, want %v", tt.src, tt.dst, got, tt.want)
		}
	}
	if sc.Withheld() != 3 || sc.Err() == nil {
		t.Errorf("withheld %d, err %v; want 3 and the failure", sc.Withheld(), sc.Err())
	}
	// Each namespace is asked about once per request, and no more than
	// maxNamespaces of them: a hostile agent's invented namespaces cost
	// the cluster nothing beyond that.
	asked := c.asked
	sc.Sees(index("a", "b"))
	sc.Sees(index("b", "b"))
	if c.asked != asked {
		t.Errorf("asked %d more times about namespaces already asked about", c.asked-asked)
	}
	for i := range maxNamespaces + 100 {
		sc.SeesNamespace("invented-" + strconv.Itoa(i))
	}
	if c.asked > maxNamespaces+1 {
		t.Errorf("asked the cluster %d times, want at most %d", c.asked, maxNamespaces+1)
	}
}
