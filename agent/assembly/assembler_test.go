package assembly

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sondehq/sonde/agent/packet"
	"github.com/sondehq/sonde/protocols"
)

var (
	t0     = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	client = netip.MustParseAddrPort("10.0.0.1:40000")
	server = netip.MustParseAddrPort("10.0.0.2:80")
	other  = netip.MustParseAddrPort("10.0.0.3:40001")
)

// recorder is a Factory whose streams write what they receive to one log.
type recorder struct {
	log     []string
	streams int
}

type recStream struct {
	r  *recorder
	id int
}

func (r *recorder) NewStream(key Key, sawSYN bool, ts time.Time) Stream {
	r.streams++
	syn := "midstream"
	if sawSYN {
		syn = "syn"
	}
	r.log = append(r.log, fmt.Sprintf("#%d new %s>%s %s", r.streams, key.A, key.B, syn))
	return &recStream{r: r, id: r.streams}
}

func (s *recStream) Data(side Side, data []byte, ts time.Time) {
	s.r.log = append(s.r.log, fmt.Sprintf("#%d %s %q", s.id, sideName(side), data))
}

func (s *recStream) Gap(side Side, n int, ts time.Time) {
	s.r.log = append(s.r.log, fmt.Sprintf("#%d %s gap %d", s.id, sideName(side), n))
}

func (s *recStream) Close(reason protocols.CloseReason, ts time.Time) {
	s.r.log = append(s.r.log, fmt.Sprintf("#%d close %s", s.id, reason))
}

func sideName(s Side) string {
	if s == SideA {
		return "A"
	}
	return "B"
}

// seg builds a segment from src to dst; flags are letters: S, A, F, R.
func seg(src, dst netip.AddrPort, seq, ack uint32, flags, payload string) packet.Segment {
	s := packet.Segment{Src: src, Dst: dst, Seq: seq, Ack: ack, Payload: []byte(payload)}
	for _, f := range flags {
		s.Flags |= map[rune]packet.Flags{'S': packet.SYN, 'A': packet.ACK, 'F': packet.FIN, 'R': packet.RST}[f]
	}
	return s
}

func c2s(seq uint32, flags, payload string) packet.Segment {
	return seg(client, server, seq, 0, flags, payload)
}

func s2c(seq uint32, flags, payload string) packet.Segment {
	return seg(server, client, seq, 0, flags, payload)
}

// handshake is a SYN from client (ISN 100) and the SYN-ACK (ISN 500): the
// client's data starts at 101, the server's at 501.
var handshake = []step{c2s(100, "S", ""), seg(server, client, 500, 101, "SA", "")}

func missing(s packet.Segment, n int) packet.Segment {
	s.Missing = n
	return s
}

func at(d time.Duration, s packet.Segment) packet.Segment {
	s.Time = t0.Add(d)
	return s
}

// A step is a packet.Segment for Add, an expire for Expire, or closeAll.
type step any

type expire time.Duration

type closeAll struct{}

func steps(groups ...[]step) []step { return slices.Concat(groups...) }

// run plays the steps and ends with CloseAll(ClosedEnd).
func run(t *testing.T, cfg Config, ss []step) (*recorder, *Assembler) {
	t.Helper()
	r := &recorder{}
	a := New(cfg, r)
	for i, s := range ss {
		switch s := s.(type) {
		case packet.Segment:
			if s.Time.IsZero() {
				s.Time = t0.Add(time.Duration(i) * time.Millisecond)
			}
			a.Add(&s)
			checkHeld(t, a)
		case expire:
			a.Expire(t0.Add(time.Duration(s)))
		case closeAll:
			a.CloseAll(protocols.ClosedEnd, t0.Add(time.Hour))
		default:
			t.Fatalf("step %d: %T", i, s)
		}
	}
	a.CloseAll(protocols.ClosedEnd, t0.Add(time.Hour))
	checkHeld(t, a)
	return r, a
}

