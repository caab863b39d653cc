package http1

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sondehq/sonde/protocols"
	"github.com/sondehq/sonde/protocols/protocolstest"
)

func gz(s string) string {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	w.Write([]byte(s))
	w.Close()
	return b.String()
}

func zl(s string) string {
	var b bytes.Buffer
	w := zlib.NewWriter(&b)
	w.Write([]byte(s))
	w.Close()
	return b.String()
}

func rawDeflate(s string) string {
	var b bytes.Buffer
	w, _ := flate.NewWriter(&b, flate.DefaultCompression)
	w.Write([]byte(s))
	w.Close()
	return b.String()
}

func resp(status, headers, body string) string {
	return "HTTP/1.1 " + status + "\r\n" + headers + "\r\n" + body
}

func withLength(body string) string {
	return fmt.Sprintf("Content-Length: %d\r\n", len(body))
}

func gapChunk(dir protocols.Direction, n int) protocolstest.Chunk {
	return protocolstest.Chunk{Dir: dir, Gap: n, Time: time.Unix(1_700_000_000, 0).Add(time.Second)}
}

const (
	getA             = "GET /a HTTP/1.1\r\nHost: example.com\r\n\r\n"
	keepAliveRequest = "GET /a HTTP/1.1\r\nHost: example.com\r\nX-Mixed-Case: v\r\nACCEPT: */*\r\n\r\n"
)

var (
	client = protocols.ClientToServer
	server = protocols.ServerToClient
)

type connCase struct {
	name      string
	chunks    []protocolstest.Chunk
	midStream bool
	opts      func(*protocols.Options)
	reason    protocols.CloseReason
	want      []string
	wantErr   string
	// wantUpgrade is the protocol of an UpgradeError.
	wantUpgrade protocols.Protocol
	check       func(t *testing.T, res protocolstest.Result)
}

func (tc connCase) info() protocols.ConnInfo {
	info := protocols.ConnInfo{Options: protocols.DefaultOptions(), MidStream: tc.midStream}
	if tc.opts != nil {
		tc.opts(&info.Options)
	}
	return info
}

