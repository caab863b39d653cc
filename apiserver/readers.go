package apiserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/sondehq/sonde/apiserver/access"
)

// Access makes a hub in a cluster an aggregated API server (see package
// access): readers come through the kube-apiserver, under the path
//
//	/apis/sonde.dev/v1alpha1/namespaces/{namespace}/traffic/{name}/proxy/...
//
// (RBAC: get traffic/proxy in that namespace), and see the entries of the
// namespaces where RBAC lets them get traffic.
type Access struct {
	FrontProxy *access.FrontProxy
	Checker    access.Checker
}

// reviewCounter is a Checker that counts what it asks (access.Reviewer).
type reviewCounter interface {
	Stats() (asked, flushed uint64)
}

// reviewStats returns the Checker's counts, when it keeps them.
func (a *Access) reviewStats() (reviewCounter, bool) {
	if a == nil {
		return nil, false
	}
	rc, ok := a.Checker.(reviewCounter)
	return rc, ok
}

// AggregatedPrefix starts every path the kube-apiserver proxies to the hub.
const AggregatedPrefix = "/apis/" + access.Group + "/" + access.Version

// ProxyPath is the path, under the kube-apiserver, of a hub's read API and
// UI as reached through namespace ns.
func ProxyPath(ns, name string) string {
	return AggregatedPrefix + "/namespaces/" + ns + "/" + access.Resource + "/" + name + "/proxy"
}

// withheldHeader carries the count of withheld entries where the body has
// no room for it (HAR exports).
const withheldHeader = "Sonde-Withheld"

type scopeKey struct{}

// readerScope is the request's reader's scope; nil where readers are not
// told apart (a hub without Access).
func readerScope(r *http.Request) *access.Scope {
	sc, _ := r.Context().Value(scopeKey{}).(*access.Scope)
	return sc
}

// withheld is how many entries the request's scope refused so far.
func withheld(r *http.Request) uint64 {
	if sc := readerScope(r); sc != nil {
		return sc.Withheld()
	}
	return 0
}

// readerSees reports whether the request's reader may see a served entry.
func readerSees(r *http.Request, entry []byte) bool {
	sc := readerScope(r)
	if sc == nil || sc.All() {
		return true
	}
	var e struct {
		Src, Dst struct {
			Namespace string `json:"namespace"`
		}
	}
	if json.Unmarshal(entry, &e) != nil {
		return false
	}
	return sc.SeesNamespace(e.Src.Namespace) || sc.SeesNamespace(e.Dst.Namespace)
}

// aggregatedRoutes serves what the kube-apiserver proxies: discovery, and
// the read API and UI under ProxyPath.
func (s *Server) aggregatedRoutes(r chi.Router) {
	reads := chi.NewRouter()
	s.readRoutes(reads)
	r.Group(func(r chi.Router) {
		r.Use(s.authenticate)
		r.Get(AggregatedPrefix, s.discovery)
		r.Get(AggregatedPrefix+"/", s.discovery)
		r.Handle(AggregatedPrefix+"/namespaces/{namespace}/"+access.Resource+"/{name}/proxy", s.throughNamespace(reads))
		r.Handle(AggregatedPrefix+"/namespaces/{namespace}/"+access.Resource+"/{name}/proxy/*", s.throughNamespace(reads))
	})
	// Anything else a reader asks for directly is refused with the way in.
	r.HandleFunc("/*", func(w http.ResponseWriter, r *http.Request) {
		s.metrics.readerRefused.WithLabelValues("direct").Inc()
		writeError(w, http.StatusUnauthorized, "this hub answers readers only through the Kubernetes API: run 'sonde proxy' (or 'sonde tap'), which uses your kubeconfig's credentials")
	})
}

type userKey struct{}

// authenticate believes the kube-apiserver's word on the user, and no one
// else's.
func (s *Server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, err := s.cfg.Access.FrontProxy.Authenticate(r)
		if err != nil {
			reason := "certificate"
			if errors.Is(err, access.ErrNoUser) {
				reason = "user"
			}
			s.metrics.readerRefused.WithLabelValues(reason).Inc()
			writeError(w, http.StatusUnauthorized, err.Error())
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), userKey{}, u)))
	})
}

// throughNamespace serves reads for a user who came through a namespace
// they may see traffic in: the request, with the prefix taken off, goes to
// reads with the user's scope in its context.
func (s *Server) throughNamespace(reads http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u := r.Context().Value(userKey{}).(*access.User)
		ns := chi.URLParam(r, "namespace")
		sc, err := access.NewScope(r.Context(), s.cfg.Access.Checker, u)
		if err != nil {
			s.log.Warn("asking the cluster about a reader failed", "user", u.Name, "err", err)
			writeError(w, http.StatusServiceUnavailable, err.Error())
			return
		}
		if !sc.SeesNamespace(ns) {
			s.metrics.readerRefused.WithLabelValues("forbidden").Inc()
			msg := fmt.Sprintf("%s may not see traffic in namespace %q (RBAC: get %s.%s there)", u.Name, ns, access.Resource, access.Group)
			if err := sc.Err(); err != nil {
				msg = err.Error()
			}
			writeError(w, http.StatusForbidden, msg)
			return
		}
		rest := "/" + chi.URLParam(r, "*")
		r2 := r.Clone(context.WithValue(r.Context(), scopeKey{}, sc))
		r2.URL.Path, r2.URL.RawPath = rest, ""
		// The read routes are a router of their own, routed afresh on the
		// path without the prefix.
		r2 = r2.WithContext(context.WithValue(r2.Context(), chi.RouteCtxKey, chi.NewRouteContext()))
		reads.ServeHTTP(w, r2)
	})
}

// discovery answers the kube-apiserver's questions about the group version:
// one namespaced resource, traffic, whose proxy subresource the read API
// and UI are under.
func (s *Server) discovery(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"kind":         "APIResourceList",
		"apiVersion":   "v1",
		"groupVersion": access.Group + "/" + access.Version,
		"resources": []map[string]any{
			{"name": access.Resource, "singularName": access.Resource, "namespaced": true, "kind": "Traffic", "verbs": []string{}},
			{"name": access.Resource + "/proxy", "singularName": "", "namespaced": true, "kind": "Traffic", "verbs": []string{"get"}},
		},
	})
}