// checkHeld verifies the caps and the accounting of what is held.
func checkHeld(t testing.TB, a *Assembler) {
	t.Helper()
	held, nheld := 0, 0
	for _, c := range a.conns {
		ch, cn := 0, 0
		for i := range c.half {
			h := &c.half[i]
			for j := range h.pieces {
				p := &h.pieces[j]
				if p.off <= h.next || j > 0 && p.off < h.pieces[j-1].end() {
					t.Fatalf("held pieces out of order or not ahead: next %d, %+v", h.next, h.pieces)
				}
				ch += p.cost()
				cn++
			}
			if (len(h.pieces) > 0) != (h.hnext != nil) {
				t.Fatalf("holding %d pieces, in holders list: %v", len(h.pieces), h.hnext != nil)
			}
		}
		if ch != c.held || cn != c.nheld {
			t.Fatalf("conn charged %d bytes, %d segments; holds %d, %d", c.held, c.nheld, ch, cn)
		}
		if c.held > a.cfg.MaxBufferedPerConn || c.nheld > a.cfg.MaxSegmentsPerConn {
			t.Fatalf("conn holds %d bytes, %d segments: caps %d, %d", c.held, c.nheld, a.cfg.MaxBufferedPerConn, a.cfg.MaxSegmentsPerConn)
		}
		held += ch
		nheld += cn
	}
	if held != a.held || nheld != a.nheld {
		t.Fatalf("assembler charged %d bytes, %d segments; holds %d, %d", a.held, a.nheld, held, nheld)
	}
	if a.held > a.cfg.MaxBufferedTotal {
		t.Fatalf("holds %d bytes, cap %d", a.held, a.cfg.MaxBufferedTotal)
	}
}

// statsOf returns the counters by their JSON names.
func statsOf(s Stats) map[string]float64 {
	b, err := json.Marshal(s)
	if err != nil {
		panic(err)
	}
	var m map[string]float64
	if err := json.Unmarshal(b, &m); err != nil {
		panic(err)
	}
	return m
}

const newSYN = "#1 new 10.0.0.1:40000>10.0.0.2:80 syn"

