package http2

import (
	"bytes"
	"compress/gzip"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/sondehq/sonde/protocols"
	"github.com/sondehq/sonde/protocols/protocolstest"
)

const (
	c2s = protocols.ClientToServer
	s2c = protocols.ServerToClient
)

// conv builds an HTTP/2 conversation frame by frame with x/net's framer and
// HPACK encoder, one chunk per frame.
type conv struct {
	t      testing.TB
	chunks []protocolstest.Chunk
	enc    [2]*hpack.Encoder
	encBuf [2]*bytes.Buffer
	now    time.Time
}

func newConv(t testing.TB) *conv {
	c := &conv{t: t, now: time.Unix(1_700_000_000, 0)}
	for i := range c.enc {
		c.encBuf[i] = new(bytes.Buffer)
		c.enc[i] = hpack.NewEncoder(c.encBuf[i])
	}
	return c
}

func (c *conv) add(dir protocols.Direction, b []byte) *conv {
	c.now = c.now.Add(time.Millisecond)
	c.chunks = append(c.chunks, protocolstest.Chunk{Dir: dir, Data: b, Time: c.now})
	return c
}

func (c *conv) write(dir protocols.Direction, fn func(fr *http2.Framer) error) *conv {
	var buf bytes.Buffer
	fr := http2.NewFramer(&buf, nil)
	fr.AllowIllegalWrites = true
	if err := fn(fr); err != nil {
		c.t.Fatalf("writing frame: %v", err)
	}
	return c.add(dir, buf.Bytes())
}

// start writes the preface and both sides' SETTINGS.
func (c *conv) start() *conv {
	c.add(c2s, []byte(clientPreface))
	c.write(c2s, func(fr *http2.Framer) error { return fr.WriteSettings() })
	c.write(s2c, func(fr *http2.Framer) error {
		return fr.WriteSettings(http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: 100})
	})
	c.write(s2c, func(fr *http2.Framer) error { return fr.WriteSettingsAck() })
	return c.write(c2s, func(fr *http2.Framer) error { return fr.WriteSettingsAck() })
}

// block encodes name/value pairs with dir's encoder.
func (c *conv) block(dir protocols.Direction, kv ...string) []byte {
	c.encBuf[dir].Reset()
	for i := 0; i+1 < len(kv); i += 2 {
		if err := c.enc[dir].WriteField(hpack.HeaderField{Name: kv[i], Value: kv[i+1]}); err != nil {
			c.t.Fatal(err)
		}
	}
	return bytes.Clone(c.encBuf[dir].Bytes())
}

func (c *conv) headers(dir protocols.Direction, id uint32, end bool, kv ...string) *conv {
	blk := c.block(dir, kv...)
	return c.write(dir, func(fr *http2.Framer) error {
		return fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: blk, EndStream: end, EndHeaders: true})
	})
}

func (c *conv) data(dir protocols.Direction, id uint32, end bool, p []byte) *conv {
	return c.write(dir, func(fr *http2.Framer) error { return fr.WriteData(id, end, p) })
}

func (c *conv) get(id uint32, path string) *conv {
	return c.headers(c2s, id, true, ":method", "GET", ":scheme", "http", ":authority", "example.com", ":path", path, "user-agent", "test")
}

func (c *conv) ok(id uint32, body string) *conv {
	c.headers(s2c, id, body == "", ":status", "200", "content-type", "text/plain")
	if body != "" {
		c.data(s2c, id, true, []byte(body))
	}
	return c
}

// grpcCall writes a gRPC request with the given messages.
func (c *conv) grpcRequest(id uint32, path string, end bool, msgs ...[]byte) *conv {
	c.headers(c2s, id, false, ":method", "POST", ":scheme", "http", ":authority", "svc:50051", ":path", path,
		"content-type", "application/grpc", "te", "trailers")
	for i, m := range msgs {
		c.data(c2s, id, end && i == len(msgs)-1, grpcFrame(m, false))
	}
	if len(msgs) == 0 && end {
		c.data(c2s, id, true, nil)
	}
	return c
}

func (c *conv) grpcResponse(id uint32, status string, msgs ...[]byte) *conv {
	c.headers(s2c, id, false, ":status", "200", "content-type", "application/grpc")
	for _, m := range msgs {
		c.data(s2c, id, false, grpcFrame(m, false))
	}
	return c.headers(s2c, id, true, "grpc-status", status, "grpc-message", "")
}

func grpcFrame(m []byte, compressed bool) []byte {
	out := make([]byte, 5, 5+len(m))
	if compressed {
		out[0] = 1
	}
	out[1], out[2], out[3], out[4] = byte(len(m)>>24), byte(len(m)>>16), byte(len(m)>>8), byte(len(m))
	return append(out, m...)
}

// pb builds a small protobuf message: field 1 a string, field 2 a varint.
func pb(name string, n uint64) []byte {
	var b []byte
	b = protowire.AppendTag(b, 1, protowire.BytesType)
	b = protowire.AppendString(b, name)
	b = protowire.AppendTag(b, 2, protowire.VarintType)
	return protowire.AppendVarint(b, n)
}

func gzipped(t testing.TB, p []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(p)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// replay runs chunks through a new connection.
func replay(t testing.TB, info protocols.ConnInfo, chunks []protocolstest.Chunk) protocolstest.Result {
	t.Helper()
	if info.Options.BodyCap == 0 {
		info.Options = protocols.DefaultOptions()
	}
	res, err := protocolstest.Replay(New(), info, chunks, protocols.ClosedFIN)
	if err != nil {
		t.Fatalf("replay: %v", err)
	}
	return res
}

// replaySplit replays chunks whole and split at random points, and fails
// unless every split gives the same entries.
func replaySplit(t testing.TB, info protocols.ConnInfo, chunks []protocolstest.Chunk) protocolstest.Result {
	t.Helper()
	if info.Options.BodyCap == 0 {
		info.Options = protocols.DefaultOptions()
	}
	return protocolstest.CheckSplit(t, New(), chunks, protocolstest.SplitOptions{Info: info, Seeds: protocolstest.Seeds(1, 20)})
}
