package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/sstable/block"
	"github.com/cockroachdb/pebble/v2/vfs"
)

const (
	prefixEntry = 'e'
	prefixIndex = 'm'
	prefixBatch = 'b'
	// prefixAgent keys (a<agent id>: the agent's highest batch, rewritten
	// with every batch) are what stores written before b keys hold; load
	// turns them into b keys.
	prefixAgent = 'a'
	// keyLast holds the highest sequence number given, for when eviction
	// leaves the store empty.
	keyLast = 'n'

	// minHeadroom is the least room eviction keeps below the limit for what
	// it cannot see coming: compaction output beside its input, WAL files.
	minHeadroom = 6 << 20

	// checkEvery is how often the evictor looks at disk usage even when
	// nothing was appended.
	checkEvery = time.Second
	// agentMemory is how long a silent agent's batch number is kept, and
	// forgetEvery how often the evictor forgets the agents silent longer.
	agentMemory = 7 * 24 * time.Hour
	forgetEvery = time.Hour
)

var (
	// ErrNotFound: no entry has that sequence number (never stored, or evicted).
	ErrNotFound = errors.New("no such entry")
	// ErrClosed: the store was closed.
	ErrClosed = errors.New("store is closed")
	// ErrBatchAhead: a batch number further above the agent's last stored
	// batch than BatchWindow. Such a batch is refused, not stored: storing
	// it would make every later batch of that agent_id look like a resend.
	ErrBatchAhead = errors.New("batch number too far ahead of the agent's last stored batch")
	// ErrBatchBehind: a batch number further below the agent's last stored
	// batch than BatchWindow, which no resend of a stored batch can be.
	ErrBatchBehind = errors.New("batch number too far below the agent's last stored batch")
)

// BatchWindow is how far an agent's batch number may be from its last
// stored one. An agent numbers its batches one after another and keeps at
// most a few unacknowledged (agent/emit: 8), so a new batch is its last
// stored one plus at most that many, and a resend is at most that many
// below; 64 leaves room for agents configured with a larger window. A
// number further ahead (2^64-1 under another agent's agent_id, say) would
// make every later batch of that agent_id a "resend", acknowledged and
// never stored.
const BatchWindow = 64

// Config configures Open.
type Config struct {
	// Dir holds the database; it is created if missing.
	Dir string
	// Limit is the most bytes the directory may hold (at least 16 MiB).
	Limit int64
	// Logger receives pebble's messages and eviction reports.
	Logger *slog.Logger
	// Compression names pebble's block compression ("snappy" when empty,
	// "none", "zstd"); benchmarks compare them.
	Compression string
}

// Record is one entry as the store keeps it.
type Record struct {
	Start time.Time
	// JSON is the entry as the agent wrote it.
	JSON []byte
	// Overlay is what the hub adds to it (apiserver/internal/entryjson);
	// the store keeps it beside JSON without reading it. It must not be
	// empty: an empty overlay is how Get tells an older store's entries,
	// whose JSON was stored as served.
	Overlay []byte
	// Index is the entry's index record (protocols/wire).
	Index []byte
}

// Stored is an entry read back: its JSON and overlay, as appended. An
// entry of an older store, written before overlays, has none: its JSON is
// served as it is.
type Stored struct {
	JSON, Overlay []byte
}

// valueOverlaid starts an entry's value that holds an overlay: the byte,
// the overlay's length (uvarint), the overlay, then the JSON. Older stores'
// values are the JSON alone, which starts with '{'.
const valueOverlaid = 1

// Stats describe the store at one moment.
type Stats struct {
	First, Last uint64 // sequence numbers held: First..Last, none when Last < First
	Count       uint64
	Bytes       int64
	Limit       int64
	// HistoryStart is the oldest kept entry's start time; zero when empty.
	HistoryStart time.Time
	Evicted      uint64
	Appended     uint64
}

