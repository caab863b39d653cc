package web_test

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sondehq/sonde/web"
)

func TestHandler(t *testing.T) {
	assets, err := filepath.Glob("dist/assets/app-*.js")
	if err != nil || len(assets) != 1 {
		t.Fatalf("want one built app-*.js in dist/assets, have %v (run `make web`)", assets)
	}
	js := "/assets/" + filepath.Base(assets[0])
	index, err := os.ReadFile("dist/index.html")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(index), js) {
		t.Fatalf("dist/index.html does not load %s", js)
	}
	h := web.Handler()
	tests := []struct {
		name, method, path  string
		header              map[string]string
		wantCode            int
		wantType, wantCache string
		wantBody            string
	}{
		{name: "root", method: "GET", path: "/", wantCode: 200, wantType: "text/html; charset=utf-8", wantCache: "no-cache", wantBody: js},
		{name: "app route falls back to index", method: "GET", path: "/traffic?q=redis", wantCode: 200, wantType: "text/html; charset=utf-8", wantCache: "no-cache", wantBody: js},
		{name: "index by name", method: "GET", path: "/index.html", wantCode: 200, wantType: "text/html; charset=utf-8", wantCache: "no-cache"},
		{name: "hashed asset", method: "GET", path: js, wantCode: 200, wantType: "text/javascript; charset=utf-8", wantCache: "public, max-age=31536000, immutable"},
		{name: "head", method: "HEAD", path: js, wantCode: 200, wantType: "text/javascript; charset=utf-8"},
		{name: "missing asset is not index", method: "GET", path: "/assets/app-OLD.js", wantCode: 404},
		{name: "unknown api path", method: "GET", path: "/api/v2/entries", wantCode: 404},
		{name: "dot segments stay inside", method: "GET", path: "/assets/../../web.go", wantCode: 200, wantType: "text/html; charset=utf-8"},
		{name: "post", method: "POST", path: "/", wantCode: 405},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			req := httptest.NewRequest(tt.method, tt.path, nil)
			for k, v := range tt.header {
				req.Header.Set(k, v)
			}
			h.ServeHTTP(rec, req)
			if rec.Code != tt.wantCode {
				t.Fatalf("code = %d, want %d", rec.Code, tt.wantCode)
			}
			if tt.wantType != "" && rec.Header().Get("Content-Type") != tt.wantType {
				t.Errorf("Content-Type = %q, want %q", rec.Header().Get("Content-Type"), tt.wantType)
			}
			if tt.wantCache != "" && rec.Header().Get("Cache-Control") != tt.wantCache {
				t.Errorf("Cache-Control = %q, want %q", rec.Header().Get("Cache-Control"), tt.wantCache)
			}
			if !strings.Contains(rec.Body.String(), tt.wantBody) {
				t.Errorf("body lacks %q", tt.wantBody)
			}
		})
	}

	t.Run("revalidation", func(t *testing.T) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
		etag := rec.Header().Get("ETag")
		if etag == "" || rec.Header().Get("Content-Security-Policy") == "" {
			t.Fatalf("index.html lacks an ETag or a Content-Security-Policy: %v", rec.Header())
		}
		req := httptest.NewRequest("GET", "/", nil)
		req.Header.Set("If-None-Match", etag)
		rec = httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusNotModified {
			t.Fatalf("code = %d, want 304", rec.Code)
		}
	})
}
