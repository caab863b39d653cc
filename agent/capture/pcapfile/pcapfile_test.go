package pcapfile

import (
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

const sample = "../../../cmd/sonde/testdata/sample.pcapng"

func writeFile(t *testing.T, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "f.pcap")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// pcapHeader is a little-endian microsecond pcap file header.
func pcapHeader(snaplen uint32, link uint32) []byte {
	h := make([]byte, 24)
	binary.LittleEndian.PutUint32(h[0:], 0xa1b2c3d4)
	binary.LittleEndian.PutUint16(h[4:], 2)
	binary.LittleEndian.PutUint16(h[6:], 4)
	binary.LittleEndian.PutUint32(h[16:], snaplen)
	binary.LittleEndian.PutUint32(h[20:], link)
	return h
}

func record(caplen, wirelen uint32, data []byte) []byte {
	r := make([]byte, 16, 16+len(data))
	binary.LittleEndian.PutUint32(r[8:], caplen)
	binary.LittleEndian.PutUint32(r[12:], wirelen)
	return append(r, data...)
}

func readAll(path string) (int, error) {
	r, err := Open(path)
	if err != nil {
		return 0, err
	}
	defer r.Close()
	n := 0
	for {
		_, err := r.Next()
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil {
			return n, err
		}
		n++
	}
}

func TestOpenBadInput(t *testing.T) {
	random := make([]byte, 4096)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range random {
		random[i] = byte(rng.UintN(256))
	}
	good, err := os.ReadFile(sample)
	if err != nil {
		t.Fatalf("the sample capture is missing: %v", err)
	}
	frame := make([]byte, 60)
	tests := []struct {
		name    string
		data    []byte
		want    int   // frames read before the end or the error; -1: any
		wantErr error // nil: no error
		anyErr  bool  // an error is wanted, of whatever kind
	}{
		{"empty", nil, 0, ErrNotCapture, false},
		{"random bytes", random, 0, ErrNotCapture, false},
		{"header cut short", pcapHeader(65535, 1)[:10], 0, ErrTruncated, false},
		{"record cut short", append(pcapHeader(65535, 1), record(60, 60, frame[:20])...), 0, ErrTruncated, false},
		{"pcapng cut in the middle", good[:len(good)/2], -1, ErrTruncated, false},
		{"huge snap length, small records", append(pcapHeader(0xffffffff, 1), record(60, 60, frame)...), 1, nil, false},
		{"record larger than the cap", append(pcapHeader(0xffffffff, 1), record(MaxFrame+1, MaxFrame+1, nil)...), 0, nil, true},
		{"unsupported link type", pcapHeader(65535, 147), 0, ErrUnsupportedLink, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := readAll(writeFile(t, tt.data))
			switch {
			case tt.anyErr && err == nil:
				t.Fatal("err = nil, want an error")
			case tt.wantErr != nil && !errors.Is(err, tt.wantErr):
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			case tt.wantErr == nil && !tt.anyErr && err != nil:
				t.Fatalf("err = %v", err)
			}
			if tt.want >= 0 && n != tt.want {
				t.Errorf("read %d frames, want %d", n, tt.want)
			}
		})
	}
}

func TestSample(t *testing.T) {
	n, err := readAll(sample)
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatal("no frames in the sample capture")
	}
}
