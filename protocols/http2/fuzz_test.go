package http2

import (
	"errors"
	"slices"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/sondehq/sonde/protocols"
	"github.com/sondehq/sonde/protocols/protocolstest"
)

// Fuzz inputs for a connection are chunks: a flags byte (bit 0: server to
// client, bit 1: a gap of the given length, 0xffff for unknown; bit 2: a
// second passes before the chunk, which otherwise comes a millisecond after
// the one before), a 2-byte length, and the data.
func encodeChunks(chunks []protocolstest.Chunk) []byte {
	var out []byte
	var last time.Time
	for _, ch := range chunks {
		flags := byte(ch.Dir)
		if !last.IsZero() && ch.Time.Sub(last) >= time.Second {
			flags |= 4
		}
		last = ch.Time
		n := len(ch.Data)
		if ch.Gap != 0 {
			flags |= 2
			n = min(ch.Gap, 0xffff)
			if ch.Gap < 0 {
				n = 0xffff
			}
		}
		out = append(out, flags, byte(n>>8), byte(n))
		if ch.Gap == 0 {
			out = append(out, ch.Data...)
		}
	}
	return out
}

func decodeChunks(p []byte) []protocolstest.Chunk {
	var out []protocolstest.Chunk
	t := time.Unix(1_700_000_000, 0)
	for len(p) >= 3 {
		flags, n := p[0], int(p[1])<<8|int(p[2])
		p = p[3:]
		t = t.Add(time.Millisecond)
		if flags&4 != 0 {
			t = t.Add(time.Second)
		}
		ch := protocolstest.Chunk{Dir: protocols.Direction(flags & 1), Time: t}
		if flags&2 != 0 {
			ch.Gap = n
			if n == 0xffff || n == 0 {
				ch.Gap = -1
			}
		} else {
			n = min(n, len(p))
			ch.Data = p[:n]
			p = p[n:]
		}
		out = append(out, ch)
	}
	return out
}

// fuzzSeeds are conversations from the table tests' vocabulary.
func fuzzSeeds(t testing.TB) [][]byte {
	var seeds [][]byte
	c := newConv(t).start().get(1, "/a?x=1").ok(1, "hello").get(3, "/b")
	c.headers(s2c, 3, false, ":status", "200", "content-encoding", "gzip")
	c.data(s2c, 3, true, gzipped(t, []byte("compressed body")))
	seeds = append(seeds, encodeChunks(c.chunks))

	c = newConv(t).start()
	c.grpcRequest(1, "/pkg.Svc/Call", true, pb("world", 7), pb("again", 8))
	c.grpcResponse(1, "0", pb("hello", 1))
	c.headers(c2s, 3, false, ":method", "POST", ":scheme", "http", ":authority", "svc", ":path", "/s.S/Z",
		"content-type", "application/grpc", "grpc-encoding", "gzip")
	c.data(c2s, 3, true, grpcFrame(gzipped(t, pb("zipped", 1)), true))
	c.write(s2c, func(fr *http2.Framer) error { return fr.WriteRSTStream(3, http2.ErrCodeCancel) })
	// A reset with the response still in flight, and one left waiting.
	c.get(5, "/cancelled").get(7, "/abandoned")
	c.write(c2s, func(fr *http2.Framer) error { return fr.WriteRSTStream(5, http2.ErrCodeCancel) })
	c.write(c2s, func(fr *http2.Framer) error { return fr.WriteRSTStream(7, http2.ErrCodeCancel) })
	c.ok(5, "late")
	c.now = c.now.Add(resetLinger)
	c.write(s2c, func(fr *http2.Framer) error { return fr.WritePing(false, [8]byte{}) })
	seeds = append(seeds, encodeChunks(c.chunks))

	c = newConv(t).start().get(1, "/index.html")
	blk := c.block(s2c, ":method", "GET", ":scheme", "http", ":authority", "a", ":path", "/x.css")
	c.write(s2c, func(fr *http2.Framer) error {
		return fr.WritePushPromise(http2.PushPromiseParam{StreamID: 1, PromiseID: 2, BlockFragment: blk, EndHeaders: true})
	})
	c.ok(1, "<html>").ok(2, "css")
	blk = c.block(c2s, ":method", "GET", ":scheme", "http", ":authority", "a", ":path", "/cont")
	c.write(c2s, func(fr *http2.Framer) error {
		return fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 3, BlockFragment: blk[:4], EndStream: true, PadLength: 3})
	})
	c.write(c2s, func(fr *http2.Framer) error { return fr.WriteContinuation(3, true, blk[4:]) })
	c.add(c2s, nil)
	c.chunks[len(c.chunks)-1].Gap = 5
	c.ok(3, "").get(5, "/after-gap").ok(5, "")
	c.write(s2c, func(fr *http2.Framer) error { return fr.WriteGoAway(5, http2.ErrCodeNo, []byte("bye")) })
	seeds = append(seeds, encodeChunks(c.chunks))
	return seeds
}