// Store is the hub's database.
type Store struct {
	db  *pebble.DB
	cfg Config
	log *slog.Logger
	wmu sync.Mutex // serialises appends and evictions
	// batch is reused by every Append (under wmu), keeping its buffer: a
	// new one per batch of entries cost a megabyte allocation each time.
	batch  *pebble.Batch
	first  atomic.Uint64
	last   atomic.Uint64 // highest committed sequence number; 0: none yet
	start  atomic.Int64  // Unix ns of the entry at first
	evicts atomic.Uint64
	appnds atomic.Uint64
	// estimate is the disk usage last measured plus what was appended since.
	estimate atomic.Int64
	// agents holds each agent's highest stored batch (under wmu).
	agents map[string]agentMark
	marks  marks
	kick   chan struct{}
	stop   context.CancelFunc
	done   chan struct{}
	closed atomic.Bool

	// See disk.go.
	reserve, ballast int64
	haveBallast      atomic.Bool
	diskFull         atomic.Bool
	diskFullEvents   atomic.Uint64
	free             atomic.Int64
	spaceChecked     atomic.Int64 // Unix ns
	failOnce         sync.Once
	failure          atomic.Pointer[error]
	failed           chan struct{}
}

// agentMark is an agent's highest stored batch and when it was stored.
type agentMark struct {
	batch uint64
	at    int64 // Unix ns
}

// MinLimit is the smallest size limit Open accepts.
const MinLimit = 16 << 20

// Open opens (or creates) the store in cfg.Dir and starts its evictor.
func Open(cfg Config) (*Store, error) {
	if cfg.Limit < MinLimit {
		return nil, fmt.Errorf("storage limit %d bytes is below the minimum of %d", cfg.Limit, MinLimit)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Store{cfg: cfg, log: cfg.Logger, kick: make(chan struct{}, 1), done: make(chan struct{}), marks: marksFor(cfg.Limit),
		agents: map[string]agentMark{}, failed: make(chan struct{})}
	opts := &pebble.Options{
		Logger: pebbleLogger{l: cfg.Logger},
		FS:     vfs.OnDiskFull(privateFS{vfs.Default}, s.onDiskFull),
		// Scale pebble's fixed overheads with the limit so that a small store
		// is not mostly WAL and memtable.
		MemTableSize:        uint64(clamp(cfg.Limit/64, 256<<10, 64<<20)),
		MaxManifestFileSize: clamp(cfg.Limit/32, 1<<20, 64<<20),
	}
	// Smaller tables make smaller compactions, whose input and output
	// coexist on disk for a moment: the headroom eviction must leave. Every
	// level gets the same size, since pebble's default doubles it per level
	// and the bottom level's tables would be 64 times as large.
	for i := range opts.TargetFileSizes {
		opts.TargetFileSizes[i] = clamp(cfg.Limit/128, 128<<10, 2<<20)
	}
	opts.Experimental.SpanPolicyFunc = onePrefixPerTable
	profile := block.SnappyCompression
	switch cfg.Compression {
	case "", "snappy":
	case "none":
		profile = block.NoCompression
	case "zstd":
		profile = block.ZstdCompression
	default:
		return nil, fmt.Errorf("unknown compression %q", cfg.Compression)
	}
	opts.ApplyCompressionSettings(func() pebble.DBCompressionSettings { return pebble.UniformDBCompressionSettings(profile) })
	if err := privateDir(cfg.Dir); err != nil {
		return nil, err
	}
	if err := privateFiles(cfg.Dir); err != nil {
		return nil, fmt.Errorf("making the store's files private: %w", err)
	}
	s.reserve = reserveFor(int64(opts.MemTableSize), opts.TargetFileSizes[0])
	s.ballast = ballastFor(int64(opts.MemTableSize))
	var db *pebble.DB
	err := s.guard(func() (err error) {
		db, err = pebble.Open(cfg.Dir, opts)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("opening store in %s: %w", cfg.Dir, err)
	}
	s.db, s.batch = db, db.NewBatch(pebble.WithMaxRetainedSizeBytes(maxRetainedBatch))
	if err := s.guard(s.load); err != nil {
		db.Close()
		return nil, err
	}
	// Start the estimate from what a reopened store already holds.
	s.estimate.Store(int64(db.Metrics().DiskSpaceUsage()))
	ctx, cancel := context.WithCancel(context.Background())
	s.stop = cancel
	go s.evictLoop(ctx)
	return s, nil
}

// privateDir makes dir, or tightens an existing one, so that only its owner
// may enter it: the store holds captured traffic, secrets redacted or not,
// and pebble creates its files readable by all.
func privateDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("making the store's directory: %w", err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("making the store's directory: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		if err := os.Chmod(dir, 0o700); err != nil {
			return fmt.Errorf("making the store's directory private: %w", err)
		}
	}
	return nil
}

func clamp(v, lo, hi int64) int64 { return min(max(v, lo), hi) }

// onePrefixPerTable ends a flush's or compaction's output table where the
// key prefix changes, so that no table holds both entries and index records.
// A table that did covered the key range from its oldest entry to its newest
// index record, and so every index record stored after it: compacting new
// data into its level rewrote them all again, and reclaiming an evicted
// range rewrote recent tables. Each prefix's keys only grow, so a table of
// one prefix overlaps only tables of the same moments.
func onePrefixPerTable(start []byte) (pebble.SpanPolicy, []byte, error) {
	if len(start) == 0 {
		return pebble.SpanPolicy{}, []byte{0}, nil
	}
	if start[0] == 0xff {
		return pebble.SpanPolicy{}, nil, nil
	}
	return pebble.SpanPolicy{}, []byte{start[0] + 1}, nil
}

// marks are the disk usages, in bytes, that drive eviction: above high the
// evictor removes the oldest entries down to low; above sync, Append evicts
// before writing (a burst has outrun the evictor).
type marks struct{ low, high, sync int64 }

func marksFor(limit int64) marks {
	headroom := max(limit/5, minHeadroom)
	high := limit - headroom
	return marks{low: high - limit/10, high: high, sync: limit - headroom*2/3}
}

// load finds the sequence range held and the agents' highest batches.
func (s *Store) load() error {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixIndex}, UpperBound: []byte{prefixIndex + 1}})
	if err != nil {
		return fmt.Errorf("reading store: %w", err)
	}
	defer it.Close()
	if it.First() {
		s.first.Store(seqOf(it.Key()))
		s.start.Store(int64(binary.BigEndian.Uint64(it.Value())))
		it.Last()
		s.last.Store(seqOf(it.Key()))
	} else {
		s.first.Store(1)
	}
	if err := it.Error(); err != nil {
		return fmt.Errorf("reading store: %w", err)
	}
	// Keep sequence numbers growing past evicted entries even when the store
	// is empty: an entry's ID is never reused.
	if v, closer, err := s.db.Get([]byte{keyLast}); err == nil {
		if n := binary.BigEndian.Uint64(v); n > s.last.Load() {
			s.last.Store(n)
			s.first.Store(n + 1)
		}
		closer.Close()
	}
	return s.loadAgents()
}

