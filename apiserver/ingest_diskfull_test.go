package apiserver_test

import (
	"errors"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sondehq/sonde/agent/emit"
	"github.com/sondehq/sonde/apiserver"
)

// TestDiskFullPausesIngest fills the filesystem the store is on while an
// agent sends, then frees it. A full disk made pebble's commit fail, which
// it cannot continue from: the handler's panic was recovered, every later
// batch panicked, and /healthz kept answering 200. Now ingest stops with a
// counted reason before pebble meets the full disk, /healthz says why, the
// agent keeps its unacknowledged batches, and once space returns every entry
// is stored, each once.
func TestDiskFullPausesIngest(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a small tmpfs to fill needs root")
	}
	mnt := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=14m,mode=0755", "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Fatalf("mounting a tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", "-l", mnt).CombinedOutput(); err != nil {
			t.Errorf("unmounting the tmpfs: %v: %s", err, out)
		}
	})
	dir := filepath.Join(mnt, "data")
	h := startHub(t, apiserver.Config{DataDir: dir, StorageLimit: 16 << 20}, "127.0.0.1:0")
	s := newSender(t, h.url, emit.Config{Node: "n1", BatchSize: 50})

	at := time.Now()
	var want []string
	send := func(n int) {
		for range n {
			e := makeEntry(len(want), at)
			want = append(want, e.Summary.Target)
			s.Send(e)
		}
	}
	send(600)
	flush(t, s)

	// Fill the disk, with the agent still sending.
	filler := filepath.Join(mnt, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 16<<10)
	for i := 0; ; i++ {
		if i%64 == 0 {
			send(20)
		}
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			break
		}
	}
	f.Close()
	send(600)

	waitFor(t, "/healthz to say the disk is full", func() bool {
		var hz struct {
			OK    bool   `json:"ok"`
			Error string `json:"error"`
		}
		return h.get("/healthz", &hz) == http.StatusServiceUnavailable && !hz.OK && strings.Contains(hz.Error, "disk") && strings.Contains(hz.Error, "full")
	})
	waitFor(t, "a batch refused for the full disk", func() bool {
		return h.metric(`sonde_hub_ingest_rejected_total{reason="disk_full"}`) > 0
	})
	if st := s.Stats(); st.Buffered == 0 {
		t.Errorf("the agent holds nothing while the disk is full: %+v", st)
	}

	os.Remove(filler)
	waitFor(t, "/healthz to say ok once space returned", func() bool { return h.get("/healthz", nil) == http.StatusOK })
	send(200)
	flush(t, s)

	got := h.allTargets()
	seen := map[string]int{}
	for _, g := range got {
		seen[g]++
	}
	for _, w := range want {
		if seen[w] != 1 {
			t.Errorf("entry %s stored %d times, want once", w, seen[w])
		}
	}
	if len(got) != len(want) {
		t.Errorf("stored %d entries, sent %d", len(got), len(want))
	}
	if got := h.metric("sonde_hub_handler_panics_total"); got != 0 {
		t.Errorf("%v handlers panicked", got)
	}
	if err := h.srv.Err(); err != nil {
		t.Errorf("the store failed: %v", err)
	}
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, _ := d.Info()
		if want := fs.FileMode(0o600); d.IsDir() && fi.Mode().Perm() != 0o700 || !d.IsDir() && fi.Mode().Perm() != want {
			t.Errorf("%s has mode %o", path, fi.Mode().Perm())
		}
		return nil
	})
}

// waitFor polls cond until it holds, failing the test after a minute.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited a minute for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