// fuzzOptions are small caps, so that fuzzing reaches them.
var fuzzOptions = protocols.Options{BodyCap: 256, DecodedCap: 1024, Redact: true, MaxPending: 4}

// FuzzConn feeds arbitrary conversations, whole and split at arbitrary
// points. It checks the contract (consumed ≤ len, checked by Replay; no
// entry after an error), the caps, and that the split changes nothing.
func FuzzConn(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, data []byte, mid bool) {
		res := protocolstest.CheckSplit(t, New(), decodeChunks(data), protocolstest.SplitOptions{
			Info:        protocols.ConnInfo{Options: fuzzOptions, MidStream: mid},
			Reason:      protocols.ClosedEnd,
			Seeds:       []uint64{uint64(len(data))},
			Entry:       checkCaps,
			MaxLeftover: maxFrameSize + frameHeaderLen,
			Strict:      true,
		})
		var pe *protocols.ParseError
		if res.Err != nil && !errors.As(res.Err, &pe) && !errors.Is(res.Err, protocols.ErrLeftoverTooLarge) {
			t.Fatalf("error is not a ParseError: %v", res.Err)
		}
	})
}

func checkCaps(t testing.TB, e *protocols.Entry) {
	t.Helper()
	bodies := []protocols.Body{}
	if h := e.HTTP; h != nil {
		if h.Request != nil {
			bodies = append(bodies, h.Request.Body)
		}
		if h.Response != nil {
			bodies = append(bodies, h.Response.Body)
		}
	}
	for _, b := range bodies {
		if len(b.Data) > fuzzOptions.BodyCap {
			t.Fatalf("body of %d bytes kept, cap %d", len(b.Data), fuzzOptions.BodyCap)
		}
	}
	if g := e.GRPC; g != nil {
		for _, ms := range []protocols.GRPCMessages{g.Requests, g.Responses} {
			kept, fields := 0, 0
			for _, m := range ms.Messages {
				kept += len(m.Data)
				fields += countFields(m.Fields, 1)
			}
			if fields > maxCallFields {
				t.Fatalf("%d fields decoded for one side of a call, cap %d", fields, maxCallFields)
			}
			if kept > fuzzOptions.BodyCap || len(ms.Messages) > maxListedMessages || len(ms.Messages) > ms.Count {
				t.Fatalf("messages: %d listed of %d, %d bytes kept", len(ms.Messages), ms.Count, kept)
			}
		}
	}
	if e.Duration < 0 {
		t.Fatalf("negative duration %v", e.Duration)
	}
}

// countFields counts the nodes of a field tree and fails past the depth cap.
func countFields(fs []protocols.ProtoField, depth int) int {
	if len(fs) > 0 && depth > maxProtoDepth {
		panic("field tree deeper than the cap")
	}
	n := len(fs)
	for _, f := range fs {
		n += countFields(f.Fields, depth+1)
	}
	return n
}

