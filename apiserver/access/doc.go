// Package access decides who may read what from a hub in a cluster.
//
// The hub is an aggregated API server behind the kube-apiserver (APIService
// v1alpha1.sonde.dev). Users reach it as they reach any Kubernetes API, with
// whatever credentials kubectl accepts (tokens, client certificates, exec
// plugins, OIDC): the kube-apiserver authenticates them, checks RBAC on the
// path (get traffic/proxy in the namespace they come through), and proxies
// the request to the hub under its front-proxy client certificate, with the
// user's name, groups and extras in X-Remote-* headers. Why this and not
// TokenReview: a TokenReview can only check bearer tokens, so users of
// client certificates or of exec plugins that yield certificates could not
// be told apart; the aggregation layer accepts them all, and the hub never
// sees a user's credential.
//
//   - FrontProxy authenticates those requests: the client certificate must
//     chain to the requestheader CA the kube-apiserver publishes in
//     kube-system/extension-apiserver-authentication, and carry an allowed
//     name; only then are the headers believed.
//   - Reviewer asks the cluster, by SubjectAccessReview, whether a user may
//     get traffic (group sonde.dev) in a namespace, and caches the answers
//     for a short time.
//   - Scope is one request's view: the namespaces its user may see, asked
//     lazily as entries of each namespace come up, and how many entries it
//     withheld.
//
// An entry belongs to the namespaces of its two ends: a user sees it when
// allowed in either. An entry with no namespace at either end (host
// network, addresses outside the cluster) needs traffic at cluster scope.
//
// The package verifies certificates and headers itself rather than through
// k8s.io/apiserver's authenticators: that module would bring a whole API
// server framework into the hub for an x509 check and three headers.
package access
