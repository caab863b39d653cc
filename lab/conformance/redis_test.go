package conformance

import (
	"bufio"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/sondehq/sonde/agent/pipeline"
	"github.com/sondehq/sonde/protocols"
)

// redisKnownCommands and redisKnownReplies list the Redis captures where
// Sonde and tshark disagree on the client's commands and on the server's
// values, each checked against the raw capture with tshark.
var redisKnownCommands = map[string]knownDifference{
	"tcpdump__resp_3_malicious.pcap": {"sonde",
		"the client sends lines that look like RESP values but are inline commands to Redis, which answers " +
			"each with \"ERR unknown command\": $0 (frame 7), + (17), - (27), : (37), :0392... (47), $-20 " +
			"(75), $-1 (117); tshark reads them as a bulk string, a simple string, an error and integers. It " +
			"also shows *-20 (frame 67) and *-1 (frame 109) as requests, where Redis runs nothing and answers " +
			"nothing"},
	"tcpdump__resp_4_infiniteloop.pcapng": {"sonde",
		"frame 1 holds *-532450017895590926 then runs of $ and pieces of an EVAL: no command a client sends, " +
			"and the server never answers; Sonde does not take the connection for Redis, where tshark shows " +
			"five values"},
}

var redisKnownReplies = map[string]knownDifference{
	"zeek__redis__attr.pcap": {"sonde",
		"RESP3 attributes, which tshark does not read: FAKE COMMAND (frame 7) is answered in frame 8 by one " +
			"array, *3 :1 :2 |1 +ttl :3600 :3, whose third element carries an attribute; FAKE2 COMMAND2 " +
			"(frame 21) in frame 22 by |1 +key-popularity %2 ... *2 :2039123 :9543892, an attribute map then " +
			"the array. tshark shows 4 values, then 4 values and 4 fragments, where there are 2 replies"},
	"zeek__redis__pubsub-resp3.pcap": {"sonde",
		"RESP3 after HELLO 3 (frames 5 and 61): HELLO is answered by a map (%7, frames 7 and 63), COMMAND DOCS " +
			"by one map of 241 commands (%241 in frames 11-32 and 67-88), and the pub/sub messages are > pushes " +
			"(frames 100 and 106); tshark, which reads no RESP3 type, shows 24,055 values and 1,448 and 1,443 " +
			"fragments where there are 10 replies and 3 pushes"},
	"zeek__redis__array-element-object-exhaustion.pcap": {"sonde",
		"PING (frame 4) is answered by *1000 and 1000 RESP3 nulls (_), 3,007 bytes in frames 5-7; tshark ends " +
			"the array with the reassembly of frames 5 and 6 and lists the 69 nulls of frame 7 as fragments, " +
			"where Sonde shows one array of 1000 nulls"},
	"zeek__redis__large-requests-responses.pcap": {"sonde",
		"COMMAND DOCS (frame 5) is answered by one array, *544 in frame 7 through frame 33; tshark ends its " +
			"first value in frame 8 and reads the rest of the reply as 482 values of their own, where Sonde " +
			"shows one reply; the four SET and GET replies after it (frames 41-53) match"},
	"deepflow__redis__redis.pcap": {"sonde",
		"GET 1 1 http://... (frame 32) is answered by $490493 (frame 33) and the string in frames 35-49; the " +
			"capture ends 2 bytes short of the reply's final CRLF (the server's bytes end at 490,502 of " +
			"490,504), so tshark, waiting for them, shows no value, where Sonde shows the reply with the " +
			"warning that it was incomplete when the connection ended"},
	"tcpdump__resp_3_malicious.pcap": {"tshark",
		"the multibulk length of 35 digits in frame 57 is a parse error (redis_bad_length) for Sonde, so the " +
			"connection is not read further and the server's \"ERR Protocol error: invalid multibulk length\" " +
			"(frame 59) is not shown"},
}

// redisOpaque lists the captures in which Sonde stops reading a connection
// or never starts, by the pipeline's counts (parse errors by code, then
// undetected connections). Every other capture must be read to the end.
// In these captures tshark's fragments from the server (bytes it could
// not read as RESP either) are not compared.
var redisOpaque = map[string]struct{ stats, reason string }{
	"zeek__redis__almost-resp.pcap": {"redis_bad_type:1",
		"after +OK +OK the server sends \"not RESP\", \"Still not RESP\" and \"Nope\" (frame 9), " +
			"which tshark shows as fragments"},
	"tcpdump__resp_3_malicious.pcap": {"redis_bad_length:1 undetected:4",
		"a multibulk length of 35 digits (frame 57); *-20, +hello, -hello and :hello (frames 67, 85, 93, " +
			"101), to which Redis does not answer"},
	"tcpdump__resp_4_infiniteloop.pcapng": {"undetected:1", "frame 1 is not Redis"},
}