var connCases = []connCase{
	{
		name: "keep-alive",
		chunks: protocolstest.Stream(
			keepAliveRequest,
			resp("200 OK", "Content-Type: text/plain\r\nContent-Length: 5\r\n", "hello"),
			"GET /b?x=1 HTTP/1.1\r\nHost: example.com\r\n\r\n",
			resp("404 Not Found", "Content-Length: 0\r\n", ""),
		),
		want: []string{"GET /a 200", "GET /b?x=1 404"},
		check: func(t *testing.T, res protocolstest.Result) {
			e := res.Entries[0]
			req := e.HTTP.Request
			wantHeaders := protocols.Headers{{Name: "Host", Value: "example.com"}, {Name: "X-Mixed-Case", Value: "v"}, {Name: "ACCEPT", Value: "*/*"}}
			if fmt.Sprint(req.Headers) != fmt.Sprint(wantHeaders) {
				t.Errorf("request headers = %v, want %v", req.Headers, wantHeaders)
			}
			if req.Path != "/a" || req.Authority != "example.com" || req.Version != "HTTP/1.1" {
				t.Errorf("request path %q authority %q version %q", req.Path, req.Authority, req.Version)
			}
			if e.RequestSize != int64(len(keepAliveRequest)) || e.ResponseSize != int64(len(resp("200 OK", "Content-Type: text/plain\r\nContent-Length: 5\r\n", "hello"))) {
				t.Errorf("sizes = %d, %d", e.RequestSize, e.ResponseSize)
			}
			if r := e.HTTP.Response; string(r.Body.Data) != "hello" || r.Body.Size != 5 || r.Reason != "OK" {
				t.Errorf("response body %q size %d reason %q", r.Body.Data, r.Body.Size, r.Reason)
			}
			if e.Protocol != protocols.HTTP1 || e.Start != time.Unix(1_700_000_000, 0) || e.Duration != time.Millisecond {
				t.Errorf("protocol %s start %v duration %v", e.Protocol, e.Start, e.Duration)
			}
			if q := res.Entries[1].HTTP.Request; q.Path != "/b" {
				t.Errorf("second path = %q", q.Path)
			}
		},
	},
	{
		name: "request body with content length",
		chunks: protocolstest.Stream(
			"POST /submit HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\nhello world",
			resp("201 Created", "Content-Length: 2\r\n", "ok"),
		),
		want: []string{"POST /submit 201"},
		check: func(t *testing.T, res protocolstest.Result) {
			if b := res.Entries[0].HTTP.Request.Body; string(b.Data) != "hello world" || b.Size != 11 {
				t.Errorf("request body = %q (%d)", b.Data, b.Size)
			}
		},
	},
	{
		name: "chunked response with extensions and trailers",
		chunks: protocolstest.Stream(
			getA,
			resp("200 OK", "Transfer-Encoding: chunked\r\nTrailer: X-Checksum\r\n",
				"5;name=value\r\nhello\r\n6 ; ext\r\n world\r\n0\r\nX-Checksum: abc\r\nX-Other:  two words \r\n\r\n"),
			"GET /next HTTP/1.1\r\n\r\n",
			resp("200 OK", "Content-Length: 0\r\n", ""),
		),
		want: []string{"GET /a 200", "GET /next 200"},
		check: func(t *testing.T, res protocolstest.Result) {
			r := res.Entries[0].HTTP.Response
			if string(r.Body.Data) != "hello world" || r.Body.Size != 11 {
				t.Errorf("body = %q (%d)", r.Body.Data, r.Body.Size)
			}
			want := protocols.Headers{{Name: "X-Checksum", Value: "abc"}, {Name: "X-Other", Value: "two words"}}
			if fmt.Sprint(r.Trailers) != fmt.Sprint(want) {
				t.Errorf("trailers = %v, want %v", r.Trailers, want)
			}
		},
	},
	{
		name: "chunked request",
		chunks: protocolstest.Stream(
			"PUT /up HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
			resp("204 No Content", "", ""),
		),
		want: []string{"PUT /up 204"},
		check: func(t *testing.T, res protocolstest.Result) {
			if b := res.Entries[0].HTTP.Request.Body; string(b.Data) != "abc" {
				t.Errorf("request body = %q", b.Data)
			}
		},
	},
	{
		name: "transfer-encoding wins over content-length",
		chunks: protocolstest.Stream(
			getA,
			resp("200 OK", "Content-Length: 100\r\nTransfer-Encoding: chunked\r\n", "2\r\nhi\r\n0\r\n\r\n"),
			getA,
			resp("200 OK", "Content-Length: 0\r\n", ""),
		),
		want: []string{"GET /a 200", "GET /a 200"},
	},
	{
		name: "body delimited by close",
		chunks: protocolstest.Stream(
			"GET /old HTTP/1.0\r\n\r\n",
			"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\npart one, ",
			"",
			"part two",
		),
		want: []string{"GET /old 200"},
		check: func(t *testing.T, res protocolstest.Result) {
			e := res.Entries[0]
			if b := e.HTTP.Response.Body; string(b.Data) != "part one, part two" {
				t.Errorf("body = %q", b.Data)
			}
			if len(e.Warnings) != 0 {
				t.Errorf("warnings = %q", e.Warnings)
			}
			if e.Duration != 3*time.Millisecond {
				t.Errorf("duration = %v, want the time of the last body byte", e.Duration)
			}
		},
	},
	{
		name: "body delimited by a reset is flagged",
		chunks: protocolstest.Stream(
			"GET /old HTTP/1.0\r\n\r\n",
			"HTTP/1.0 200 OK\r\n\r\npartial",
		),
		reason: protocols.ClosedRST,
		want:   []string{"GET /old 200"},
		check: func(t *testing.T, res protocolstest.Result) {
			if w := res.Entries[0].Warnings; len(w) != 1 || !strings.Contains(w[0], "rst") {
				t.Errorf("warnings = %q", w)
			}
		},
	},
	{
		name: "responses without a body",
		chunks: protocolstest.Stream(
			"HEAD /h HTTP/1.1\r\n\r\n", resp("200 OK", "Content-Length: 1234\r\n", ""),
			"GET /n HTTP/1.1\r\n\r\n", resp("204 No Content", "Content-Length: 5\r\n", ""),
			"GET /c HTTP/1.1\r\nIf-None-Match: \"x\"\r\n\r\n", resp("304 Not Modified", "Content-Length: 99\r\nETag: \"x\"\r\n", ""),
			"GET /last HTTP/1.1\r\n\r\n", resp("200 OK", "Content-Length: 3\r\n", "end"),
		),
		want: []string{"HEAD /h 200", "GET /n 204", "GET /c 304", "GET /last 200"},
	},
	{
		name: "100-continue",
		chunks: protocolstest.Stream(
			"POST /upload HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n",
			"HTTP/1.1 100 Continue\r\n\r\n",
			"data",
			resp("200 OK", "Content-Length: 0\r\n", ""),
		),
		want: []string{"POST /upload 200"},
		check: func(t *testing.T, res protocolstest.Result) {
			e := res.Entries[0]
			if got := e.HTTP.Response.Informational; len(got) != 1 || got[0] != 100 {
				t.Errorf("informational = %v", got)
			}
			if e.ResponseSize != int64(len("HTTP/1.1 100 Continue\r\n\r\n")+len(resp("200 OK", "Content-Length: 0\r\n", ""))) {
				t.Errorf("response size = %d", e.ResponseSize)
			}
		},
	},
	{
		name: "early hints",
		chunks: protocolstest.Stream(
			getA,
			"HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n"+resp("200 OK", "Content-Length: 0\r\n", ""),
		),
		want: []string{"GET /a 200"},
		check: func(t *testing.T, res protocolstest.Result) {
			if got := res.Entries[0].HTTP.Response.Informational; len(got) != 1 || got[0] != 103 {
				t.Errorf("informational = %v", got)
			}
		},
	},
	{
		name: "pipelining pairs in order",
		chunks: protocolstest.Stream(
			"GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\nPOST /3 HTTP/1.1\r\nContent-Length: 1\r\n\r\nx",
			resp("200 OK", "Content-Length: 1\r\n", "1")+resp("201 Created", "Transfer-Encoding: chunked\r\n", "1\r\n2\r\n0\r\n\r\n")+resp("500 Oops", "Content-Length: 1\r\n", "3"),
		),
		want: []string{"GET /1 200", "GET /2 201", "POST /3 500"},
	},
	{
		name: "h2c upgrade hands the request to HTTP/2",
		chunks: protocolstest.Stream(
			"GET /h2 HTTP/1.1\r\nHost: h\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n",
			"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00",
		),
		wantUpgrade: protocols.HTTP2,
		check: func(t *testing.T, res protocolstest.Result) {
			e := res.Upgrade.Request
			if e == nil || e.HTTP.Request.Path != "/h2" || e.HTTP.Upgrade != "h2c" || e.Unmatched != "" || e.HTTP.Response != nil {
				t.Fatalf("upgrade request = %+v", e)
			}
			if res.Leftover[server] != 9 {
				t.Errorf("server leftover = %d, want the 9 bytes of the HTTP/2 frame", res.Leftover[server])
			}
		},
	},
	{
		name: "h2c upgrade whose request was not seen",
		chunks: protocolstest.Stream(
			"",
			"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n",
		),
		want:        []string{"  101 unmatched=request"},
		wantUpgrade: protocols.HTTP2,
		check: func(t *testing.T, res protocolstest.Result) {
			if res.Upgrade.Request != nil {
				t.Errorf("upgrade request = %+v, want none", res.Upgrade.Request)
			}
		},
	},
	{
		name: "websocket upgrade emits the handshake",
		chunks: protocolstest.Stream(
			"GET /chat HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
			"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\x81\x02hi",
		),
		want:        []string{"GET /chat 101"},
		wantUpgrade: "websocket",
		check: func(t *testing.T, res protocolstest.Result) {
			if res.Entries[0].HTTP.Upgrade != "websocket" || res.Leftover[server] != 4 {
				t.Errorf("upgrade %q, server leftover %d", res.Entries[0].HTTP.Upgrade, res.Leftover[server])
			}
		},
	},
	{
		name: "refused upgrade continues as HTTP/1",
		chunks: protocolstest.Stream(
			"GET /a HTTP/1.1\r\nUpgrade: h2c\r\n\r\n",
			resp("200 OK", "Content-Length: 0\r\n", ""),
			getA,
			resp("200 OK", "Content-Length: 0\r\n", ""),
		),
		want: []string{"GET /a 200", "GET /a 200"},
	},
	{
		name: "connect tunnel",
		chunks: protocolstest.Stream(
			"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
			"HTTP/1.1 200 Connection Established\r\n\r\n",
			"\x16\x03\x01\x02\x00",
		),
		want:        []string{"CONNECT example.com:443 200"},
		wantUpgrade: Tunnel,
		check: func(t *testing.T, res protocolstest.Result) {
			r := res.Entries[0].HTTP.Request
			if r.Authority != "example.com:443" || r.Path != "" {
				t.Errorf("authority %q path %q", r.Authority, r.Path)
			}
		},
	},
	{
		name: "refused connect",
		chunks: protocolstest.Stream(
			"CONNECT example.com:443 HTTP/1.1\r\n\r\n",
			resp("407 Proxy Authentication Required", "Content-Length: 0\r\n", ""),
			"CONNECT example.com:443 HTTP/1.1\r\nProxy-Authorization: Basic eDp5\r\n\r\n",
			"HTTP/1.1 200 OK\r\n\r\n",
		),
		want:        []string{"CONNECT example.com:443 407", "CONNECT example.com:443 200"},
		wantUpgrade: Tunnel,
	},
	{
		name: "absolute form through a proxy",
		chunks: protocolstest.Stream(
			"GET http://user:pw@example.com:8080/p/q?access_token=s3cret&x=1 HTTP/1.1\r\nHost: example.com:8080\r\n\r\n",
			resp("200 OK", "Content-Length: 0\r\n", ""),
		),
		want: []string{"GET http://[REDACTED]@example.com:8080/p/q?access_token=[REDACTED]&x=1 200"},
		check: func(t *testing.T, res protocolstest.Result) {
			r := res.Entries[0].HTTP.Request
			if r.Scheme != "http" || r.Authority != "example.com:8080" || r.Path != "/p/q" || !res.Entries[0].Redacted {
				t.Errorf("scheme %q authority %q path %q redacted %v", r.Scheme, r.Authority, r.Path, res.Entries[0].Redacted)
			}
		},
	},
	{
		name: "redaction of credentials",
		chunks: protocolstest.Stream(
			"GET /me?token=abc HTTP/1.1\r\nAuthorization: Bearer xyz\r\nCookie: s=1\r\nProxy-Authorization: Basic eDp5\r\n\r\n",
			resp("200 OK", "Set-Cookie: s=2\r\nTransfer-Encoding: chunked\r\n", "0\r\nAuthorization: t\r\n\r\n"),
		),
		want: []string{"GET /me?token=[REDACTED] 200"},
		check: func(t *testing.T, res protocolstest.Result) {
			e := res.Entries[0]
			for _, h := range [][]protocols.Header{e.HTTP.Request.Headers, e.HTTP.Response.Headers, e.HTTP.Response.Trailers} {
				for _, f := range h {
					if protocols.IsSensitiveHeader(f.Name) && f.Value != protocols.Redacted {
						t.Errorf("%s not redacted: %q", f.Name, f.Value)
					}
				}
			}
			if !e.Redacted || e.HTTP.Request.Target != "/me?token=[REDACTED]" {
				t.Errorf("redacted %v target %q", e.Redacted, e.HTTP.Request.Target)
			}
		},
	},
	{
		name: "no redaction when switched off",
		chunks: protocolstest.Stream(
			"GET /me?token=abc HTTP/1.1\r\nAuthorization: Bearer xyz\r\n\r\n",
			resp("200 OK", "Content-Length: 0\r\n", ""),
		),
		opts: func(o *protocols.Options) { o.Redact = false },
		want: []string{"GET /me?token=abc 200"},
		check: func(t *testing.T, res protocolstest.Result) {
			if v, _ := res.Entries[0].HTTP.Request.Headers.Get("authorization"); v != "Bearer xyz" || res.Entries[0].Redacted {
				t.Errorf("authorization = %q, redacted %v", v, res.Entries[0].Redacted)
			}
		},
	},
	{
		name: "obs-fold continuation lines",
		chunks: protocolstest.Stream(
			"GET /f HTTP/1.1\r\nX-Long: first\r\n  second\r\n\tthird\r\nHost: h\r\n\r\n",
			resp("200 OK", "X-Folded: a\r\n b\r\nContent-Length: 0\r\n", ""),
		),
		want: []string{"GET /f 200"},
		check: func(t *testing.T, res protocolstest.Result) {
			e := res.Entries[0]
			if v, _ := e.HTTP.Request.Headers.Get("X-Long"); v != "first second third" {
				t.Errorf("X-Long = %q", v)
			}
			if v, _ := e.HTTP.Response.Headers.Get("X-Folded"); v != "a b" {
				t.Errorf("X-Folded = %q", v)
			}
			if len(e.HTTP.Request.Headers) != 2 {
				t.Errorf("request headers = %v", e.HTTP.Request.Headers)
			}
		},
	},
	{
		name: "gzip body decoded",
		chunks: protocolstest.Stream(
			"GET /z HTTP/1.1\r\nAccept-Encoding: gzip\r\n\r\n",
			resp("200 OK", "Content-Encoding: gzip\r\n"+withLength(gz("hello gzip")), gz("hello gzip")),
		),
		want: []string{"GET /z 200"},
		check: func(t *testing.T, res protocolstest.Result) {
			b := res.Entries[0].HTTP.Response.Body
			if string(b.Data) != "hello gzip" || b.Encoding != "gzip" || b.Size != int64(len(gz("hello gzip"))) || b.Truncated {
				t.Errorf("body = %+v", b)
			}
		},
	},
	{
		name: "deflate bodies, zlib and raw",
		chunks: protocolstest.Stream(
			"GET /zl HTTP/1.1\r\n\r\n",
			resp("200 OK", "Content-Encoding: deflate\r\n"+withLength(zl("zlib body")), zl("zlib body")),
			"POST /raw HTTP/1.1\r\nContent-Encoding: deflate\r\n"+withLength(rawDeflate("raw body"))+"\r\n"+rawDeflate("raw body"),
			resp("200 OK", "Content-Length: 0\r\n", ""),
		),
		want: []string{"GET /zl 200", "POST /raw 200"},
		check: func(t *testing.T, res protocolstest.Result) {
			if b := res.Entries[0].HTTP.Response.Body; string(b.Data) != "zlib body" || b.Encoding != "deflate" {
				t.Errorf("zlib body = %+v", b)
			}
			if b := res.Entries[1].HTTP.Request.Body; string(b.Data) != "raw body" || b.Encoding != "deflate" {
				t.Errorf("raw deflate body = %+v", b)
			}
		},
	},
	{
		name: "undecodable gzip keeps the raw bytes without redaction",
		chunks: protocolstest.Stream(
			getA,
			resp("200 OK", "Content-Encoding: gzip\r\nContent-Length: 9\r\n", "not gzip!"),
		),
		opts: func(o *protocols.Options) { o.Redact = false },
		want: []string{"GET /a 200"},
		check: func(t *testing.T, res protocolstest.Result) {
			e := res.Entries[0]
			if b := e.HTTP.Response.Body; string(b.Data) != "not gzip!" || b.Encoding != "" {
				t.Errorf("body = %+v", b)
			}
			if len(e.Warnings) != 1 || !strings.Contains(e.Warnings[0], "gzip") {
				t.Errorf("warnings = %q", e.Warnings)
			}
		},
	},
	{
		name: "body over the cap",
		chunks: protocolstest.Stream(
			getA,
			resp("200 OK", "Content-Length: 20\r\n", "0123456789abcdefghij"),
		),
		opts: func(o *protocols.Options) { o.BodyCap = 8 },
		want: []string{"GET /a 200"},
		check: func(t *testing.T, res protocolstest.Result) {
			if b := res.Entries[0].HTTP.Response.Body; string(b.Data) != "01234567" || b.Size != 20 || !b.Truncated {
				t.Errorf("body = %+v", b)
			}
		},
	},
	{
		name: "decoded body over its cap",
		chunks: protocolstest.Stream(
			getA,
			resp("200 OK", "Content-Encoding: gzip\r\n"+withLength(gz(strings.Repeat("a", 1000))), gz(strings.Repeat("a", 1000))),
		),
		opts: func(o *protocols.Options) { o.DecodedCap = 100 },
		want: []string{"GET /a 200"},
		check: func(t *testing.T, res protocolstest.Result) {
			if b := res.Entries[0].HTTP.Response.Body; len(b.Data) != 100 || !b.Truncated || b.Encoding != "gzip" {
				t.Errorf("body = %d bytes, truncated %v, encoding %q", len(b.Data), b.Truncated, b.Encoding)
			}
		},
	},
	{
		name: "gzip body cut by the body cap decodes as far as it goes",
		chunks: protocolstest.Stream(
			getA,
			resp("200 OK", "Content-Encoding: gzip\r\n"+withLength(gz(strings.Repeat("abcdefgh", 4000))), gz(strings.Repeat("abcdefgh", 4000))),
		),
		opts: func(o *protocols.Options) { o.BodyCap = 64 },
		want: []string{"GET /a 200"},
		check: func(t *testing.T, res protocolstest.Result) {
			e := res.Entries[0]
			if b := e.HTTP.Response.Body; len(b.Data) == 0 || !b.Truncated || b.Encoding != "gzip" || !strings.HasPrefix("abcdefghabcdefgh", string(b.Data[:min(len(b.Data), 16)])) {
				t.Errorf("body = %q truncated %v encoding %q", b.Data, b.Truncated, b.Encoding)
			}
			if len(e.Warnings) != 0 {
				t.Errorf("warnings = %q", e.Warnings)
			}
		},
	},
	{
		name: "request without a response",
		chunks: protocolstest.Stream(
			getA, resp("200 OK", "Content-Length: 0\r\n", ""),
			"GET /never HTTP/1.1\r\n\r\n",
		),
		want: []string{"GET /a 200", "GET /never  unmatched=response"},
	},
	{
		name: "joined mid-stream",
		chunks: protocolstest.Stream(
			"ody of an earlier request\r\nGET /seen HTTP/1.1\r\n\r\n",
			"st of a body\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
		),
		midStream: true,
		want:      []string{"GET /seen 200", "  200 unmatched=request"},
		check: func(t *testing.T, res protocolstest.Result) {
			if w := res.Entries[0].Warnings; len(w) != 2 {
				t.Errorf("warnings = %q, want the skipped bytes of both sides", w)
			}
		},
	},
	{
		name: "mid-stream join at a message boundary",
		chunks: protocolstest.Stream(
			getA, resp("200 OK", "Content-Length: 0\r\n", ""),
		),
		midStream: true,
		want:      []string{"GET /a 200"},
	},
	{
		name: "response before any request",
		chunks: protocolstest.Stream(
			"",
			resp("200 OK", "Content-Length: 2\r\n", "hi"),
		),
		want: []string{"  200 unmatched=request"},
	},
	{
		name: "gap inside a body of known length",
		chunks: []protocolstest.Chunk{
			{Dir: client, Data: []byte(getA)},
			{Dir: server, Data: []byte(resp("200 OK", "Content-Length: 10\r\n", "abc"))},
			gapChunk(server, 4),
			{Dir: server, Data: []byte("hij")},
			{Dir: client, Data: []byte(getA)},
			{Dir: server, Data: []byte(resp("200 OK", "Content-Length: 0\r\n", ""))},
		},
		want: []string{"GET /a 200 gap", "GET /a 200"},
		check: func(t *testing.T, res protocolstest.Result) {
			e := res.Entries[0]
			if b := e.HTTP.Response.Body; string(b.Data) != "abc" || b.Size != 10 || !b.Truncated {
				t.Errorf("body = %+v", b)
			}
			if e.ResponseSize != int64(len(resp("200 OK", "Content-Length: 10\r\n", "0123456789"))) {
				t.Errorf("response size = %d", e.ResponseSize)
			}
		},
	},
	{
		name: "gap that takes a response header",
		chunks: []protocolstest.Chunk{
			{Dir: client, Data: []byte("GET /1 HTTP/1.1\r\n\r\n")},
			{Dir: server, Data: []byte("HTTP/1.1 200 OK\r\nContent-")},
			gapChunk(server, 100),
			{Dir: server, Data: []byte("rest of the first body\n")},
			{Dir: client, Data: []byte("GET /2 HTTP/1.1\r\n\r\n")},
			{Dir: server, Data: []byte(resp("200 OK", "Content-Length: 0\r\n", ""))},
		},
		want: []string{"GET /1  unmatched=response gap", "GET /2 200"},
		check: func(t *testing.T, res protocolstest.Result) {
			if w := res.Entries[1].Warnings; len(w) != 1 || !strings.Contains(w[0], "23 bytes after a gap") {
				t.Errorf("warnings = %q", w)
			}
		},
	},
	{
		name: "gap that takes a whole request keeps pairing in order",
		chunks: []protocolstest.Chunk{
			{Dir: client, Data: []byte("GET /1 HTTP/1.1\r\n\r\n")},
			gapChunk(client, 19),
			{Dir: client, Data: []byte("GET /3 HTTP/1.1\r\n\r\n")},
			{Dir: server, Data: []byte(resp("200 OK", "Content-Length: 1\r\n", "1") + resp("202 Accepted", "Content-Length: 1\r\n", "2") + resp("203 Third", "Content-Length: 1\r\n", "3"))},
		},
		want: []string{"GET /1 200", "  202 unmatched=request gap", "GET /3 203"},
	},
	{
		name: "gap inside a chunked body",
		chunks: []protocolstest.Chunk{
			{Dir: client, Data: []byte(getA)},
			{Dir: server, Data: []byte(resp("200 OK", "Transfer-Encoding: chunked\r\n", "a\r\n01234"))},
			gapChunk(server, 50),
			{Dir: server, Data: []byte("junk\r\n0\r\n\r\n")},
			{Dir: client, Data: []byte("GET /b HTTP/1.1\r\n\r\n")},
			{Dir: server, Data: []byte(resp("201 Created", "Content-Length: 0\r\n", ""))},
		},
		want: []string{"GET /a 200 gap", "GET /b 201"},
	},
	{
		name: "gap in a body delimited by close",
		chunks: []protocolstest.Chunk{
			{Dir: client, Data: []byte(getA)},
			{Dir: server, Data: []byte("HTTP/1.0 200 OK\r\n\r\nabc")},
			gapChunk(server, 10),
			{Dir: server, Data: []byte("xyz")},
		},
		want: []string{"GET /a 200 gap"},
		check: func(t *testing.T, res protocolstest.Result) {
			if b := res.Entries[0].HTTP.Response.Body; string(b.Data) != "abc" || b.Size != 16 || !b.Truncated {
				t.Errorf("body = %+v", b)
			}
		},
	},
	{
		name: "lenient line ends and version case",
		chunks: protocolstest.Stream(
			"\r\nGET  /lf   HTTP/1.1\nHost: h\n\n",
			"http/1.1 200 OK\nContent-Length: 2\n\nok\r\n",
			"GET /x HTTP/1.1\r\n\r\n",
			resp("200 OK", "Content-Length: 0\r\n", ""),
		),
		want: []string{"GET /lf 200", "GET /x 200"},
	},
	{
		name: "HTTP/0.9",
		chunks: protocolstest.Stream(
			"GET /old\r\n",
			"<html>body</html>",
		),
		want: []string{"GET /old "},
		check: func(t *testing.T, res protocolstest.Result) {
			r := res.Entries[0].HTTP.Response
			if r == nil || string(r.Body.Data) != "<html>body</html>" || r.Version != "HTTP/0.9" {
				t.Errorf("response = %+v", r)
			}
		},
	},
	{
		name: "request line without version answered by HTTP/1.x",
		chunks: protocolstest.Stream(
			"GET /HTTP/1.1\r\nHost: h\r\n\r\n",
			resp("403 Forbidden", "Content-Length: 0\r\n", ""),
		),
		want: []string{"GET /HTTP/1.1 403"},
	},
	{
		name: "unparseable line is skipped",
		chunks: protocolstest.Stream(
			getA+"T / HTTP\r\n\r\n",
			resp("301 Moved", "Content-Length: 0\r\n", "")+resp("400 Bad Request", "Content-Length: 0\r\n", ""),
			getA,
			resp("200 OK", "Content-Length: 0\r\n", ""),
		),
		want: []string{"GET /a 301", "  400 unmatched=request", "GET /a 200"},
		check: func(t *testing.T, res protocolstest.Result) {
			if w := res.Entries[2].Warnings; len(w) != 1 || !strings.Contains(w[0], "do not parse") {
				t.Errorf("warnings = %q", w)
			}
		},
	},
	{
		name: "too many pending requests",
		chunks: protocolstest.Stream(
			"GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\nGET /3 HTTP/1.1\r\n\r\n",
			resp("200 OK", "Content-Length: 0\r\n", ""),
		),
		opts: func(o *protocols.Options) { o.MaxPending = 2 },
		want: []string{"GET /1  unmatched=response", "GET /2 200", "GET /3  unmatched=response"},
	},
	{
		name: "identical content lengths",
		chunks: protocolstest.Stream(
			getA, resp("200 OK", "Content-Length: 2, 2\r\nContent-Length: 2\r\n", "ok"),
		),
		want: []string{"GET /a 200"},
	},
	{
		name: "conflicting content lengths",
		chunks: protocolstest.Stream(
			getA, resp("200 OK", "Content-Length: 2\r\nContent-Length: 3\r\n", "ok"),
		),
		want:    []string{"GET /a  unmatched=response"},
		wantErr: codeBadContentLength,
	},
	{
		name:    "negative content length",
		chunks:  protocolstest.Stream("POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n"),
		wantErr: codeBadContentLength,
	},
	{
		name: "chunk size overflow",
		chunks: protocolstest.Stream(
			getA, resp("200 OK", "Transfer-Encoding: chunked\r\n", "10000000000000000\r\n"),
		),
		want:    []string{"GET /a 200"},
		wantErr: codeBadChunkSize,
		check: func(t *testing.T, res protocolstest.Result) {
			if w := res.Entries[0].Warnings; len(w) != 1 {
				t.Errorf("warnings = %q", w)
			}
		},
	},
	{
		name: "chunk without its line end",
		chunks: protocolstest.Stream(
			getA, resp("200 OK", "Transfer-Encoding: chunked\r\n", "2\r\nokXX"),
		),
		want:    []string{"GET /a 200"},
		wantErr: codeBadChunkEnd,
	},
	{
		name:    "request transfer coding not chunked",
		chunks:  protocolstest.Stream("POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n"),
		wantErr: codeBadTransferEncoding,
	},
	{
		name:    "header block too large",
		chunks:  protocolstest.Stream("GET / HTTP/1.1\r\nX: " + strings.Repeat("a", maxHeaderBlock) + "\r\n\r\n"),
		wantErr: codeHeadersTooLarge,
	},
	{
		name:    "request line too long",
		chunks:  protocolstest.Stream("GET /" + strings.Repeat("a", maxHeaderBlock) + " HTTP/1.1\r\n\r\n"),
		wantErr: codeStartLineTooLong,
	},
	{
		name:    "too many header fields",
		chunks:  protocolstest.Stream("GET / HTTP/1.1\r\n" + strings.Repeat("a:b\r\n", maxHeaders+1) + "\r\n"),
		wantErr: codeTooManyHeaders,
	},
	{
		name:    "chunk line too long",
		chunks:  protocolstest.Stream(getA, resp("200 OK", "Transfer-Encoding: chunked\r\n", "1;"+strings.Repeat("e", maxChunkLine))),
		want:    []string{"GET /a 200"},
		wantErr: codeChunkLineTooLong,
	},
	{
		name:    "garbage is given up",
		chunks:  protocolstest.Stream(getA, resp("200 OK", "Content-Length: 0\r\n", ""), strings.Repeat("\x00garbage\n", maxGarbage/8)),
		want:    []string{"GET /a 200"},
		wantErr: codeLostSync,
	},
}