// loadAgents reads each agent's highest stored batch from the b keys, after
// turning the a keys of an older store into b keys. Agents silent for
// agentMemory are forgotten.
func (s *Store) loadAgents() error {
	cutoff := time.Now().Add(-agentMemory).UnixNano()
	b := s.db.NewBatch()
	defer b.Close()
	ait, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixAgent}, UpperBound: []byte{prefixAgent + 1}})
	if err != nil {
		return fmt.Errorf("reading agents: %w", err)
	}
	for ait.First(); ait.Valid(); ait.Next() {
		if v := ait.Value(); len(v) == 16 {
			b.Set(batchKey(nil, s.last.Load(), string(ait.Key()[1:])), v, nil)
		}
		b.Delete(ait.Key(), nil)
	}
	ait.Close()
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("moving agents to batch keys: %w", err)
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixBatch}, UpperBound: []byte{prefixBatch + 1}})
	if err != nil {
		return fmt.Errorf("reading agents: %w", err)
	}
	defer it.Close()
	for it.First(); it.Valid(); it.Next() {
		k, v := it.Key(), it.Value()
		if len(k) < 9 || len(v) != 16 {
			continue
		}
		m := agentMark{batch: binary.BigEndian.Uint64(v), at: int64(binary.BigEndian.Uint64(v[8:]))}
		if id := string(k[9:]); m.at >= cutoff && m.batch > s.agents[id].batch {
			s.agents[id] = m
		}
	}
	return it.Error()
}

// batchKey appends the key of an agent's batch whose first entry is seq:
// b<seq:8><agent id>. Batch keys only grow, like entry keys, so no table
// written since holds one that an older table's range covers.
func batchKey(dst []byte, seq uint64, agentID string) []byte {
	return append(appendKey(dst, prefixBatch, seq), agentID...)
}

// forgetSilentAgents drops agents silent for agentMemory. Call with wmu held.
func (s *Store) forgetSilentAgents() {
	cutoff := time.Now().Add(-agentMemory).UnixNano()
	for id, m := range s.agents {
		if m.at < cutoff {
			delete(s.agents, id)
		}
	}
}