// TestRedisConformance: for every Redis capture, per connection and
// direction, in order, the commands the client sent and the top-level
// values the server sent, as tshark shows them.
//
// A command sent as a RESP array is compared by its first two words (the
// name and the subcommand or first argument), upper-cased since Sonde shows
// a subcommand that way. tshark does not read inline commands ("PING\r\n"):
// it shows one fragment per line, so an inline command is compared as such.
//
// The server's values are compared by type and value: one per reply, one
// per subscription confirmation (Sonde folds a SUBSCRIBE's confirmations
// into its entry) and one per pub/sub message. Long values are compared as
// tshark elides them: 120 bytes of a bulk string, 300 characters of an array.
func TestRedisConformance(t *testing.T) {
	for _, f := range inventory(t, "redis") {
		t.Run(f.Name, func(t *testing.T) {
			opaque, isOpaque := redisOpaque[f.Name]
			want := redisExpected(t, f, isOpaque)
			if len(want) == 0 {
				t.Fatal("tshark shows no RESP values: the expected table did not load")
			}
			entries, st := dissect(t, f)
			got := sequences{}
			for _, e := range entries {
				redisItems(e, got)
			}
			redisSettleCut(want, got)
			compare(t, f, redisSide(want, redisFromClient), redisSide(got, redisFromClient), redisKnownCommands)
			compare(t, f, redisSide(want, redisFromServer), redisSide(got, redisFromServer), redisKnownReplies)
			if s := redisOpaqueStats(st.Pipeline); s != opaque.stats {
				t.Errorf("connections not read to the end: %q, want %q (%s)", s, opaque.stats, opaque.reason)
			}
		})
	}
}

// Sequence keys: the client's and the server's stream of a connection.
const (
	redisFromClient = " client"
	redisFromServer = " server"
)

// redisSide keeps the sequences of one side of each connection.
func redisSide(s sequences, suffix string) sequences {
	out := sequences{}
	for k, v := range s {
		if strings.HasSuffix(k, suffix) {
			out[k] = v
		}
	}
	return out
}

// Where tshark elides a long value, and how much of a command's first
// argument is compared (Sonde and tshark cut long ones at other lengths).
const (
	redisBulkShown  = 120 // bytes of a bulk string
	redisArrayShown = 300 // characters of an array
	redisArgShown   = 100
)

// redisExpected reads tshark's values as items per connection and
// direction. Where Sonde is known to stop reading (opaque), the server's
// fragments are left out.
func redisExpected(t *testing.T, f corpusFile, opaque bool) sequences {
	t.Helper()
	servers := redisServerPorts(t, f.Msgs)
	want := sequences{}
	for _, r := range readTSV(t, f.Msgs) {
		conn := rowConn(t, r)
		client, server := conn+redisFromClient, conn+redisFromServer
		value := r["value"]
		switch typ := r["resp_type"]; {
		case r["kind"] == "other" && typ == "resp.fragment":
			if !servers[r["sport"]] {
				want.add(client, "inline")
			} else if !opaque {
				want.add(server, "fragment")
			}
		case r["kind"] == "request" && typ == "array":
			words := strings.TrimSuffix(strings.TrimPrefix(redisElidedPrefix(value), "["), "]")
			want.add(client, redisCommandWords(respUnescape(words)))
		case r["kind"] == "request":
			want.add(client, typ+" "+value)
		case typ == "string":
			want.add(server, "+"+value)
		case typ == "integer":
			want.add(server, ":"+value)
		case typ == "error":
			// tshark writes every error as -ERR: and its text.
			want.add(server, "-"+strings.TrimPrefix(value, "-ERR:"))
		case typ == "bulk_string" && value == "(nil)":
			want.add(server, "(nil)")
		case typ == "bulk_string":
			if m := redisElidedBulk.FindStringSubmatch(value); m != nil {
				want.add(server, "$"+respUnescape(m[1])+"...("+m[2]+"B)")
			} else {
				want.add(server, "$"+respUnescape(value))
			}
		case typ == "array":
			want.add(server, "*"+value)
		default:
			want.add(server, typ+" "+value)
		}
	}
	return want
}

