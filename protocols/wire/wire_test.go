package wire

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

func TestBatchRoundTrip(t *testing.T) {
	msg, err := AppendBatch(nil, 7, map[string]uint64{"emit_dropped": 2}, []byte(`{"id":"a"}`), []byte(`{"id":"b\n"}`))
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.Split(msg, []byte{'\n'})
	if len(lines) != 3 || string(lines[0]) != `{"type":"batch","seq":7,"counters":{"emit_dropped":2}}` || string(lines[2]) != `{"id":"b\n"}` {
		t.Errorf("batch %q", lines)
	}
	if _, err := AppendBatch(nil, 1, nil, []byte("{\n}")); !errors.Is(err, ErrNewline) {
		t.Errorf("multi-line entry: %v", err)
	}
}

// TestIndexedRoundTrip: entries of an indexed batch read back as written,
// and a body cut anywhere is refused, never read past its end.
func TestIndexedRoundTrip(t *testing.T) {
	var body []byte
	pairs := [][2]string{{"rec-1", `{"id":"a"}`}, {"", `{}`}, {string(bytes.Repeat([]byte{0xff}, 300)), `{"id":"b\n"}`}}
	for _, p := range pairs {
		body = AppendIndexed(body, []byte(p[0]), []byte(p[1]))
	}
	rest := body
	for i, p := range pairs {
		rec, entry, r, err := NextIndexed(rest)
		if err != nil || string(rec) != p[0] || string(entry) != p[1] {
			t.Fatalf("entry %d: %q %q %v", i, rec, entry, err)
		}
		rest = r
	}
	if len(rest) != 0 {
		t.Errorf("%d bytes left", len(rest))
	}
	for cut := 1; cut < len(body); cut++ {
		p := body[:cut]
		for len(p) > 0 {
			_, _, r, err := NextIndexed(p)
			if err != nil {
				if !errors.Is(err, ErrFraming) {
					t.Fatalf("cut at %d: %v", cut, err)
				}
				break
			}
			p = r
		}
	}
	if _, _, _, err := NextIndexed([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}); !errors.Is(err, ErrFraming) {
		t.Errorf("overlong length: %v", err)
	}
}

func TestReadTokenFile(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, content string
		want          string
		wantErr       error
	}{
		{"a mounted secret", "0123456789abcdef0123\n", "0123456789abcdef0123", nil},
		{"empty", " \n", "", ErrNoToken},
		{"one byte", "x", "", ErrShortToken},
		{"fifteen bytes", "0123456789abcde", "", ErrShortToken},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, fmt.Sprint(i))
			if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			got, err := ReadTokenFile(path)
			if !errors.Is(err, tt.wantErr) || string(got) != tt.want {
				t.Errorf("ReadTokenFile = %q, %v; want %q, %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}
