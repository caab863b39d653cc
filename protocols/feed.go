package protocols

import (
	"fmt"
	"time"
)

// Codes of the errors a Feeder makes itself, counted beside the parsers'.
const (
	// CodeConsumedOutOfRange: a Conn said it consumed fewer than zero bytes,
	// or more than it was given.
	CodeConsumedOutOfRange = "consumed_out_of_range"
)

// ErrLeftoverTooLarge is returned by Feeder.Feed when a Conn leaves more
// bytes unconsumed than the Feeder keeps. It wraps ErrTooLarge.
var ErrLeftoverTooLarge = fmt.Errorf("%w: too many bytes left unconsumed", ErrTooLarge)

// Feeder feeds one Conn the way the contract above Conn asks, so that every
// caller (the agent's pipeline, the tests' replays) feeds parsers alike:
//
//   - what a Feed left unconsumed is kept, in the Feeder's own buffer, and
//     presented again, followed by the next bytes of that direction;
//   - a gap discards what that direction left unconsumed;
//   - more than MaxLeftover bytes left unconsumed stop the Conn with
//     ErrLeftoverTooLarge, a count out of range with a ParseError of code
//     CodeConsumedOutOfRange;
//   - after any error (those, the Conn's own, or an UpgradeError) the Conn is
//     closed once, with ClosedEnd, so that what it holds is still emitted,
//     and it is fed nothing more.
//
// A Feeder is not safe for concurrent use, like the Conn it feeds.
type Feeder struct {
	conn        Conn
	maxLeftover int
	leftover    [2][]byte
	closed      bool
}

// NewFeeder returns a Feeder for c that keeps at most maxLeftover
// unconsumed bytes per direction.
func NewFeeder(c Conn, maxLeftover int) *Feeder {
	return &Feeder{conn: c, maxLeftover: maxLeftover}
}

// Conn returns the Conn being fed.
func (f *Feeder) Conn() Conn { return f.conn }

// Feed hands data, after what dir left unconsumed, to the Conn. It returns
// nil, or the error that ended the Conn; the Conn is closed by then. data is
// not kept.
func (f *Feeder) Feed(dir Direction, data []byte, ts time.Time) error {
	if f.closed {
		return nil
	}
	buf := data
	if len(f.leftover[dir]) > 0 {
		f.leftover[dir] = append(f.leftover[dir], data...)
		buf = f.leftover[dir]
	}
	n, err := f.conn.Feed(dir, buf, ts)
	if n < 0 || n > len(buf) {
		err = Malformed("pipeline", CodeConsumedOutOfRange, fmt.Sprintf("Feed consumed %d of %d bytes", n, len(buf)))
		n = 0
	}
	rest := buf[n:]
	if err == nil && len(rest) > f.maxLeftover {
		err, rest = fmt.Errorf("%w: %d bytes", ErrLeftoverTooLarge, len(rest)), nil
	}
	// Keep the rest in our own buffer: data belongs to the caller. After an
	// error it is what the Conn did not read (for an upgrade, the new
	// protocol's first bytes).
	f.leftover[dir] = append(f.leftover[dir][:0], rest...)
	if err != nil {
		f.Close(ClosedEnd, ts)
	}
	return err
}

// Gap tells the Conn that n bytes of dir are missing (n < 0: unknown) and
// discards what dir left unconsumed before them.
func (f *Feeder) Gap(dir Direction, n int, ts time.Time) {
	if f.closed {
		return
	}
	f.leftover[dir] = f.leftover[dir][:0]
	f.conn.Gap(dir, n, ts)
}

// Close closes the Conn, unless an error closed it already.
func (f *Feeder) Close(reason CloseReason, ts time.Time) {
	if f.closed {
		return
	}
	f.closed = true
	f.conn.Close(reason, ts)
}

// Leftover returns what dir left unconsumed, valid until the next call. After
// an error it is what the failing Feed did not consume in its direction
// (nothing after ErrLeftoverTooLarge), and what the other direction had left.
func (f *Feeder) Leftover(dir Direction) []byte { return f.leftover[dir] }
