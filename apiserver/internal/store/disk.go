package store

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// A full disk and a store that cannot go on.
//
// Pebble cannot continue from a failed commit (its commit pipeline is left
// broken and it calls Fatalf), so the store never lets a commit meet a full
// disk if it can help it: before each batch it checks the space free on the
// store's filesystem and refuses the batch (ErrDiskFull) while that is below
// what the batch and pebble's own next writes (a memtable flush, a
// compaction's output) may need. Ingest stops with a counted reason, agents
// keep what they have not had acknowledged, and Append takes batches again
// once space returns. Between that check and the commit, the disk may still
// fill (another process writes to it): a ballast file in the directory,
// removed the moment pebble meets ENOSPC (vfs.OnDiskFull, which then retries
// the write once), gives that last write room. The ballast is made again
// when space returns.
//
// When pebble does stop (a commit failed anyway, or corruption), the store
// is failed for good: Append and Health return ErrFailed with the cause,
// and Failed's channel is closed so that the process can exit and be
// restarted rather than go on as a hub that takes nothing.

var (
	// ErrDiskFull: the store's filesystem has too little space free for the
	// batch; try again later.
	ErrDiskFull = errors.New("the disk holding the store is full")
	// ErrFailed: the store met an error it cannot continue from; the
	// process must restart.
	ErrFailed = errors.New("the store failed and cannot continue")
)

// ballastName is the ballast file's name in the store's directory (pebble
// leaves files it does not know alone).
const ballastName = "sonde-ballast"

// spaceCheckEvery is how often Health measures free space when no batch
// came to measure it.
const spaceCheckEvery = time.Second

// fatalPanic is what pebbleLogger.Fatalf panics with, so that the store can
// tell it from any other panic.
type fatalPanic struct{ err error }

// privateFS creates the store's files readable by their owner only (pebble
// creates them 0666 less the umask), and its directories 0700.
type privateFS struct{ vfs.FS }

func (p privateFS) Create(name string, c vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := p.FS.Create(name, c)
	if err == nil {
		os.Chmod(name, 0o600)
	}
	return f, err
}

func (p privateFS) OpenReadWrite(name string, c vfs.DiskWriteCategory, opts ...vfs.OpenOption) (vfs.File, error) {
	f, err := p.FS.OpenReadWrite(name, c, opts...)
	if err == nil {
		os.Chmod(name, 0o600)
	}
	return f, err
}

func (p privateFS) Lock(name string) (io.Closer, error) {
	c, err := p.FS.Lock(name)
	if err == nil {
		os.Chmod(name, 0o600)
	}
	return c, err
}

func (p privateFS) MkdirAll(dir string, _ os.FileMode) error { return p.FS.MkdirAll(dir, 0o700) }

// privateFiles makes the files an existing store holds its owner's alone.
func privateFiles(dir string) error {
	return filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		mode := fs.FileMode(0o600)
		if d.IsDir() {
			mode = 0o700
		}
		if fi, err := d.Info(); err == nil && fi.Mode().Perm() != mode {
			return os.Chmod(path, mode)
		}
		return nil
	})
}

// reserveFor is the space pebble may need beyond a batch before it can
// take the next: a memtable flushed to a table, a compaction's output
// beside its input, a new WAL and manifest.
func reserveFor(memtable, table int64) int64 { return 2*memtable + 4*table + 1<<20 }

// ballastFor is the ballast's size: room for a memtable's flush (which
// pebble, failing, retries at once and without end, a core's worth) and for
// a commit that raced the space check.
func ballastFor(memtable int64) int64 { return memtable + 1<<20 }

// freeBytes is the space free to an unprivileged writer on dir's filesystem.
func freeBytes(dir string) (int64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, fmt.Errorf("measuring free space: %w", err)
	}
	return int64(st.Bavail) * int64(st.Bsize), nil
}

