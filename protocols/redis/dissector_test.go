package redis

import (
	"strings"
	"testing"

	"github.com/sondehq/sonde/protocols"
)

func TestDetect(t *testing.T) {
	client := protocols.Ports{Src: 40000, Dst: 6379}
	server := protocols.Ports{Src: 6379, Dst: 40000}
	other := protocols.Ports{Src: 40000, Dst: 9999}
	tests := []struct {
		name   string
		prefix string
		ports  protocols.Ports
		want   protocols.Verdict
		client bool
	}{
		{"empty", "", client, protocols.NeedMore, false},
		{"command array", "*1\r\n$4\r\nPING\r\n", other, protocols.Match, true},
		{"lower-case command", "*2\r\n$3\r\nget\r\n$1\r\nk\r\n", other, protocols.Match, true},
		{"module command", "*2\r\n$8\r\nJSON.GET\r\n$1\r\nk\r\n", other, protocols.Match, true},
		{"command array cut", "*1\r\n$4\r\nPI", other, protocols.NeedMore, false},
		{"a master's replication stream", "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n", server, protocols.Match, false},
		{"array reply", "*2\r\n$1\r\na\r\n$1\r\nb\r\n", server, protocols.Match, false},
		{"array of unknown names sent to the Redis port", "*2\r\n$1\r\na\r\n$1\r\nb\r\n", client, protocols.Match, true},
		{"null array", "*-1\r\n", other, protocols.Match, false},
		{"simple string", "+OK\r\n", other, protocols.Match, false},
		{"POP3 greeting", "+OK POP3 server ready\r\n", protocols.Ports{Src: 110, Dst: 40000}, protocols.NoMatch, false},
		{"greeting-like string from Redis", "+OK fine\r\n", server, protocols.Match, false},
		{"error", "-ERR unknown command 'x'\r\n", other, protocols.Match, false},
		{"error without a code", "-hello\r\n", other, protocols.NoMatch, false},
		{"integer", ":42\r\n", other, protocols.Match, false},
		{"not an integer", ":ab", other, protocols.NoMatch, false},
		{"bulk string", "$5\r\nhello\r\n", other, protocols.Match, false},
		{"null bulk", "$-1\r\n", other, protocols.Match, false},
		{"map", "%1\r\n", other, protocols.Match, false},
		{"set", "~2\r\n", other, protocols.Match, false},
		{"double", ",3.14\r\n", other, protocols.Match, false},
		{"infinite double", ",-inf\r\n", other, protocols.Match, false},
		{"big number", "(3492890328409238509324850943850943825024385\r\n", other, protocols.Match, false},
		{"boolean", "#t\r\n", other, protocols.Match, false},
		{"bad boolean", "#x\r\n", other, protocols.NoMatch, false},
		{"null", "_\r\n", other, protocols.Match, false},
		{"verbatim", "=15\r\ntxt:Some string\r\n", other, protocols.Match, false},
		{"bulk error", "!21\r\nSYNTAX invalid syntax\r\n", other, protocols.Match, false},
		{"attribute", "|1\r\n", other, protocols.Match, false},
		{"push", ">3\r\n", other, protocols.Match, false},
		{"reply-like bytes sent to the Redis port", "$0\r\n\r\n", client, protocols.Match, true},
		{"inline command", "PING\r\n", other, protocols.Match, true},
		{"inline lower case", "get key\r\n", other, protocols.Match, true},
		{"inline cut in the name", "GE", other, protocols.NeedMore, false},
		{"inline without its line end", "GET key", other, protocols.NeedMore, false},
		{"inline unknown command", "FOO bar\r\n", other, protocols.NoMatch, false},
		{"HTTP request", "GET / HTTP/1.1\r\nHost: a\r\n\r\n", other, protocols.NoMatch, false},
		{"garbled HTTP request", "GET /HTTP/1.1\r\nHost: a\r\n\r\n", other, protocols.NoMatch, false},
		{"HTTP/0.9 style request", "GET /\r\nHost: a\r\n", other, protocols.NoMatch, false},
		{"HTTP POST", "POST / HTTP/1.1\r\n", other, protocols.NoMatch, false},
		{"HTTP/2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", other, protocols.NoMatch, false},
		{"memcached get", "get foo\r\n", protocols.Ports{Src: 40000, Dst: 11211}, protocols.NoMatch, false},
		{"IMAP greeting", "* OK IMAP4rev1 ready\r\n", other, protocols.NoMatch, false},
		{"TLS", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", other, protocols.NoMatch, false},
		{"simple string without an end", "+" + strings.Repeat("x", 2000), other, protocols.NoMatch, false},
		{"inline line without an end", "SET k " + strings.Repeat("x", 2000), other, protocols.NoMatch, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := New().Detect([]byte(tt.prefix), tt.ports)
			if got.Verdict != tt.want || got.Verdict == protocols.Match && got.FromClient != tt.client {
				t.Errorf("Detect(%q) = %+v, want verdict %d, from client %v", tt.prefix, got, tt.want, tt.client)
			}
		})
	}
}

// TestDetectPrefixes checks that every prefix of a message detects as
// NeedMore or as the whole message does, never as something else.
func TestDetectPrefixes(t *testing.T) {
	for _, msg := range []string{
		"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n", "PING\r\n", "+PONG\r\n", "-ERR x\r\n",
		":1\r\n", "$3\r\nabc\r\n", "%1\r\n+a\r\n:1\r\n", ",1.5\r\n", "(12\r\n", "#f\r\n", "_\r\n",
	} {
		whole := New().Detect([]byte(msg), protocols.Ports{})
		for i := 1; i < len(msg); i++ {
			got := New().Detect([]byte(msg[:i]), protocols.Ports{})
			if got.Verdict != protocols.NeedMore && got != whole {
				t.Errorf("Detect(%q) = %+v, whole message %+v", msg[:i], got, whole)
			}
		}
	}
}