func TestAssembler(t *testing.T) {
	small := Config{MaxBufferedPerConn: 2*SegmentOverhead + 10, MaxBufferedTotal: 1 << 20}
	tests := []struct {
		name  string
		cfg   Config
		steps []step
		want  []string
		// wantStats are counters by JSON name; those not named are not checked.
		wantStats map[string]float64
	}{
		{
			name: "in order",
			steps: steps(handshake, []step{
				c2s(101, "A", "GET "), c2s(105, "A", "/ HTTP"), s2c(501, "A", "200"),
				c2s(111, "AF", ""), s2c(504, "AF", ""), c2s(112, "A", ""),
			}),
			want: []string{newSYN, `#1 A "GET "`, `#1 A "/ HTTP"`, `#1 B "200"`, "#1 close fin"},
			wantStats: map[string]float64{
				"delivered_bytes": 13, "gap_bytes": 0, "conns": 1, "conns_open": 0,
				"out_of_order_segments": 0, "retransmitted_bytes": 0,
			},
		},
		{
			name:      "reordered",
			steps:     steps(handshake, []step{c2s(109, "A", "rld"), c2s(106, "A", " wo"), c2s(101, "A", "hello")}),
			want:      []string{newSYN, `#1 A "hello"`, `#1 A " wo"`, `#1 A "rld"`, "#1 close end of capture"},
			wantStats: map[string]float64{"out_of_order_segments": 2, "delivered_bytes": 11, "buffered_bytes": 0, "held_segments": 0},
		},
		{
			name: "overlapping out of order, first copy kept",
			steps: steps(handshake, []step{
				c2s(106, "A", "fghij"), c2s(104, "A", "deXGH"), c2s(101, "A", "abc"),
			}),
			// "deXGH" overlaps "fgh": only "de" is new.
			want:      []string{newSYN, `#1 A "abc"`, `#1 A "de"`, `#1 A "fghij"`, "#1 close end of capture"},
			wantStats: map[string]float64{"retransmitted_bytes": 3, "overlap_conflicts": 1, "delivered_bytes": 10},
		},
		{
			name: "in order bytes overlapping held ones",
			steps: steps(handshake, []step{
				c2s(104, "A", "de"), c2s(101, "A", "abcDEf"),
			}),
			want:      []string{newSYN, `#1 A "abc"`, `#1 A "de"`, `#1 A "f"`, "#1 close end of capture"},
			wantStats: map[string]float64{"retransmitted_bytes": 2, "overlap_conflicts": 1, "delivered_bytes": 6},
		},
		{
			name: "retransmission",
			steps: steps(handshake, []step{
				c2s(101, "A", "hello"), c2s(101, "A", "hello"), c2s(103, "A", "llo, w"), c2s(109, "A", "orld"),
			}),
			want:      []string{newSYN, `#1 A "hello"`, `#1 A ", w"`, `#1 A "orld"`, "#1 close end of capture"},
			wantStats: map[string]float64{"retransmitted_bytes": 8, "delivered_bytes": 12},
		},
		{
			name: "wraparound near 2^32",
			steps: []step{
				c2s(0xfffffffd, "S", ""),
				c2s(4, "A", "ghi"), c2s(0xfffffffe, "A", "abcdef"), c2s(0xfffffffe, "A", "abc"),
				c2s(7, "AF", ""),
			},
			want:      []string{newSYN, `#1 A "abcdef"`, `#1 A "ghi"`, "#1 close fin"},
			wantStats: map[string]float64{"retransmitted_bytes": 3, "out_of_order_segments": 1},
		},
		{
			name: "first seen mid-stream",
			steps: []step{
				s2c(7000, "A", "HTTP/1.1 200"), c2s(3000, "A", "GET /"), s2c(7012, "A", " OK"),
				s2c(6990, "A", "0123456789"), // before what this side started with
			},
			want: []string{
				"#1 new 10.0.0.2:80>10.0.0.1:40000 midstream",
				`#1 A "HTTP/1.1 200"`, `#1 B "GET /"`, `#1 A " OK"`, "#1 close end of capture",
			},
			wantStats: map[string]float64{"retransmitted_bytes": 10},
		},
		{
			name:  "bare ACKs do not open or start anything",
			steps: []step{c2s(3000, "A", ""), s2c(7000, "A", ""), c2s(2999, "A", ""), s2c(7000, "A", "x")},
			want: []string{
				"#1 new 10.0.0.2:80>10.0.0.1:40000 midstream", `#1 A "x"`, "#1 close end of capture",
			},
			wantStats: map[string]float64{"unattached_segments": 3, "conns": 1},
		},
		{
			name: "SYN-ACK seen first",
			steps: []step{
				seg(server, client, 500, 101, "SA", ""), c2s(101, "A", "ping"), s2c(501, "A", "pong"),
			},
			want:      []string{newSYN, `#1 A "ping"`, `#1 B "pong"`, "#1 close end of capture"},
			wantStats: map[string]float64{"conns": 1},
		},
		{
			name: "FIN from both sides, data after FIN ignored",
			steps: steps(handshake, []step{
				c2s(101, "AF", "bye"), c2s(104, "A", "more"), s2c(501, "A", "ok"), s2c(503, "AF", ""),
				c2s(105, "A", "x"),
			}),
			want:      []string{newSYN, `#1 A "bye"`, `#1 B "ok"`, "#1 close fin"},
			wantStats: map[string]float64{"late_bytes": 5, "conns_open": 0},
		},
		{
			name: "FIN ahead of missing bytes",
			steps: steps(handshake, []step{
				c2s(106, "AF", "end"), c2s(101, "A", "ab"),
			}),
			want: []string{newSYN, `#1 A "ab"`, "#1 A gap 3", `#1 A "end"`, "#1 close fin"},
		},
		{
			name: "FIN drops held bytes beyond it",
			steps: steps(handshake, []step{
				c2s(106, "A", "xyz"), c2s(103, "AF", "c"), c2s(101, "A", "ab"),
			}),
			want:      []string{newSYN, `#1 A "ab"`, `#1 A "c"`, "#1 close fin"},
			wantStats: map[string]float64{"late_bytes": 3, "buffered_bytes": 0},
		},
		{
			name: "RST delivers what is held, then closes",
			steps: steps(handshake, []step{
				c2s(101, "A", "ab"), c2s(106, "A", "fg"), s2c(501, "R", ""), c2s(108, "A", "late"),
			}),
			want: []string{newSYN, `#1 A "ab"`, "#1 A gap 3", `#1 A "fg"`, "#1 close rst"},
			wantStats: map[string]float64{
				"late_bytes": 4, "gap_bytes": 3, "gaps": 1, "conns": 1, "buffered_bytes": 0,
			},
		},
		{
			name: "port reuse after FIN",
			steps: steps(handshake, []step{
				c2s(101, "AF", "one"), s2c(501, "AF", ""), c2s(105, "A", ""),
				c2s(9000, "S", ""), seg(server, client, 4000, 9001, "SA", ""), c2s(9001, "A", "two"),
			}),
			want: []string{
				newSYN, `#1 A "one"`, "#1 close fin",
				"#2 new 10.0.0.1:40000>10.0.0.2:80 syn", `#2 A "two"`, "#2 close end of capture",
			},
			wantStats: map[string]float64{"port_reuses": 1, "conns": 2},
		},
		{
			name: "port reuse while one side is closing",
			steps: steps(handshake, []step{
				c2s(101, "AF", "one"), c2s(100, "S", ""), c2s(101, "A", "two"),
			}),
			want: []string{
				newSYN, `#1 A "one"`, "#1 close fin",
				"#2 new 10.0.0.1:40000>10.0.0.2:80 syn", `#2 A "two"`, "#2 close end of capture",
			},
			wantStats: map[string]float64{"port_reuses": 1},
		},
		{
			name:      "a repeated SYN is not a new connection",
			steps:     steps(handshake, []step{c2s(100, "S", ""), seg(server, client, 500, 101, "SA", ""), c2s(101, "A", "x")}),
			want:      []string{newSYN, `#1 A "x"`, "#1 close end of capture"},
			wantStats: map[string]float64{"port_reuses": 0, "conns": 1},
		},
		{
			name: "idle connection expires",
			steps: steps(handshake, []step{
				at(time.Second, c2s(101, "A", "ab")), at(2*time.Second, c2s(105, "A", "ef")),
				expire(2*time.Second + 2*time.Minute), // not yet idle long enough
				expire(2*time.Second + 2*time.Minute + 1),
			}),
			want:      []string{newSYN, `#1 A "ab"`, "#1 A gap 2", `#1 A "ef"`, "#1 close idle"},
			wantStats: map[string]float64{"conns_expired": 1, "gap_bytes": 2, "hole_timeouts": 0},
		},
		{
			name: "a hole never filled is given up while the connection lives",
			steps: steps(handshake, []step{
				at(time.Second, c2s(103, "A", "cd")), at(time.Minute, s2c(501, "A", "x")),
				at(2*time.Minute, s2c(502, "A", "y")),
				expire(time.Second + 2*time.Minute + 1),
				at(3*time.Minute, c2s(105, "A", "e")),
			}),
			want: []string{
				newSYN, `#1 B "x"`, `#1 B "y"`, "#1 A gap 2", `#1 A "cd"`, `#1 A "e"`, "#1 close end of capture",
			},
			wantStats: map[string]float64{"hole_timeouts": 1, "conns_expired": 0},
		},
		{
			name: "per-connection buffer cap gives up the hole",
			cfg:  small,
			steps: steps(handshake, []step{
				c2s(103, "A", "cdef"), c2s(109, "A", "ijkl"), c2s(113, "A", "mn"), c2s(101, "A", "ab"),
			}),
			want: []string{
				newSYN, "#1 A gap 2", `#1 A "cdef"`, "#1 A gap 2", `#1 A "ijkl"`, `#1 A "mn"`, "#1 close end of capture",
			},
			wantStats: map[string]float64{"conn_buffer_full": 1, "gap_bytes": 4, "retransmitted_bytes": 2},
		},
		{
			name: "cap hit with the new bytes in front of the held ones",
			cfg:  Config{MaxBufferedPerConn: SegmentOverhead + 4, MaxBufferedTotal: 1 << 20},
			steps: steps(handshake, []step{
				c2s(109, "A", "ijkl"), c2s(104, "A", "d"), c2s(101, "A", "abc"),
			}),
			want: []string{
				newSYN, "#1 A gap 3", `#1 A "d"`, "#1 A gap 4", `#1 A "ijkl"`, "#1 close end of capture",
			},
			wantStats: map[string]float64{"conn_buffer_full": 1, "gap_bytes": 7, "retransmitted_bytes": 3},
		},
		{
			name: "a segment larger than the cap is not held",
			cfg:  Config{MaxBufferedPerConn: 10, MaxBufferedTotal: 1 << 20},
			steps: steps(handshake, []step{
				c2s(106, "A", "fghij"), c2s(101, "A", "abcde"),
			}),
			want:      []string{newSYN, "#1 A gap 5", `#1 A "fghij"`, "#1 close end of capture"},
			wantStats: map[string]float64{"conn_buffer_full": 1, "retransmitted_bytes": 5},
		},
		{
			name: "the other direction's hole is given up for this one",
			cfg:  small,
			steps: steps(handshake, []step{
				s2c(503, "A", "cdefgh"), c2s(103, "A", "cdefg"),
			}),
			want: []string{
				newSYN, "#1 B gap 2", `#1 B "cdefgh"`, "#1 A gap 2", `#1 A "cdefg"`, "#1 close end of capture",
			},
			wantStats: map[string]float64{"conn_buffer_full": 1},
		},
		{
			name: "segment count cap",
			cfg:  Config{MaxSegmentsPerConn: 2},
			steps: steps(handshake, []step{
				c2s(103, "A", "c"), c2s(105, "A", "e"), c2s(107, "A", "g"), c2s(101, "A", "ab"),
			}),
			want: []string{
				newSYN, "#1 A gap 2", `#1 A "c"`, "#1 A gap 1", `#1 A "e"`, "#1 A gap 1", `#1 A "g"`,
				"#1 close end of capture",
			},
			wantStats: map[string]float64{"segments_full": 1, "held_segments": 0},
		},
		{
			name: "total buffer cap gives up the oldest hole",
			cfg:  Config{MaxBufferedPerConn: 1 << 20, MaxBufferedTotal: 2*SegmentOverhead + 4},
			steps: steps(handshake, []step{
				c2s(103, "A", "cd"),
				seg(other, server, 7, 0, "S", ""), seg(other, server, 10, 0, "A", "zz"),
				seg(other, server, 13, 0, "A", "yy"),
			}),
			want: []string{
				newSYN, "#2 new 10.0.0.3:40001>10.0.0.2:80 syn",
				"#1 A gap 2", `#1 A "cd"`, "#1 close end of capture",
				"#2 A gap 2", `#2 A "zz"`, "#2 A gap 1", `#2 A "yy"`, "#2 close end of capture",
			},
			wantStats: map[string]float64{"total_buffer_full": 1, "gap_bytes": 5},
		},
		{
			name: "MaxConns evicts the least recently active",
			cfg:  Config{MaxConns: 2},
			steps: []step{
				c2s(1, "A", "a"), seg(other, server, 1, 0, "A", "b"), c2s(2, "A", "c"),
				seg(netip.MustParseAddrPort("10.0.0.4:1"), server, 1, 0, "A", "d"),
			},
			want: []string{
				"#1 new 10.0.0.1:40000>10.0.0.2:80 midstream", `#1 A "a"`,
				"#2 new 10.0.0.3:40001>10.0.0.2:80 midstream", `#2 A "b"`,
				`#1 A "c"`,
				"#2 close idle",
				"#3 new 10.0.0.4:1>10.0.0.2:80 midstream", `#3 A "d"`,
				"#1 close end of capture", "#3 close end of capture",
			},
			wantStats: map[string]float64{"conns_evicted": 1, "conns": 3},
		},
		{
			name: "closed connections make room before open ones are evicted",
			cfg:  Config{MaxConns: 2},
			steps: []step{
				c2s(1, "A", "a"), seg(other, server, 1, 0, "A", "b"), seg(other, server, 2, 0, "R", ""),
				seg(netip.MustParseAddrPort("10.0.0.4:1"), server, 1, 0, "A", "d"),
			},
			want: []string{
				"#1 new 10.0.0.1:40000>10.0.0.2:80 midstream", `#1 A "a"`,
				"#2 new 10.0.0.3:40001>10.0.0.2:80 midstream", `#2 A "b"`, "#2 close rst",
				"#3 new 10.0.0.4:1>10.0.0.2:80 midstream", `#3 A "d"`,
				"#1 close end of capture", "#3 close end of capture",
			},
			wantStats: map[string]float64{"conns_evicted": 0, "conns": 3},
		},
		{
			name: "a closed connection is forgotten after lingering",
			steps: steps(handshake, []step{
				c2s(101, "AF", "a"), s2c(501, "AF", ""),
				at(30*time.Second, c2s(101, "AF", "a")), expire(30 * time.Second),
				at(61*time.Second, c2s(101, "AF", "a")), expire(61 * time.Second),
				at(62*time.Second, c2s(101, "AF", "a")),
			}),
			want: []string{
				newSYN, `#1 A "a"`, "#1 close fin",
				"#2 new 10.0.0.1:40000>10.0.0.2:80 midstream", `#2 A "a"`, "#2 close fin",
			},
			wantStats: map[string]float64{"late_bytes": 2, "conns_expired": 0},
		},
		{
			name:      "a capture claiming absurdly many missing bytes",
			steps:     steps(handshake, []step{missing(c2s(101, "A", "a"), 1<<40), c2s(101+1+maxMissing, "A", "b")}),
			want:      []string{newSYN, `#1 A "a"`, fmt.Sprintf("#1 A gap %d", maxMissing), `#1 A "b"`, "#1 close end of capture"},
			wantStats: map[string]float64{"missing_bytes": maxMissing},
		},
		{
			name:  "data on the SYN",
			steps: []step{c2s(100, "S", "early"), c2s(106, "A", "later")},
			want:  []string{newSYN, `#1 A "early"`, `#1 A "later"`, "#1 close end of capture"},
		},
		{
			name: "bytes not captured are a gap",
			steps: steps(handshake, []step{
				missing(c2s(101, "A", "abc"), 2), c2s(106, "A", "fg"), c2s(104, "A", "DE"),
				missing(c2s(110, "A", "j"), 1), missing(c2s(108, "A", "h"), 1), c2s(111, "A", "KL"),
			}),
			want: []string{
				newSYN, `#1 A "abc"`, "#1 A gap 2", `#1 A "fg"`, `#1 A "h"`, "#1 A gap 1", `#1 A "j"`, "#1 A gap 1",
				`#1 A "L"`, "#1 close end of capture",
			},
			wantStats: map[string]float64{"missing_bytes": 4, "gap_bytes": 4, "retransmitted_bytes": 3},
		},
		{
			name: "keep-alives and a window probe",
			steps: steps(handshake, []step{
				c2s(101, "A", "ab"), c2s(102, "A", ""), c2s(102, "A", "\x00"), c2s(103, "A", "c"), c2s(103, "A", "cdef"),
			}),
			want:      []string{newSYN, `#1 A "ab"`, `#1 A "c"`, `#1 A "def"`, "#1 close end of capture"},
			wantStats: map[string]float64{"keepalives": 2, "retransmitted_bytes": 1},
		},
		{
			name:      "holes left at the end of the capture become gaps",
			steps:     steps(handshake, []step{c2s(104, "A", "d"), s2c(510, "A", "j"), closeAll{}}),
			want:      []string{newSYN, "#1 A gap 3", `#1 A "d"`, "#1 B gap 9", `#1 B "j"`, "#1 close end of capture"},
			wantStats: map[string]float64{"gap_bytes": 12, "buffered_bytes": 0, "conns_open": 0},
		},
		{
			name:  "one side's FIN, then the end of the capture",
			steps: steps(handshake, []step{c2s(101, "AF", "q"), closeAll{}}),
			want:  []string{newSYN, `#1 A "q"`, "#1 close fin"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, a := run(t, tt.cfg, tt.steps)
			if got := strings.Join(r.log, "\n"); got != strings.Join(tt.want, "\n") {
				t.Errorf("got\n%s\nwant\n%s", got, strings.Join(tt.want, "\n"))
			}
			got := statsOf(a.Stats())
			for k, want := range tt.wantStats {
				v, ok := got[k]
				if !ok {
					t.Errorf("no counter %q", k)
				} else if v != want {
					t.Errorf("%s = %v, want %v", k, v, want)
				}
			}
		})
	}
}

