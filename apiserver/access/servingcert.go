package access

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
)

// Serving certificate lifetimes: made for a year, made again at a start
// within a month of its end.
const (
	certValidity = 365 * 24 * time.Hour
	certRenewal  = 30 * 24 * time.Hour
)

// CAKey is the key of the agents' ConfigMap that holds the hub's CA.
const CAKey = "ca.crt"

// CertSetup names where a hub in a cluster keeps its serving certificate
// and whom it tells to trust it.
type CertSetup struct {
	// Namespace is the hub's; Secret (kubernetes.io/tls) holds the
	// certificate and its key there, and ConfigMap its CA for the agents.
	Namespace, Secret, ConfigMap string
	// APIService is the one the kube-apiserver reaches the hub by
	// ("v1alpha1.sonde.dev"); its caBundle is set to the CA.
	APIService string
	// Service is the hub's Service: the certificate names it.
	Service string
	// Labels go on the Secret and the ConfigMap the hub makes, so that
	// the install's own cleanup finds them.
	Labels map[string]string
}

// EnsureServingCert returns the hub's serving certificate: the Secret's,
// or, on a first start (or a month before it ends), a new self-signed one
// stored there. So the install's files hold no key, yet the hub keeps one
// certificate across restarts, and agents and the kube-apiserver, once
// told, trust it for a year. Every start tells them again: the
// APIService's caBundle and the agents' ConfigMap.
func EnsureServingCert(ctx context.Context, cs kubernetes.Interface, c CertSetup) (tls.Certificate, error) {
	names := []string{c.Service + "." + c.Namespace + ".svc", c.Service + "." + c.Namespace, c.Service + "." + c.Namespace + ".svc.cluster.local"}
	secrets := cs.CoreV1().Secrets(c.Namespace)
	sec, err := secrets.Get(ctx, c.Secret, metav1.GetOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return tls.Certificate{}, fmt.Errorf("reading the hub's certificate (secret %s/%s): %w", c.Namespace, c.Secret, err)
	}
	exists := err == nil
	if !exists {
		sec = &corev1.Secret{}
	}
	certPEM, keyPEM := sec.Data[corev1.TLSCertKey], sec.Data[corev1.TLSPrivateKeyKey]
	if !usable(certPEM, keyPEM, names) {
		if certPEM, keyPEM, err = NewServingCert(names, certValidity); err != nil {
			return tls.Certificate{}, err
		}
		fresh := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: c.Secret, Namespace: c.Namespace, Labels: c.Labels},
			Type: corev1.SecretTypeTLS, Data: map[string][]byte{corev1.TLSCertKey: certPEM, corev1.TLSPrivateKeyKey: keyPEM}}
		if !exists {
			_, err = secrets.Create(ctx, fresh, metav1.CreateOptions{})
		} else {
			fresh.ResourceVersion = sec.ResourceVersion
			_, err = secrets.Update(ctx, fresh, metav1.UpdateOptions{})
		}
		if err != nil {
			return tls.Certificate{}, fmt.Errorf("storing the hub's certificate (secret %s/%s): %w", c.Namespace, c.Secret, err)
		}
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, err
	}
	patch, _ := json.Marshal(map[string]any{"spec": map[string]any{"caBundle": certPEM}})
	if err := cs.Discovery().RESTClient().Patch(types.MergePatchType).
		AbsPath("/apis/apiregistration.k8s.io/v1/apiservices", c.APIService).Body(patch).Do(ctx).Error(); err != nil {
		return tls.Certificate{}, fmt.Errorf("telling the API server to trust the hub (APIService %s): %w", c.APIService, err)
	}
	cms := cs.CoreV1().ConfigMaps(c.Namespace)
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: c.ConfigMap, Namespace: c.Namespace, Labels: c.Labels},
		Data: map[string]string{CAKey: string(certPEM)}}
	if old, err := cms.Get(ctx, c.ConfigMap, metav1.GetOptions{}); err == nil {
		if old.Data[CAKey] != string(certPEM) {
			cm.ResourceVersion = old.ResourceVersion
			_, err = cms.Update(ctx, cm, metav1.UpdateOptions{})
		}
		if err != nil {
			return tls.Certificate{}, fmt.Errorf("telling the agents to trust the hub (configmap %s/%s): %w", c.Namespace, c.ConfigMap, err)
		}
	} else if _, err := cms.Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		return tls.Certificate{}, fmt.Errorf("telling the agents to trust the hub (configmap %s/%s): %w", c.Namespace, c.ConfigMap, err)
	}
	return cert, nil
}

// usable reports whether a stored certificate serves names for more than
// certRenewal yet.
func usable(certPEM, keyPEM []byte, names []string) bool {
	if _, err := tls.X509KeyPair(certPEM, keyPEM); err != nil {
		return false
	}
	b, _ := pem.Decode(certPEM)
	if b == nil {
		return false
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil || time.Until(c.NotAfter) < certRenewal {
		return false
	}
	for _, n := range names {
		if !slices.Contains(c.DNSNames, n) {
			return false
		}
	}
	return true
}
