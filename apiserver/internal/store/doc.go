// Package store keeps the hub's entries on disk, oldest first, within a size
// limit, in an embedded pebble (github.com/cockroachdb/pebble/v2) database.
//
// # Why pebble
//
// Measured on the project machine (2 shared cores) with HTTP entries of
// 1.3 KiB of JSON, batches of 500, each committed with fsync. First outside
// the module (bbolt is not a dependency), 200,000 entries, the machine busy:
//
//	pebble, no compression   80,000 entries/s   272 MiB on disk   newest-first scan 0.33 s
//	pebble, Snappy          149,000 entries/s   178 MiB on disk   newest-first scan 0.46 s
//	pebble, zstd            71,000 entries/s    139 MiB on disk   newest-first scan 1.05 s
//	bbolt (no compression)   83,000 entries/s   314 MiB on disk   newest-first scan 0.04 s
//
// Then BenchmarkAppend here, 200,000 distinct entries, the machine quiet
// (bytes on disk per entry include the WAL still held at the end):
//
//	pebble, no compression   135,000-139,000 entries/s   2,410 B/entry
//	pebble, Snappy           104,000-115,000 entries/s   1,662 B/entry
//	pebble, zstd              72,000-80,000 entries/s    1,451 B/entry
//
// Measured again later with the process's CPU time per entry (flushes and
// compactions included), 300,000 entries, the machine busy:
//
//	pebble, no compression   11-12 cpu-µs/entry   2,375 B/entry
//	pebble, Snappy           15-19 cpu-µs/entry   1,627 B/entry
//	pebble, zstd             33-38 cpu-µs/entry   1,417 B/entry
//
// (pebble's MinLZ, and its newer columnar table format, measured no better
// than Snappy and the format it has.) Snappy costs 4-7 µs of CPU per entry
// more than no compression and keeps 46% more history.
//
// bbolt's file never shrinks and it cannot compress, so the same history
// takes it nearly twice the space; its single copy-on-write writer gains
// nothing from append-only keys. Among pebble's block compressions, Snappy
// keeps about 45% more history than none under the same limit; zstd keeps
// 13% more again at two thirds of Snappy's rate. The store is now the
// larger part of the hub's cost per entry (since agents send index records,
// the hub no longer decodes entries; see apiserver's benchmarks), and
// Snappy a sixth to a fifth of that, a price worth paying for the history.
// So: pebble with Snappy blocks,
// and no per-entry compression on top (pebble compresses 32 KiB blocks,
// which beats compressing 1 KiB entries one by one). Queries do not read
// entries but index records (a few hundred bytes; see protocols/wire),
// kept under their own key prefix so a scan touches only their blocks.
//
// # Layout
//
//	e<seq:8>              0x01, the overlay's length (uvarint), the overlay, the entry's JSON as the agent wrote it
//	m<seq:8>              start (8 bytes, Unix ns) + the entry's index record
//	b<seq:8><agent id>    an agent's batch number + when (8+8 bytes), at its first entry
//	n                     the highest sequence number given, written by eviction
//
// The agent's JSON is kept byte for byte; what the hub adds to it (the
// endpoint names it resolved, the node and source of the agent's hello
// where the entry has none, and where in the JSON they and the ID go) is
// the overlay, a few dozen bytes that apiserver/internal/entryjson writes
// and merges into the JSON on every read. The ID is not stored: it is the
// sequence number. An older store's e values are the JSON as served (ID
// and names already in it); they start with '{', never 0x01, and are
// served as they are.
//
// Sequence numbers are assigned here, grow by one per entry, and are the
// entries' hub IDs. Entries of one batch and the agent's batch number are
// written in one atomic, synced pebble batch: once Append returns, the entries
// survive a crash, and a resent batch is recognised. Open reads the b keys
// into each agent's highest batch (an older store's a<agent id> keys become b
// keys); they are evicted with the entries they stand beside.
//
// Every key a batch writes is above every key written before it. So each
// flush's tables cover key ranges no earlier table covers, L0 stays one
// sublevel, and pebble moves tables down the levels instead of rewriting
// them. (A key per agent rewritten with every batch, and the highest
// sequence number likewise, once made every flush overlap the one before:
// compactions then rewrote everything flushed, a third of the store's work.
// TestFlushesDoNotOverlap holds this.)
//
// # Eviction
//
// A background goroutine compares pebble's disk usage (WAL, tables, manifest:
// everything in the directory) with the limit. Above the high-water mark it
// deletes the oldest entries (a range deletion of both prefixes) and compacts
// that range so the space comes back, down to the low-water mark; when a
// burst of appends outruns it, Append itself evicts first. The marks leave
// headroom below the limit, a fifth of it and at least 6 MiB (high water at
// 80% of 1 GiB, 10 MiB of the 16 MiB minimum), for what the usage figure
// cannot see coming: a compaction's output exists beside its input until it
// finishes, and pebble keeps the WAL of the memtable being flushed. Tables
// and memtables are sized from the limit so that both stay small against it.
// The oldest remaining entry's start is "history starts at T".
//
// Append adds each batch's size to the estimate as it writes it (measured
// before the commit: pebble takes a large batch's buffer over and leaves the
// batch looking empty), so a burst meets Append's own eviction, not the
// evictor's once-a-second look. Every level's tables have the small size
// chosen from the limit: with pebble's default of doubling per level, the
// bottom level's 8 MiB tables let one compaction rewrite most of a small
// store while its input still existed, twice the limit for a moment. No
// table file holds keys of two prefixes (Open's SpanPolicyFunc ends a table
// where the prefix changes), so reclaiming an evicted range rewrites only the
// tables of that range. Measurements are in docs/decisions.
//
// # Concurrency
//
// All methods are safe for concurrent use. Appends are serialised (sequence
// numbers and durability), reads run beside them. Byte slices passed to scan
// callbacks are valid only during the callback.
package store
