package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/sondehq/sonde/apiserver"
	hubaccess "github.com/sondehq/sonde/apiserver/access"
)

// frontProxyRefresh is how often the hub reads the API server's
// front-proxy settings again (its CA rotates).
const frontProxyRefresh = 5 * time.Minute

// kubernetesAccess makes the hub of `hub --kubernetes-access` an aggregated
// API server: TLS under certFile and keyFile, readers authenticated by the
// API server and authorized by RBAC (see package access).
func kubernetesAccess(ctx context.Context, kubeconfig, certFile, keyFile string, log *slog.Logger) (*apiserver.Access, *tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, nil, fmt.Errorf("--tls-cert-file %s, --tls-key-file %s: %w", certFile, keyFile, err)
	}
	rc, err := clusterConfig(kubeconfig, "sonde-hub/"+version)
	if err != nil {
		return nil, nil, err
	}
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, nil, fmt.Errorf("connecting to the cluster: %w", err)
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

// loopback reports whether a listen address serves this machine alone.
func loopback(listen string) bool {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
