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
// work kept at a load average of 16-18:
//
//	entries in the hub          100,000      1,000,000
//	apply a query (2,000 rows)  2.4-2.6 s    1.4-1.9 s (5.6 s for a query matching 1 in 50)
//	rows in the browser         100,000      1,000,000
//	filling them                0.5 s        2.7 s
//	JS heap                     50 MB        119 MB
//	scrolling, 3 rows a frame   20 fps       29 fps (p95 frame 117 ms)
//	a jump anywhere, p50        120 ms       80 ms
//
// The cost per frame does not grow with the row count; the figures vary with
// the machine's load more than with the size. The stream's history was 2,000
// entries then; it is 1,000 now, which halves the time to apply a query.
package web
