package apiserver

import (
	"errors"
	"net/http"
	"time"

	"github.com/sondehq/sonde/apiserver/internal/store"
)

// Failed is closed when the store fails for good (a storage error pebble
// cannot continue from): the hub takes nothing more, /healthz fails, and
// the process should stop serving and exit non-zero (Err says why), to be
// restarted, while the agents keep what they have not had acknowledged.
func (s *Server) Failed() <-chan struct{} { return s.store.Failed() }

// Err returns why the store failed, nil while it works.
func (s *Server) Err() error { return s.store.Err() }

// health answers /healthz: 200 while the hub stores what it is sent; 503,
// with a sentence, when its store has failed or its disk is full (ingest
// stops until space returns, and agents keep buffering).
func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	st := s.store.Stats()
	up := int(time.Since(s.started).Seconds())
	if err := s.store.Health(); err != nil {
		why := "the store cannot take entries: " + err.Error()
		switch {
		case errors.Is(err, store.ErrFailed):
			why = "the store failed and the hub must restart: " + err.Error()
		case errors.Is(err, store.ErrDiskFull):
			why = "ingest is paused until space returns (agents keep their entries): " + err.Error()
		}
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"ok": false, "error": why, "stored": st.Count, "uptime_s": up})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"ok": true, "stored": st.Count, "uptime_s": up})
}