func key(prefix byte, seq uint64) []byte { return appendKey(make([]byte, 0, 9), prefix, seq) }

func appendKey(dst []byte, prefix byte, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(append(dst, prefix), seq)
}

// maxRetainedBatch is the largest write batch whose buffer the store keeps
// for the next: room for a batch of the largest ingest message.
const maxRetainedBatch = 12 << 20

func seqOf(k []byte) uint64 { return binary.BigEndian.Uint64(k[1:]) }

// Append stores one batch from an agent. When agentID is not empty and
// batchSeq is not above the highest batch already stored for it (but less
// than BatchWindow below), nothing is stored and dup is true; a batchSeq
// further from it than BatchWindow is refused (ErrBatchAhead,
// ErrBatchBehind). Otherwise build is called, under the store's write
// lock, with the first of the consecutive sequence numbers its records get
// (entry IDs derive from them), and the records are durable when Append
// returns. committed, when set, runs right after the commit, still under the
// lock, so that whatever it does (publishing to live streams) happens in
// sequence order; it must not block.
func (s *Store) Append(agentID string, batchSeq uint64, build func(first uint64) ([]Record, error), committed func()) (first uint64, dup bool, err error) {
	if s.closed.Load() {
		return 0, false, ErrClosed
	}
	if err := s.Err(); err != nil {
		return 0, false, err
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if mark, known := s.agents[agentID]; agentID != "" && known {
		switch {
		case batchSeq > mark.batch && batchSeq-mark.batch > BatchWindow:
			return 0, false, fmt.Errorf("batch %d, last stored %d: %w", batchSeq, mark.batch, ErrBatchAhead)
		case batchSeq <= mark.batch && mark.batch-batchSeq >= BatchWindow:
			return 0, false, fmt.Errorf("batch %d, last stored %d: %w", batchSeq, mark.batch, ErrBatchBehind)
		case batchSeq <= mark.batch:
			return 0, true, nil
		}
	}
	first = s.last.Load() + 1
	recs, err := build(first)
	if err != nil {
		return 0, false, err
	}
	incoming := int64(0)
	for _, r := range recs {
		if len(r.Overlay) == 0 {
			return 0, false, errors.New("storing an entry without an overlay")
		}
		incoming += int64(len(r.JSON) + len(r.Overlay) + len(r.Index))
	}
	if err := s.checkSpace(incoming); err != nil {
		return 0, false, err
	}
	if s.estimate.Load()+incoming > s.marks.sync {
		// A burst outran the evictor: make room before writing more.
		if err := s.guard(func() error { return s.evictLocked(context.Background()) }); err != nil {
			return 0, false, err
		}
	}
	// Set copies its key and value into the batch, so k and m are reused.
	b := s.batch
	defer b.Reset()
	var k []byte
	var m []byte
	for i, r := range recs {
		seq := first + uint64(i)
		k = appendKey(k[:0], prefixEntry, seq)
		// The value is written in the batch's buffer, not assembled first.
		var olen [binary.MaxVarintLen64]byte
		ol := binary.PutUvarint(olen[:], uint64(len(r.Overlay)))
		op := b.SetDeferred(len(k), 1+ol+len(r.Overlay)+len(r.JSON))
		copy(op.Key, k)
		op.Value[0] = valueOverlaid
		n := 1 + copy(op.Value[1:], olen[:ol])
		n += copy(op.Value[n:], r.Overlay)
		copy(op.Value[n:], r.JSON)
		if err := op.Finish(); err != nil {
			return 0, false, fmt.Errorf("storing %d entries: %w", len(recs), err)
		}
		m = binary.BigEndian.AppendUint64(m[:0], uint64(r.Start.UnixNano()))
		k = appendKey(k[:0], prefixIndex, seq)
		b.Set(k, append(m, r.Index...), nil)
	}
	// The batch number goes under a key of its own that grows with the
	// entries'. (A key per agent, rewritten with every batch, was in every
	// table that a flush wrote, so that the tables overlapped: pebble then
	// rewrote all of them in compactions, which took a third of the
	// store's work. Now they are moved.)
	now := time.Now().UnixNano()
	if agentID != "" {
		var v [16]byte
		binary.BigEndian.PutUint64(v[:8], batchSeq)
		binary.BigEndian.PutUint64(v[8:], uint64(now))
		b.Set(batchKey(k[:0], first, agentID), v[:], nil)
	}
	last := first + uint64(len(recs)) - 1
	// Measure the batch before committing it: pebble takes a large batch's
	// buffer over as a memtable of its own and leaves Len reporting an empty
	// batch, which once kept the estimate from growing at all, so that only
	// the evictor's ticker noticed a burst, a second and many megabytes late.
	written := int64(b.Len())
	if err := s.guard(func() error { return b.Commit(pebble.Sync) }); err != nil {
		return 0, false, fmt.Errorf("storing %d entries: %w", len(recs), err)
	}
	if agentID != "" {
		s.agents[agentID] = agentMark{batch: batchSeq, at: now}
	}
	s.estimate.Add(written)
	if len(recs) > 0 {
		if s.last.Load() < s.first.Load() { // was empty
			s.start.Store(recs[0].Start.UnixNano())
		}
		s.last.Store(last)
		s.appnds.Add(uint64(len(recs)))
	}
	if committed != nil {
		committed()
	}
	select {
	case s.kick <- struct{}{}:
	default:
	}
	return first, false, nil
}

// Last returns the highest sequence number stored so far (0: none).
func (s *Store) Last() uint64 { return s.last.Load() }

// Get returns one entry, in memory of its own.
func (s *Store) Get(seq uint64) (Stored, error) {
	if seq < s.first.Load() {
		return Stored{}, ErrNotFound
	}
	v, closer, err := s.db.Get(key(prefixEntry, seq))
	if errors.Is(err, pebble.ErrNotFound) {
		return Stored{}, ErrNotFound
	}
	if err != nil {
		return Stored{}, fmt.Errorf("reading entry %d: %w", seq, err)
	}
	defer closer.Close()
	v = append([]byte(nil), v...)
	if len(v) == 0 || v[0] != valueOverlaid {
		return Stored{JSON: v}, nil // an older store's
	}
	l, n := binary.Uvarint(v[1:])
	if n <= 0 || l == 0 || l > uint64(len(v)-1-n) {
		return Stored{}, fmt.Errorf("reading entry %d: malformed value", seq)
	}
	v = v[1+n:]
	return Stored{Overlay: v[:l:l], JSON: v[l:]}, nil
}

// Item is what a scan shows of one stored entry.
type Item struct {
	Seq   uint64
	Start time.Time
	// Index is the entry's index record, valid during the callback.
	Index []byte
	s     *Store
}

// Get reads the entry.
func (it *Item) Get() (Stored, error) { return it.s.Get(it.Seq) }

// Scan calls fn for the entries with sequence numbers below before (0: no
// bound), newest first, until fn returns false or ctx ends.
func (s *Store) Scan(ctx context.Context, before uint64, fn func(*Item) bool) error {
	return s.ScanRange(ctx, 0, before, fn)
}

// First returns the oldest sequence number held (Last+1 when empty).
func (s *Store) First() uint64 { return s.first.Load() }

// ScanRange is Scan limited to sequence numbers from from (inclusive) up to
// before (exclusive; 0: no bound). Ranges may be scanned concurrently.
func (s *Store) ScanRange(ctx context.Context, from, before uint64, fn func(*Item) bool) error {
	if s.closed.Load() {
		return ErrClosed
	}
	upper := []byte{prefixIndex + 1}
	if before > 0 {
		upper = key(prefixIndex, before)
	}
	it, err := s.db.NewIterWithContext(ctx, &pebble.IterOptions{LowerBound: key(prefixIndex, from), UpperBound: upper})
	if err != nil {
		return fmt.Errorf("scanning: %w", err)
	}
	defer it.Close()
	item := Item{s: s}
	n := 0
	for ok := it.Last(); ok; ok = it.Prev() {
		if n++; n%4096 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		v := it.Value()
		if len(v) < 8 {
			continue
		}
		item.Seq = seqOf(it.Key())
		item.Start = time.Unix(0, int64(binary.BigEndian.Uint64(v)))
		item.Index = v[8:]
		if !fn(&item) {
			break
		}
	}
	return it.Error()
}

// Stats reports the store's state. It reads pebble's metrics, so call it at
// human rates (stats messages, /metrics scrapes), not per entry.
func (s *Store) Stats() Stats {
	st := Stats{
		First: s.first.Load(), Last: s.last.Load(), Limit: s.cfg.Limit,
		Evicted: s.evicts.Load(), Appended: s.appnds.Load(),
	}
	if st.Last >= st.First {
		st.Count = st.Last - st.First + 1
		st.HistoryStart = time.Unix(0, s.start.Load())
	}
	if !s.closed.Load() {
		st.Bytes = int64(s.db.Metrics().DiskSpaceUsage())
	}
	return st
}

// Close stops the evictor and closes the database.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	if err := s.Err(); err != nil {
		// A failed pebble may hold its locks; the process is about to
		// exit, which is all that can be done for it.
		s.stop()
		return err
	}
	s.stop()
	<-s.done
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.batch.Close()
	return s.db.Close()
}

