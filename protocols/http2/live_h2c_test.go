package http2

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/h2c"
	"golang.org/x/net/http2/hpack"

	"github.com/sondehq/sonde/protocols"
	"github.com/sondehq/sonde/protocols/protocolstest"
)

// h2cServer starts a net/http server that speaks h2c (prior knowledge and
// Upgrade) and returns its address.
func h2cServer(t *testing.T) string {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("/hello", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello, h2c") })
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		io.Copy(w, r.Body)
	})
	mux.HandleFunc("/gzip", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Encoding", "gzip")
		zw := gzip.NewWriter(w)
		io.WriteString(zw, strings.Repeat("compressible ", 1000))
		zw.Close()
	})
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) {
		w.Write(bytes.Repeat([]byte("b"), 200_000))
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h2c.NewHandler(mux, &http2.Server{})}
	done := make(chan struct{})
	go func() {
		srv.Serve(ln)
		close(done)
	}()
	t.Cleanup(func() {
		srv.Close()
		<-done
	})
	return ln.Addr().String()
}

func TestLiveH2CPriorKnowledge(t *testing.T) {
	rec := protocolstest.NewRecorder(t, h2cServer(t))
	tr := &http2.Transport{
		AllowHTTP: true,
		DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
	}
	client := &http.Client{Transport: tr}
	type call struct {
		method, path, body string
		status             int
		respBody           string
	}
	calls := []call{
		{"GET", "/hello", "", 200, "hello, h2c"},
		{"POST", "/echo", "ping pong", 200, "ping pong"},
		{"GET", "/gzip", "", 200, strings.Repeat("compressible ", 1000)},
		{"GET", "/big", "", 200, ""},
		{"GET", "/missing?token=abc", "", 404, ""},
	}
	for _, c := range calls {
		req, err := http.NewRequest(c.method, "http://"+rec.Addr+c.path, strings.NewReader(c.body))
		if err != nil {
			t.Fatal(err)
		}
		if c.body == "" {
			req.Body = nil
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", c.method, c.path, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.status {
			t.Fatalf("%s %s: status %d", c.method, c.path, resp.StatusCode)
		}
	}
	tr.CloseIdleConnections()
	rec.Close()
	conns := rec.Conns()
	if len(conns) != 1 {
		t.Fatalf("recorded %d connections, want 1", len(conns))
	}
	res := replaySplit(t, protocols.ConnInfo{}, conns[0])
	if res.Err != nil || len(res.Entries) != len(calls) {
		t.Fatalf("err %v, entries:\n%s", res.Err, strings.Join(lines(res.Entries), "\n"))
	}
	for i, c := range calls {
		e := res.Entries[i]
		target := strings.Replace(c.path, "abc", protocols.Redacted, 1)
		if e.Protocol != protocols.HTTP2 || e.Summary.Method != c.method || e.Summary.Target != target ||
			e.Summary.Status != fmt.Sprint(c.status) || e.Unmatched != "" || len(e.Warnings) != 0 {
			t.Errorf("entry %d = %s", i, line(e))
			continue
		}
		if got := string(e.HTTP.Request.Body.Data); got != c.body {
			t.Errorf("%s request body %q", c.path, got)
		}
		if b := e.HTTP.Response.Body; c.respBody != "" && string(b.Data) != c.respBody {
			t.Errorf("%s response body: %d bytes, encoding %q", c.path, len(b.Data), b.Encoding)
		}
	}
	if b := res.Entries[3].HTTP.Response.Body; b.Size != 200_000 || !b.Truncated {
		t.Errorf("big body: size %d, truncated %v", b.Size, b.Truncated)
	}
	if b := res.Entries[2].HTTP.Response.Body; b.Encoding != "gzip" {
		t.Errorf("gzip body encoding %q", b.Encoding)
	}
}

// TestLiveH2CUpgrade speaks HTTP/1.1 with "Upgrade: h2c" to a real server,
// then HTTP/2 on the same connection. The HTTP/1.1 request and the 101 are
// the http1 dissector's: the test hands over as the pipeline does, with the
// request as ConnInfo.Upgrade and the rest of each direction.
func TestLiveH2CUpgrade(t *testing.T) {
	rec := protocolstest.NewRecorder(t, h2cServer(t))
	conn, err := net.Dial("tcp", rec.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	// HTTP2-Settings: SETTINGS_INITIAL_WINDOW_SIZE = 65535, base64url.
	upgradeReq := "GET /hello HTTP/1.1\r\nHost: svc\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAQAAP__\r\n\r\n"
	if _, err := io.WriteString(conn, upgradeReq); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v, %v", resp, err)
	}
	fr := http2.NewFramer(conn, br)
	io.WriteString(conn, clientPreface)
	fr.WriteSettings()
	var hbuf bytes.Buffer
	enc := hpack.NewEncoder(&hbuf)
	for _, f := range [][2]string{{":method", "POST"}, {":scheme", "http"}, {":authority", "svc"}, {":path", "/echo"}} {
		enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 3, BlockFragment: hbuf.Bytes(), EndHeaders: true})
	fr.WriteData(3, true, []byte("after the upgrade"))
	ended := map[uint32]bool{}
	for !ended[1] || !ended[3] {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("reading frames: %v", err)
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				fr.WriteSettingsAck()
			}
		case *http2.DataFrame:
			if f.StreamEnded() {
				ended[f.StreamID] = true
			}
		case *http2.HeadersFrame:
			if f.StreamEnded() {
				ended[f.StreamID] = true
			}
		}
	}
	fr.WriteGoAway(0, http2.ErrCodeNo, nil)
	conn.Close()
	rec.Close()

	chunks := rec.Conns()[0]
	cli, srv := joined(chunks, c2s), joined(chunks, s2c)
	reqEnd := bytes.Index(cli, []byte("\r\n\r\n")) + 4
	respEnd := bytes.Index(srv, []byte("\r\n\r\n")) + 4
	if string(cli[:reqEnd]) != upgradeReq || !bytes.HasPrefix(srv, []byte("HTTP/1.1 101")) {
		t.Fatalf("recorded upgrade: %q / %q", cli[:reqEnd], srv[:respEnd])
	}
	up := &protocols.Entry{
		Protocol: protocols.HTTP1, Start: chunks[0].Time, RequestSize: int64(reqEnd),
		HTTP: &protocols.HTTPRecord{Upgrade: "h2c", Request: &protocols.HTTPRequest{
			Method: "GET", Target: "/hello", Path: "/hello", Version: "HTTP/1.1", Authority: "svc",
			Headers: protocols.Headers{{Name: "Host", Value: "svc"}, {Name: "Upgrade", Value: "h2c"}},
		}},
	}
	res := replaySplit(t, protocols.ConnInfo{Upgrade: up}, dropPrefix(chunks, [2]int{reqEnd, respEnd}))
	// The server answers the two streams concurrently; entries come in the
	// order the exchanges end, which is either.
	slices.SortFunc(res.Entries, func(a, b *protocols.Entry) int { return strings.Compare(line(a), line(b)) })
	want := []string{"http2 GET /hello 200 #1", "http2 POST /echo 200 #3"}
	if got := lines(res.Entries); strings.Join(got, "\n") != strings.Join(want, "\n") || res.Err != nil {
		t.Fatalf("entries (err %v):\n%s\nwant:\n%s", res.Err, strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if b := res.Entries[0].HTTP.Response.Body.Data; string(b) != "hello, h2c" {
		t.Errorf("stream 1 body %q", b)
	}
	if b := res.Entries[1].HTTP.Response.Body.Data; string(b) != "after the upgrade" {
		t.Errorf("stream 3 body %q", b)
	}
}
