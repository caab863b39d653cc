package tsgen

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

// reachable walks what encoding/json would write for roots, stopping at
// types that write their own JSON (and going on into the shape Custom gives
// them), apart from the generator so that a gap in one is not hidden by the
// same gap in the other.
func reachable(roots []reflect.Type, custom map[reflect.Type]Mapping, visit func(reflect.Type)) {
	seen := map[reflect.Type]bool{}
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		if seen[t] {
			return
		}
		seen[t] = true
		visit(t)
		if Marshals(t) {
			if m, ok := custom[t]; ok && m.As != nil {
				walk(m.As)
			}
			return
		}
		switch t.Kind() {
		case reflect.Slice, reflect.Array:
			walk(t.Elem())
		case reflect.Map:
			walk(t.Key())
			walk(t.Elem())
		case reflect.Struct:
			for i := range t.NumField() {
				f := t.Field(i)
				if (f.IsExported() || f.Anonymous) && f.Tag.Get("json") != "-" {
					walk(f.Type)
				}
			}
		}
	}
	for _, r := range roots {
		walk(r)
	}
}

// TestCustomCoversMarshalers: every type the roots reach that writes its own
// JSON has a mapping, so a new MarshalJSON in protocols cannot slip into the
// UI's types as the shape of its Go fields.
func TestCustomCoversMarshalers(t *testing.T) {
	used := map[reflect.Type]bool{}
	n := 0
	reachable(Roots, Custom, func(ty reflect.Type) {
		n++
		if !Marshals(ty) {
			return
		}
		if _, ok := Custom[ty]; !ok {
			t.Errorf("%v writes its own JSON and has no entry in Custom", ty)
		}
		used[ty] = true
	})
	if n < 20 {
		t.Fatalf("the roots reach only %d types: the walk is broken", n)
	}
	for ty := range Custom {
		if !used[ty] {
			t.Errorf("Custom maps %v, which no root reaches or which no longer writes its own JSON: remove it", ty)
		}
	}
}

type stamp struct{ at int64 }

func (s stamp) MarshalJSON() ([]byte, error) { return json.Marshal(s.at) }

type withStamp struct {
	At stamp `json:"at"`
}

func TestGenerateRefusesUnmappedMarshaler(t *testing.T) {
	_, err := Generate([]reflect.Type{reflect.TypeFor[withStamp]()}, Custom)
	if err == nil || !strings.Contains(err.Error(), "tsgen.Custom") {
		t.Fatalf("err = %v, want one that asks for an entry in tsgen.Custom", err)
	}
	out, err := Generate([]reflect.Type{reflect.TypeFor[withStamp]()}, map[reflect.Type]Mapping{reflect.TypeFor[stamp](): {TS: "number"}})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "  at: number;\n") {
		t.Fatalf("the mapping was not used:\n%s", out)
	}
}

type Inner struct {
	Deep string `json:"deep"`
}

type Embedded struct {
	Promoted int    `json:"promoted"`
	Shadowed string `json:"name"`
}

type shapes struct {
	Embedded
	Name        string            `json:"name"`
	Untagged    bool              // encoding/json uses the Go name
	Skipped     string            `json:"-"`
	hidden      string            // unexported: never written
	Opt         string            `json:"opt,omitempty"`
	Count       int64             `json:"count,omitempty"`
	Ptr         *Inner            `json:"ptr"`
	OptPtr      *Inner            `json:"opt_ptr,omitempty"`
	Struct      Inner             `json:"struct,omitempty"` // never left out
	Slice       []string          `json:"slice"`
	OptSlice    []Inner           `json:"opt_slice,omitempty"`
	Bytes       []byte            `json:"bytes,omitempty"`
	Array       [2]int            `json:"array"`
	Map         map[string]uint64 `json:"map"`
	IntKeys     map[int]string    `json:"int_keys,omitempty"`
	Quoted      int               `json:"quoted,string"`
	Elapsed     time.Duration     `json:"elapsed_ns"`
	When        time.Time         `json:"when"`
	MaybeWhen   time.Time         `json:"maybe_when,omitzero"`
	Any         any               `json:"any"`
	Anon        struct{ X int }   `json:"anon"`
	UnionSlice  []*Inner          `json:"union_slice"`
	DashedName  string            `json:"dashed-name"`
	NestedSlice [][]string        `json:"nested,omitempty"`
}

func TestFieldRules(t *testing.T) {
	out, err := Generate([]reflect.Type{reflect.TypeFor[shapes]()}, Custom)
	if err != nil {
		t.Fatal(err)
	}
	want := `/** web/internal/tsgen.shapes */
export interface shapes {
  name: string;
  Untagged: boolean;
  opt?: string;
  count?: number;
  ptr: Inner | null;
  opt_ptr?: Inner;
  struct: Inner;
  slice: string[] | null;
  opt_slice?: Inner[];
  bytes?: string;
  array: number[];
  map: Record<string, number> | null;
  int_keys?: Record<string, string>;
  quoted: string;
  elapsed_ns: number;
  when: string;
  maybe_when?: string;
  any: unknown;
  anon: { X: number };
  union_slice: Inner[] | null;
  "dashed-name": string;
  nested?: string[][];
  promoted: number;
}
`
	if !strings.Contains(string(out), want) {
		t.Errorf("got\n%s\nwant it to contain\n%s", out, want)
	}
	if !strings.Contains(string(out), "export interface Inner {\n  deep: string;\n}\n") {
		t.Errorf("Inner is not declared:\n%s", out)
	}
}

func TestNameClash(t *testing.T) {
	type Stats struct{ A int }
	type clash struct {
		Mine Stats `json:"mine"`
	}
	_, err := Generate(append([]reflect.Type{reflect.TypeFor[clash]()}, Roots...), Custom)
	if err == nil || !strings.Contains(err.Error(), "would both be Stats") {
		t.Fatalf("err = %v, want a clash of two Stats", err)
	}
}
