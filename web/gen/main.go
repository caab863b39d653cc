// Command gen writes the UI's TypeScript types from the Go types the hub
// serves (see web/internal/tsgen). `go generate ./web/...` runs it from web/
// as `go run ./gen src/types.gen.ts`.
package main

import (
	"fmt"
	"os"

	"github.com/sondehq/sonde/web/internal/tsgen"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: go run ./gen FILE.ts")
		os.Exit(2)
	}
	out, err := tsgen.Generate(tsgen.Roots, tsgen.Custom)
	if err != nil {
		fmt.Fprintln(os.Stderr, "generating TypeScript types:", err)
		os.Exit(1)
	}
	if err := os.WriteFile(os.Args[1], out, 0o644); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
