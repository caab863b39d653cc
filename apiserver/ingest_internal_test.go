package apiserver

import "testing"

func TestWithoutID(t *testing.T) {
	tests := []struct {
		in     string
		want   string
		wantOK bool
	}{
		{in: `{"id":"n1-42","protocol":"http1"}`, want: `,"protocol":"http1"}`, wantOK: true},
		{in: `{"id":"","protocol":"redis"}`, want: `,"protocol":"redis"}`, wantOK: true},
		{in: `{"id":"a\"b\\","x":1}`, want: `,"x":1}`, wantOK: true},
		{in: `{"protocol":"http1","id":"1"}`},
		{in: `{"id":"unterminated`},
		{in: `{"id":5}`},
	}
	for _, tt := range tests {
		got, ok := withoutID([]byte(tt.in))
		if ok != tt.wantOK || string(got) != tt.want {
			t.Errorf("withoutID(%s) = %s, %v; want %s, %v", tt.in, got, ok, tt.want, tt.wantOK)
		}
	}
}