func TestConn(t *testing.T) {
	for _, tc := range connCases {
		t.Run(tc.name, func(t *testing.T) {
			res, err := protocolstest.Replay(New(), tc.info(), tc.chunks, tc.reason)
			if err != nil {
				t.Fatal(err)
			}
			if got := protocolstest.ErrorCode(res.Err); got != tc.wantErr {
				t.Errorf("error = %q, want %q", got, tc.wantErr)
			}
			var up protocols.Protocol
			if res.Upgrade != nil {
				up = res.Upgrade.To
			}
			if up != tc.wantUpgrade {
				t.Errorf("upgrade = %q, want %q", up, tc.wantUpgrade)
			}
			if got := protocolstest.DescribeAll(res.Entries); fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("entries:\n got %q\nwant %q", got, tc.want)
			}
			if tc.check != nil && !t.Failed() {
				tc.check(t, res)
			}
		})
	}
}

// TestConnSplit replays every case cut at random points and wants exactly
// the same entries: where the bytes are cut must not matter.
func TestConnSplit(t *testing.T) {
	for _, tc := range connCases {
		t.Run(tc.name, func(t *testing.T) {
			protocolstest.CheckSplit(t, New(), tc.chunks, protocolstest.SplitOptions{Info: tc.info(), Reason: tc.reason, Seeds: protocolstest.Seeds(0, 30)})
		})
	}
}

