package protocols

import (
	"fmt"
	"strings"
	"testing"
)

// jsonBody64K is a JSON array of records about 64 KiB long, one record in
// eight holding a secret member, as an API listing users might send.
func jsonBody64K() []byte {
	var b strings.Builder
	b.WriteString("[")
	for i := 0; b.Len() < 64<<10-200; i++ {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `{"id":%d,"name":"user %d","email":"u%d@example.com","tags":["a","b"],"active":true,"score":%d.5`, i, i, i, i*7)
		if i%8 == 0 {
			fmt.Fprintf(&b, `,"api_key":"k%08d"`, i)
		}
		b.WriteString("}")
	}
	b.WriteString("]")
	return []byte(b.String())
}

// BenchmarkRedactJSON measures the body scan on a 64 KiB JSON body (the
// default body cap).
func BenchmarkRedactJSON(b *testing.B) {
	body := jsonBody64K()
	var p SecretPolicy
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, changed := p.RedactJSON(body); !changed {
			b.Fatal("nothing redacted")
		}
	}
}

// BenchmarkRedactJSONClean is the same scan on a body without secrets,
// which allocates nothing.
func BenchmarkRedactJSONClean(b *testing.B) {
	body := []byte(strings.ReplaceAll(string(jsonBody64K()), "api_key", "api_tag"))
	var p SecretPolicy
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, changed := p.RedactJSON(body); changed {
			b.Fatal("redacted")
		}
	}
}
