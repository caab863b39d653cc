package apiserver

import (
	"net/http"
	"net/url"
	"runtime/debug"
	"strings"
	"time"

	"github.com/go-chi/chi/v5/middleware"
)

// logRequests writes one structured line per request.
func (s *Server) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ww := middleware.NewWrapResponseWriter(w, r.ProtoMajor)
		// The ID goes back to the client, so that a user's report can name
		// the log line.
		ww.Header().Set(middleware.RequestIDHeader, middleware.GetReqID(r.Context()))
		t0 := time.Now()
		next.ServeHTTP(ww, r)
		s.log.Info("request", "id", middleware.GetReqID(r.Context()), "method", r.Method, "path", r.URL.Path,
			"status", ww.Status(), "bytes", ww.BytesWritten(), "duration", time.Since(t0), "remote", r.RemoteAddr)
	})
}

// recoverPanics turns a handler's panic into a 500 and a log line with the
// stack, and keeps the hub running.
func (s *Server) recoverPanics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.log.Error("handler panicked", "id", middleware.GetReqID(r.Context()), "panic", v, "stack", string(debug.Stack()))
			s.metrics.panics.Inc()
			if r.Header.Get("Connection") != "Upgrade" {
				writeError(w, http.StatusInternalServerError, "internal error")
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// checkOrigin allows websockets from non-browser clients (no Origin), from
// the hub's own host, and from the allow-list. Never from anywhere.
func checkOrigin(allowed []string) func(*http.Request) bool {
	return func(r *http.Request) bool {
		origin := r.Header.Get("Origin")
		if origin == "" {
			return true
		}
		u, err := url.Parse(origin)
		if err != nil {
			return false
		}
		if strings.EqualFold(u.Host, r.Host) {
			return true
		}
		for _, a := range allowed {
			if strings.EqualFold(strings.TrimSuffix(a, "/"), origin) {
				return true
			}
		}
		return false
	}
}
