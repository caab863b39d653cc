package apiserver

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"strings"
)

// Session makes the hub a local session's: `sonde read --serve` and the
// demo serve on this machine, where any other local user, and any web page
// the user visits (through DNS rebinding), could otherwise read every entry.
// So, as Jupyter does:
//   - every request but /healthz and agents' ingest (which has its own token)
//     must carry Token: as ?token=, as "Authorization: Bearer", or as the
//     cookie the hub sets when a page is opened with ?token= (which is how
//     the page's own requests and websockets carry it);
//   - Host must name this machine: an IP address, "localhost", or one of
//     HostNames. A rebinding attack comes under the attacker's own name.
type Session struct {
	Token     []byte
	HostNames []string
}

// NewSessionToken makes a session's secret: 32 random bytes, in hex so that
// it can stand in a URL as it is.
func NewSessionToken() ([]byte, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, fmt.Errorf("making the session's token: %w", err)
	}
	return []byte(hex.EncodeToString(b[:])), nil
}

// SessionURL is the address a user opens: base with the session's token.
func SessionURL(base string, token []byte) string {
	return strings.TrimSuffix(base, "/") + "/?token=" + string(token)
}

const (
	// sessionCookie carries the token for the page's own requests.
	sessionCookie = "sonde_session"
	// tokenParam is the query parameter a URL carries the token in.
	tokenParam = "token"
)

// guardSession refuses requests without the session's token or with a
// Host that does not name this machine.
func (s *Server) guardSession(next http.Handler) http.Handler {
	return s.cfg.Session.guard(func(reason string) { s.metrics.sessionRefused.WithLabelValues(reason).Inc() })(next)
}

// guard returns middleware that refuses requests without the session's
// token or with a Host that does not name this machine, telling refused
// why ("host" or "token").
func (sess *Session) guard(refused func(reason string)) func(http.Handler) http.Handler {
	want := sha256.Sum256(sess.Token)
	valid := func(got string) bool {
		if got == "" {
			return false
		}
		h := sha256.Sum256([]byte(got))
		return subtle.ConstantTimeCompare(h[:], want[:]) == 1
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !sess.localHost(r.Host) {
				refused("host")
				writeError(w, http.StatusMisdirectedRequest, fmt.Sprintf("this Sonde session serves only this machine's own addresses, not %q", r.Host))
				return
			}
			fromURL := r.URL.Query().Get(tokenParam)
			bearer, _ := bearerToken(r)
			var fromCookie string
			if c, err := r.Cookie(sessionCookie); err == nil {
				fromCookie = c.Value
			}
			switch {
			case valid(fromURL):
				// The page keeps the token as a cookie the browser sends back
				// only to this origin, and never to scripts.
				http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: fromURL, Path: "/",
					HttpOnly: true, SameSite: http.SameSiteStrictMode})
			case valid(bearer), valid(fromCookie):
			default:
				refused("token")
				writeError(w, http.StatusUnauthorized, "this Sonde session needs its token: open the address sonde printed when it started (it ends in ?token=...)")
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// localHost reports whether a Host header names this machine.
func (sess *Session) localHost(host string) bool {
	name := host
	if h, _, err := net.SplitHostPort(host); err == nil {
		name = h
	}
	name = strings.TrimSuffix(strings.TrimPrefix(name, "["), "]")
	if net.ParseIP(name) != nil || strings.EqualFold(name, "localhost") {
		return true
	}
	for _, n := range sess.HostNames {
		if strings.EqualFold(name, n) {
			return true
		}
	}
	return false
}
