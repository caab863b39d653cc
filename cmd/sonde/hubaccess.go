package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/sondehq/sonde/apiserver"
	hubaccess "github.com/sondehq/sonde/apiserver/access"
	"github.com/sondehq/sonde/deploy"
)

// frontProxyRefresh is how often the hub reads the API server's
// front-proxy settings again (its CA rotates).
const frontProxyRefresh = 5 * time.Minute

// kubernetesAccess makes the hub of `hub --kubernetes-access` an aggregated
// API server: TLS under certFile and keyFile, readers authenticated by the
// API server and authorized by RBAC (see package access).
func kubernetesAccess(ctx context.Context, f *hubFlags, log *slog.Logger) (*apiserver.Access, *tls.Config, error) {
	rc, err := clusterConfig(f.kubeconfig, "sonde-hub/"+version)
	if err != nil {
		return nil, nil, err
	}
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, nil, fmt.Errorf("connecting to the cluster: %w", err)
	}
	var cert tls.Certificate
	if f.tlsSecret != "" {
		ns := f.namespace
		if ns == "" {
			b, err := os.ReadFile(serviceAccountNamespace)
			if err != nil {
				return nil, nil, fmt.Errorf("--tls-secret: say the hub's namespace with --namespace (outside a pod there is no %s)", serviceAccountNamespace)
			}
			ns = strings.TrimSpace(string(b))
		}
		if cert, err = hubaccess.EnsureServingCert(ctx, cs, hubaccess.CertSetup{Namespace: ns, Secret: f.tlsSecret,
			ConfigMap: deploy.HubCAConfigMap, APIService: deploy.APIService, Service: deploy.HubName,
			Labels: map[string]string{deploy.LabelPartOf: deploy.PartOf}}); err != nil {
			return nil, nil, err
		}
	} else if cert, err = tls.LoadX509KeyPair(f.tlsCert, f.tlsKey); err != nil {
		return nil, nil, fmt.Errorf("--tls-cert-file %s, --tls-key-file %s: %w", f.tlsCert, f.tlsKey, err)
	}
	cfg, err := hubaccess.LoadFrontProxyConfig(ctx, cs)
	if err != nil {
		return nil, nil, err
	}
	fp := hubaccess.NewFrontProxy(cfg)
	go func() {
		t := time.NewTicker(frontProxyRefresh)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			cfg, err := hubaccess.LoadFrontProxyConfig(ctx, cs)
			if err != nil {
				log.Warn("reading the API server's front-proxy settings again failed; keeping the last ones", "err", err)
				continue
			}
			fp.Set(cfg)
		}
	}()
	return &apiserver.Access{FrontProxy: fp, Checker: hubaccess.NewReviewer(cs.AuthorizationV1().SubjectAccessReviews())},
		&tls.Config{Certificates: []tls.Certificate{cert}, ClientAuth: tls.RequestClientCert, MinVersion: tls.VersionTLS12}, nil
}

// serviceAccountNamespace holds the namespace of the pod a process runs in.
const serviceAccountNamespace = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"

// loopback reports whether a listen address serves this machine alone.
func loopback(listen string) bool {
	host, _, err := net.SplitHostPort(listen)
	return err == nil && loopbackHost(host)
}

// loopbackHost reports whether a host name or address is this machine's
// loopback.
func loopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
