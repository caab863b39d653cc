package http1

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/sondehq/sonde/protocols"
	"github.com/sondehq/sonde/protocols/protocolstest"
)

// fuzzOptions are small caps, so that the fuzzer reaches them.
func fuzzOptions() protocols.Options {
	return protocols.Options{BodyCap: 64, DecodedCap: 256, Redact: true, MaxPending: 4}
}

// FuzzConn feeds a client and a server byte stream, interleaved and cut
// at points chosen by plan, with gaps now and then, and checks the
// contract: consumed within bounds, nothing emitted after an error, bodies
// within their caps, and the same entries however the bytes are cut.
func FuzzConn(f *testing.F) {
	for _, tc := range connCases {
		var dirs [2][]byte
		for _, ch := range tc.chunks {
			dirs[ch.Dir] = append(dirs[ch.Dir], ch.Data...)
		}
		f.Add(dirs[0], dirs[1], uint64(len(f.Name())), tc.midStream)
	}
	f.Add([]byte(getA+getA), []byte(resp("200 OK", "Transfer-Encoding: chunked\r\n", "3;x=y\r\nabc\r\n0\r\nT: v\r\n\r\n")+resp("200 OK", "", "close")), uint64(7), false)
	f.Fuzz(func(t *testing.T, clientBytes, serverBytes []byte, plan uint64, midStream bool) {
		opts := fuzzOptions()
		protocolstest.CheckSplit(t, New(), interleave(clientBytes, serverBytes, plan), protocolstest.SplitOptions{
			Info:   protocols.ConnInfo{Options: opts, MidStream: midStream},
			Seeds:  []uint64{plan ^ 1, plan ^ 0xdeadbeef},
			Entry:  func(t testing.TB, e *protocols.Entry) { checkCaps(t, e, opts) },
			Strict: true,
		})
	})
}

// interleave cuts both streams into pieces and alternates them, with a gap
// now and then.
func interleave(client, server []byte, plan uint64) []protocolstest.Chunk {
	r := rand.New(rand.NewPCG(plan, plan>>32))
	ts := time.Unix(1_700_000_000, 0)
	var out []protocolstest.Chunk
	rest := [2][]byte{client, server}
	for len(rest[0])+len(rest[1]) > 0 {
		d := protocols.Direction(r.IntN(2))
		if len(rest[d]) == 0 {
			d = d.Reverse()
		}
		ts = ts.Add(time.Millisecond)
		if r.IntN(16) == 0 {
			out = append(out, protocolstest.Chunk{Dir: d, Gap: r.IntN(200) - 1, Time: ts})
			continue
		}
		n := 1 + r.IntN(len(rest[d]))
		out = append(out, protocolstest.Chunk{Dir: d, Data: rest[d][:n], Time: ts})
		rest[d] = rest[d][n:]
	}
	return out
}

func checkCaps(t testing.TB, e *protocols.Entry, opts protocols.Options) {
	if e.HTTP == nil || (e.HTTP.Request == nil && e.HTTP.Response == nil) {
		t.Fatalf("entry without an HTTP exchange: %+v", e)
	}
	var bodies []protocols.Body
	if r := e.HTTP.Request; r != nil {
		bodies = append(bodies, r.Body)
	}
	if r := e.HTTP.Response; r != nil {
		bodies = append(bodies, r.Body)
	}
	for _, b := range bodies {
		limit := opts.BodyCap
		if b.Encoding != "" {
			limit = opts.DecodedCap
		}
		if len(b.Data) > limit || (b.Encoding == "" && int64(len(b.Data)) > b.Size) {
			t.Fatalf("body keeps %d bytes of %d (encoding %q), cap %d", len(b.Data), b.Size, b.Encoding, limit)
		}
	}
	if e.Duration < 0 || e.RequestSize < 0 || e.ResponseSize < 0 {
		t.Fatalf("negative duration or size: %+v", e)
	}
}
