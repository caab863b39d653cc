package emit

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"
)

// CAFileTLS is the TLS configuration of an agent that trusts the hub's
// certificate by the CA certificates of a PEM file (in a cluster, the CA
// the hub publishes, mounted from a ConfigMap). The file is read again at
// a handshake once it changed, so that an agent started before the hub made
// its certificate, or across a rotation, connects without a restart.
func CAFileTLS(path string) *tls.Config {
	ca := &caFile{path: path}
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		// Go's own verification takes its roots once; VerifyConnection
		// below verifies the chain and the name against the file's
		// current roots instead, and a handshake it refuses fails.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			roots, err := ca.pool()
			if err != nil {
				return err
			}
			if len(cs.PeerCertificates) == 0 {
				return errors.New("the hub presented no certificate")
			}
			opts := x509.VerifyOptions{Roots: roots, DNSName: cs.ServerName, Intermediates: x509.NewCertPool()}
			for _, c := range cs.PeerCertificates[1:] {
				opts.Intermediates.AddCert(c)
			}
			if _, err := cs.PeerCertificates[0].Verify(opts); err != nil {
				return fmt.Errorf("the hub's certificate is not one %s vouches for: %w", path, err)
			}
			return nil
		},
	}
}

// caFile is a PEM file of CA certificates, parsed again when it changes.
type caFile struct {
	path string

	mu    sync.Mutex
	mod   time.Time
	size  int64
	roots *x509.CertPool
}

func (f *caFile) pool() (*x509.CertPool, error) {
	st, err := os.Stat(f.path)
	if err != nil {
		return nil, fmt.Errorf("the hub's CA: %w", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.roots != nil && st.ModTime().Equal(f.mod) && st.Size() == f.size {
		return f.roots, nil
	}
	b, err := os.ReadFile(f.path)
	if err != nil {
		return nil, fmt.Errorf("the hub's CA: %w", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("the hub's CA file %s holds no PEM certificate", f.path)
	}
	f.roots, f.mod, f.size = roots, st.ModTime(), st.Size()
	return roots, nil
}
