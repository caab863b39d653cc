package query

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/sondehq/sonde/protocols"
	"github.com/sondehq/sonde/protocols/protocolstest"
	"github.com/sondehq/sonde/protocols/wire"
)

func TestMatch(t *testing.T) {
	tests := []struct {
		q    string
		want []string
	}{
		{`http && status_code >= 500`, []string{"http500"}},
		{`method == "POST" && path.startsWith("/api")`, []string{"http500"}},
		{`grpc && grpc_status != "OK"`, []string{"grpcNotFound"}},
		{`redis && redis_command == "GET"`, []string{"redisGet"}},
		{`kafka && kafka_api == "Produce"`, []string{"kafkaProduce"}},
		{`amqp && amqp_method == "basic.publish"`, []string{"amqpPublish"}},
		{`src.pod == "frontend-7d9f" || dst.namespace == "payments"`, []string{"http200old", "http500"}},
		{`elapsed > duration("100ms")`, []string{"http500"}},
		{`src.node == "worker-1"`, []string{"http500"}},
		{`src.node.startsWith("worker") && !(dst.node == "worker-1")`, []string{"http500"}},
		{`start > now() - duration("5m")`, []string{"amqpPublish", "grpcNotFound", "grpcOK", "http500", "kafkaProduce", "redisGet"}},
		{`request.headers["content-type"].contains("json")`, []string{"http500"}},
		{`gap || unmatched != ""`, []string{"amqpPublish", "redisGet"}},
		{`error`, []string{"grpcNotFound", "http500"}},
		{`dst.ip == "fd00::2" && dst.port == 443`, []string{"http200old"}},
		{`has(src.pod) && "workload" in dst && src.pod != ""`, []string{"http500"}},
		{`"payments" == dst.namespace && (path.endsWith("z") || true)`, []string{"http200old"}},
		{`redis_command == "GET" || redis_command == "SET"`, []string{"redisGet"}},
		{`!(dst.namespace == "shop") && http`, []string{"http200old"}},
		{`dst == {"ip": "fd00::2", "port": 443, "pod": "", "namespace": "payments", "service": "", "workload": "", "node": ""}`, []string{"http200old"}},
		{``, []string{"amqpPublish", "grpcNotFound", "grpcOK", "http200old", "http500", "kafkaProduce", "redisGet"}},
	}
	entries := protocolstest.Sample()
	for _, tt := range tests {
		t.Run(tt.q, func(t *testing.T) {
			p, err := Compile(tt.q)
			if err != nil {
				t.Fatal(err)
			}
			var got, gotIndex []string
			var x, none wire.Index // none: no record, so the entry answers all
			for name, e := range entries {
				if p.MatchIndex(&none, func() *protocols.Entry { return e }) {
					got = append(got, name)
				}
				x.Reset(wire.AppendIndex(nil, e))
				if p.MatchIndex(&x, func() *protocols.Entry { return e }) {
					gotIndex = append(gotIndex, name)
				}
			}
			if g, w := sorted(got), strings.Join(tt.want, ","); g != w {
				t.Errorf("MatchIndex on the entry = %s, want %s", g, w)
			}
			if g, w := sorted(gotIndex), strings.Join(tt.want, ","); g != w {
				t.Errorf("MatchIndex = %s, want %s", g, w)
			}
		})
	}
}

func TestRequiredStrings(t *testing.T) {
	tests := []struct {
		q    string
		want string
	}{
		{`dst.namespace == "audit"`, "audit"},
		{`http && method == "POST" && path.startsWith("/api")`, "POST,/api"},
		{`"x" == src.pod && target.contains("orders")`, "x,orders"},
		{`method == "POST" || path == "/a"`, ""},
		{`!(method == "POST")`, ""},
		{`dst.ip == "10.0.0.1"`, ""},
		{`method == ""`, ""},
		{`request.headers["content-type"] == "json"`, ""},
	}
	for _, tt := range tests {
		p, err := Compile(tt.q)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range p.required {
			got = append(got, string(r))
		}
		if g := strings.Join(got, ","); g != tt.want {
			t.Errorf("%s: required %q, want %q", tt.q, g, tt.want)
		}
	}
}

func sorted(s []string) string {
	for i := range s {
		for j := i + 1; j < len(s); j++ {
			if s[j] < s[i] {
				s[i], s[j] = s[j], s[i]
			}
		}
	}
	return strings.Join(s, ",")
}

