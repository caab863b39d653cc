package apiserver_test

import (
	"errors"
	"testing"

	"github.com/sondehq/sonde/apiserver"
)

func TestParseSize(t *testing.T) {
	tests := []struct {
		in      string
		want    int64
		wantErr error
	}{
		{in: "1GiB", want: 1 << 30},
		{in: "512mib", want: 512 << 20},
		{in: "1.5 GiB", want: 3 << 29},
		{in: "2G", want: 2e9},
		{in: "1500000000", want: 1500000000},
		{in: "64KB", want: 64000},
		{in: "", wantErr: apiserver.ErrSize},
		{in: "-1GiB", wantErr: apiserver.ErrSize},
		{in: "lots", wantErr: apiserver.ErrSize},
		{in: "9999999TiB", wantErr: apiserver.ErrSize},
	}
	for _, tt := range tests {
		got, err := apiserver.ParseSize(tt.in)
		if got != tt.want || !errors.Is(err, tt.wantErr) {
			t.Errorf("ParseSize(%q) = %d, %v; want %d, %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}
