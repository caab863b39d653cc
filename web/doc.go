// Package web holds Sonde's browser UI and serves it.
//
// The UI is a single-page application (Preact and TypeScript, bundled with
// esbuild) whose sources live in web/src. Its built files in web/dist are
// committed and embedded with go:embed, so building Sonde needs no Node:
// `make web` rebuilds them and `make check-web` fails when the committed
// build differs from a rebuild of the sources.
//
// The UI's types for the hub's JSON are generated from the Go types the hub
// serves: web/internal/tsgen reads them by reflection (with a table for the
// types that write their own JSON) and writes src/types.gen.ts, together with
// the query's field names; `go generate ./web/...` and `make web` run it, and
// TestTypesGenerated fails when the committed file is stale. `npm run build`
// type-checks the sources with tsc before bundling them, so a field the hub
// renames breaks the build of the view that reads it. Answers the hub builds
// from unexported or anonymous Go types are typed by hand in src/types.ts.
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
// src/model.ts is the UI's one model: its state in signals (@preact/signals)
// behind getters, and the actions that change it (apply a query, filter by a
// clicked value, select an entry, switch views, pause, follow, load older
// rows) as its methods. main.tsx makes it and hands it down through a
// context; views read it, re-render on what they read and change it only
// through those methods. The rows change in place with every stream message,
// so one signal carries their version, set at most once per animation frame
// however many entries arrive in it.
//
// The list keeps its rows in typed arrays (Rows in src/rows.ts: about 63
// bytes a row plus interned strings) and renders only the rows in view, with
// a scaled scrollbar past eight million pixels, so the work per frame does
// not grow with the row count. TestBench (SONDE_WEB_BENCH=100000,1000000)
// measures it; docs/decisions/web-list.md has the figures.
package web