func TestCompileErrors(t *testing.T) {
	tests := []struct {
		q       string
		wantPos int
		wantMsg string
	}{
		{`status_code >= `, 15, "Syntax error"},
		{`http && nosuch == 1`, 8, "undeclared reference to 'nosuch'"},
		{`status_code`, 0, "true or false"},
		{`method == 5`, 7, "no matching overload"},
		{strings.Repeat("a", MaxLength+1), MaxLength, "longer than"},
	}
	for _, tt := range tests {
		t.Run(tt.q, func(t *testing.T) {
			_, err := Compile(tt.q)
			var qe *Error
			if !errors.As(err, &qe) {
				t.Fatalf("err = %v, want *Error", err)
			}
			if qe.Position != tt.wantPos || !strings.Contains(qe.Message, tt.wantMsg) {
				t.Errorf("got position %d message %q, want %d %q", qe.Position, qe.Message, tt.wantPos, tt.wantMsg)
			}
		})
	}
}

// TestFieldTable keeps the vocabulary consistent: unique stable IDs and names,
// and an example for each field that compiles.
func TestFieldTable(t *testing.T) {
	ids, names := map[uint8]bool{}, map[string]bool{}
	for _, f := range wire.Table() {
		if f.ID == 0 || ids[f.ID] || names[f.Name] {
			t.Errorf("field %s: ID %d or name is zero or taken", f.Name, f.ID)
		}
		ids[f.ID], names[f.Name] = true, true
		if !strings.Contains(f.Example, f.Name) {
			t.Errorf("field %s: example %q does not use it", f.Name, f.Example)
		}
		if _, err := Compile(f.Example); err != nil {
			t.Errorf("field %s: example %q: %v", f.Name, f.Example, err)
		}
		// Every accessor copes with an entry that has no record at all.
		_ = f.Get(&protocols.Entry{})
	}
}

// TestReadme checks that the README's field table is the one Markdown
// renders; run with -update to rewrite it.
func TestReadme(t *testing.T) {
	const path = "../README.md"
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	const begin, end = "<!-- fields:begin -->\n", "<!-- fields:end -->"
	s := string(b)
	i, j := strings.Index(s, begin), strings.Index(s, end)
	if i < 0 || j < i {
		t.Fatalf("%s lacks the %q ... %q markers", path, begin, end)
	}
	want := s[:i+len(begin)] + Markdown() + s[j:]
	if *update {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if want != s {
		t.Errorf("%s is out of date with the field table; run go test ./apiserver/query -update", path)
	}
}

// TestIndexHostile: index records come from disk; a corrupt one must not
// panic or loop, and makes MatchIndex fall back to the entry.
func TestIndexHostile(t *testing.T) {
	e := protocolstest.Sample()["http500"]
	good := wire.AppendIndex(nil, e)
	p, err := Compile(`http && status_code >= 500 && dst.port == 8080 && src.pod.startsWith("frontend")`)
	if err != nil {
		t.Fatal(err)
	}
	var x wire.Index
	for cut := 0; cut <= len(good); cut++ {
		for _, flip := range []int{-1, cut} {
			rec := append([]byte(nil), good[:cut]...)
			if flip >= 0 && flip < len(rec) {
				rec[flip] ^= 0xff
			}
			x.Reset(rec)
			fellBack := false
			got := p.MatchIndex(&x, func() *protocols.Entry { fellBack = true; return e })
			if !got && fellBack {
				t.Errorf("cut %d flip %d: the entry matches but the fallback said no", cut, flip)
			}
		}
	}
	x.Reset(good)
	if !p.MatchIndex(&x, func() *protocols.Entry { t.Fatal("decoded the entry for an intact record"); return nil }) {
		t.Error("intact record does not match")
	}
}

// TestRestrict: a restricted program matches what the query matches among
// the records its reader may see, and an empty query restricted matches
// what the reader may see.
func TestRestrict(t *testing.T) {
	onlyGRPC := func(x *wire.Index) bool { v, _ := x.Value("protocol"); return v == string(protocols.GRPC) }
	p, err := Compile(`status == "200" || grpc`)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		p    *Program
		e    *protocols.Entry
		want bool
	}{
		{Restrict(p, onlyGRPC), &protocols.Entry{Protocol: protocols.HTTP1, Summary: protocols.Summary{Status: "200"}}, false},
		{Restrict(p, onlyGRPC), &protocols.Entry{Protocol: protocols.GRPC}, true},
		{Restrict(nil, onlyGRPC), &protocols.Entry{Protocol: protocols.GRPC}, true},
		{Restrict(nil, onlyGRPC), &protocols.Entry{Protocol: protocols.Redis}, false},
	} {
		var x wire.Index
		x.Reset(wire.AppendIndex(nil, tt.e))
		if got := tt.p.MatchIndex(&x, func() *protocols.Entry { return tt.e }); got != tt.want {
			t.Errorf("%s on %s: %v, want %v", tt.p, tt.e.Protocol, got, tt.want)
		}
	}
}