// redisServerPorts reads the server ports from the table's header comment
// ("server ports: [6379]"): they say which side sent a fragment.
func redisServerPorts(t *testing.T, path string) map[string]bool {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("reading corpus: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() && strings.HasPrefix(sc.Text(), "#") {
		if m := redisServerPortList.FindStringSubmatch(sc.Text()); m != nil {
			ports := map[string]bool{}
			for _, p := range strings.Split(m[1], ",") {
				ports[strings.TrimSpace(p)] = true
			}
			return ports
		}
	}
	t.Fatalf("%s: no server ports in the header", path)
	return nil
}

var redisServerPortList = regexp.MustCompile(`server ports: \[([0-9, ]+)\]`)

// redisElidedBulk is tshark's rendering of a bulk string longer than 120
// bytes: its first 120 characters, then "...(NB)" with its length in bytes.
var redisElidedBulk = regexp.MustCompile(`^(.*)\.\.\.\((\d+|\?)B\)$`)

// redisElidedPrefix is a value without tshark's elision suffix, if any.
func redisElidedPrefix(value string) string {
	if m := elided.FindStringSubmatch(value); m != nil {
		return m[1]
	}
	return value
}

// respEscape matches tshark's escapes of a byte it does not print ("\\xb8")
// and of a backslash ("\\").
var respEscape = regexp.MustCompile(`\\\\(x[0-9a-f]{2})?`)

// respUnescape and respPlain bring tshark's text and the bytes Sonde read
// to one lossy form, for the corpus's one binary value (bulk-loading's
// ECHO): tshark's escapes are dropped, and so is every byte that is not
// printable ASCII, a backslash included.
func respUnescape(s string) string { return respPlain(respEscape.ReplaceAllString(s, "")) }

func respPlain(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e || r == '\\' {
			return -1
		}
		return r
	}, s)
}

// redisCommandWords is the item for a command: its first two words,
// upper-cased.
func redisCommandWords(s string) string {
	words := strings.SplitN(s, " ", 3)
	if len(words) > 2 {
		words = words[:2]
	}
	if len(words) == 2 {
		words[1] = redisFirstRunes(words[1], redisArgShown)
	}
	return strings.ToUpper(strings.Join(words, " "))
}

// redisItems adds what one entry stands for: the command the client sent
// and the values the server sent.
func redisItems(e *protocols.Entry, got sequences) {
	r := e.Redis
	if r == nil {
		return
	}
	client, server := entryConn(e)+redisFromClient, entryConn(e)+redisFromServer
	if e.RequestSize > 0 {
		if r.Inline {
			got.add(client, "inline")
		} else {
			words := []string{r.Command}
			for _, a := range r.Args {
				words = append(words, redisUnshow(a))
			}
			got.add(client, redisCommandWords(respPlain(strings.Join(words, " "))))
		}
	}
	if r.ReplyType == "" || e.ResponseSize == 0 {
		return
	}
	switch r.ReplyType {
	case "simple_string":
		got.add(server, "+"+r.Reply)
	case "integer":
		got.add(server, ":"+r.Reply)
	case "error":
		got.add(server, "-"+redisUnshow(r.Error))
	case "null":
		got.add(server, "(nil)")
	case "bulk_string":
		s, whole := redisUnquote(r.Reply)
		switch {
		case !whole || r.ReplyTruncated:
			// Sonde kept the start: the length is tshark's if the start is.
			s = s[:min(len(s), redisBulkShown)] + "...(?B)"
		case len(s) > redisBulkShown:
			s = fmt.Sprintf("%s...(%dB)", s[:redisBulkShown], len(s))
		}
		got.add(server, "$"+respPlain(s))
	case "array":
		// A SUBSCRIBE's entry holds all its confirmations, one after another.
		for _, v := range redisTsharkValues(r.Reply, r.ReplyTruncated) {
			got.add(server, "*"+v)
		}
	default:
		// The RESP3 types, which tshark does not read.
		got.add(server, r.ReplyType+" "+r.Reply)
	}
}

