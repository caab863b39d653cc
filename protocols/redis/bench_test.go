package redis

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sondehq/sonde/protocols"
)

// benchConversation is a pipelined mix of what applications send: SET and
// GET of 100-byte values, INCR, HGETALL and LRANGE replies.
func benchConversation() (client, server []byte) {
	var c, s strings.Builder
	value := strings.Repeat("v", 100)
	for i := range 1000 {
		key := fmt.Sprintf("key:%06d", i)
		switch i % 5 {
		case 0:
			fmt.Fprintf(&c, "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n", len(key), key, len(value), value)
			s.WriteString("+OK\r\n")
		case 1:
			fmt.Fprintf(&c, "*2\r\n$3\r\nGET\r\n$%d\r\n%s\r\n", len(key), key)
			fmt.Fprintf(&s, "$%d\r\n%s\r\n", len(value), value)
		case 2:
			fmt.Fprintf(&c, "*2\r\n$4\r\nINCR\r\n$%d\r\n%s\r\n", len(key), key)
			fmt.Fprintf(&s, ":%d\r\n", i)
		case 3:
			fmt.Fprintf(&c, "*2\r\n$7\r\nHGETALL\r\n$%d\r\n%s\r\n", len(key), key)
			s.WriteString("%3\r\n$2\r\nf1\r\n$2\r\nv1\r\n$2\r\nf2\r\n:2\r\n$2\r\nf3\r\n,3.5\r\n")
		default:
			fmt.Fprintf(&c, "*4\r\n$6\r\nLRANGE\r\n$%d\r\n%s\r\n$1\r\n0\r\n$2\r\n19\r\n", len(key), key)
			s.WriteString("*20\r\n")
			for j := range 20 {
				fmt.Fprintf(&s, "$7\r\nitem:%02d\r\n", j)
			}
		}
	}
	return []byte(c.String()), []byte(s.String())
}

func BenchmarkConn(b *testing.B) {
	client, server := benchConversation()
	const chunk = 16 << 10
	feed := func(c protocols.Conn, dir protocols.Direction, data []byte, ts time.Time) {
		var left []byte
		for off := 0; off < len(data); off += chunk {
			buf := append(left, data[off:min(off+chunk, len(data))]...)
			n, err := c.Feed(dir, buf, ts)
			if err != nil {
				b.Fatal(err)
			}
			left = append(left[:0:0], buf[n:]...)
		}
	}
	info := protocols.ConnInfo{Options: protocols.DefaultOptions()}
	b.SetBytes(int64(len(client) + len(server)))
	b.ReportAllocs()
	entries := 0
	for b.Loop() {
		c := New().NewConn(info, func(*protocols.Entry) { entries++ })
		ts := time.Unix(0, 0)
		feed(c, protocols.ClientToServer, client, ts)
		feed(c, protocols.ServerToClient, server, ts)
		c.Close(protocols.ClosedFIN, ts)
	}
	b.ReportMetric(float64(entries)/float64(b.N), "entries/op")
}
