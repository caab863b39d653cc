package protocols

import (
	"encoding/json"
	"testing"
)

func TestRedactTarget(t *testing.T) {
	tests := []struct {
		name, in, want string
		changed        bool
	}{
		{"plain path", "/a/b?x=1", "/a/b?x=1", false},
		{"token key", "/cb?page=1&access_token=abc&z", "/cb?page=1&access_token=[REDACTED]&z", true},
		{"oauth code", "/cb?code=1&state=s", "/cb?code=[REDACTED]&state=s", true},
		{"fragment token", "https://app/cb#access_token=t&token_type=bearer", "https://app/cb#access_token=[REDACTED]&token_type=bearer", true},
		{"key case", "/x?API_KEY=zz#frag", "/x?API_KEY=[REDACTED]#frag", true},
		{"user info", "http://bob:pw@example.com/p", "http://[REDACTED]@example.com/p", true},
		{"at in path is not user info", "http://example.com/@me", "http://example.com/@me", false},
		{"no query", "*", "*", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, changed := RedactTarget(tt.in)
			if got != tt.want || changed != tt.changed {
				t.Errorf("RedactTarget(%q) = %q, %v; want %q, %v", tt.in, got, changed, tt.want, tt.changed)
			}
		})
	}
}

func TestRedactHeaders(t *testing.T) {
	h := Headers{{"Host", "a"}, {"AUTHORIZATION", "Bearer x"}, {"Cookie", "s=1"}}
	if !RedactHeaders(h) {
		t.Fatal("RedactHeaders reported no change")
	}
	want := Headers{{"Host", "a"}, {"AUTHORIZATION", Redacted}, {"Cookie", Redacted}}
	for i := range h {
		if h[i] != want[i] {
			t.Errorf("header %d = %v, want %v", i, h[i], want[i])
		}
	}
	if v, ok := h.Get("host"); !ok || v != "a" {
		t.Errorf("Get(host) = %q, %v", v, ok)
	}
}

func TestBodyCapture(t *testing.T) {
	var b Body
	b.Capture([]byte("hello "), 8)
	b.Capture([]byte("world"), 8)
	if string(b.Data) != "hello wo" || b.Size != 11 || !b.Truncated {
		t.Errorf("body = %q size %d truncated %v", b.Data, b.Size, b.Truncated)
	}
}

func TestBodyJSON(t *testing.T) {
	for _, b := range []Body{
		{Size: 5, Data: []byte("hello")},
		{Size: 3, Data: []byte{0xff, 0x00, 0x01}, Truncated: true},
		{Size: 9, Data: []byte(`{"a":1}`), Encoding: "gzip"},
		{},
	} {
		out, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		var back Body
		if err := json.Unmarshal(out, &back); err != nil {
			t.Fatal(err)
		}
		if back.Size != b.Size || string(back.Data) != string(b.Data) || back.Truncated != b.Truncated || back.Encoding != b.Encoding {
			t.Errorf("%s round-tripped to %+v, want %+v", out, back, b)
		}
	}
}