// redisUnshow undoes Sonde's display of a string that is not printable
// UTF-8: Go-quoted, and perhaps cut ("\"\\x00\\x01\"...").
func redisUnshow(s string) string {
	if !strings.HasPrefix(s, `"`) {
		return s
	}
	u, whole := redisUnquote(s)
	if whole && utf8.ValidString(u) && strings.IndexFunc(u, func(r rune) bool { return r < 0x20 && r != '\t' || r == 0x7f }) < 0 {
		// Printable, so Sonde showed it as it is: the quotes were sent.
		return s
	}
	return u
}

// redisUnquote decodes a Go-quoted string, or as much of it as is there
// when Sonde cut it; whole says that it was all there.
func redisUnquote(s string) (string, bool) {
	if q, err := strconv.QuotedPrefix(s); err == nil {
		u, _ := strconv.Unquote(q)
		return u, q == s
	}
	var b strings.Builder
	rest := strings.TrimPrefix(s, `"`)
	for rest != "" && rest[0] != '"' {
		r, _, tail, err := strconv.UnquoteChar(rest, '"')
		if err != nil {
			break
		}
		b.WriteRune(r)
		rest = tail
	}
	return b.String(), false
}

// redisTsharkValues renders Sonde's rendering of one or more arrays
// ("[\"a\", 1, [x]]") as tshark does ("[a 1 [x]]"): elements separated by
// spaces, bulk strings unquoted and elided past 120 bytes, the whole elided
// past 300 characters. A value Sonde cut ends in "...(? chars)", its length
// unknown.
func redisTsharkValues(s string, cut bool) []string {
	var values []string
	var b strings.Builder
	flush := func() {
		v := b.String()
		n := utf8.RuneCountInString(v)
		switch {
		case cut:
			v = redisFirstRunes(v, redisArrayShown) + "...(? chars)"
		case n > redisArrayShown:
			v = redisFirstRunes(v, redisArrayShown) + fmt.Sprintf("...(%d chars)", n)
		}
		values = append(values, v)
		b.Reset()
	}
	depth := 0
	tokenStart := true
	for i := 0; i < len(s); {
		switch {
		case tokenStart && s[i] == '"':
			str, _ := redisUnquote(s[i:])
			q, err := strconv.QuotedPrefix(s[i:])
			if err != nil || strings.HasPrefix(s[i+len(q):], "...") {
				// Sonde kept only the start of this string.
				cut = true
			}
			if len(str) > redisBulkShown && !cut {
				str = fmt.Sprintf("%s...(%dB)", str[:redisBulkShown], len(str))
			}
			b.WriteString(str)
			if err != nil {
				i = len(s)
				continue
			}
			i += len(q)
			tokenStart = false
		case s[i] == '[' || s[i] == '{':
			depth++
			b.WriteByte(s[i])
			i++
			tokenStart = true
		case s[i] == ']' || s[i] == '}':
			depth--
			b.WriteByte(s[i])
			i++
			tokenStart = false
			if depth == 0 {
				flush()
			}
		case depth == 0 && s[i] == ' ':
			// Between a SUBSCRIBE's confirmations.
			i++
			tokenStart = true
		case strings.HasPrefix(s[i:], ", "):
			b.WriteByte(' ')
			i += len(", ")
			tokenStart = true
		default:
			b.WriteByte(s[i])
			i++
			tokenStart = false
		}
	}
	if b.Len() > 0 || len(values) == 0 {
		flush()
	}
	return values
}

func redisFirstRunes(s string, n int) string {
	for i := range s {
		if n == 0 {
			return s[:i]
		}
		n--
	}
	return s
}

// redisSettleCut gives a value that Sonde cut before its end, its length
// unknown, the length tshark shows when what both show is the same.
func redisSettleCut(want, got sequences) {
	for conn, items := range got {
		for i, item := range items {
			if i >= len(want[conn]) {
				break
			}
			prefix, ok := strings.CutSuffix(item, "...(?B)")
			if !ok {
				prefix, ok = strings.CutSuffix(item, "...(? chars)")
			}
			if ok && strings.HasPrefix(want[conn][i], prefix+"...(") {
				items[i] = want[conn][i]
			}
		}
	}
}

// redisOpaqueStats lists what the pipeline did not read to the end.
func redisOpaqueStats(st pipeline.Stats) string {
	var parts []string
	for code, n := range st.ParseErrors {
		parts = append(parts, fmt.Sprintf("%s:%d", code, n))
	}
	sort.Strings(parts)
	if st.Undetected > 0 {
		parts = append(parts, fmt.Sprintf("undetected:%d", st.Undetected))
	}
	return strings.Join(parts, " ")
}
