package http2

import (
	"bytes"
	"compress/flate"
	"errors"
	"fmt"
	"strings"
	"testing"

	"golang.org/x/net/http2"

	"github.com/sondehq/sonde/protocols"
	"github.com/sondehq/sonde/protocols/protocolstest"
)

// line sums an entry up for comparison: protocol, summary, stream, and
// whatever sets it apart (unmatched, reset, gap, warnings).
func line(e *protocols.Entry) string {
	s := fmt.Sprintf("%s %s %s %s", e.Protocol, e.Summary.Method, e.Summary.Target, e.Summary.Status)
	switch {
	case e.HTTP != nil:
		s += fmt.Sprintf(" #%d", e.HTTP.StreamID)
	case e.GRPC != nil:
		s += fmt.Sprintf(" #%d req=%d resp=%d", e.GRPC.StreamID, e.GRPC.Requests.Count, e.GRPC.Responses.Count)
	}
	if e.Unmatched != "" {
		s += " unmatched=" + string(e.Unmatched)
	}
	if e.Gap {
		s += " gap"
	}
	for _, w := range e.Warnings {
		s += " [" + w + "]"
	}
	return s
}

func lines(es []*protocols.Entry) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = line(e)
	}
	return out
}

func TestConn(t *testing.T) {
	big := strings.Repeat("0123456789abcdef", 4096) // 64 KiB: several DATA frames
	tests := []struct {
		name    string
		build   func(c *conv)
		mid     bool
		opts    func(o *protocols.Options)
		want    []string
		wantErr string // a ParseError code
		check   func(t *testing.T, es []*protocols.Entry)
	}{
		{
			name: "get",
			build: func(c *conv) {
				c.start().get(1, "/a?x=1").ok(1, "hello")
			},
			want: []string{"http2 GET /a?x=1 200 #1"},
			check: func(t *testing.T, es []*protocols.Entry) {
				e := es[0]
				req, resp := e.HTTP.Request, e.HTTP.Response
				if req.Path != "/a" || req.Authority != "example.com" || req.Scheme != "http" || req.Version != "HTTP/2" {
					t.Errorf("request = %+v", req)
				}
				if v, _ := req.Headers.Get("user-agent"); v != "test" || len(req.Headers) != 1 {
					t.Errorf("request headers = %v", req.Headers)
				}
				if string(resp.Body.Data) != "hello" || resp.Body.Size != 5 {
					t.Errorf("response body = %+v", resp.Body)
				}
				// HEADERS and DATA frames, frame headers included.
				if e.RequestSize <= 9 || e.ResponseSize <= 2*9+int64(len("hello")) {
					t.Errorf("sizes = %d, %d", e.RequestSize, e.ResponseSize)
				}
			},
		},
		{
			name: "concurrent streams pair by id",
			build: func(c *conv) {
				c.start().get(1, "/one").get(3, "/three").ok(3, "3").ok(1, "1")
			},
			want: []string{"http2 GET /three 200 #3", "http2 GET /one 200 #1"},
		},
		{
			name: "post body, gzip response, trailers",
			build: func(c *conv) {
				c.start()
				c.headers(c2s, 1, false, ":method", "POST", ":scheme", "https", ":authority", "a", ":path", "/up", "content-type", "application/json")
				c.data(c2s, 1, true, []byte(`{"a":1}`))
				c.headers(s2c, 1, false, ":status", "201", "content-encoding", "gzip")
				c.data(s2c, 1, false, gzipped(t, []byte(big)))
				c.headers(s2c, 1, true, "x-checksum", "abc")
			},
			want: []string{"http2 POST /up 201 #1"},
			check: func(t *testing.T, es []*protocols.Entry) {
				resp := es[0].HTTP.Response
				if resp.Body.Encoding != "gzip" || string(resp.Body.Data) != big || resp.Body.Truncated {
					t.Errorf("body: encoding %q, %d bytes, truncated %v", resp.Body.Encoding, len(resp.Body.Data), resp.Body.Truncated)
				}
				if v, ok := resp.Trailers.Get("x-checksum"); !ok || v != "abc" {
					t.Errorf("trailers = %v", resp.Trailers)
				}
				if string(es[0].HTTP.Request.Body.Data) != `{"a":1}` {
					t.Errorf("request body = %q", es[0].HTTP.Request.Body.Data)
				}
			},
		},
		{
			name: "large body over many frames is capped",
			build: func(c *conv) {
				c.start().get(1, "/big")
				c.headers(s2c, 1, false, ":status", "200")
				for i := 0; i < 8; i++ {
					c.data(s2c, 1, i == 7, []byte(big[:16384]))
				}
			},
			want: []string{"http2 GET /big 200 #1"},
			check: func(t *testing.T, es []*protocols.Entry) {
				b := es[0].HTTP.Response.Body
				if b.Size != 8*16384 || len(b.Data) != protocols.DefaultOptions().BodyCap || !b.Truncated {
					t.Errorf("body size %d, kept %d, truncated %v", b.Size, len(b.Data), b.Truncated)
				}
			},
		},
		{
			name: "continuation and padding",
			build: func(c *conv) {
				c.start()
				blk := c.block(c2s, ":method", "GET", ":scheme", "http", ":authority", "a", ":path", "/cont", "x-long", strings.Repeat("v", 100))
				c.write(c2s, func(fr *http2.Framer) error {
					return fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: blk[:10], EndStream: true, PadLength: 7})
				})
				c.write(c2s, func(fr *http2.Framer) error { return fr.WriteContinuation(1, false, blk[10:50]) })
				c.write(c2s, func(fr *http2.Framer) error { return fr.WriteContinuation(1, true, blk[50:]) })
				c.headers(s2c, 1, false, ":status", "200")
				c.write(s2c, func(fr *http2.Framer) error { return fr.WriteDataPadded(1, true, []byte("padded"), make([]byte, 20)) })
			},
			want: []string{"http2 GET /cont 200 #1"},
			check: func(t *testing.T, es []*protocols.Entry) {
				if v, _ := es[0].HTTP.Request.Headers.Get("x-long"); len(v) != 100 {
					t.Errorf("x-long = %q", v)
				}
				if string(es[0].HTTP.Response.Body.Data) != "padded" {
					t.Errorf("body = %q", es[0].HTTP.Response.Body.Data)
				}
			},
		},
		{
			name: "reset stream",
			build: func(c *conv) {
				c.start().get(1, "/slow")
				c.write(c2s, func(fr *http2.Framer) error { return fr.WriteRSTStream(1, http2.ErrCodeCancel) })
				c.get(3, "/next").ok(3, "")
				c.headers(s2c, 1, true, ":status", "200") // the server had moved on: ignored
			},
			want: []string{"http2 GET /slow CANCEL #1", "http2 GET /next 200 #3"},
			check: func(t *testing.T, es []*protocols.Entry) {
				if es[0].HTTP.ResetCode != "CANCEL" || es[0].HTTP.Response != nil || es[0].Unmatched != "" {
					t.Errorf("reset entry = %+v", es[0].HTTP)
				}
			},
		},
		{
			name: "reset stream shows the response that was in flight",
			build: func(c *conv) {
				c.start().get(1, "/slow")
				c.write(c2s, func(fr *http2.Framer) error { return fr.WriteRSTStream(1, http2.ErrCodeCancel) })
				c.data(c2s, 1, true, []byte("after the reset")) // from the side that reset: ignored
				c.headers(s2c, 1, false, ":status", "200")
				c.data(s2c, 1, true, []byte("answer"))
				c.get(3, "/next").ok(3, "")
			},
			want: []string{"http2 GET /slow 200 #1", "http2 GET /next 200 #3"},
			check: func(t *testing.T, es []*protocols.Entry) {
				h := es[0].HTTP
				if h.ResetCode != "CANCEL" || string(h.Response.Body.Data) != "answer" || h.Request.Body.Size != 0 {
					t.Errorf("reset entry = %+v, response %+v", h, h.Response)
				}
			},
		},
		{
			name: "reset stream waits a bounded time",
			build: func(c *conv) {
				c.start().get(1, "/slow")
				c.write(c2s, func(fr *http2.Framer) error { return fr.WriteRSTStream(1, http2.ErrCodeCancel) })
				c.now = c.now.Add(resetLinger)
				c.write(c2s, func(fr *http2.Framer) error { return fr.WritePing(false, [8]byte{}) })
				c.headers(s2c, 1, true, ":status", "200") // too late: ignored
			},
			want: []string{"http2 GET /slow CANCEL #1"},
		},
		{
			name: "resets from both sides",
			build: func(c *conv) {
				c.start()
				c.grpcRequest(1, "/s.S/Bidi", false, pb("a", 1))
				c.write(c2s, func(fr *http2.Framer) error { return fr.WriteRSTStream(1, http2.ErrCodeCancel) })
				c.headers(s2c, 1, false, ":status", "200", "content-type", "application/grpc")
				c.data(s2c, 1, false, grpcFrame(pb("b", 2), false))
				c.write(s2c, func(fr *http2.Framer) error { return fr.WriteRSTStream(1, http2.ErrCodeStreamClosed) })
			},
			want: []string{"grpc /s.S/Bidi svc:50051 CANCEL #1 req=1 resp=1"},
		},
		{
			name: "informational response",
			build: func(c *conv) {
				c.start()
				c.headers(c2s, 1, false, ":method", "PUT", ":scheme", "http", ":authority", "a", ":path", "/x", "expect", "100-continue")
				c.headers(s2c, 1, false, ":status", "100")
				c.data(c2s, 1, true, []byte("body"))
				c.ok(1, "done")
			},
			want: []string{"http2 PUT /x 200 #1"},
			check: func(t *testing.T, es []*protocols.Entry) {
				if got := es[0].HTTP.Response.Informational; len(got) != 1 || got[0] != 100 {
					t.Errorf("informational = %v", got)
				}
			},
		},
		{
			name: "server push",
			build: func(c *conv) {
				c.start().get(1, "/index.html")
				blk := c.block(s2c, ":method", "GET", ":scheme", "http", ":authority", "example.com", ":path", "/style.css")
				c.write(s2c, func(fr *http2.Framer) error {
					return fr.WritePushPromise(http2.PushPromiseParam{StreamID: 1, PromiseID: 2, BlockFragment: blk, EndHeaders: true})
				})
				c.ok(1, "<html>")
				c.ok(2, "body{}")
			},
			want: []string{"http2 GET /index.html 200 #1", "http2 GET /style.css 200 #2"},
		},
		{
			name: "goaway ends streams it did not process",
			build: func(c *conv) {
				c.start().get(1, "/a").get(3, "/b")
				c.write(s2c, func(fr *http2.Framer) error { return fr.WriteGoAway(1, http2.ErrCodeNo, nil) })
				c.ok(1, "a")
			},
			want: []string{"http2 GET /b  #3 unmatched=response [" + warnGoAway + "]", "http2 GET /a 200 #1"},
		},
		{
			name: "open at close",
			build: func(c *conv) {
				c.start().get(1, "/never")
				c.get(3, "/half")
				c.headers(s2c, 3, false, ":status", "200")
			},
			want: []string{"http2 GET /never  #1 unmatched=response", "http2 GET /half 200 #3 [" + warnOpenAtClose + " (fin)]"},
		},
		{
			name: "redaction",
			build: func(c *conv) {
				c.start()
				c.headers(c2s, 1, true, ":method", "GET", ":scheme", "http", ":authority", "bob:pw@a", ":path", "/cb?access_token=xyz",
					"authorization", "Bearer secret", "cookie", "s=1")
				c.headers(s2c, 1, true, ":status", "302", "set-cookie", "s=2")
			},
			want: []string{"http2 GET /cb?access_token=[REDACTED] 302 #1"},
			check: func(t *testing.T, es []*protocols.Entry) {
				e := es[0]
				if !e.Redacted || e.HTTP.Request.Authority != "[REDACTED]@a" {
					t.Errorf("redacted %v, authority %q", e.Redacted, e.HTTP.Request.Authority)
				}
				for _, h := range append(e.HTTP.Request.Headers, e.HTTP.Response.Headers...) {
					if h.Value != protocols.Redacted {
						t.Errorf("header %s = %q", h.Name, h.Value)
					}
				}
			},
		},
		{
			name: "grpc unary",
			build: func(c *conv) {
				c.start()
				c.grpcRequest(1, "/helloworld.Greeter/SayHello", true, pb("world", 7))
				c.grpcResponse(1, "0", pb("hello world", 1))
			},
			want: []string{"grpc /helloworld.Greeter/SayHello svc:50051 OK #1 req=1 resp=1"},
			check: func(t *testing.T, es []*protocols.Entry) {
				g := es[0].GRPC
				if g.Service != "helloworld.Greeter" || g.Method != "SayHello" || g.StatusCode != 0 || g.HTTPStatus != 200 {
					t.Errorf("record = %+v", g)
				}
				m := g.Requests.Messages[0]
				if len(m.Fields) != 2 || m.Fields[0].Kind != "string" || m.Fields[0].Value != "world" || m.Fields[1].Value != "7" {
					t.Errorf("request fields = %+v", m.Fields)
				}
				if g.Requests.Bytes != int64(len(pb("world", 7))) || es[0].HTTP != nil {
					t.Errorf("bytes = %d", g.Requests.Bytes)
				}
			},
		},
		{
			name: "grpc trailers-only error with details",
			build: func(c *conv) {
				c.start()
				c.grpcRequest(1, "/pkg.Svc/Get", true, pb("k", 1))
				details := "CAUSCW5vdCBoZXJlIQ" // google.rpc.Status{code: 5, message: "not here!"}, unpadded
				c.headers(s2c, 1, true, ":status", "200", "content-type", "application/grpc",
					"grpc-status", "5", "grpc-message", "not%20here%21", "grpc-status-details-bin", details)
			},
			want: []string{"grpc /pkg.Svc/Get svc:50051 NOT_FOUND #1 req=1 resp=0"},
			check: func(t *testing.T, es []*protocols.Entry) {
				g := es[0].GRPC
				if g.Message != "not here!" || len(g.StatusDetails) != 2 || g.StatusDetails[1].Value != "not here!" {
					t.Errorf("message %q, details %+v", g.Message, g.StatusDetails)
				}
			},
		},
		{
			name: "grpc streaming, gzip, messages split across frames",
			build: func(c *conv) {
				c.start()
				c.headers(c2s, 1, false, ":method", "POST", ":scheme", "http", ":authority", "svc", ":path", "/s.S/Bidi",
					"content-type", "application/grpc+proto", "grpc-encoding", "gzip")
				all := append(grpcFrame(gzipped(t, pb("a", 1)), true), grpcFrame(pb("b", 2), false)...)
				c.data(c2s, 1, false, all[:3])
				c.data(c2s, 1, false, all[3:20])
				c.data(c2s, 1, false, all[20:])
				c.headers(s2c, 1, false, ":status", "200", "content-type", "application/grpc")
				for i := range 3 {
					c.data(s2c, 1, false, grpcFrame(pb("r", uint64(i)), false))
				}
				c.data(c2s, 1, true, nil)
				c.headers(s2c, 1, true, "grpc-status", "0")
			},
			want: []string{"grpc /s.S/Bidi svc OK #1 req=2 resp=3"},
			check: func(t *testing.T, es []*protocols.Entry) {
				m := es[0].GRPC.Requests.Messages
				if !m[0].Compressed || m[0].DecodeError != "" || m[0].Fields[0].Value != "a" || m[1].Fields[0].Value != "b" {
					t.Errorf("messages = %+v", m)
				}
				if es[0].GRPC.Requests.Encoding != "gzip" {
					t.Errorf("encoding = %q", es[0].GRPC.Requests.Encoding)
				}
			},
		},
		{
			name: "grpc reset by deadline",
			build: func(c *conv) {
				c.start()
				c.headers(c2s, 1, false, ":method", "POST", ":scheme", "http", ":authority", "svc", ":path", "/s.S/Slow",
					"content-type", "application/grpc", "grpc-timeout", "10m")
				c.data(c2s, 1, true, grpcFrame(nil, false))
				c.write(c2s, func(fr *http2.Framer) error { return fr.WriteRSTStream(1, http2.ErrCodeCancel) })
			},
			want: []string{"grpc /s.S/Slow svc CANCEL #1 req=1 resp=0"},
			check: func(t *testing.T, es []*protocols.Entry) {
				if g := es[0].GRPC; g.StatusCode != -1 || g.ResetCode != "CANCEL" {
					t.Errorf("record = %+v", g)
				}
			},
		},
		{
			name: "decoding is capped",
			opts: func(o *protocols.Options) { o.DecodedCap = 100 },
			build: func(c *conv) {
				c.start().get(1, "/z")
				c.headers(s2c, 1, false, ":status", "200", "content-encoding", "gzip")
				c.data(s2c, 1, true, gzipped(t, []byte(big)))
			},
			want: []string{"http2 GET /z 200 #1"},
			check: func(t *testing.T, es []*protocols.Entry) {
				b := es[0].HTTP.Response.Body
				if len(b.Data) != 100 || !b.Truncated || b.Encoding != "gzip" || string(b.Data) != big[:100] {
					t.Errorf("body: %d bytes, truncated %v, encoding %q", len(b.Data), b.Truncated, b.Encoding)
				}
			},
		},
		{
			name: "raw deflate flushed but never finished",
			build: func(c *conv) {
				var buf bytes.Buffer
				zw, _ := flate.NewWriter(&buf, flate.BestSpeed)
				zw.Write([]byte("Hello, /, http: true"))
				zw.Flush() // a sync flush, no final block: how streaming servers send it
				c.start().get(1, "/d")
				c.headers(s2c, 1, false, ":status", "200", "content-encoding", "DeFlate")
				c.data(s2c, 1, true, buf.Bytes())
			},
			want: []string{"http2 GET /d 200 #1"},
			check: func(t *testing.T, es []*protocols.Entry) {
				if b := es[0].HTTP.Response.Body; string(b.Data) != "Hello, /, http: true" || b.Encoding != "deflate" {
					t.Errorf("body %q, encoding %q", b.Data, b.Encoding)
				}
			},
		},
		{
			name: "pending streams are bounded",
			opts: func(o *protocols.Options) { o.MaxPending = 2 },
			build: func(c *conv) {
				c.start().get(1, "/1").get(3, "/3").get(5, "/5")
				c.ok(1, "late").ok(3, "").ok(5, "")
			},
			want: []string{
				"http2 GET /1  #1 unmatched=response [" + warnEvicted + "]",
				"http2 GET /3 200 #3",
				"http2 GET /5 200 #5",
			},
		},
		{
			name: "table size update within the announced setting",
			build: func(c *conv) {
				c.start()
				c.write(s2c, func(fr *http2.Framer) error {
					return fr.WriteSettings(http2.Setting{ID: http2.SettingHeaderTableSize, Val: 8192})
				})
				c.enc[c2s].SetMaxDynamicTableSizeLimit(8192)
				c.enc[c2s].SetMaxDynamicTableSize(8192)
				c.get(1, "/big-table").ok(1, "")
				c.get(3, "/big-table").ok(3, "")
			},
			want: []string{"http2 GET /big-table 200 #1", "http2 GET /big-table 200 #3"},
		},
		{
			name: "a table larger than 64 KiB, as the receiver announced",
			build: func(c *conv) {
				c.start()
				c.write(s2c, func(fr *http2.Framer) error {
					return fr.WriteSettings(http2.Setting{ID: http2.SettingHeaderTableSize, Val: 256 << 10},
						http2.Setting{ID: http2.SettingMaxFrameSize, Val: 1 << 20})
				})
				c.enc[c2s].SetMaxDynamicTableSizeLimit(256 << 10)
				c.enc[c2s].SetMaxDynamicTableSize(256 << 10)
				big := strings.Repeat("v", 100<<10)
				for _, id := range []uint32{1, 3} {
					c.headers(c2s, id, true, ":method", "GET", ":scheme", "http", ":authority", "example.com", ":path", "/big-table", "x-big", big)
					c.ok(id, "")
				}
			},
			want: []string{"http2 GET /big-table 200 #1", "http2 GET /big-table 200 #3"},
			check: func(t *testing.T, es []*protocols.Entry) {
				if v, _ := es[1].HTTP.Request.Headers.Get("x-big"); len(v) != 100<<10 {
					t.Errorf("the second request's header, from the dynamic table: %d bytes, want %d", len(v), 100<<10)
				}
			},
		},
		{
			name: "a large table the memory budget cannot hold",
			opts: func(o *protocols.Options) { o.Budget = protocols.NewBudget(16 << 10) },
			build: func(c *conv) {
				c.start()
				c.write(s2c, func(fr *http2.Framer) error {
					return fr.WriteSettings(http2.Setting{ID: http2.SettingHeaderTableSize, Val: 256 << 10})
				})
				c.enc[c2s].SetMaxDynamicTableSizeLimit(256 << 10)
				c.enc[c2s].SetMaxDynamicTableSize(256 << 10)
				c.get(1, "/big-table")
			},
			wantErr: "http2_hpack",
		},
		{
			name: "table size update past the announced setting",
			build: func(c *conv) {
				c.start()
				c.enc[c2s].SetMaxDynamicTableSizeLimit(8192)
				c.enc[c2s].SetMaxDynamicTableSize(8192)
				c.get(1, "/big-table")
			},
			wantErr: "http2_hpack",
		},
		{
			name: "grpc-web trailers in the body",
			build: func(c *conv) {
				c.start()
				c.headers(c2s, 1, false, ":method", "POST", ":scheme", "http", ":authority", "web", ":path", "/w.W/Call",
					"content-type", "application/grpc-web+proto")
				c.data(c2s, 1, true, grpcFrame(pb("q", 1), false))
				c.headers(s2c, 1, false, ":status", "200", "content-type", "application/grpc-web+proto")
				trailers := grpcFrame([]byte("grpc-status: 7\r\ngrpc-message: denied\r\n"), false)
				trailers[0] = 0x80
				c.data(s2c, 1, true, append(grpcFrame(pb("r", 2), false), trailers...))
			},
			want: []string{"grpc /w.W/Call web PERMISSION_DENIED #1 req=1 resp=1"},
			check: func(t *testing.T, es []*protocols.Entry) {
				if g := es[0].GRPC; g.Message != "denied" || len(g.Trailers) != 2 {
					t.Errorf("record = %+v", g)
				}
			},
		},
		{
			name: "continuation flood is refused",
			build: func(c *conv) {
				c.start()
				blk := c.block(c2s, ":method", "GET", ":scheme", "http", ":authority", "a", ":path", "/")
				c.write(c2s, func(fr *http2.Framer) error {
					return fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: blk})
				})
				for range maxHeaderBlock / 9000 {
					c.write(c2s, func(fr *http2.Framer) error { return fr.WriteContinuation(1, false, make([]byte, 9000)) })
				}
				c.write(c2s, func(fr *http2.Framer) error { return fr.WriteContinuation(1, false, make([]byte, 9000)) })
			},
			wantErr: "http2_header_block_too_large",
		},
		{
			name: "zero-length continuation flood is refused",
			build: func(c *conv) {
				c.start()
				blk := c.block(c2s, ":method", "GET", ":scheme", "http", ":authority", "a", ":path", "/")
				c.write(c2s, func(fr *http2.Framer) error {
					return fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: blk})
				})
				var flood []byte
				for range maxHeaderBlock/9 + 1 {
					flood = append(flood, 0, 0, 0, typeContinuation, 0, 0, 0, 0, 1)
				}
				c.add(c2s, flood)
			},
			wantErr: "http2_header_block_too_large",
		},
		{
			name: "giant declared frame",
			build: func(c *conv) {
				c.start()
				c.add(c2s, []byte{0xff, 0xff, 0xff, typeData, 0, 0, 0, 0, 1, 'x'})
			},
			wantErr: "http2_frame_too_large",
		},
		{
			name: "frame larger than the announced maximum",
			build: func(c *conv) {
				c.start().get(1, "/")
				c.headers(s2c, 1, false, ":status", "200")
				c.data(s2c, 1, true, make([]byte, defaultMaxFrameSize+1))
			},
			want: []string{"http2 GET / 200 #1 [" + warnFrameSize + "]"},
		},
		{
			name: "frame larger than Sonde buffers",
			build: func(c *conv) {
				c.start().get(1, "/")
				c.headers(s2c, 1, false, ":status", "200")
				c.data(s2c, 1, true, make([]byte, maxFrameSize+1))
			},
			wantErr: "http2_frame_too_large",
		},
		{
			name: "data on stream 0",
			build: func(c *conv) {
				c.start()
				c.add(c2s, []byte{0, 0, 1, typeData, 0, 0, 0, 0, 0, 'x'})
			},
			wantErr: "http2_frame_protocol_error",
		},
		{
			name: "headers without continuation",
			build: func(c *conv) {
				c.start()
				blk := c.block(c2s, ":method", "GET", ":scheme", "http", ":authority", "a", ":path", "/")
				c.write(c2s, func(fr *http2.Framer) error {
					return fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: blk})
				})
				c.data(c2s, 1, true, []byte("x"))
			},
			wantErr: "http2_frame_protocol_error",
		},
		{
			name: "bad hpack",
			build: func(c *conv) {
				c.start()
				c.write(c2s, func(fr *http2.Framer) error {
					return fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: []byte{0xff, 0xff, 0xff, 0xff, 0x0f}, EndHeaders: true})
				})
			},
			wantErr: "http2_hpack",
		},
		{
			name: "bad preface",
			build: func(c *conv) {
				c.add(c2s, []byte("PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n"))
			},
			wantErr: "http2_bad_preface",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newConv(t)
			tt.build(c)
			info := protocols.ConnInfo{MidStream: tt.mid, Options: protocols.DefaultOptions()}
			if tt.opts != nil {
				tt.opts(&info.Options)
			}
			res := replaySplit(t, info, c.chunks)
			if tt.wantErr != "" {
				var pe *protocols.ParseError
				if !errors.As(res.Err, &pe) || pe.Code != tt.wantErr {
					t.Fatalf("error = %v, want code %s", res.Err, tt.wantErr)
				}
				if len(res.Entries) != 0 {
					t.Errorf("entries after error: %v", lines(res.Entries))
				}
				return
			}
			if res.Err != nil {
				t.Fatalf("error: %v", res.Err)
			}
			if got := lines(res.Entries); strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Fatalf("entries:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
			if tt.check != nil {
				tt.check(t, res.Entries)
			}
		})
	}
}

// TestFloodsStayBounded checks that refusing happens before the bytes pile up.
func TestFloodsStayBounded(t *testing.T) {
	c := newConv(t).start()
	res := replay(t, protocols.ConnInfo{}, append(c.chunks, protocolstest.Chunk{Dir: c2s, Data: []byte{0x10, 0, 0, typeData, 0, 0, 0, 0, 1}}))
	if !errors.Is(res.Err, protocols.ErrTooLarge) || !errors.Is(res.Err, protocols.ErrMalformed) {
		t.Fatalf("16 MiB frame: error %v, want ErrTooLarge and ErrMalformed", res.Err)
	}
	if res.Leftover[c2s] != frameHeaderLen {
		t.Errorf("consumed past the refused frame header: leftover %d", res.Leftover[c2s])
	}
}
