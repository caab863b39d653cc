package protocolstest

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sondehq/sonde/protocols"
)

// SplitOptions say how CheckSplit replays and what it checks beyond the
// invariance itself. The zero value checks the invariance only.
type SplitOptions struct {
	// Info is the connection's ConnInfo (see Replay for its defaults).
	Info protocols.ConnInfo
	// Reason closes the connection at the end.
	Reason protocols.CloseReason
	// Seeds are the random cuts to try, on top of the chunks as given.
	Seeds []uint64
	// Entry, when set, checks every entry as it is emitted (caps, sizes).
	Entry func(t testing.TB, e *protocols.Entry)
	// AfterFeed, when set, looks at the Conn after every Feed (its internal
	// bounds, through a type assertion).
	AfterFeed func(t testing.TB, c protocols.Conn)
	// MaxLeftover, when positive, is the most a direction may leave
	// unconsumed after a Feed that did not fail.
	MaxLeftover int
	// Strict checks the promises a Conn makes beyond the contract: after an
	// error it emits nothing (not even at Close) and a Feed consumes nothing
	// and fails; a second Close emits nothing.
	Strict bool
}

// Seeds returns the seeds 0..n-1 (or from..from+n-1), for SplitOptions.Seeds.
func Seeds(from uint64, n int) []uint64 {
	out := make([]uint64, n)
	for i := range out {
		out[i] = from + uint64(i)
	}
	return out
}

// CheckSplit replays chunks as given and then cut at random points by each
// of opts.Seeds, and fails t unless every cut gives what the whole gave:
// the same entries, error and upgrade (see Fingerprint). Where bytes are cut
// is an accident of the capture; it must never change what is parsed. It
// returns the replay of the chunks as given.
func CheckSplit(t testing.TB, d protocols.Dissector, chunks []Chunk, opts SplitOptions) Result {
	t.Helper()
	whole := replayChecked(t, d, chunks, opts)
	want := Fingerprint(whole)
	for _, seed := range opts.Seeds {
		split := replayChecked(t, d, Split(chunks, seed), opts)
		if got := Fingerprint(split); got != want {
			t.Fatalf("cut at points of seed %d, the same bytes gave\n%s\nnot\n%s\n(in full: %s\nnot %s)",
				seed, DescribeResult(split), DescribeResult(whole), got, want)
		}
	}
	return whole
}

// replayChecked is Replay through a Conn that checks opts as it goes.
func replayChecked(t testing.TB, d protocols.Dissector, chunks []Chunk, opts SplitOptions) Result {
	t.Helper()
	cd := &checkedDissector{Dissector: d, t: t, opts: opts}
	res, err := replay(cd, opts.Info, chunks, opts.Reason, func(e *protocols.Entry) {
		if cd.conn != nil && cd.conn.failed && opts.Strict {
			t.Fatalf("entry emitted after the error %v: %s", cd.conn.err, Describe(e))
		}
		if opts.Entry != nil {
			opts.Entry(t, e)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if opts.Strict && cd.conn != nil {
		// Nothing may come of a second Close.
		cd.conn.failed = true
		cd.conn.Conn.Close(protocols.ClosedRST, time.Unix(0, 0))
	}
	return res
}

// checkedDissector makes Conns that check SplitOptions around every call.
type checkedDissector struct {
	protocols.Dissector
	t    testing.TB
	opts SplitOptions
	conn *checkedConn
}

func (d *checkedDissector) NewConn(info protocols.ConnInfo, emit protocols.EmitFunc) protocols.Conn {
	d.conn = &checkedConn{Conn: d.Dissector.NewConn(info, emit), t: d.t, opts: d.opts}
	return d.conn
}

type checkedConn struct {
	protocols.Conn
	t      testing.TB
	opts   SplitOptions
	failed bool
	err    error
}

func (c *checkedConn) Feed(dir protocols.Direction, data []byte, ts time.Time) (int, error) {
	t := c.t
	n, err := c.Conn.Feed(dir, data, ts)
	if c.opts.AfterFeed != nil {
		c.opts.AfterFeed(t, c.Conn)
	}
	if err == nil {
		if c.opts.MaxLeftover > 0 && len(data)-n > c.opts.MaxLeftover {
			t.Fatalf("%d bytes left unconsumed, more than %d", len(data)-n, c.opts.MaxLeftover)
		}
		return n, nil
	}
	c.failed, c.err = true, err
	if c.opts.Strict {
		// The error is sticky: the connection reads nothing more.
		for _, d := range []protocols.Direction{dir, dir.Reverse()} {
			if n2, err2 := c.Conn.Feed(d, []byte("\r\n"), ts); n2 != 0 || err2 == nil {
				t.Fatalf("Feed after the error %v = %d, %v", err, n2, err2)
			}
		}
		c.Conn.Gap(dir, 10, ts)
	}
	return n, err
}

// Fingerprint is everything a replay produced, as text: the entries in
// full, the error's code and the upgrade.
func Fingerprint(res Result) string {
	b, err := json.Marshal(struct {
		Entries []*protocols.Entry
		Err     string
		Upgrade *protocols.UpgradeError
	}{res.Entries, ErrorCode(res.Err), res.Upgrade})
	if err != nil {
		return "not encodable: " + err.Error()
	}
	return string(b)
}

// ErrorCode is the code of a ParseError, the text of any other error, or ""
// for nil.
func ErrorCode(err error) string {
	var pe *protocols.ParseError
	if errors.As(err, &pe) {
		return pe.Code
	}
	if err != nil {
		return err.Error()
	}
	return ""
}

// Describe renders what a test failure shows of an entry on one line:
// "METHOD TARGET STATUS" and " unmatched=..." and " gap" when set.
func Describe(e *protocols.Entry) string {
	s := e.Summary.Method + " " + e.Summary.Target + " " + e.Summary.Status
	if e.Unmatched != protocols.Matched {
		s += " unmatched=" + string(e.Unmatched)
	}
	if e.Gap {
		s += " gap"
	}
	return s
}

// DescribeAll is Describe of each entry.
func DescribeAll(es []*protocols.Entry) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = Describe(e)
	}
	return out
}

// DescribeResult is a replay's entries, one Describe line each, and its
// error and upgrade.
func DescribeResult(res Result) string {
	var b strings.Builder
	for _, l := range DescribeAll(res.Entries) {
		b.WriteString("  " + l + "\n")
	}
	fmt.Fprintf(&b, "  error %q", ErrorCode(res.Err))
	if res.Upgrade != nil {
		fmt.Fprintf(&b, ", upgrade to %s", res.Upgrade.To)
	}
	return b.String()
}
