package main

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files from the current output")

// run executes the CLI with args and returns stdout, stderr and the error.
func run(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	root := newRoot()
	root.SetArgs(args)
	root.SetOut(&out)
	root.SetErr(&errOut)
	err := root.Execute()
	return out.String(), errOut.String(), err
}

// TestReadSampleGolden keeps the JSON of the recorded sample capture stable:
// every key and value a tool relies on. Regenerate with -update.
func TestReadSampleGolden(t *testing.T) {
	got, _, err := run(t, "read", "--json", "testdata/sample.pcapng")
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "sample.golden.jsonl")
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("missing golden file (run go test -update): %v", err)
	}
	if got != string(want) {
		gl, wl := strings.Split(got, "\n"), strings.Split(string(want), "\n")
		for i := 0; i < len(gl) || i < len(wl); i++ {
			var g, w string
			if i < len(gl) {
				g = gl[i]
			}
			if i < len(wl) {
				w = wl[i]
			}
			if g != w {
				t.Fatalf("line %d differs from %s:\n got: %s\nwant: %s", i+1, golden, g, w)
			}
		}
	}
}

func TestReadTable(t *testing.T) {
	out, stats, err := run(t, "read", "testdata/sample.pcapng")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"TIME", "GET", "/api/users", "503", "token=[REDACTED]", "redis", "WRONGTYPE"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	if !strings.HasPrefix(stats, "read ") || !strings.Contains(stats, "entries") {
		t.Errorf("stats line = %q", stats)
	}
}

// TestReadBadInput: every bad input gets one sentence and an error, never a panic.
func TestReadBadInput(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	sample, err := os.ReadFile("testdata/sample.pcapng")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		args    []string
		wantErr string
		wantOut string // something the output must still hold
	}{
		{"missing file", []string{"read", filepath.Join(dir, "nope.pcap")}, "no such file", ""},
		{"empty file", []string{"read", write("empty.pcap", nil)}, "is not a pcap or pcapng capture", ""},
		{"random bytes", []string{"read", write("random.pcap", bytes.Repeat([]byte{0x5a, 0x13, 0xf7}, 999))}, "is not a pcap or pcapng capture", ""},
		{"truncated", []string{"read", write("cut.pcapng", sample[:len(sample)*2/3])}, "is truncated", "/api/users"},
		{"no argument", []string{"read"}, "accepts 1 arg", ""},
		{"unknown flag", []string{"read", "--nope", "x"}, "unknown flag: --nope", ""},
		{"negative body cap", []string{"read", "--body-cap", "-1", "testdata/sample.pcapng"}, "--body-cap must be zero or more", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, _, err := run(t, tt.args...)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
			}
			if strings.Count(err.Error(), "\n") > 0 {
				t.Errorf("error is more than one line: %q", err)
			}
			if !strings.Contains(out, tt.wantOut) {
				t.Errorf("output lacks %q:\n%s", tt.wantOut, out)
			}
		})
	}
}
