package query

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/sondehq/sonde/protocols"
	"github.com/sondehq/sonde/protocols/wire"
)

// numbers is a CEL list literal of 0..n-1.
func numbers(n int) string {
	s := make([]string, n)
	for i := range s {
		s[i] = fmt.Sprint(i)
	}
	return "[" + strings.Join(s, ",") + "]"
}

// TestCostRefused: queries whose worst case per entry is out of bounds are
// refused when they compile, with a sentence that says why, before they can
// run against a single entry. Each of these compiled before, and kept a hub
// core busy (or its memory growing) for as long as it ran.
func TestCostRefused(t *testing.T) {
	ten := numbers(10)
	nested := func(depth int, op string) string {
		q := "true"
		for i := depth; i > 0; i-- {
			q = fmt.Sprintf("%s.%s(v%d, %s)", ten, op, i, q)
		}
		return q
	}
	tests := []struct {
		name, q, want string
	}{
		{"nested exists, 10^6 iterations", nested(6, "exists"), "nest"},
		{"nested map, 10^4 lists built", "size(" + strings.Replace(nested(4, "map"), "true", "[1,2,3]", 1) + ") > 0", "nest"},
		{"nested all over the longest list", "redis_args.all(a, redis_args.all(b, redis_args.all(c, a != b || b != c)))", "nest"},
		{"two long lists of long strings", "redis_args.exists(a, redis_args.exists(b, a + b == a))", "cost"},
		{"a body searched per header", `request.headers.exists(k, response.body.contains(request.headers[k]))`, "cost"},
		{"deep parentheses", strings.Repeat("(", 200) + "true" + strings.Repeat(")", 200), "recursion"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Compile(tt.q)
			var qe *Error
			if !errors.As(err, &qe) {
				t.Fatalf("Compile(%d bytes) = %v, want a query error", len(tt.q), err)
			}
			if !strings.Contains(qe.Message, tt.want) {
				t.Errorf("Compile: %q, want it to mention %q", qe.Message, tt.want)
			}
		})
	}
}

// TestCostAllowed: the queries users write stay well inside the bounds.
func TestCostAllowed(t *testing.T) {
	for _, q := range []string{
		`warnings.exists(w, w.contains("mid-stream"))`,
		`response.body.contains("timeout")`,
		`request.headers.exists(k, k.startsWith("x-"))`,
		`redis_args.exists(a, a.startsWith("user:"))`,
		`request.headers.exists(k, request.headers[k].contains("token"))`,
		numbers(100) + `.exists(p, dst.port == p)`,
	} {
		if _, err := Compile(q); err != nil {
			t.Errorf("Compile(%q) = %v", q, err)
		}
	}
}

// TestCostLimitAtRuntime: an entry larger than any dissector makes (an
// agent's word is not proof) cannot make an allowed query run long: the
// evaluation stops at the cost limit and is no match. Without the limit the
// query below runs 9 million iterations and matches.
func TestCostLimitAtRuntime(t *testing.T) {
	p, e, x := lastOfWarnings(t, 3000)
	if p.MatchIndex(x, func() *protocols.Entry { return e }) {
		t.Error("an evaluation over the cost limit matched; it must stop and not match")
	}
	small := &protocols.Entry{Protocol: protocols.HTTP1, Warnings: []string{"w", "last"}}
	x.Reset(wire.AppendIndex(nil, small))
	if !p.MatchIndex(x, func() *protocols.Entry { return small }) {
		t.Error("the same query on a small entry did not match")
	}
}

// TestMatchStopsWithContext: an evaluation whose request has ended stops.
// (Queries cheap enough never to need it, comparisons of a few fields, run
// without the check.)
func TestMatchStopsWithContext(t *testing.T) {
	p, e, x := lastOfWarnings(t, 150)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if p.MatchIndexContext(ctx, x, func() *protocols.Entry { return e }) {
		t.Error("a comprehension evaluated for an ended request matched")
	}
	if !p.MatchIndexContext(context.Background(), x, func() *protocols.Entry { return e }) {
		t.Error("the same evaluation with a live context did not match")
	}
}

// lastOfWarnings compiles a nested query over warnings that matches only
// at the last of n+1 of them, and returns an entry of that many and its
// index record.
func lastOfWarnings(t *testing.T, n int) (*Program, *protocols.Entry, *wire.Index) {
	t.Helper()
	p, err := Compile(`warnings.exists(a, warnings.exists(b, a == "last" && b == "last"))`)
	if err != nil {
		t.Fatal(err)
	}
	e := &protocols.Entry{Protocol: protocols.HTTP1}
	for i := range n {
		e.Warnings = append(e.Warnings, fmt.Sprint("w", i))
	}
	e.Warnings = append(e.Warnings, "last")
	x := new(wire.Index)
	x.Reset(wire.AppendIndex(nil, e))
	return p, e, x
}
