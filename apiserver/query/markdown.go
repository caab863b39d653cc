package query

import (
	"strings"

	"github.com/sondehq/sonde/protocols/wire"
)

// Markdown renders the vocabulary as the README's table.
func Markdown() string {
	var b strings.Builder
	b.WriteString("| field | type | meaning | example |\n| --- | --- | --- | --- |\n")
	for _, f := range wire.Fields() {
		b.WriteString("| `" + f.Name + "` | " + f.Type + " | " + strings.ReplaceAll(f.Doc, "|", "\\|") +
			" | `" + strings.ReplaceAll(f.Example, "|", "\\|") + "` |\n")
	}
	b.WriteString("\nFunctions: CEL's standard library (`contains`, `startsWith`, `endsWith`, `matches`, `size`, `in`, `exists`, `duration(\"100ms\")`, `timestamp(\"2026-01-02T15:04:05Z\")`) and `now()`, the time of evaluation.\n")
	return b.String()
}
