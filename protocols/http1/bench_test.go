package http1

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sondehq/sonde/protocols"
)

// benchStream is a keep-alive conversation of n exchanges, cut into
// segments of at most mss bytes like TCP would deliver it.
func benchStream(n, mss int) (segs []benchSeg, total int) {
	body := strings.Repeat("x", 1000)
	for i := range n {
		req := fmt.Sprintf("GET /api/v1/items/%d?expand=owner HTTP/1.1\r\nHost: api.example.com\r\n"+
			"User-Agent: Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/128.0\r\nAccept: application/json\r\n"+
			"Accept-Encoding: gzip, deflate\r\nAuthorization: Bearer abc.def.ghi\r\nConnection: keep-alive\r\n\r\n", i)
		res := "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nDate: Mon, 01 Jan 2024 00:00:00 GMT\r\n" +
			"Cache-Control: no-store\r\nContent-Length: 1000\r\n\r\n" + body
		if i%4 == 3 {
			res = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n" +
				"1f4\r\n" + body[:500] + "\r\n1f4\r\n" + body[500:] + "\r\n0\r\n\r\n"
		}
		for d, msg := range []string{req, res} {
			for len(msg) > 0 {
				k := min(len(msg), mss)
				segs = append(segs, benchSeg{protocols.Direction(d), []byte(msg[:k])})
				total += k
				msg = msg[k:]
			}
		}
	}
	return segs, total
}

type benchSeg struct {
	dir  protocols.Direction
	data []byte
}

// BenchmarkConn measures the parser alone on a keep-alive stream.
func BenchmarkConn(b *testing.B) {
	segs, total := benchStream(1000, 1448)
	info := protocols.ConnInfo{Options: protocols.DefaultOptions()}
	ts := time.Unix(1_700_000_000, 0)
	var leftover [2][]byte
	b.SetBytes(int64(total))
	b.ReportAllocs()
	entries := 0
	for b.Loop() {
		c := New().NewConn(info, func(*protocols.Entry) { entries++ })
		leftover[0], leftover[1] = leftover[0][:0], leftover[1][:0]
		for _, s := range segs {
			buf := append(leftover[s.dir], s.data...)
			n, err := c.Feed(s.dir, buf, ts)
			if err != nil {
				b.Fatal(err)
			}
			leftover[s.dir] = append(buf[:0], buf[n:]...)
		}
		c.Close(protocols.ClosedFIN, ts)
	}
	b.ReportMetric(float64(entries)/b.Elapsed().Seconds(), "entries/s")
}

// BenchmarkJSONBody measures one exchange whose response is a 64 KiB JSON
// body, in segments as TCP delivers it, with redaction on and off: the
// difference is what scanning the body for secrets costs.
func BenchmarkJSONBody(b *testing.B) {
	var body strings.Builder
	body.WriteString("[")
	for i := 0; body.Len() < 64<<10-200; i++ {
		if i > 0 {
			body.WriteString(",")
		}
		fmt.Fprintf(&body, `{"id":%d,"name":"user %d","email":"u%d@example.com","tags":["a","b"],"active":true}`, i, i, i)
		if i%8 == 0 {
			fmt.Fprintf(&body, `,{"api_key":"k%08d"}`, i)
		}
	}
	body.WriteString("]")
	req := "GET /api/v1/users HTTP/1.1\r\nHost: api.example.com\r\n\r\n"
	res := fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", body.Len(), body.String())
	var segs []benchSeg
	for d, msg := range []string{req, res} {
		for len(msg) > 0 {
			k := min(len(msg), 1448)
			segs = append(segs, benchSeg{protocols.Direction(d), []byte(msg[:k])})
			msg = msg[k:]
		}
	}
	for _, redact := range []bool{false, true} {
		b.Run(fmt.Sprintf("redact=%v", redact), func(b *testing.B) {
			info := protocols.ConnInfo{Options: protocols.DefaultOptions()}
			info.Options.Redact = redact
			ts := time.Unix(1_700_000_000, 0)
			b.SetBytes(int64(len(req) + len(res)))
			b.ReportAllocs()
			for b.Loop() {
				var got *protocols.Entry
				c := New().NewConn(info, func(e *protocols.Entry) { got = e })
				for _, s := range segs {
					if _, err := c.Feed(s.dir, s.data, ts); err != nil {
						b.Fatal(err)
					}
				}
				c.Close(protocols.ClosedFIN, ts)
				if got == nil || got.Redacted != redact {
					b.Fatal("exchange not emitted as expected")
				}
			}
		})
	}
}
