package apiserver

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"

	"k8s.io/client-go/rest"

	"github.com/sondehq/sonde/protocols/wire"
)

// NewUserProxy serves a hub that is behind the Kubernetes API (see Access)
// on the user's own machine, as `kubectl proxy` does: every request goes to
// the kube-apiserver under the user's own credentials (whatever cfg holds:
// a token, a client certificate, an exec plugin), and the cluster decides
// what the user sees. Since those credentials would otherwise serve anyone
// on this machine, and any web page through DNS rebinding, the proxy is a
// Session's: it wants the session's token and a Host naming this machine,
// and refuses websockets from pages of other origins. Neither the token
// nor the browser's cookies and credentials go on to the cluster.
func NewUserProxy(cfg *rest.Config, namespace, hub string, sess *Session) (http.Handler, error) {
	if sess == nil || len(sess.Token) < wire.MinTokenBytes {
		return nil, fmt.Errorf("a user proxy needs a session with a token of at least %d bytes", wire.MinTokenBytes)
	}
	if namespace == "" || hub == "" {
		return nil, errors.New("a user proxy needs the namespace to come through and the hub's name")
	}
	c := rest.CopyConfig(cfg)
	// Websockets upgrade HTTP/1.1 connections only.
	c.TLSClientConfig.NextProtos = []string{"http/1.1"}
	rt, err := rest.TransportFor(c)
	if err != nil {
		return nil, fmt.Errorf("connecting to the cluster: %w", err)
	}
	base, err := url.Parse(c.Host)
	if err != nil || base.Host == "" {
		return nil, fmt.Errorf("the cluster's address %q is not a URL", c.Host)
	}
	prefix := strings.TrimSuffix(base.Path, "/") + ProxyPath(namespace, hub)
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme, pr.Out.URL.Host, pr.Out.Host = base.Scheme, base.Host, base.Host
			pr.Out.URL.Path, pr.Out.URL.RawPath = prefix+pr.In.URL.Path, ""
			q := pr.In.URL.Query()
			q.Del(tokenParam)
			pr.Out.URL.RawQuery = q.Encode()
			for _, h := range []string{"Authorization", "Cookie", "Origin"} {
				pr.Out.Header.Del(h)
			}
		},
		Transport: rt,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			writeError(w, http.StatusBadGateway, fmt.Sprintf("the Kubernetes API server at %s did not answer: %v", base.Host, err))
		},
	}
	sameOrigin := checkOrigin(nil)
	return sess.guard(func(string) {})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !sameOrigin(r) {
			writeError(w, http.StatusForbidden, "a page of another site may not use this Sonde session")
			return
		}
		rp.ServeHTTP(w, r)
	})), nil
}
