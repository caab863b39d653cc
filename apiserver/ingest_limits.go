package apiserver

import (
	"context"
	"sync"
	"sync/atomic"

	"golang.org/x/sync/semaphore"
)

// Bounds on what agents' connections can make the hub hold. Twenty
// connections sending batches of nearly wire.MaxMessageBytes once took the
// hub to 2 GB: each held three message buffers of up to 8 MiB (read, waiting,
// storing) and the store's copy of the batch beside them, and nothing bounded
// the number of connections.
const (
	// DefaultMaxIngestConns is how many agent connections the hub serves at
	// once: one per node of a large cluster. The next is refused (503,
	// counted) and its agent retries with backoff, buffering meanwhile.
	DefaultMaxIngestConns = 1024
	// DefaultIngestMemory is what the batches of every agent connection may
	// hold at once, in bytes: message buffers, kept or being read, and the
	// store's copies of the batches being stored. A connection that would
	// go over waits for its share (the agent's writes block on TCP) rather
	// than allocating, and the wait is counted.
	DefaultIngestMemory = 256 << 20
)

// byteBudget is a semaphore of bytes with a count of those in use.
type byteBudget struct {
	sem   *semaphore.Weighted
	size  int64
	used  atomic.Int64
	waits func() // counts a wait for room
}

func newByteBudget(size int64, waits func()) *byteBudget {
	return &byteBudget{sem: semaphore.NewWeighted(size), size: size, waits: waits}
}

// acquire takes n bytes, waiting (counted) until they are free or ctx ends.
func (b *byteBudget) acquire(ctx context.Context, n int64) error {
	if !b.sem.TryAcquire(n) {
		b.waits()
		if err := b.sem.Acquire(ctx, n); err != nil {
			return err
		}
	}
	b.used.Add(n)
	return nil
}

// tryAcquire takes n bytes if they are free now.
func (b *byteBudget) tryAcquire(n int64) bool {
	if !b.sem.TryAcquire(n) {
		return false
	}
	b.used.Add(n)
	return true
}

func (b *byteBudget) release(n int64) {
	if n > 0 {
		b.used.Add(-n)
		b.sem.Release(n)
	}
}

// ingestLimits are the ingester's bounds, made on first use from the
// defaults unless set before.
type ingestLimits struct {
	once     sync.Once
	maxConns int
	memory   int64
	slots    chan struct{}
	mem      *byteBudget
}

// limits returns the ingester's bounds. A message's share is at most
// messageCharge(maxMessage), so the budget is raised to hold at least one.
func (in *ingester) limits() *ingestLimits {
	l := &in.lim
	l.once.Do(func() {
		if l.maxConns <= 0 {
			l.maxConns = DefaultMaxIngestConns
		}
		if l.memory <= 0 {
			l.memory = DefaultIngestMemory
		}
		l.memory = max(l.memory, messageCharge(in.maxMessage))
		l.slots = make(chan struct{}, l.maxConns)
		l.mem = newByteBudget(l.memory, func() { in.metrics.ingestMemoryWaits.Inc() })
	})
	return l
}

// messageCharge is what a message of up to n bytes is charged while it is
// read: its buffer (grown to at most n plus a little, see readMessage) and
// the store's copy of its entries.
func messageCharge(n int64) int64 { return 2*(n+maxGrowthSlack) + 1 }

// maxGrowthSlack is how far past the read limit a message buffer may grow.
const maxGrowthSlack = 4 << 10

// pooledBufferMax is the largest buffer a connection keeps for its next
// message; a larger one (a batch of unusual size) is given back.
const pooledBufferMax = 2 << 20