func (s *Store) evictLoop(ctx context.Context) {
	defer close(s.done)
	t := time.NewTicker(checkEvery)
	defer t.Stop()
	forgot := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if time.Since(forgot) > forgetEvery {
				s.wmu.Lock()
				s.forgetSilentAgents()
				s.wmu.Unlock()
				forgot = time.Now()
			}
		case <-s.kick:
			// Appends only grow the estimate; measuring is for when it
			// says eviction may be due, or the ticker.
			if s.estimate.Load() <= s.marks.high {
				continue
			}
		}
		if err := s.guard(func() error { return s.evict(ctx) }); err != nil && ctx.Err() == nil {
			s.log.Error("evicting old entries", "err", err)
		}
	}
}

// evict removes the oldest entries while disk usage is above the high-water mark.
func (s *Store) evict(ctx context.Context) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return s.evictLocked(ctx)
}

// evictLocked is evict with s.wmu held.
func (s *Store) evictLocked(ctx context.Context) error {
	for round := 0; ; round++ {
		usage := float64(s.db.Metrics().DiskSpaceUsage())
		s.estimate.Store(int64(usage))
		if usage <= float64(s.marks.high) || ctx.Err() != nil || round == 8 {
			return nil
		}
		first, last := s.first.Load(), s.last.Load()
		if last < first {
			// Nothing left to evict: the rest is pebble's own overhead.
			return s.db.Compact(ctx, []byte{0}, []byte{0xff}, false)
		}
		count := last - first + 1
		n := uint64(float64(count) * (usage - float64(s.marks.low)) / usage)
		n = min(max(n, 1, count/100), count)
		end := first + n
		b := s.db.NewBatch()
		b.DeleteRange(key(prefixEntry, first), key(prefixEntry, end), nil)
		b.DeleteRange(key(prefixIndex, first), key(prefixIndex, end), nil)
		b.DeleteRange(key(prefixBatch, 0), key(prefixBatch, end), nil)
		var lastSeq [8]byte
		binary.BigEndian.PutUint64(lastSeq[:], last)
		b.Set([]byte{keyLast}, lastSeq[:], nil)
		err := b.Commit(pebble.Sync)
		b.Close()
		if err != nil {
			return fmt.Errorf("deleting entries %d..%d: %w", first, end-1, err)
		}
		s.first.Store(end)
		s.evicts.Add(n)
		if v, closer, err := s.db.Get(key(prefixIndex, end)); err == nil {
			s.start.Store(int64(binary.BigEndian.Uint64(v)))
			closer.Close()
		}
		s.log.Info("evicted oldest entries", "count", n, "disk_bytes", int64(usage), "limit", s.cfg.Limit)
		// Compacting the deleted range drops the tables it covers now rather
		// than whenever pebble would get to it.
		if err := s.db.Compact(ctx, key(prefixEntry, 0), key(prefixEntry, end), false); err != nil {
			return fmt.Errorf("compacting evicted entries: %w", err)
		}
		if err := s.db.Compact(ctx, key(prefixIndex, 0), key(prefixIndex, end), false); err != nil {
			return fmt.Errorf("compacting evicted index: %w", err)
		}
	}
}

type pebbleLogger struct {
	l *slog.Logger
}

func (p pebbleLogger) Infof(format string, args ...any) {
	p.l.Debug("pebble: " + fmt.Sprintf(format, args...))
}
func (p pebbleLogger) Errorf(format string, args ...any) {
	p.l.Error("pebble: " + fmt.Sprintf(format, args...))
}
func (p pebbleLogger) Fatalf(format string, args ...any) {
	// pebble calls Fatalf on corruption it cannot continue from; it expects
	// the process to stop.
	// The store's guard recovers the panic and fails the store for good.
	p.l.Error("pebble: " + fmt.Sprintf(format, args...))
	panic(fatalPanic{err: fmt.Errorf(format, args...)})
}
