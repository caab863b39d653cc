package apiserver_test

import (
	"net/http"
	"testing"

	"github.com/sondehq/sonde/apiserver"
)

// TestWindowBounds: a window too short to divide into the timeline's
// buckets, or too long, is a bad request with a sentence, never a panic
// (window=1ns divided the window by zero).
func TestWindowBounds(t *testing.T) {
	h := startHub(t, apiserver.Config{DataDir: t.TempDir(), StorageLimit: 64 << 20}, "127.0.0.1:0")
	for _, path := range []string{"/api/v1/stats", "/api/v1/servicemap"} {
		for _, w := range []string{"1ns", "59ms", "-1m", "200h", "soon"} {
			var e struct {
				Error string `json:"error"`
			}
			if code := h.get(path+"?window="+w, &e); code != http.StatusBadRequest || e.Error == "" {
				t.Errorf("%s?window=%s: %d %q, want 400 with a reason", path, w, code, e.Error)
			}
		}
		if code := h.get(path+"?window=60ms", nil); code != http.StatusOK {
			t.Errorf("%s?window=60ms: %d, want 200", path, code)
		}
	}
}
