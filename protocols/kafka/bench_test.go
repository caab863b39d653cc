package kafka

import (
	"slices"
	"strings"
	"testing"

	"github.com/sondehq/sonde/protocols"
	"github.com/sondehq/sonde/protocols/protocolstest"
)

// BenchmarkConn measures dissection throughput over a producer's and a
// consumer's traffic: Produce v9 requests with ten-record batches and Fetch
// v12 responses carrying them, in 1460-byte segments, as on a wire.
func BenchmarkConn(b *testing.B) {
	for _, codec := range []int8{0, 4} {
		b.Run(codecName(codec), func(b *testing.B) {
			var recs []testRecord
			for i := range 10 {
				recs = append(recs, testRecord{
					key:     []byte("user-" + strings.Repeat("x", i)),
					value:   []byte(strings.Repeat(`{"event":"click","page":"/home"}`, 8)),
					headers: [][2]string{{"trace", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}},
				})
			}
			var msgs [][]byte
			for corr := range int32(50) {
				msgs = append(msgs,
					request(produceRequest(9, -1, "events", batch(b, codec, int64(corr)*10, recs...)), 9, 2*corr, "bench"),
					response(produceResponse("events", 0), 9, 2*corr),
					request(fetchRequest("events"), 12, 2*corr+1, "bench"),
					response(fetchResponse("events", slices.Concat(batch(b, codec, 0, recs...), batch(b, codec, 10, recs...))), 12, 2*corr+1))
			}
			var chunks []protocolstest.Chunk
			total := 0
			for i, m := range msgs {
				total += len(m)
				for len(m) > 0 {
					n := min(len(m), 1460)
					chunks = append(chunks, protocolstest.Chunk{Dir: protocols.Direction(i % 2), Data: m[:n], Time: t0})
					m = m[n:]
				}
			}
			d := New()
			info := protocols.ConnInfo{Options: protocols.DefaultOptions()}
			emitted := 0
			b.SetBytes(int64(total))
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				c := d.NewConn(info, func(*protocols.Entry) { emitted++ })
				for _, ch := range chunks {
					if n, err := c.Feed(ch.Dir, ch.Data, ch.Time); n != len(ch.Data) || err != nil {
						b.Fatalf("consumed %d of %d: %v", n, len(ch.Data), err)
					}
				}
				c.Close(protocols.ClosedFIN, t0)
			}
			if emitted == 0 {
				b.Fatal("no entries")
			}
		})
	}
}
