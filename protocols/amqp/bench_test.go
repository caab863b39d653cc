package amqp

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sondehq/sonde/protocols"
)

// BenchmarkConn measures a consumer-heavy connection as a broker and a
// client exchange it: publishes in confirm mode, deliveries, acks, in 16 KiB
// reads. Bytes per second count both directions.
func BenchmarkConn(b *testing.B) {
	for _, size := range []int{100, 4 << 10} {
		b.Run(fmt.Sprintf("body=%d", size), func(b *testing.B) {
			body := strings.Repeat("x", size)
			var client, server strings.Builder
			client.WriteString(meth(1, 85, 10, args().bits(false)))
			server.WriteString(meth(1, 85, 11, nil))
			for i := uint64(1); i <= 1000; i++ {
				client.WriteString(publish(1, "amq.topic", "orders.created") + hdr(1, uint64(size), "application/json") + bodyFrame(1, body))
				server.WriteString(ack(1, i, false))
				server.WriteString(deliver(2, "ctag", i, "amq.topic", "orders.created") + hdr(2, uint64(size), "application/json") + bodyFrame(2, body))
				client.WriteString(ack(2, i, false))
			}
			streams := [2][]byte{[]byte(client.String()), []byte(server.String())}
			b.SetBytes(int64(len(streams[0]) + len(streams[1])))
			b.ReportAllocs()
			opts := protocols.DefaultOptions()
			ts := time.Unix(1_700_000_000, 0)
			entries := 0
			for b.Loop() {
				c := New().NewConn(protocols.ConnInfo{Options: opts, MidStream: true}, func(*protocols.Entry) { entries++ })
				var pending [2][]byte
				for off := 0; off < len(streams[0]) || off < len(streams[1]); off += 16 << 10 {
					for dir := range streams {
						s := streams[dir]
						if off >= len(s) {
							continue
						}
						buf := append(pending[dir], s[off:min(off+16<<10, len(s))]...)
						n, err := c.Feed(protocols.Direction(dir), buf, ts)
						if err != nil {
							b.Fatal(err)
						}
						pending[dir] = append(pending[dir][:0], buf[n:]...)
					}
				}
				c.Close(protocols.ClosedFIN, ts)
			}
			b.ReportMetric(float64(entries)/float64(b.N), "entries/op")
		})
	}
}
