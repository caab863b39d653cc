package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
	"time"
)

//go:embed all:dist
var dist embed.FS

// Cache policies: hashed assets never change under their name; index.html
// names the current assets and must be revalidated every time.
const (
	cacheAssets = "public, max-age=31536000, immutable"
	cacheIndex  = "no-cache"
)

// contentSecurityPolicy allows only the hub's own origin; images in bodies
// are shown from data: URLs.
const contentSecurityPolicy = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; " +
	"connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"

type file struct {
	data  []byte
	ctype string
	etag  string
}

type handler struct {
	files map[string]*file
	index *file
}

// Handler returns the UI's HTTP handler. Mount it after the API routes: it
// answers every GET and HEAD, falling back to index.html for paths that are
// not files so that the browser's URLs (?q=, ?view=) load the app; unknown
// /assets/ and /api/ paths get 404.
func Handler() http.Handler {
	h := &handler{files: map[string]*file{}}
	err := fs.WalkDir(dist, "dist", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := dist.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		ct := mime.TypeByExtension(path.Ext(p))
		if ct == "" {
			ct = http.DetectContentType(b)
		}
		h.files[strings.TrimPrefix(p, "dist")] = &file{data: b, ctype: ct, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
		return nil
	})
	if err != nil {
		// The tree is compiled in: it cannot fail to read.
		panic("web: reading embedded files: " + err.Error())
	}
	h.index = h.files["/index.html"]
	if h.index == nil {
		panic("web: dist/index.html is not embedded; run `make web`")
	}
	h.index.ctype = "text/html; charset=utf-8"
	return h
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	p := path.Clean("/" + r.URL.Path)
	f, cache := h.files[p], cacheIndex
	switch {
	case f != nil && strings.HasPrefix(p, "/assets/"):
		cache = cacheAssets
	case f != nil && p != "/index.html":
	case strings.HasPrefix(p, "/assets/"), strings.HasPrefix(p, "/api/"):
		// A missing asset must not come back as HTML: the browser would try
		// to run it, and a stale page would fail in a confusing way.
		http.NotFound(w, r)
		return
	default:
		f = h.index
	}
	hd := w.Header()
	hd.Set("Content-Type", f.ctype)
	hd.Set("Cache-Control", cache)
	hd.Set("ETag", f.etag)
	hd.Set("X-Content-Type-Options", "nosniff")
	if f == h.index {
		hd.Set("Content-Security-Policy", contentSecurityPolicy)
		hd.Set("Referrer-Policy", "no-referrer")
	}
	// ServeContent answers conditional and range requests from the ETag.
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(f.data))
}
