package http2

import (
	"fmt"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/sondehq/sonde/protocols"
	"github.com/sondehq/sonde/protocols/protocolstest"
)

// BenchmarkConn measures dissection throughput over a connection of 500
// exchanges, fed in 1400-byte segments as a capture would deliver them.
func BenchmarkConn(b *testing.B) {
	body := strings.Repeat("x", 1024)
	msg := func(i int) []byte {
		m := pb(fmt.Sprintf("user-%d", i), uint64(i))
		m = protowire.AppendTag(m, 3, protowire.BytesType)
		return protowire.AppendBytes(m, pb("nested", 42))
	}
	convs := map[string]*conv{"http2": newConv(b).start(), "grpc": newConv(b).start()}
	for i := range 500 {
		id := uint32(2*i + 1)
		convs["http2"].get(id, fmt.Sprintf("/items/%d?page=2", i)).ok(id, body)
		convs["grpc"].grpcRequest(id, "/shop.Catalog/Get", true, msg(i)).grpcResponse(id, "0", msg(i), msg(i+1))
	}
	for _, name := range []string{"http2", "grpc"} {
		b.Run(name, func(b *testing.B) {
			chunks := segments(convs[name].chunks, 1400)
			var total int
			for _, ch := range chunks {
				total += len(ch.Data)
			}
			b.SetBytes(int64(total))
			b.ReportAllocs()
			for b.Loop() {
				res, err := protocolstest.Replay(New(), protocols.ConnInfo{Options: protocols.DefaultOptions()}, chunks, protocols.ClosedFIN)
				if err != nil || res.Err != nil || len(res.Entries) != 500 {
					b.Fatalf("%d entries, %v %v", len(res.Entries), err, res.Err)
				}
			}
		})
	}
}

// segments regroups chunks into segments of at most n bytes per direction
// run, the way TCP would carry back-to-back frames.
func segments(chunks []protocolstest.Chunk, n int) []protocolstest.Chunk {
	var out []protocolstest.Chunk
	var cur protocolstest.Chunk
	flush := func() {
		if len(cur.Data) > 0 {
			out = append(out, cur)
		}
		cur = protocolstest.Chunk{}
	}
	for _, ch := range chunks {
		if ch.Dir != cur.Dir {
			flush()
		}
		data := ch.Data
		for len(data) > 0 {
			k := min(n-len(cur.Data), len(data))
			cur.Dir, cur.Time = ch.Dir, ch.Time
			cur.Data = append(cur.Data, data[:k]...)
			data = data[k:]
			if len(cur.Data) == n {
				flush()
			}
		}
	}
	flush()
	return out
}
