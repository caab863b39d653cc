package access

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// User is who the kube-apiserver says made a request.
type User struct {
	Name   string
	UID    string
	Groups []string
	Extra  map[string][]string
}

// key identifies a user for caches: the same name with other groups is
// another user as far as RBAC is concerned.
func (u *User) key() string {
	b, _ := json.Marshal(u)
	return string(b)
}

// Errors Authenticate returns; each is one sentence for the reader.
var (
	ErrNoCertificate = errors.New("this hub answers readers only through the Kubernetes API (kubectl's credentials, through 'sonde proxy' or 'sonde tap'); the request came without the API server's client certificate")
	ErrUntrusted     = errors.New("the client certificate is not the Kubernetes API server's front-proxy certificate")
	ErrNoUser        = errors.New("the API server's request names no user")
)

// FrontProxyConfig is what the kube-apiserver publishes about its
// front-proxy: the CA of its client certificate, the names that
// certificate may carry (any, when empty), and the headers the user is in.
type FrontProxyConfig struct {
	CAs           *x509.CertPool
	AllowedNames  []string
	UserHeaders   []string
	UIDHeaders    []string
	GroupHeaders  []string
	ExtraPrefixes []string
}

// FrontProxy authenticates requests the kube-apiserver proxies to the hub.
// Its configuration can be replaced while it serves (the CA rotates).
type FrontProxy struct {
	mu  sync.RWMutex
	cfg FrontProxyConfig
}

// NewFrontProxy returns an authenticator for cfg.
func NewFrontProxy(cfg FrontProxyConfig) *FrontProxy { return &FrontProxy{cfg: cfg} }

// Set replaces the configuration.
func (f *FrontProxy) Set(cfg FrontProxyConfig) {
	f.mu.Lock()
	f.cfg = cfg
	f.mu.Unlock()
}

// Authenticate returns the user a proxied request is made for.
func (f *FrontProxy) Authenticate(r *http.Request) (*User, error) {
	f.mu.RLock()
	cfg := f.cfg
	f.mu.RUnlock()
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return nil, ErrNoCertificate
	}
	certs := r.TLS.PeerCertificates
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	if cfg.CAs == nil {
		return nil, ErrUntrusted
	}
	if _, err := certs[0].Verify(x509.VerifyOptions{Roots: cfg.CAs, Intermediates: inter,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUntrusted, err)
	}
	if len(cfg.AllowedNames) > 0 && !slices.Contains(cfg.AllowedNames, certs[0].Subject.CommonName) {
		return nil, fmt.Errorf("%w: it is %q's", ErrUntrusted, certs[0].Subject.CommonName)
	}
	u := &User{Name: first(r.Header, cfg.UserHeaders), UID: first(r.Header, cfg.UIDHeaders)}
	if u.Name == "" {
		return nil, ErrNoUser
	}
	for _, h := range cfg.GroupHeaders {
		u.Groups = append(u.Groups, r.Header.Values(h)...)
	}
	for _, prefix := range cfg.ExtraPrefixes {
		for name, vs := range r.Header {
			if len(name) < len(prefix) || !strings.EqualFold(name[:len(prefix)], prefix) {
				continue
			}
			// As the kube-apiserver writes them: lower case, %-escaped.
			k := strings.ToLower(name[len(prefix):])
			if dk, err := url.PathUnescape(k); err == nil {
				k = dk
			}
			if u.Extra == nil {
				u.Extra = map[string][]string{}
			}
			u.Extra[k] = append(u.Extra[k], vs...)
		}
	}
	return u, nil
}

func first(h http.Header, names []string) string {
	for _, n := range names {
		if v := h.Get(n); v != "" {
			return v
		}
	}
	return ""
}

// The ConfigMap in which the kube-apiserver publishes its front-proxy
// configuration, readable through the extension-apiserver-authentication-reader
// Role.
const (
	authConfigNamespace = "kube-system"
	authConfigName      = "extension-apiserver-authentication"
)

// LoadFrontProxyConfig reads the kube-apiserver's front-proxy configuration
// from the cluster.
func LoadFrontProxyConfig(ctx context.Context, cs kubernetes.Interface) (FrontProxyConfig, error) {
	cm, err := cs.CoreV1().ConfigMaps(authConfigNamespace).Get(ctx, authConfigName, metav1.GetOptions{})
	if err != nil {
		return FrontProxyConfig{}, fmt.Errorf("reading the API server's front-proxy settings (%s/%s): %w", authConfigNamespace, authConfigName, err)
	}
	ca := cm.Data["requestheader-client-ca-file"]
	if ca == "" {
		return FrontProxyConfig{}, fmt.Errorf("the API server has no front-proxy CA (%s/%s has no requestheader-client-ca-file): start it with --requestheader-client-ca-file and --proxy-client-cert-file to serve aggregated APIs", authConfigNamespace, authConfigName)
	}
	cfg := FrontProxyConfig{CAs: x509.NewCertPool()}
	if !cfg.CAs.AppendCertsFromPEM([]byte(ca)) {
		return FrontProxyConfig{}, errors.New("the API server's front-proxy CA holds no certificate")
	}
	for key, dst := range map[string]*[]string{
		"requestheader-allowed-names":        &cfg.AllowedNames,
		"requestheader-username-headers":     &cfg.UserHeaders,
		"requestheader-uid-headers":          &cfg.UIDHeaders,
		"requestheader-group-headers":        &cfg.GroupHeaders,
		"requestheader-extra-headers-prefix": &cfg.ExtraPrefixes,
	} {
		if v := cm.Data[key]; v != "" {
			if err := json.Unmarshal([]byte(v), dst); err != nil {
				return FrontProxyConfig{}, fmt.Errorf("%s/%s: %s: %w", authConfigNamespace, authConfigName, key, err)
			}
		}
	}
	if len(cfg.UserHeaders) == 0 {
		return FrontProxyConfig{}, fmt.Errorf("%s/%s names no user header (requestheader-username-headers)", authConfigNamespace, authConfigName)
	}
	return cfg, nil
}
