package access

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	authzclient "k8s.io/client-go/kubernetes/typed/authorization/v1"
)

// The resource RBAC grants reading traffic on: `get traffic` in a
// namespace shows its entries; at cluster scope, every entry.
const (
	Group    = "sonde.dev"
	Version  = "v1alpha1"
	Resource = "traffic"
	Verb     = "get"
)

// Cache bounds. Answers are kept briefly, as the kube-apiserver's own
// webhook authorizer does, so that a revoked binding takes effect within a
// minute and a granted one within seconds.
const (
	allowedTTL = time.Minute
	deniedTTL  = 10 * time.Second
	// maxCached bounds the answers kept; when full the cache starts over.
	maxCached = 10_000
)

// Checker answers whether a user may see a namespace's traffic ("" is
// cluster scope).
type Checker interface {
	Allowed(ctx context.Context, u *User, namespace string) (bool, error)
}

// Reviewer is a Checker that asks the cluster by SubjectAccessReview.
type Reviewer struct {
	sar authzclient.SubjectAccessReviewInterface
	now func() time.Time

	mu    sync.Mutex
	cache map[reviewKey]answer

	asked, flushed atomic.Uint64
}

// Stats are the reviews sent to the cluster, and the times the cache was
// full and started over.
func (r *Reviewer) Stats() (asked, flushed uint64) { return r.asked.Load(), r.flushed.Load() }

type reviewKey struct{ user, namespace string }

type answer struct {
	allowed bool
	until   time.Time
}

// NewReviewer asks through sar (clientset.AuthorizationV1().SubjectAccessReviews()).
func NewReviewer(sar authzclient.SubjectAccessReviewInterface) *Reviewer {
	return &Reviewer{sar: sar, now: time.Now, cache: map[reviewKey]answer{}}
}

// Allowed implements Checker.
func (r *Reviewer) Allowed(ctx context.Context, u *User, namespace string) (bool, error) {
	k := reviewKey{u.key(), namespace}
	now := r.now()
	r.mu.Lock()
	a, ok := r.cache[k]
	r.mu.Unlock()
	if ok && now.Before(a.until) {
		return a.allowed, nil
	}
	spec := authorizationv1.SubjectAccessReviewSpec{User: u.Name, UID: u.UID, Groups: u.Groups,
		ResourceAttributes: &authorizationv1.ResourceAttributes{Group: Group, Version: Version, Resource: Resource, Verb: Verb, Namespace: namespace}}
	if len(u.Extra) > 0 {
		spec.Extra = map[string]authorizationv1.ExtraValue{}
		for k, v := range u.Extra {
			spec.Extra[k] = v
		}
	}
	r.asked.Add(1)
	res, err := r.sar.Create(ctx, &authorizationv1.SubjectAccessReview{Spec: spec}, metav1.CreateOptions{})
	if err != nil {
		return false, fmt.Errorf("asking the cluster whether %s may see traffic in %q: %w", u.Name, namespace, err)
	}
	a = answer{allowed: res.Status.Allowed, until: now.Add(deniedTTL)}
	if a.allowed {
		a.until = now.Add(allowedTTL)
	}
	r.mu.Lock()
	if len(r.cache) >= maxCached {
		r.cache = map[reviewKey]answer{}
		r.flushed.Add(1)
	}
	r.cache[k] = a
	r.mu.Unlock()
	return a.allowed, nil
}