// The segments of an established connection that need nothing held — in
// order, empty, keep-alives, already delivered — allocate nothing.
func TestNoAllocations(t *testing.T) {
	a := New(DefaultConfig(), &countFactory{})
	for _, s := range handshake {
		s := s.(packet.Segment)
		s.Time = t0
		a.Add(&s)
	}
	payload := make([]byte, mss)
	seq := uint32(101)
	tests := []struct {
		name string
		seg  func() packet.Segment
	}{
		{"in order", func() packet.Segment {
			s := packet.Segment{Src: client, Dst: server, Seq: seq, Flags: packet.ACK, Payload: payload}
			seq += mss
			return s
		}},
		{"empty", func() packet.Segment { return packet.Segment{Src: server, Dst: client, Seq: 501, Flags: packet.ACK} }},
		{"keep-alive", func() packet.Segment {
			return packet.Segment{Src: client, Dst: server, Seq: seq - 1, Flags: packet.ACK, Payload: payload[:1]}
		}},
		{"window probe", func() packet.Segment {
			s := packet.Segment{Src: client, Dst: server, Seq: seq, Flags: packet.ACK, Payload: payload[:1]}
			seq++
			return s
		}},
		{"already delivered", func() packet.Segment {
			return packet.Segment{Src: client, Dst: server, Seq: seq - mss, Flags: packet.ACK, Payload: payload}
		}},
		{"unattached", func() packet.Segment { return packet.Segment{Src: other, Dst: server, Flags: packet.ACK} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if n := testing.AllocsPerRun(1000, func() {
				s := tt.seg()
				s.Time = t0
				a.Add(&s)
			}); n != 0 {
				t.Errorf("%v allocations per segment", n)
			}
		})
	}
}
