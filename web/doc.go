// Package web holds Sonde's browser UI and serves it.
//
// The UI is a single-page application (Preact and TypeScript, bundled with
// esbuild) whose sources live in web/src. Its built files in web/dist are
// committed and embedded with go:embed, so building Sonde needs no Node:
// `make web` rebuilds them and `make check-web` fails when the committed
// build differs from a rebuild of the sources.
//
// Handler serves the embedded files: the hashed files under /assets/ with a
// year-long immutable cache, and index.html, with no-cache, for every other
// path that is not a file (the app routes in the browser with ?q=&view=&id=).
// The hub mounts it through apiserver.Config.UI, behind its /api routes.
//
// The UI talks only to the hub that served it (REST under /api/v1 and the
// /api/v1/stream websocket) and loads nothing from elsewhere, so it works
// offline and behind `kubectl port-forward`.
//
// Handler's files are read once from the embedded tree; it is safe for
// concurrent use and holds no other state.
//
// The browser tests (e2e_test.go, driving e2e/run.mjs with playwright-core
// in Debian's Chromium) start a real hub on loopback, fill it from capture
// files through the agent's pipeline, stream more entries in over the
// agents' websocket, and check the views; they skip, saying why, when
// Chromium or Node is missing. `go test ./web -args -update-screenshots`
// rewrites docs/screenshots.
//
// The list keeps its rows in typed arrays (Rows in src/rows.ts: about 63
// bytes a row plus interned strings) and renders only the rows in view, with
// a scaled scrollbar past eight million pixels. TestBench
// (SONDE_WEB_BENCH=100000,1000000) measured, on a 2-core machine that other
// work kept at a load average of 15-18 (two runs of 1,000,000 give the ranges):
//
//	entries in the hub                   100,000             1,000,000
//	apply a query until its 1,000 rows   1.0-1.5 s           0.8-1.1 s
//	are on screen (5 queries)
//	rows in the browser's list           100,000             1,000,000
//	filling them                         0.7 s               2.7-4.5 s
//	JS heap                              23 MB               87-119 MB
//	scrolling 3 rows a frame             25 fps, p95 117 ms  22-29 fps, p95 117-167 ms
//	a jump anywhere, p50                 56 ms               80-92 ms
//
// The work per frame does not grow with the row count (32 rows in the DOM
// either way); the frame rate follows the machine's load more than the size.
package web
