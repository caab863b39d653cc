package web_test

import (
	"bytes"
	"os"
	"strconv"
	"testing"

	"github.com/sondehq/sonde/web/internal/tsgen"
)

// TestTypesGenerated fails when the committed src/types.gen.ts is not what
// the generator writes from the Go types now: a field the hub added, renamed
// or dropped must reach the UI's types (and its type check) in the same change.
func TestTypesGenerated(t *testing.T) {
	want, err := tsgen.Generate(tsgen.Roots, tsgen.Custom)
	if err != nil {
		t.Fatal(err)
	}
	have, err := os.ReadFile("src/types.gen.ts")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(have, want) {
		t.Fatalf("src/types.gen.ts differs from what the Go types give: run `go generate ./web/...` (or `make web`) and commit it\n%s", diff(have, want))
	}
}

// diff names the first line that differs.
func diff(have, want []byte) string {
	h, w := bytes.Split(have, []byte("\n")), bytes.Split(want, []byte("\n"))
	for i := 0; i < len(h) || i < len(w); i++ {
		var a, b []byte
		if i < len(h) {
			a = h[i]
		}
		if i < len(w) {
			b = w[i]
		}
		if !bytes.Equal(a, b) {
			return "line " + strconv.Itoa(i+1) + ":\n  committed: " + string(a) + "\n  generated: " + string(b)
		}
	}
	return ""
}
