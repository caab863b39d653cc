package redis

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/sondehq/sonde/protocols"
	"github.com/sondehq/sonde/protocols/protocolstest"
)

// chunked cuts a long message into pieces of n bytes, the way a capture
// hands it over.
func chunked(dir protocols.Direction, msg string, n int) []protocolstest.Chunk {
	var out []protocolstest.Chunk
	for len(msg) > 0 {
		k := min(n, len(msg))
		out = append(out, protocolstest.Chunk{Dir: dir, Data: []byte(msg[:k])})
		msg = msg[k:]
	}
	return out
}

func TestLimits(t *testing.T) {
	c2s, s2c := protocols.ClientToServer, protocols.ServerToClient
	cmd := func(s string) []protocolstest.Chunk { return []protocolstest.Chunk{{Dir: c2s, Data: []byte(s)}} }
	rep := func(s string) []protocolstest.Chunk { return []protocolstest.Chunk{{Dir: s2c, Data: []byte(s)}} }
	join := func(parts ...[]protocolstest.Chunk) []protocolstest.Chunk {
		var out []protocolstest.Chunk
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	bigBulk := fmt.Sprintf("$%d\r\n%s\r\n", 5<<20, strings.Repeat("v", 5<<20))
	bigArray := "*2000000\r\n" + strings.Repeat(":1\r\n", 2000000)
	longLine := "+" + strings.Repeat("m", 2<<20) + "\r\n"
	tests := []struct {
		name     string
		chunks   []protocolstest.Chunk
		want     []string
		wantCode string
	}{
		{
			name:     "nesting deeper than the cap",
			chunks:   join(cmd("PING\r\n"), rep(strings.Repeat("*1\r\n", maxDepth+1)+":1\r\n")),
			want:     []string{`PING -> unmatched-response inline`},
			wantCode: "redis_too_deep",
		},
		{
			name:   "nesting at the cap",
			chunks: join(cmd("PING\r\n"), rep(strings.Repeat("*1\r\n", maxDepth)+":1\r\n")),
			want:   []string{`PING -> OK array ` + strings.Repeat("[", maxDepth) + "1" + strings.Repeat("]", maxDepth) + ` inline`},
		},
		{
			name:     "a string longer than Redis allows",
			chunks:   join(cmd("GET k\r\n"), rep("$600000000\r\n")),
			want:     []string{`GET k ["k"] -> unmatched-response inline`},
			wantCode: "redis_bulk_too_large",
		},
		{
			name:     "a reply count no server sends",
			chunks:   join(cmd("KEYS *\r\n"), rep("*5000000000\r\n")),
			want:     []string{`KEYS ["*"] -> unmatched-response inline`},
			wantCode: "redis_count_too_large",
		},
		{
			name:     "a command count no server accepts",
			chunks:   cmd("*200000000\r\n"),
			wantCode: "redis_count_too_large",
		},
		{
			name:     "a number line without an end",
			chunks:   join(cmd("PING\r\n"), chunked(s2c, ":"+strings.Repeat("1", 100<<10), 4096)),
			want:     []string{`PING -> unmatched-response inline`},
			wantCode: "redis_line_too_long",
		},
		{
			name:     "an inline command longer than Redis reads",
			chunks:   chunked(c2s, "SET k "+strings.Repeat("x", 100<<10)+"\r\n", 4096),
			wantCode: "redis_inline_too_long",
		},
		{
			name:     "a command holding something other than strings",
			chunks:   cmd("*2\r\n$3\r\nGET\r\n:1\r\n"),
			wantCode: "redis_request_not_bulk",
		},
		{
			name:     "a line ended by LF alone",
			chunks:   join(cmd("PING\r\n"), rep("+PONG\n")),
			want:     []string{`PING -> unmatched-response inline`},
			wantCode: "redis_missing_cr",
		},
		{
			name:     "a string longer than it said",
			chunks:   join(cmd("GET k\r\n"), rep("$1\r\nab\r\n")),
			want:     []string{`GET k ["k"] -> unmatched-response inline`},
			wantCode: "redis_bulk_crlf",
		},
		{
			name:     "a null with data",
			chunks:   join(cmd("GET k\r\n"), rep("_x\r\n")),
			want:     []string{`GET k ["k"] -> unmatched-response inline`},
			wantCode: "redis_bad_null",
		},
		{
			name:     "a double that is not one",
			chunks:   join(cmd("GET k\r\n"), rep(",1.2.3\r\n")),
			want:     []string{`GET k ["k"] -> unmatched-response inline`},
			wantCode: "redis_bad_double",
		},
		{
			name:     "a big number that is not one",
			chunks:   join(cmd("GET k\r\n"), rep("(12a\r\n")),
			want:     []string{`GET k ["k"] -> unmatched-response inline`},
			wantCode: "redis_bad_big_number",
		},
		{
			name:   "a 5 MiB string streams through",
			chunks: join(cmd("GET big\r\n"), chunked(s2c, bigBulk, 64<<10), cmd("PING\r\n"), rep("+PONG\r\n")),
			want: []string{
				`GET big ["big"] -> OK bulk_string "` + strings.Repeat("v", replyCap-1) + `... inline`,
				`PING -> OK simple_string PONG inline`,
			},
		},
		{
			name:   "a 5 MiB argument streams through",
			chunks: join(chunked(c2s, "*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n"+bigBulk, 64<<10), rep("+OK\r\n")),
			want:   []string{`SET big ["big" "` + strings.Repeat("v", argCap) + `..."] -> OK simple_string OK`},
		},
		{
			name:   "two million elements stream through",
			chunks: join(cmd("LRANGE l 0 -1\r\n"), chunked(s2c, bigArray, 64<<10)),
			want:   []string{`LRANGE l ["l" "0" "-1"] -> OK array [` + strings.Repeat("1, ", maxKeptNodes) + `...] inline`},
		},
		{
			name:   "a 2 MiB simple string streams through",
			chunks: join(cmd("MONITOR\r\n"), chunked(s2c, "+OK\r\n"+longLine, 64<<10)),
			want: []string{
				`MONITOR -> OK simple_string OK inline`,
				`-> OK simple_string ` + strings.Repeat("m", maxScalar) + `... unmatched-request`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := protocolstest.Replay(New(), protocols.ConnInfo{}, tt.chunks, protocols.ClosedFIN)
			if err != nil {
				t.Fatal(err)
			}
			got := lines(res.Entries)
			for i := range got {
				if len(got[i]) > 300 {
					// Compare long renderings by their start and end.
					got[i] = got[i][:150] + "…" + got[i][len(got[i])-150:]
				}
			}
			want := append([]string(nil), tt.want...)
			for i := range want {
				if len(want[i]) > 300 {
					want[i] = want[i][:150] + "…" + want[i][len(want[i])-150:]
				}
			}
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("entries:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			var pe *protocols.ParseError
			switch {
			case tt.wantCode == "" && res.Err != nil:
				t.Errorf("error %v", res.Err)
			case tt.wantCode != "" && (!errors.As(res.Err, &pe) || pe.Code != tt.wantCode):
				t.Errorf("error %v, want code %s", res.Err, tt.wantCode)
			}
			if res.Err == nil && (res.Leftover[0] > maxLine+2 || res.Leftover[1] > maxLine+2) {
				t.Errorf("leftover %v: the decoder held on to more than a line", res.Leftover)
			}
		})
	}
}

func TestPendingCap(t *testing.T) {
	info := protocols.ConnInfo{Options: protocols.DefaultOptions()}
	info.Options.MaxPending = 2
	res := replay(t, info, protocolstest.Stream("GET a\r\nGET b\r\nGET c\r\nGET d\r\n", "$1\r\nA\r\n$1\r\nB\r\n$1\r\nC\r\n$1\r\nD\r\n"))
	want := []string{
		`GET a ["a"] -> unmatched-response inline`,
		`GET b ["b"] -> unmatched-response inline`,
		`GET c ["c"] -> OK bulk_string "C" inline`,
		`GET d ["d"] -> OK bulk_string "D" inline`,
	}
	if got := lines(res.Entries); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("entries:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if w := res.Entries[0].Warnings; len(w) != 1 || w[0] != warnPendingCap {
		t.Errorf("warnings %q, want %q", w, warnPendingCap)
	}
}

func TestGaps(t *testing.T) {
	c2s, s2c := protocols.ClientToServer, protocols.ServerToClient
	tests := []struct {
		name   string
		chunks []protocolstest.Chunk
		want   []string
	}{
		{
			name: "lost replies: what waits is unmatched, pairing resumes",
			chunks: []protocolstest.Chunk{
				{Dir: c2s, Data: []byte("GET a\r\nGET b\r\nGET c\r\n")},
				{Dir: s2c, Data: []byte("$1\r\nA\r\n$1\r\n")},
				{Dir: s2c, Gap: 5},
				{Dir: s2c, Data: []byte("xyz\r\n$1\r\nC\r\n")},
				{Dir: c2s, Data: []byte("GET d\r\n")},
				{Dir: s2c, Data: []byte("$1\r\nD\r\n")},
				{Dir: c2s, Data: []byte("GET e\r\n")},
				{Dir: s2c, Data: []byte("$1\r\nE\r\n")},
			},
			want: []string{
				`GET a ["a"] -> OK bulk_string "A" inline`,
				`GET b ["b"] -> unmatched-response gap inline`,
				`GET c ["c"] -> unmatched-response gap inline`,
				`-> OK bulk_string "C" unmatched-request gap`,
				`GET d ["d"] -> OK bulk_string "D" gap inline`,
				`GET e ["e"] -> OK bulk_string "E" inline`,
			},
		},
		{
			name: "a command cut by a gap",
			chunks: []protocolstest.Chunk{
				{Dir: c2s, Data: []byte("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$10\r\nabc")},
				{Dir: c2s, Gap: 7},
				{Dir: c2s, Data: []byte("\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n")},
				{Dir: s2c, Data: []byte("+OK\r\n$10\r\nabcdefghij\r\n")},
			},
			want: []string{
				`SET k ["k" "abc..."] -> OK simple_string OK gap`,
				`GET k ["k"] -> OK bulk_string "abcdefghij"`,
			},
		},
		{
			name: "a gap of unknown size in a command",
			chunks: []protocolstest.Chunk{
				{Dir: c2s, Data: []byte("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$10\r\nabc")},
				{Dir: c2s, Gap: -1},
				{Dir: c2s, Data: []byte("\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n")},
				{Dir: s2c, Data: []byte("+OK\r\n$10\r\nabcdefghij\r\n")},
			},
			want: []string{
				`SET k ["k"] -> unmatched-response gap`,
				`GET k ["k"] -> OK simple_string OK gap`,
				`-> OK bulk_string "abcdefghij" unmatched-request`,
			},
		},
		{
			name: "a gap in a large reply folds the values read after it",
			chunks: []protocolstest.Chunk{
				{Dir: c2s, Data: []byte("LRANGE l 0 -1\r\n")},
				{Dir: s2c, Data: []byte("*100\r\n" + strings.Repeat("$1\r\nx\r\n", 10))},
				{Dir: s2c, Gap: 100},
				{Dir: s2c, Data: []byte(strings.Repeat("$1\r\nx\r\n", 50))},
			},
			want: append([]string{`LRANGE l ["l" "0" "-1"] -> unmatched-response gap inline`},
				strings.Split(strings.Repeat(`-> OK bulk_string "x" unmatched-request gap`+"\n", maxOrphanRun+1), "\n")[:maxOrphanRun+1]...),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := replay(t, protocols.ConnInfo{}, tt.chunks)
			got := lines(res.Entries)
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("entries:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
			if res.Err != nil {
				t.Errorf("error %v", res.Err)
			}
		})
	}
}