// FuzzHPACK checks the shadow decoder against x/net's on the blocks x/net
// accepts: from a known (empty) table it must decode the same fields, and
// from an unknown one a subsequence of them, never a wrong field.
func FuzzHPACK(f *testing.F) {
	c := newConv(f)
	var seed []byte
	for _, kv := range [][]string{
		{":method", "GET", ":path", "/", "user-agent", "x", "cookie", "a=b"},
		{":method", "GET", ":path", "/2", "user-agent", "x", "cookie", "a=b"},
	} {
		blk := c.block(c2s, kv...)
		seed = append(seed, byte(len(blk)))
		seed = append(seed, blk...)
	}
	f.Add(seed)
	f.Add([]byte{3, 0x3f, 0xe1, 0x1f, 2, 0x82, 0x84})
	f.Fuzz(func(t *testing.T, data []byte) {
		var ref []hpack.HeaderField
		dec := hpack.NewDecoder(defaultTableSize, func(f hpack.HeaderField) { ref = append(ref, f) })
		known := &shadowTable{limit: defaultTableSize, limitKnown: true}
		unknown := &shadowTable{tailUnknown: true}
		for len(data) > 0 {
			n := min(int(data[0]), len(data)-1)
			blk := data[1 : 1+n]
			data = data[1+n:]
			ref = ref[:0]
			_, err := dec.Write(blk)
			if err == nil {
				err = dec.Close()
			}
			var got, partial []hpack.HeaderField
			unk := known.decode(blk, func(f hpack.HeaderField) { got = append(got, f) })
			unknown.decode(blk, func(f hpack.HeaderField) { partial = append(partial, f) })
			if err != nil {
				// x/net refuses the block; its state and the shadows' part ways.
				return
			}
			if unk || !slices.Equal(got, ref) {
				t.Fatalf("known table: got %v (unknown %v), x/net %v", got, unk, ref)
			}
			i := 0
			for _, f := range partial {
				for i < len(ref) && ref[i] != f {
					i++
				}
				if i == len(ref) {
					t.Fatalf("unknown table decoded %v, not in x/net's %v", f, ref)
				}
				i++
			}
		}
	})
}

// FuzzProto checks the schema-less decoder's caps on arbitrary bytes.
func FuzzProto(f *testing.F) {
	f.Add(pb("hello", 150))
	f.Add([]byte{0x0a, 0x05, 0x08, 0x96, 0x01, 0x10, 0x01, 0x1a, 0x03, 0x01, 0x02, 0x03})
	f.Add([]byte{0x0b, 0x08, 0x01, 0x0c, 0x15, 0, 0, 0x80, 0x3f, 0x19, 1, 2, 3, 4, 5, 6, 7, 8})
	deep := []byte{0x08, 0x01}
	for range 20 {
		deep = append([]byte{0x0a, byte(len(deep))}, deep...)
	}
	f.Add(deep)
	f.Fuzz(func(t *testing.T, data []byte) {
		fields, used, err := decodeProto(data, maxProtoFields)
		if n := countFields(fields, 1); n > maxProtoFields || n != used {
			t.Fatalf("%d fields (%d reported), cap %d", n, used, maxProtoFields)
		}
		if err == nil && len(data) > 0 && len(fields) == 0 {
			t.Fatalf("no fields and no error for %x", data)
		}
		checkProtoTree(t, fields)
	})
}

func checkProtoTree(t *testing.T, fs []protocols.ProtoField) {
	for _, f := range fs {
		switch f.Kind {
		case "message":
			if len(f.Fields) == 0 {
				t.Fatalf("empty message read from %d bytes", f.Size)
			}
		case "packed":
			if len(f.Values) == 0 || len(f.Values) > f.Size {
				t.Fatalf("%d packed values from %d bytes", len(f.Values), f.Size)
			}
		case "bytes":
			if len(f.Bytes) != f.Size {
				t.Fatalf("bytes: %d kept of %d", len(f.Bytes), f.Size)
			}
		}
		checkProtoTree(t, f.Fields)
	}
}

// TestFuzzSeedsAreValid keeps the seeds honest: they parse without error.
func TestFuzzSeedsAreValid(t *testing.T) {
	for i, s := range fuzzSeeds(t) {
		res := replay(t, protocols.ConnInfo{}, decodeChunks(s))
		if res.Err != nil || len(res.Entries) == 0 {
			t.Errorf("seed %d: %d entries, error %v", i, len(res.Entries), res.Err)
		}
	}
}
