package bin

import (
	"bytes"
	"testing"
)

func TestReader(t *testing.T) {
	tests := []struct {
		name   string
		in     []byte
		read   func(r *Reader) any
		want   any
		wantOk bool
		left   int
	}{
		{"uint16", []byte{1, 2, 3}, func(r *Reader) any { return r.Uint16() }, uint16(0x102), true, 1},
		{"short uint32", []byte{1, 2, 3}, func(r *Reader) any { return r.Uint32() }, uint32(0), false, 0},
		{"int8", []byte{0xff}, func(r *Reader) any { return r.Int8() }, int8(-1), true, 0},
		{"varint", []byte{3, 9}, func(r *Reader) any { return r.Varint() }, int64(-2), true, 1},
		{"truncated varint", []byte{0x80}, func(r *Reader) any { return r.Uvarint() }, uint64(0), false, 0},
		{"bytes8", []byte{2, 'a', 'b', 'c'}, func(r *Reader) any { return string(r.Bytes8()) }, "ab", true, 1},
		{"bytes32 past the end", []byte{0xff, 0xff, 0xff, 0xff, 'a'}, func(r *Reader) any { return string(r.Bytes32()) }, "", false, 0},
		{"count past the end", []byte{1, 2}, func(r *Reader) any { return r.Count(3) }, 0, false, 0},
		{"negative count", []byte{1, 2}, func(r *Reader) any { return r.Count(-1) }, 0, false, 0},
		{"sticky", []byte{1}, func(r *Reader) any { r.Uint16(); return r.Uint8() }, uint8(0), false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewReader(tt.in)
			if got := tt.read(&r); got != tt.want || r.Ok() != tt.wantOk || r.Len() != tt.left {
				t.Errorf("got %v, ok %v, %d left; want %v, %v, %d", got, r.Ok(), r.Len(), tt.want, tt.wantOk, tt.left)
			}
		})
	}
}

func TestSpanIsCapped(t *testing.T) {
	in := []byte("abcd")
	r := NewReader(in)
	p := r.Span(2)
	_ = append(p, 'x')
	if !bytes.Equal(in, []byte("abcd")) {
		t.Fatalf("appending to a span overwrote what follows: %q", in)
	}
}
