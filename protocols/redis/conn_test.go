package redis

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/sondehq/sonde/protocols"
	"github.com/sondehq/sonde/protocols/protocolstest"
)

// line renders what a test checks of a Redis entry on one line:
// "METHOD target -> status type reply" and the flags that are set.
func line(e *protocols.Entry) string {
	r := e.Redis
	var b strings.Builder
	if r.PushKind != "" {
		fmt.Fprintf(&b, "push %s", r.PushKind)
		if r.Command != "" {
			fmt.Fprintf(&b, " %s %q", r.Command, r.Args)
		}
		if r.Pattern != "" {
			fmt.Fprintf(&b, " pattern=%s", r.Pattern)
		}
		if r.Channel != "" {
			fmt.Fprintf(&b, " channel=%s", r.Channel)
		}
		if r.Key != "" {
			fmt.Fprintf(&b, " key=%s", r.Key)
		}
		if r.ReplyType != "" {
			fmt.Fprintf(&b, " %s %s", r.ReplyType, r.Reply)
		}
		return b.String()
	}
	if e.Summary.Method != "" {
		b.WriteString(e.Summary.Method + " ")
	}
	if e.Summary.Target != "" {
		b.WriteString(e.Summary.Target + " ")
	}
	if len(r.Args) > 0 {
		fmt.Fprintf(&b, "%q ", r.Args)
	}
	b.WriteString("->")
	if e.Summary.Status != "" {
		b.WriteString(" " + e.Summary.Status)
	}
	if r.ReplyType != "" {
		b.WriteString(" " + r.ReplyType)
	}
	if r.Reply != "" {
		b.WriteString(" " + r.Reply)
	}
	if r.Error != "" {
		b.WriteString(" " + r.Error)
	}
	for _, f := range []struct {
		set  bool
		name string
	}{
		{e.Unmatched == protocols.MissingResponse, "unmatched-response"},
		{e.Unmatched == protocols.MissingRequest, "unmatched-request"},
		{e.Gap, "gap"},
		{e.Redacted, "redacted"},
		{r.NoReply, "noreply"},
		{r.Queued, "queued"},
		{r.Inline, "inline"},
	} {
		if f.set {
			b.WriteString(" " + f.name)
		}
	}
	return b.String()
}

func lines(es []*protocols.Entry) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = line(e)
	}
	return out
}

// replay feeds chunks as they are and cut at random points, checks that
// every cut gives the same entries, and returns them.
func replay(t *testing.T, info protocols.ConnInfo, chunks []protocolstest.Chunk) protocolstest.Result {
	t.Helper()
	return protocolstest.CheckSplit(t, New(), chunks, protocolstest.SplitOptions{Info: info, Seeds: protocolstest.Seeds(1, 16)})
}

// rdbMarkTest is a diskless snapshot's end mark.
const rdbMarkTest = "0123456789abcdef0123456789abcdef01234567"