// onDiskFull runs when pebble meets ENOSPC, with pebble's writes held: it
// frees the ballast for the write pebble retries, and stops appends until
// space returns.
func (s *Store) onDiskFull() {
	s.diskFull.Store(true)
	s.diskFullEvents.Add(1)
	os.Remove(filepath.Join(s.cfg.Dir, ballastName))
	s.haveBallast.Store(false)
}

// checkSpace says whether a batch of incoming bytes may be written now. It
// measures free space, remakes the ballast when there is room for it again,
// and remembers whether the disk is full for Health.
func (s *Store) checkSpace(incoming int64) error {
	free, err := freeBytes(s.cfg.Dir)
	if err != nil {
		return err
	}
	s.spaceChecked.Store(time.Now().UnixNano())
	s.free.Store(free)
	need := s.reserve + 2*incoming // the WAL, then the table it is flushed to
	if !s.haveBallast.Load() {
		if free < need+s.ballast {
			s.diskFull.Store(true)
			return fmt.Errorf("%w: %d bytes free, %d needed", ErrDiskFull, free, need+s.ballast)
		}
		if err := s.makeBallast(); err != nil {
			s.diskFull.Store(true)
			return fmt.Errorf("%w: making room in reserve: %v", ErrDiskFull, err)
		}
		free -= s.ballast
	}
	if free < need {
		s.diskFull.Store(true)
		return fmt.Errorf("%w: %d bytes free, %d needed", ErrDiskFull, free, need)
	}
	s.diskFull.Store(false)
	return nil
}

// makeBallast writes the ballast (not sparse: its blocks must be taken).
func (s *Store) makeBallast() error {
	path := filepath.Join(s.cfg.Dir, ballastName)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	buf := make([]byte, 64<<10)
	for n := int64(0); n < s.ballast; n += int64(len(buf)) {
		if _, err = f.Write(buf[:min(int64(len(buf)), s.ballast-n)]); err != nil {
			break
		}
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return err
	}
	s.haveBallast.Store(true)
	return nil
}

// fail marks the store failed for good with err.
func (s *Store) fail(err error) {
	s.failOnce.Do(func() {
		s.failure.Store(&err)
		close(s.failed)
	})
}

// Err returns the error that failed the store, nil while it works.
func (s *Store) Err() error {
	if p := s.failure.Load(); p != nil {
		return fmt.Errorf("%w: %v", ErrFailed, *p)
	}
	return nil
}

// Failed is closed when the store fails for good (see Err).
func (s *Store) Failed() <-chan struct{} { return s.failed }

// Health says why the store cannot take entries now: ErrFailed (for good),
// ErrDiskFull (until space returns), or nil.
func (s *Store) Health() error {
	if err := s.Err(); err != nil {
		return err
	}
	if s.closed.Load() {
		return ErrClosed
	}
	if time.Since(time.Unix(0, s.spaceChecked.Load())) > spaceCheckEvery && s.wmu.TryLock() {
		err := s.checkSpace(0)
		s.wmu.Unlock()
		return err
	}
	if s.diskFull.Load() {
		return fmt.Errorf("%w: %d bytes free", ErrDiskFull, s.free.Load())
	}
	return nil
}

// DiskFullEvents counts the times pebble met a full disk (and the ballast
// was given up).
func (s *Store) DiskFullEvents() uint64 { return s.diskFullEvents.Load() }

// guard runs fn, which calls into pebble, turning pebble's fatal error
// (pebbleLogger.Fatalf's panic) into ErrFailed: the store fails for good,
// and the panic does not reach the caller (a request handler, which would
// recover it and go on calling a broken pebble).
func (s *Store) guard(fn func() error) (err error) {
	if err := s.Err(); err != nil {
		return err
	}
	defer func() {
		if v := recover(); v != nil {
			fp, ok := v.(fatalPanic)
			if !ok {
				panic(v)
			}
			s.fail(fp.err)
			err = s.Err()
		}
	}()
	return fn()
}
