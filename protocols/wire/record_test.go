package wire

import (
	"bytes"
	"errors"
	"net/netip"
	"testing"

	"github.com/sondehq/sonde/protocols"
	"github.com/sondehq/sonde/protocols/protocolstest"
)

// TestCheckIndexReads: every record AppendIndex writes passes, and reads
// back the values the hub stores and names entries by.
func TestCheckIndexReads(t *testing.T) {
	for name, e := range protocolstest.Sample() {
		e.Node, e.Source = "node-1", ""
		r, current, err := CheckIndex(AppendIndex(nil, e))
		if err != nil || !current {
			t.Fatalf("%s: %v, current %v", name, err, current)
		}
		src, dst := r.Endpoints()
		if !r.Start.Equal(e.Start) || src != e.Src || dst != e.Dst || !r.HasNode || r.HasSource {
			t.Errorf("%s: read %+v %+v %+v", name, r, src, dst)
		}
	}
}

// TestCheckIndexRefuses: a record from outside that does not follow the
// layout is an error, never a panic; one of another schema is not current.
func TestCheckIndexRefuses(t *testing.T) {
	e := protocolstest.Sample()["http500"]
	good := AppendIndex(nil, e)
	withField := func(id byte, value ...byte) []byte {
		return append(append(bytes.Clone(good), id), value...)
	}
	redis := AppendIndex(nil, protocolstest.Sample()["redisGet"])
	i := bytes.Index(redis, []byte("GET"))
	badUTF8 := bytes.Clone(redis)
	copy(badUTF8[i:], "\xff\xfe\xfd")
	tests := []struct {
		name string
		rec  []byte
		want error
	}{
		{"short", good[:3], ErrRecord},
		{"unknown field", withField(255), ErrRecord},
		{"a field that is not indexed", withField(byName["request"].ID), ErrRecord},
		{"out of order", withField(byName["http"].ID), ErrRecord},
		{"the same field twice", append(bytes.Clone(good[:4]), byName["http"].ID, byName["http"].ID), ErrRecord},
		{"cut in a value", good[:len(good)-1], ErrRecord},
		{"string longer than the record", withField(byName["amqp_method"].ID, 100, 'x'), ErrRecord},
		{"invalid UTF-8", badUTF8, ErrRecord},
		{"an ID", AppendEdited(nil, good, Edits{ID: "7"}), ErrRecordID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, current, err := CheckIndex(tt.rec)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err %v, want %v", err, tt.want)
			}
			if len(tt.rec) >= 4 && !current {
				t.Error("not current")
			}
		})
	}
	foreign := bytes.Clone(good)
	foreign[0] ^= 1
	if _, current, err := CheckIndex(foreign); current || err != nil {
		t.Errorf("another schema: current %v, err %v", current, err)
	}
	// An endpoint's address is 0, 4 or 16 bytes and its port fits 16 bits.
	for _, ep := range [][]byte{{3, 1, 2, 3, 80, 0, 0, 0, 0, 0}, {0, 0x80, 0x80, 0x04, 0, 0, 0, 0, 0}} {
		rec := append(append(bytes.Clone(good[:4]), byName["src"].ID), ep...)
		if _, _, err := CheckIndex(rec); !errors.Is(err, ErrRecord) {
			t.Errorf("endpoint %v: %v", ep, err)
		}
	}
}

// TestAppendEdited: edits land in their fields and leave the others as
// they were.
func TestAppendEdited(t *testing.T) {
	e := protocolstest.Sample()["http500"]
	rec := AppendIndex(nil, e)
	named := e.Dst
	named.Service, named.Workload = "orders", "orders"
	client := protocols.Endpoint{IP: netip.MustParseAddr("fd00::9"), Port: 1, Pod: "p"}
	edited := AppendEdited(nil, AppendEdited(nil, rec, Edits{Src: &client, Dst: &named}), Edits{ID: "42"})
	want := *e
	want.ID, want.Src, want.Dst = "42", client, named
	var x, w Index
	x.Reset(edited)
	w.Reset(AppendEdited(nil, AppendIndex(nil, &want), Edits{ID: "42"}))
	for _, f := range fields {
		if !f.Kind.Indexed() {
			continue
		}
		got, ok := x.Value(f.Name)
		exp, _ := w.Value(f.Name)
		if !ok || got != exp {
			t.Errorf("%s = %v (%v), want %v", f.Name, got, ok, exp)
		}
	}
	if _, _, err := CheckIndex(AppendEdited(nil, rec, Edits{Src: &client})); err != nil {
		t.Errorf("an edited record fails the check: %v", err)
	}
}

// FuzzCheckIndex: no record panics the check, and one that passes can be
// edited into a record whose every field reads back.
func FuzzCheckIndex(f *testing.F) {
	for _, e := range protocolstest.Sample() {
		f.Add(AppendIndex(nil, e))
	}
	f.Fuzz(func(t *testing.T, rec []byte) {
		r, current, err := CheckIndex(rec)
		if err != nil || !current {
			return
		}
		r.Endpoints()
		ep := protocols.Endpoint{Pod: "p"}
		edited := AppendEdited(nil, rec, Edits{ID: "9", Dst: &ep})
		var x Index
		x.Reset(edited)
		for _, f := range fields {
			if f.Kind.Indexed() {
				if _, ok := x.Value(f.Name); !ok {
					t.Fatalf("%s unreadable in %q, edited from %q", f.Name, edited, rec)
				}
			}
		}
		if id, _ := x.Value("id"); id != "9" {
			t.Fatalf("id %v", id)
		}
	})
}

// TestEndpointNamespace reads each end's namespace as Endpoint would,
// for IPv4, IPv6 and missing addresses, and empty where there is none.
func TestEndpointNamespace(t *testing.T) {
	for _, e := range []*protocols.Entry{
		{Protocol: protocols.HTTP1, Src: protocols.Endpoint{IP: netip.MustParseAddr("10.0.0.1"), Port: 1, Pod: "web", Namespace: "shop"},
			Dst: protocols.Endpoint{IP: netip.MustParseAddr("fd00::2"), Port: 443, Pod: "pay", Namespace: "payments", Node: "n1"}},
		{Protocol: protocols.HTTP1, Src: protocols.Endpoint{Namespace: "no-address"}, Dst: protocols.Endpoint{IP: netip.MustParseAddr("10.0.0.2")}},
		{Protocol: protocols.Redis},
	} {
		var x Index
		x.Reset(AppendIndex(nil, e))
		for _, dst := range []bool{false, true} {
			want, _ := x.Endpoint(dst)
			if got := string(x.EndpointNamespace(dst)); got != want.Namespace {
				t.Errorf("%+v (dst %v): namespace %q, want %q", e, dst, got, want.Namespace)
			}
		}
	}
	var x Index
	x.Reset([]byte{1, 2})
	if ns := x.EndpointNamespace(false); ns != nil {
		t.Errorf("a cut record names %q", ns)
	}
}