func TestConn(t *testing.T) {
	tests := []struct {
		name     string
		chunks   []protocolstest.Chunk
		midway   bool
		want     []string
		wantCode string // the ParseError code, when the stream is broken
	}{
		{
			name:   "get and set",
			chunks: protocolstest.Stream("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nvalue\r\n", "+OK\r\n", "*2\r\n$3\r\nget\r\n$1\r\nk\r\n", "$5\r\nvalue\r\n"),
			want: []string{
				`SET k ["k" "value"] -> OK simple_string OK`,
				`GET k ["k"] -> OK bulk_string "value"`,
			},
		},
		{
			name: "every RESP2 reply type",
			chunks: protocolstest.Stream(
				"*1\r\n$4\r\nPING\r\n", "+PONG\r\n",
				"*2\r\n$4\r\nINCR\r\n$1\r\nn\r\n", ":-7\r\n",
				"*2\r\n$3\r\nGET\r\n$4\r\nnone\r\n", "$-1\r\n",
				"*4\r\n$6\r\nLRANGE\r\n$1\r\nl\r\n$1\r\n0\r\n$2\r\n-1\r\n", "*3\r\n$1\r\na\r\n:2\r\n*1\r\n$0\r\n\r\n",
				"*2\r\n$5\r\nBLPOP\r\n$1\r\nq\r\n", "*-1\r\n",
				"*2\r\n$4\r\nLLEN\r\n$1\r\ns\r\n", "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n",
			),
			want: []string{
				`PING -> OK simple_string PONG`,
				`INCR n ["n"] -> OK integer -7`,
				`GET none ["none"] -> OK null (nil)`,
				`LRANGE l ["l" "0" "-1"] -> OK array ["a", 2, [""]]`,
				`BLPOP q ["q"] -> OK null (nil)`,
				`LLEN s ["s"] -> WRONGTYPE error WRONGTYPE Operation against a key holding the wrong kind of value`,
			},
		},
		{
			name: "every RESP3 reply type",
			chunks: protocolstest.Stream(
				"*2\r\n$5\r\nHELLO\r\n$1\r\n3\r\n", "%2\r\n$6\r\nserver\r\n$5\r\nredis\r\n$5\r\nproto\r\n:3\r\n",
				"*3\r\n$5\r\nDEBUG\r\n$8\r\nPROTOCOL\r\n$4\r\nnull\r\n", "_\r\n",
				"*3\r\n$5\r\nDEBUG\r\n$8\r\nPROTOCOL\r\n$4\r\ntrue\r\n", "#t\r\n",
				"*3\r\n$5\r\nDEBUG\r\n$8\r\nPROTOCOL\r\n$6\r\ndouble\r\n", ",3.141\r\n",
				"*3\r\n$5\r\nDEBUG\r\n$8\r\nPROTOCOL\r\n$6\r\nbignum\r\n", "(1234567999999999999999999999999999999\r\n",
				"*3\r\n$5\r\nDEBUG\r\n$8\r\nPROTOCOL\r\n$8\r\nverbatim\r\n", "=29\r\ntxt:This is a verbatim\nstring\r\n",
				"*3\r\n$5\r\nDEBUG\r\n$8\r\nPROTOCOL\r\n$3\r\nset\r\n", "~3\r\n:0\r\n:1\r\n:2\r\n",
				"*3\r\n$5\r\nDEBUG\r\n$8\r\nPROTOCOL\r\n$6\r\nattrib\r\n", "|1\r\n$14\r\nkey-popularity\r\n*2\r\n$7\r\nkey:123\r\n:90\r\n$29\r\nSome real reply following the\r\n",
				"*2\r\n$4\r\nFAKE\r\n$1\r\nx\r\n", "!21\r\nSYNTAX invalid syntax\r\n",
				"*2\r\n$4\r\nFAKE\r\n$1\r\ny\r\n", "*2\r\n|1\r\n+ttl\r\n:3600\r\n:1\r\n,-inf\r\n",
			),
			want: []string{
				`HELLO ["3"] -> OK map {"server": "redis", "proto": 3}`,
				`DEBUG ["PROTOCOL" "null"] -> OK null (nil)`,
				`DEBUG ["PROTOCOL" "true"] -> OK boolean true`,
				`DEBUG ["PROTOCOL" "double"] -> OK double 3.141`,
				`DEBUG ["PROTOCOL" "bignum"] -> OK big_number 1234567999999999999999999999999999999`,
				`DEBUG ["PROTOCOL" "verbatim"] -> OK verbatim_string "This is a verbatim\nstring"`,
				`DEBUG ["PROTOCOL" "set"] -> OK set {0, 1, 2}`,
				`DEBUG ["PROTOCOL" "attrib"] -> OK bulk_string "Some real reply following the"`,
				`FAKE ["x"] -> SYNTAX bulk_error SYNTAX invalid syntax`,
				`FAKE ["y"] -> OK array [|{ttl: 3600} 1, -inf]`,
			},
		},
		{
			name: "pipelined commands pair in order",
			chunks: protocolstest.Stream(
				"*2\r\n$4\r\nINCR\r\n$1\r\na\r\n*2\r\n$4\r\nINCR\r\n$1\r\nb\r\n*2\r\n$3\r\nGET\r\n$1\r\nc\r\n",
				":1\r\n:2\r\n$1\r\n3\r\n",
			),
			want: []string{`INCR a ["a"] -> OK integer 1`, `INCR b ["b"] -> OK integer 2`, `GET c ["c"] -> OK bulk_string "3"`},
		},
		{
			name: "inline commands, quotes and blank lines",
			chunks: protocolstest.Stream(
				"\r\nPING\r\nset key \"my value\\x41\" 'it\\'s'\nSET bad \"unclosed\r\nGET k\r\n",
				"+PONG\r\n-ERR syntax error\r\n-ERR Protocol error: unbalanced quotes in request\r\n",
			),
			want: []string{
				`PING -> OK simple_string PONG inline`,
				`SET key ["key" "my valueA" "it's"] -> ERR error ERR syntax error inline`,
				`SET bad ["bad" "\"unclosed"] -> ERR error ERR Protocol error: unbalanced quotes in request inline`,
				`GET k ["k"] -> unmatched-response inline`,
			},
		},
		{
			name: "MULTI and EXEC",
			chunks: protocolstest.Stream(
				"*1\r\n$5\r\nMULTI\r\n*2\r\n$4\r\nINCR\r\n$1\r\nx\r\n*3\r\n$3\r\nSET\r\n$1\r\ny\r\n$1\r\n1\r\n*1\r\n$4\r\nEXEC\r\n",
				"+OK\r\n+QUEUED\r\n+QUEUED\r\n*2\r\n:5\r\n+OK\r\n",
			),
			want: []string{
				`MULTI -> OK simple_string OK`,
				`INCR x ["x"] -> OK simple_string QUEUED queued`,
				`SET y ["y" "1"] -> OK simple_string QUEUED queued`,
				`EXEC -> OK array [5, OK]`,
			},
		},
		{
			name: "RESP2 pub/sub: confirmations pair, messages are pushes",
			chunks: protocolstest.Stream(
				"*3\r\n$9\r\nSUBSCRIBE\r\n$1\r\na\r\n$1\r\nb\r\n",
				"*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n*3\r\n$9\r\nsubscribe\r\n$1\r\nb\r\n:2\r\n*3\r\n$7\r\nmessage\r\n$1\r\na\r\n$2\r\nhi\r\n",
				"*2\r\n$10\r\nPSUBSCRIBE\r\n$2\r\nb*\r\n",
				"*3\r\n$10\r\npsubscribe\r\n$2\r\nb*\r\n:3\r\n*4\r\n$8\r\npmessage\r\n$2\r\nb*\r\n$2\r\nbc\r\n$3\r\nyes\r\n",
				"*1\r\n$4\r\nPING\r\n", "*2\r\n$4\r\npong\r\n$0\r\n\r\n",
				"*1\r\n$11\r\nUNSUBSCRIBE\r\n", "*3\r\n$11\r\nunsubscribe\r\n$1\r\na\r\n:2\r\n*3\r\n$11\r\nunsubscribe\r\n$1\r\nb\r\n:1\r\n",
				"*1\r\n$11\r\nUNSUBSCRIBE\r\n", "*3\r\n$11\r\nunsubscribe\r\n$-1\r\n:1\r\n",
				"*1\r\n$12\r\nPUNSUBSCRIBE\r\n", "*3\r\n$12\r\npunsubscribe\r\n$2\r\nb*\r\n:0\r\n",
				"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n", "*3\r\n$7\r\nmessage\r\n$1\r\na\r\n$2\r\nhi\r\n",
			),
			want: []string{
				`SUBSCRIBE a ["a" "b"] -> OK array ["subscribe", "a", 1] ["subscribe", "b", 2]`,
				`push message channel=a array ["message", "a", "hi"]`,
				`PSUBSCRIBE b* ["b*"] -> OK array ["psubscribe", "b*", 3]`,
				`push pmessage pattern=b* channel=bc array ["pmessage", "b*", "bc", "yes"]`,
				`PING -> OK array ["pong", ""]`,
				`UNSUBSCRIBE -> OK array ["unsubscribe", "a", 2] ["unsubscribe", "b", 1]`,
				`UNSUBSCRIBE -> OK array ["unsubscribe", (nil), 1]`,
				`PUNSUBSCRIBE -> OK array ["punsubscribe", "b*", 0]`,
				`GET k ["k"] -> OK array ["message", "a", "hi"]`,
			},
		},
		{
			name: "RESP3 pushes never take a reply's place",
			chunks: protocolstest.Stream(
				"*2\r\n$5\r\nHELLO\r\n$1\r\n3\r\n", "%1\r\n$5\r\nproto\r\n:3\r\n",
				"*3\r\n$6\r\nCLIENT\r\n$8\r\nTRACKING\r\n$2\r\non\r\n", "+OK\r\n",
				"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n*2\r\n$3\r\nGET\r\n$1\r\nj\r\n",
				">2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\nk\r\n$1\r\nv\r\n>2\r\n$10\r\ninvalidate\r\n_\r\n$1\r\nw\r\n",
				"*2\r\n$9\r\nSUBSCRIBE\r\n$1\r\nc\r\n", ">3\r\n$9\r\nsubscribe\r\n$1\r\nc\r\n:1\r\n>3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$1\r\nm\r\n",
				"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n", "*3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$1\r\nm\r\n",
			),
			want: []string{
				`HELLO ["3"] -> OK map {"proto": 3}`,
				`CLIENT TRACKING ["on"] -> OK simple_string OK`,
				`push invalidate key=k push ["invalidate", ["k"]]`,
				`GET k ["k"] -> OK bulk_string "v"`,
				`push invalidate push ["invalidate", (nil)]`,
				`GET j ["j"] -> OK bulk_string "w"`,
				`SUBSCRIBE c ["c"] -> OK push ["subscribe", "c", 1]`,
				`push message channel=c push ["message", "c", "m"]`,
				`GET k ["k"] -> OK array ["message", "c", "m"]`,
			},
		},
		{
			name: "CLIENT REPLY OFF, SKIP and ON",
			chunks: protocolstest.Stream(
				"PING\r\nCLIENT REPLY OFF\r\nPING\r\nCLIENT REPLY ON\r\nPING\r\nCLIENT REPLY SKIP\r\nPING\r\nPING\r\n",
				"+PONG\r\n+OK\r\n+PONG\r\n+PONG\r\n",
			),
			want: []string{
				`PING -> OK simple_string PONG inline`,
				`CLIENT REPLY ["OFF"] -> noreply inline`,
				`PING -> noreply inline`,
				`CLIENT REPLY ["ON"] -> OK simple_string OK inline`,
				`PING -> OK simple_string PONG inline`,
				`CLIENT REPLY ["SKIP"] -> noreply inline`,
				`PING -> noreply inline`,
				`PING -> OK simple_string PONG inline`,
			},
		},
		{
			name: "MONITOR streams one-way lines",
			chunks: protocolstest.Stream(
				"*1\r\n$7\r\nMONITOR\r\n", "+OK\r\n+1700000000.123456 [0 127.0.0.1:5000] \"GET\" \"k\"\r\n",
				"*1\r\n$4\r\nQUIT\r\n", "+OK\r\n",
			),
			want: []string{
				`MONITOR -> OK simple_string OK`,
				`push monitor simple_string 1700000000.123456 [0 127.0.0.1:5000] "GET" "k"`,
				`QUIT -> OK simple_string OK`,
			},
		},
		{
			name: "secrets are redacted",
			chunks: protocolstest.Stream(
				"*3\r\n$4\r\nAUTH\r\n$4\r\nuser\r\n$6\r\nsecret\r\n", "-WRONGPASS invalid username-password pair\r\n",
				"AUTH secret\r\n", "+OK\r\n",
				"*6\r\n$5\r\nHELLO\r\n$1\r\n3\r\n$4\r\nauth\r\n$1\r\nu\r\n$2\r\npw\r\n$7\r\nSETNAME\r\n", "-ERR syntax error\r\n",
				"*4\r\n$6\r\nCONFIG\r\n$3\r\nSET\r\n$11\r\nrequirepass\r\n$2\r\npw\r\n", "+OK\r\n",
				"*5\r\n$3\r\nACL\r\n$7\r\nSETUSER\r\n$3\r\nbob\r\n$2\r\non\r\n$4\r\n>pw1\r\n", "+OK\r\n",
			),
			want: []string{
				`AUTH ["[REDACTED]" "[REDACTED]"] -> WRONGPASS error WRONGPASS invalid username-password pair redacted`,
				`AUTH ["[REDACTED]"] -> OK simple_string OK redacted inline`,
				`HELLO ["3" "auth" "[REDACTED]" "[REDACTED]" "SETNAME"] -> ERR error ERR syntax error redacted`,
				`CONFIG SET ["requirepass" "[REDACTED]"] -> OK simple_string OK redacted`,
				`ACL SETUSER ["bob" "on" "[REDACTED]"] -> OK simple_string OK redacted`,
			},
		},
		{
			name: "keys of every key spec",
			chunks: protocolstest.Stream(
				"*5\r\n$4\r\nEVAL\r\n$6\r\nreturn\r\n$1\r\n1\r\n$2\r\nk1\r\n$1\r\na\r\n", ":1\r\n",
				"*4\r\n$4\r\nEVAL\r\n$6\r\nreturn\r\n$1\r\n0\r\n$1\r\na\r\n", ":1\r\n",
				"*6\r\n$5\r\nXREAD\r\n$5\r\nCOUNT\r\n$1\r\n1\r\n$7\r\nstreams\r\n$2\r\ns1\r\n$1\r\n0\r\n", "*-1\r\n",
				"*3\r\n$6\r\nOBJECT\r\n$8\r\nencoding\r\n$1\r\no\r\n", "$3\r\nraw\r\n",
				"*3\r\n$7\r\nPUBLISH\r\n$2\r\nch\r\n$1\r\nm\r\n", ":0\r\n",
				"*2\r\n$3\r\nGET\r\n$3\r\n\x00\x01k\r\n", "$-1\r\n",
			),
			want: []string{
				`EVAL k1 ["return" "1" "k1" "a"] -> OK integer 1`,
				`EVAL ["return" "0" "a"] -> OK integer 1`,
				`XREAD s1 ["COUNT" "1" "streams" "s1" "0"] -> OK null (nil)`,
				`OBJECT ENCODING o ["o"] -> OK bulk_string "raw"`,
				`PUBLISH ch ["ch" "m"] -> OK integer 0`,
				`GET "\x00\x01k" ["\"\\x00\\x01k\""] -> OK null (nil)`,
			},
		},
		{
			name: "a replica's diskless full sync, then the command stream",
			chunks: protocolstest.Stream(
				"*1\r\n$4\r\nPING\r\n*3\r\n$8\r\nREPLCONF\r\n$14\r\nlistening-port\r\n$4\r\n6380\r\n*3\r\n$5\r\nPSYNC\r\n$1\r\n?\r\n$2\r\n-1\r\n",
				"+PONG\r\n+OK\r\n+FULLRESYNC 8de1 0\r\n\n\n$EOF:"+rdbMarkTest+"\r\nREDIS0010\xfa\tredis-ver"+rdbMarkTest[:39]+"x\xff"+rdbMarkTest+
					"*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n",
				"*3\r\n$8\r\nREPLCONF\r\n$3\r\nACK\r\n$2\r\n42\r\n",
			),
			want: []string{
				`PING -> OK simple_string PONG`,
				`REPLCONF ["listening-port" "6380"] -> OK simple_string OK`,
				`PSYNC ["?" "-1"] -> OK simple_string FULLRESYNC 8de1 0`,
				`push rdb rdb snapshot of 148 bytes`,
				`push replication SELECT ["0"]`,
				`push replication SET ["k" "v"] key=k`,
				`REPLCONF ["ACK" "42"] -> noreply`,
			},
		},
		{
			name: "a replica's full sync from a file",
			chunks: protocolstest.Stream(
				"*3\r\n$5\r\nPSYNC\r\n$1\r\n?\r\n$2\r\n-1\r\n",
				"+FULLRESYNC 8de1 0\r\n$12\r\nREDIS0010\r\n\xff*1\r\n$4\r\nPING\r\n",
			),
			want: []string{
				`PSYNC ["?" "-1"] -> OK simple_string FULLRESYNC 8de1 0`,
				`push rdb rdb snapshot of 17 bytes`,
				`push replication PING []`,
			},
		},
		{
			name:   "a reply whose command was not seen",
			chunks: protocolstest.Stream("", "+OK\r\n", "*3\r\n$3\r\nSET\r\n$5\r\nhello\r\n$5\r\nthere\r\n", "+OK\r\n"),
			want: []string{
				`-> OK simple_string OK unmatched-request`,
				`SET hello ["hello" "there"] -> OK simple_string OK`,
			},
		},
		{
			name:   "mid-stream start skips to a command",
			midway: true,
			chunks: protocolstest.Stream("lue\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n", "xx\r\n$1\r\nv\r\n"),
			want: []string{
				`GET k ["k"] -> OK bulk_string "v"`,
			},
		},
		{
			name:   "a replication link joined mid-stream",
			midway: true,
			chunks: protocolstest.Stream(
				"$2\r\n42\r\n*3\r\n$8\r\nREPLCONF\r\n$3\r\nACK\r\n$2\r\n42\r\n",
				"\r\n*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n",
			),
			want: []string{
				`REPLCONF ["ACK" "42"] -> noreply`,
				`push replication SET ["k" "v"] key=k`,
			},
		},
		{
			name:   "a master's stream joined mid-stream, before the replica acknowledges",
			midway: true,
			chunks: protocolstest.Stream(
				"", "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n",
				"*3\r\n$8\r\nREPLCONF\r\n$3\r\nACK\r\n$2\r\n42\r\n", "*1\r\n$4\r\nPING\r\n",
			),
			want: []string{
				`-> OK array ["SET", "k", "v"] unmatched-request`,
				`REPLCONF ["ACK" "42"] -> noreply`,
				`push replication PING []`,
			},
		},
		{
			name:   "a reply cut by the end of the connection",
			chunks: protocolstest.Stream("PING\r\n", "*1000\r\n_\r\n_\r\n"),
			want:   []string{`PING -> OK array [(nil), (nil), ...] inline`},
		},
		{
			name:     "empty and negative counts are skipped, garbage is refused",
			chunks:   protocolstest.Stream("*0\r\n*-1\r\n*-20\r\n*1\r\n$4\r\nPING\r\n", "+PONG\r\n", "*10000000000000000000000000000000000\r\n"),
			want:     []string{`PING -> OK simple_string PONG`},
			wantCode: "redis_bad_length",
		},
		{
			name:     "a server that stops speaking RESP",
			chunks:   protocolstest.Stream("AUTH a b\r\nPING\r\nGET k\r\n", "+OK\r\n+OK\r\nnot RESP\r\n"),
			want:     []string{`AUTH ["[REDACTED]" "[REDACTED]"] -> OK simple_string OK redacted inline`, `PING -> OK simple_string OK inline`, `GET k ["k"] -> unmatched-response inline`},
			wantCode: "redis_bad_type",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			info := protocols.ConnInfo{MidStream: tt.midway}
			res := replay(t, info, tt.chunks)
			got := lines(res.Entries)
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("entries:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
			var pe *protocols.ParseError
			switch {
			case tt.wantCode == "" && res.Err != nil:
				t.Errorf("error %v", res.Err)
			case tt.wantCode != "" && (!errors.As(res.Err, &pe) || pe.Code != tt.wantCode):
				t.Errorf("error %v, want code %s", res.Err, tt.wantCode)
			}
		})
	}
}

func TestTimesAndSizes(t *testing.T) {
	req, resp := "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n", "$5\r\nvalue\r\n"
	chunks := protocolstest.Stream(req, resp)
	res := replay(t, protocols.ConnInfo{}, chunks)
	if len(res.Entries) != 1 {
		t.Fatalf("%d entries", len(res.Entries))
	}
	e := res.Entries[0]
	if !e.Start.Equal(chunks[0].Time) || e.Duration != chunks[1].Time.Sub(chunks[0].Time) {
		t.Errorf("start %v duration %v, want %v and %v", e.Start, e.Duration, chunks[0].Time, chunks[1].Time.Sub(chunks[0].Time))
	}
	if e.RequestSize != int64(len(req)) || e.ResponseSize != int64(len(resp)) {
		t.Errorf("sizes %d/%d, want %d/%d", e.RequestSize, e.ResponseSize, len(req), len(resp))
	}
	if e.Protocol != protocols.Redis || e.Summary != (protocols.Summary{Method: "GET", Target: "k", Status: "OK"}) {
		t.Errorf("protocol %q summary %+v", e.Protocol, e.Summary)
	}
}
