package http1

import (
	"bufio"
	"compress/gzip"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/sondehq/sonde/protocols"
	"github.com/sondehq/sonde/protocols/protocolstest"
)

const largeBody = 200 << 10

// liveServer starts a real net/http server with one handler per feature.
func liveServer(t *testing.T) string {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("/hello", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello")
	})
	mux.HandleFunc("/chunked", func(w http.ResponseWriter, r *http.Request) {
		for i := range 3 {
			fmt.Fprintf(w, "part %d;", i)
			w.(http.Flusher).Flush()
		}
	})
	mux.HandleFunc("/gzip", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Encoding", "gzip")
		zw := gzip.NewWriter(w)
		io.WriteString(zw, strings.Repeat("compressed ", 100))
		zw.Close()
	})
	mux.HandleFunc("/nocontent", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("/cached", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("ETag", `"v1"`)
		if r.Header.Get("If-None-Match") == `"v1"` {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		io.WriteString(w, "fresh")
	})
	mux.HandleFunc("/upload", func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		fmt.Fprintf(w, "got %d", n)
	})
	mux.HandleFunc("/large", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", fmt.Sprint(largeBody))
		io.WriteString(w, strings.Repeat("x", largeBody))
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// TestLive records a real net/http client and server talking through a
// proxy, and dissects what went over the wire.
func TestLive(t *testing.T) {
	rec := protocolstest.NewRecorder(t, liveServer(t))
	base := "http://" + rec.Addr

	tr := &http.Transport{MaxConnsPerHost: 1, ExpectContinueTimeout: http.DefaultTransport.(*http.Transport).ExpectContinueTimeout}
	cl := &http.Client{Transport: tr}
	do := func(method, path string, body string, header ...string) {
		t.Helper()
		var rd io.Reader
		if body != "" {
			rd = strings.NewReader(body)
		}
		req, err := http.NewRequest(method, base+path, rd)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		res, err := cl.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
	}
	do("GET", "/hello", "")
	do("GET", "/chunked", "")
	do("GET", "/gzip", "", "Accept-Encoding", "gzip")
	do("HEAD", "/hello", "")
	do("DELETE", "/nocontent", "")
	do("GET", "/cached", "", "If-None-Match", `"v1"`)
	do("POST", "/upload", strings.Repeat("u", 1000), "Expect", "100-continue")
	do("GET", "/large", "")
	do("GET", "/hello?token=secret", "", "Authorization", "Bearer secret")
	tr.CloseIdleConnections()

	// Pipelined requests on a raw connection: all written before any response is read.
	raw, err := net.Dial("tcp", rec.Addr)
	if err != nil {
		t.Fatal(err)
	}
	pipelined := "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n" +
		"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc" +
		"GET /chunked HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
	if _, err := io.WriteString(raw, pipelined); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(raw)
	for range 3 {
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
	}
	raw.Close()
	rec.Close()

	conns := rec.Conns()
	if len(conns) != 2 {
		t.Fatalf("recorded %d connections, want 2", len(conns))
	}
	tests := []struct {
		name  string
		conn  []protocolstest.Chunk
		want  []string
		check func(t *testing.T, es []*protocols.Entry)
	}{
		{
			name: "keep-alive client",
			conn: conns[0],
			want: []string{
				"GET /hello 200", "GET /chunked 200", "GET /gzip 200", "HEAD /hello 200", "DELETE /nocontent 204",
				"GET /cached 304", "POST /upload 200", "GET /large 200", "GET /hello?token=[REDACTED] 200",
			},
			check: func(t *testing.T, es []*protocols.Entry) {
				if b := es[1].HTTP.Response.Body; string(b.Data) != "part 0;part 1;part 2;" {
					t.Errorf("chunked body = %q", b.Data)
				}
				if te, _ := es[1].HTTP.Response.Headers.Get("Transfer-Encoding"); te != "chunked" {
					t.Errorf("chunked response has Transfer-Encoding %q", te)
				}
				if b := es[2].HTTP.Response.Body; b.Encoding != "gzip" || string(b.Data) != strings.Repeat("compressed ", 100) {
					t.Errorf("gzip body = %+v", b)
				}
				if b := es[3].HTTP.Response.Body; b.Size != 0 {
					t.Errorf("HEAD response body size = %d", b.Size)
				}
				up := es[6]
				if got := up.HTTP.Response.Informational; len(got) != 1 || got[0] != 100 {
					t.Errorf("upload informational = %v", got)
				}
				if b := up.HTTP.Request.Body; b.Size != 1000 || string(up.HTTP.Response.Body.Data) != "got 1000" {
					t.Errorf("upload request body %d, response %q", b.Size, up.HTTP.Response.Body.Data)
				}
				if b := es[7].HTTP.Response.Body; b.Size != largeBody || len(b.Data) != protocols.DefaultOptions().BodyCap || !b.Truncated {
					t.Errorf("large body size %d kept %d truncated %v", b.Size, len(b.Data), b.Truncated)
				}
				if es[7].ResponseSize <= largeBody {
					t.Errorf("large response size = %d", es[7].ResponseSize)
				}
				if v, _ := es[8].HTTP.Request.Headers.Get("Authorization"); v != protocols.Redacted || !es[8].Redacted {
					t.Errorf("authorization = %q", v)
				}
				for _, e := range es {
					if e.Duration <= 0 || len(e.Warnings) != 0 || e.Unmatched != "" {
						t.Errorf("%s: duration %v warnings %q unmatched %q", protocolstest.Describe(e), e.Duration, e.Warnings, e.Unmatched)
					}
				}
			},
		},
		{
			name: "pipelined",
			conn: conns[1],
			want: []string{"GET /hello 200", "POST /upload 200", "GET /chunked 200"},
			check: func(t *testing.T, es []*protocols.Entry) {
				if b := es[1].HTTP.Response.Body; string(b.Data) != "got 3" {
					t.Errorf("pipelined upload response = %q", b.Data)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := protocolstest.CheckSplit(t, New(), tt.conn, protocolstest.SplitOptions{Seeds: protocolstest.Seeds(0, 5)})
			if res.Err != nil || res.Upgrade != nil {
				t.Fatalf("replay: %v, %v", res.Err, res.Upgrade)
			}
			if got := protocolstest.DescribeAll(res.Entries); fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Fatalf("entries:\n got %q\nwant %q", got, tt.want)
			}
			tt.check(t, res.Entries)
		})
	}
}
