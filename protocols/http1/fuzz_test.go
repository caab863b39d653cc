package http1

import (
	"errors"
	"math/rand/v2"
	"net/netip"
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
		base := interleave(clientBytes, serverBytes, plan)
		want := fuzzReplay(t, base, midStream)
		for _, seed := range []uint64{plan ^ 1, plan ^ 0xdeadbeef} {
			if got := fuzzReplay(t, protocolstest.Split(base, seed), midStream); got != want {
				t.Fatalf("cut differently, the same bytes gave\n%s\nnot\n%s", got, want)
			}
		}
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

// fuzzReplay feeds chunks like the pipeline does, checks the invariants
// as it goes, and returns what came out as text.
func fuzzReplay(t *testing.T, chunks []protocolstest.Chunk, midStream bool) string {
	opts := fuzzOptions()
	info := protocols.ConnInfo{
		Client:    netip.MustParseAddrPort("10.0.0.1:40000"),
		Server:    netip.MustParseAddrPort("10.0.0.2:80"),
		Options:   opts,
		MidStream: midStream,
	}
	var res protocolstest.Result
	failed := false
	c := New().NewConn(info, func(e *protocols.Entry) {
		if failed {
			t.Fatalf("entry emitted after an error: %+v", e)
		}
		checkCaps(t, e, opts)
		res.Entries = append(res.Entries, e)
	})
	var pending [2][]byte
	last := time.Unix(0, 0)
	for _, ch := range chunks {
		last = ch.Time
		if ch.Gap != 0 {
			pending[ch.Dir] = nil
			c.Gap(ch.Dir, ch.Gap, last)
			continue
		}
		buf := append(pending[ch.Dir], ch.Data...)
		n, err := c.Feed(ch.Dir, buf, last)
		if n < 0 || n > len(buf) {
			t.Fatalf("Feed consumed %d of %d bytes", n, len(buf))
		}
		if err != nil {
			failed = true
			var up *protocols.UpgradeError
			if errors.As(err, &up) {
				res.Upgrade = up
			} else {
				res.Err = err
			}
			// The connection is done: nothing more may come out of it.
			if n2, err2 := c.Feed(ch.Dir.Reverse(), []byte(getA), last); n2 != 0 || err2 == nil {
				t.Fatalf("Feed after error %v = %d, %v", err, n2, err2)
			}
			c.Gap(ch.Dir, 10, last)
			c.Close(protocols.ClosedFIN, last)
			return fingerprint(t, res)
		}
		if len(buf)-n > protocolstest.MaxLeftover {
			res.Err = protocols.ErrTooLarge
			return fingerprint(t, res)
		}
		// Keep the rest without copying it each time: a long message fed
		// in small pieces must not cost the test quadratic time.
		pending[ch.Dir] = buf[n:]
	}
	c.Close(protocols.ClosedFIN, last)
	failed = true
	c.Close(protocols.ClosedRST, last)
	return fingerprint(t, res)
}

func checkCaps(t *testing.T, e *protocols.Entry, opts protocols.Options) {
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
