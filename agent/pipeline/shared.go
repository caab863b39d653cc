package pipeline

import (
	"sync"
	"time"

	"github.com/sondehq/sonde/agent/packet"
)

// Shared lets a live source and a timer drive one Pipeline: frames arrive on
// the capture's goroutine while idle connections are expired from another.
// Every method takes one lock; the EmitFunc runs under it.
type Shared struct {
	mu     sync.Mutex
	p      *Pipeline
	frames *Frames
}

// NewShared wraps p for use from several goroutines.
func NewShared(p *Pipeline) *Shared { return &Shared{p: p, frames: NewFrames(p)} }

// Frame decodes and processes one captured frame.
func (s *Shared) Frame(data []byte, wireLen int, ts time.Time, lt packet.LinkType) {
	s.mu.Lock()
	s.frames.Frame(data, wireLen, ts, lt)
	s.mu.Unlock()
}

// Expire closes connections idle as of now.
func (s *Shared) Expire(now time.Time) {
	s.mu.Lock()
	s.p.Expire(now)
	s.mu.Unlock()
}

// Close ends every connection and flushes their entries.
func (s *Shared) Close(ts time.Time) {
	s.mu.Lock()
	s.p.Close(ts)
	s.mu.Unlock()
}

// Stats returns the pipeline's counters.
func (s *Shared) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.p.Stats()
}