// TestUpgradeWaitsForResponse checks that the client's bytes after an
// upgrade request stay unconsumed until the response decides whose they are.
func TestUpgradeWaitsForResponse(t *testing.T) {
	tests := []struct {
		name       string
		response   string
		wantUp     protocols.Protocol
		wantClient int // bytes of the second client Feed consumed
	}{
		{"accepted", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n", "websocket", 0},
		{"refused", resp("200 OK", "Content-Length: 0\r\n", ""), "", len(getA)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var entries []*protocols.Entry
			c := New().NewConn(protocols.ConnInfo{Options: protocols.DefaultOptions()}, func(e *protocols.Entry) { entries = append(entries, e) })
			ts := time.Unix(1, 0)
			upgradeReq := "GET /chat HTTP/1.1\r\nUpgrade: websocket\r\n\r\n"
			n, err := c.Feed(client, []byte(upgradeReq+getA), ts)
			if n != len(upgradeReq) || err != nil {
				t.Fatalf("first client Feed = %d, %v; want %d", n, err, len(upgradeReq))
			}
			_, err = c.Feed(server, []byte(tt.response), ts)
			var up *protocols.UpgradeError
			errors.As(err, &up)
			if (up == nil) != (tt.wantUp == "") || (up != nil && up.To != tt.wantUp) {
				t.Fatalf("server Feed error = %v, want upgrade to %q", err, tt.wantUp)
			}
			if up != nil {
				return
			}
			if n, err = c.Feed(client, []byte(getA), ts); n != tt.wantClient || err != nil {
				t.Errorf("second client Feed = %d, %v; want %d", n, err, tt.wantClient)
			}
			if len(entries) != 1 {
				t.Errorf("entries = %q", protocolstest.DescribeAll(entries))
			}
		})
	}
}
