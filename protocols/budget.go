package protocols

import "sync/atomic"

// Budget is a number of bytes that many holders draw from, so that what they
// hold together stays bounded however many there are: the bodies of the
// requests every connection of an agent holds while their responses are
// awaited, for one. A holder reserves before it keeps bytes and releases them
// when it lets go; a reservation the budget cannot give is refused, counted,
// and the holder decides what to let go of (a parser emits its oldest
// pending request as unmatched). A nil *Budget gives every reservation. It is
// safe for concurrent use.
type Budget struct {
	limit   int64
	used    atomic.Int64
	peak    atomic.Int64
	refused atomic.Uint64
}

// NewBudget makes a budget of limit bytes.
func NewBudget(limit int64) *Budget { return &Budget{limit: limit} }

// Reserve takes n bytes from the budget, or none and false when that would
// pass the limit.
func (b *Budget) Reserve(n int) bool {
	if b == nil || n <= 0 {
		return true
	}
	for {
		used := b.used.Load()
		if used+int64(n) > b.limit {
			b.refused.Add(1)
			return false
		}
		if b.used.CompareAndSwap(used, used+int64(n)) {
			for {
				p := b.peak.Load()
				if used+int64(n) <= p || b.peak.CompareAndSwap(p, used+int64(n)) {
					return true
				}
			}
		}
	}
}

// Release gives back n bytes reserved before.
func (b *Budget) Release(n int) {
	if b != nil && n > 0 {
		b.used.Add(-int64(n))
	}
}

// Used is how many bytes are reserved now.
func (b *Budget) Used() int64 {
	if b == nil {
		return 0
	}
	return b.used.Load()
}

// Peak is the most bytes that were ever reserved at once: what the holders
// drawing from the budget needed at their worst.
func (b *Budget) Peak() int64 {
	if b == nil {
		return 0
	}
	return b.peak.Load()
}

// Limit is the budget's size in bytes.
func (b *Budget) Limit() int64 {
	if b == nil {
		return 0
	}
	return b.limit
}

// Refused counts the reservations that did not fit.
func (b *Budget) Refused() uint64 {
	if b == nil {
		return 0
	}
	return b.refused.Load()
}
