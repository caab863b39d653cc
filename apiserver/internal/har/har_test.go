package har

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/sondehq/sonde/protocols"
)

func TestBuild(t *testing.T) {
	start := time.Date(2026, 11, 25, 22, 0, 0, 0, time.UTC)
	dst := protocols.Endpoint{IP: netip.MustParseAddr("10.1.0.7"), Port: 8080}
	es := []*protocols.Entry{
		{Protocol: protocols.HTTP1, Start: start, Duration: 1500 * time.Microsecond, Src: protocols.Endpoint{Port: 40000}, Dst: dst,
			HTTP: &protocols.HTTPRecord{
				Request: &protocols.HTTPRequest{Method: "POST", Target: "/api/orders?id=7&q=a%20b", Version: "HTTP/1.1",
					Headers: protocols.Headers{{Name: "Content-Type", Value: "application/json"}},
					Body:    protocols.Body{Size: 9, Data: []byte(`{"a":1}`), Truncated: true}},
				Response: &protocols.HTTPResponse{Version: "HTTP/1.1", StatusCode: 302, Reason: "Found",
					Headers: protocols.Headers{{Name: "Location", Value: "/next"}, {Name: "Content-Type", Value: "image/png"}},
					Body:    protocols.Body{Size: 3, Data: []byte{0x89, 'P', 0xff}}},
			}},
		{Protocol: protocols.Redis, Redis: &protocols.RedisRecord{Command: "GET"}},
		{Protocol: protocols.HTTP2, Start: start, Dst: dst, Unmatched: protocols.MissingResponse,
			HTTP: &protocols.HTTPRecord{Request: &protocols.HTTPRequest{Method: "GET", Target: "/x", Version: "HTTP/2.0", Scheme: "https", Authority: "shop.example"}}},
	}
	var buf bytes.Buffer
	hw := NewWriter(&buf, "v0")
	for _, e := range es {
		if _, err := hw.Add(e); err != nil {
			t.Fatal(err)
		}
	}
	if err := hw.Close(); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	var file struct{ Log Log }
	if err := json.Unmarshal(b, &file); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, b)
	}
	l := file.Log
	if l.Creator.Version != "v0" {
		t.Errorf("creator: %+v", l.Creator)
	}
	if len(l.Entries) != 2 {
		t.Fatalf("%d entries, want the 2 HTTP ones", len(l.Entries))
	}
	a, c := l.Entries[0], l.Entries[1]
	checks := []struct {
		name      string
		got, want any
	}{
		{"started", a.StartedDateTime, "2026-11-25T22:00:00Z"},
		{"time", a.Time, 1.5},
		{"url from the server address", a.Request.URL, "http://10.1.0.7:8080/api/orders?id=7&q=a%20b"},
		{"query", a.Request.QueryString, []NV{{"id", "7"}, {"q", "a b"}}},
		{"post data", a.Request.PostData.Text, `{"a":1}`},
		{"redirect", a.Response.RedirectURL, "/next"},
		{"binary body", a.Response.Content.Encoding + ":" + a.Response.Content.Text, "base64:iVD/"},
		{"notes", a.Comment, "request body truncated"},
		{"url from authority", c.Request.URL, "https://shop.example/x"},
		{"no response", c.Response.Status, 0},
		{"unmatched note", c.Comment, "no response captured"},
	}
	for _, ck := range checks {
		if g, w := jsonOf(ck.got), jsonOf(ck.want); g != w {
			t.Errorf("%s: got %s, want %s", ck.name, g, w)
		}
	}
	// Fields HAR readers require are present even when empty.
	for _, k := range []string{`"cookies":[]`, `"cache":{}`, `"headersSize":-1`, `"version":"1.2"`} {
		if !strings.Contains(string(b), k) {
			t.Errorf("HAR lacks %s", k)
		}
	}
}

func jsonOf(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
