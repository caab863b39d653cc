package protocols

import (
	"errors"
	"testing"
	"time"
)

// lineConn consumes whole lines, fails on "bad", and records its calls.
type lineConn struct {
	fed    []string
	closed []CloseReason
	stall  bool
	over   bool
}

func (c *lineConn) Feed(dir Direction, data []byte, _ time.Time) (int, error) {
	if c.over {
		return len(data) + 1, nil
	}
	if c.stall {
		return 0, nil
	}
	n := 0
	for i, b := range data {
		if b == '\n' {
			line := string(data[n:i])
			c.fed = append(c.fed, line)
			n = i + 1
			if line == "bad" {
				return n, Malformed("test", "bad_line", "")
			}
		}
	}
	return n, nil
}

func (c *lineConn) Gap(Direction, int, time.Time) { c.fed = append(c.fed, "<gap>") }

func (c *lineConn) Close(r CloseReason, _ time.Time) { c.closed = append(c.closed, r) }

func TestFeeder(t *testing.T) {
	ts := time.Unix(1, 0)
	t.Run("leftover", func(t *testing.T) {
		c := &lineConn{}
		f := NewFeeder(c, 16)
		for _, p := range []string{"ab", "c\nd", "e\n"} {
			if err := f.Feed(ClientToServer, []byte(p), ts); err != nil {
				t.Fatal(err)
			}
		}
		f.Feed(ClientToServer, []byte("lost"), ts)
		f.Gap(ClientToServer, 3, ts)
		f.Feed(ClientToServer, []byte("x\n"), ts)
		f.Close(ClosedFIN, ts)
		f.Close(ClosedRST, ts)
		if got := c.fed; len(got) != 4 || got[0] != "abc" || got[1] != "de" || got[2] != "<gap>" || got[3] != "x" {
			t.Errorf("fed %q", got)
		}
		if len(c.closed) != 1 || c.closed[0] != ClosedFIN {
			t.Errorf("closed %v, want once with FIN", c.closed)
		}
	})
	t.Run("closed after an error", func(t *testing.T) {
		c := &lineConn{}
		f := NewFeeder(c, 16)
		err := f.Feed(ClientToServer, []byte("ok\nbad\nrest"), ts)
		var pe *ParseError
		if !errors.As(err, &pe) || pe.Code != "bad_line" || string(f.Leftover(ClientToServer)) != "rest" {
			t.Fatalf("error %v, leftover %q", err, f.Leftover(ClientToServer))
		}
		if f.Feed(ClientToServer, []byte("more\n"), ts) != nil || len(c.fed) != 2 {
			t.Errorf("fed after the error: %q", c.fed)
		}
		f.Close(ClosedFIN, ts)
		if len(c.closed) != 1 || c.closed[0] != ClosedEnd {
			t.Errorf("closed %v, want once with ClosedEnd", c.closed)
		}
	})
	t.Run("leftover too large", func(t *testing.T) {
		c := &lineConn{stall: true}
		f := NewFeeder(c, 4)
		if err := f.Feed(ServerToClient, []byte("abcd"), ts); err != nil {
			t.Fatal(err)
		}
		err := f.Feed(ServerToClient, []byte("e"), ts)
		if !errors.Is(err, ErrLeftoverTooLarge) || !errors.Is(err, ErrTooLarge) || len(f.Leftover(ServerToClient)) != 0 || len(c.closed) != 1 {
			t.Errorf("error %v, leftover %d, closed %v", err, len(f.Leftover(ServerToClient)), c.closed)
		}
	})
	t.Run("consumed out of range", func(t *testing.T) {
		c := &lineConn{over: true}
		err := NewFeeder(c, 4).Feed(ClientToServer, []byte("ab"), ts)
		var pe *ParseError
		if !errors.As(err, &pe) || pe.Code != CodeConsumedOutOfRange || len(c.closed) != 1 {
			t.Errorf("error %v, closed %v", err, c.closed)
		}
	})
}

func TestCounterSet(t *testing.T) {
	names := NewCounterNames("x_a", "x_b")
	s := names.New()
	s.Add("x_a", 2)
	s.Add("x_b", 0)
	got := s.Counters()
	if len(got) != 2 || got["x_a"] != 2 || got["x_b"] != 0 {
		t.Errorf("counters %v", got)
	}
	defer func() {
		if recover() == nil {
			t.Error("an undeclared name did not panic")
		}
	}()
	s.Add("x_c", 1)
}
