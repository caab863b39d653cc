// Command traffic makes the varied, real HTTP/1.1 and Redis traffic that the
// sample capture (cmd/sonde/testdata/sample.pcapng) was recorded from: a Go
// net/http server and client, and Debian's redis-server when it is installed.
// record.sh beside it captures the loopback interface while this runs.
package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"time"
)

func main() {
	httpPort, redisPort := os.Args[1], os.Args[2]
	srv := &http.Server{Addr: "127.0.0.1:" + httpPort, Handler: api()}
	ln, err := net.Listen("tcp", srv.Addr)
	if err != nil {
		log.Fatal(err)
	}
	go srv.Serve(ln)
	base := "http://" + srv.Addr
	client := &http.Client{Timeout: 5 * time.Second}
	do := func(method, path, body string, hdr ...string) {
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := client.Do(req)
		if err != nil {
			log.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	do("GET", "/api/users", "")
	do("GET", "/api/users/42", "", "Accept", "application/json")
	do("POST", "/api/users", `{"name":"ada","role":"admin"}`, "Content-Type", "application/json", "Authorization", "Bearer s3cr3t")
	do("GET", "/api/users/7", "")
	do("GET", "/api/report", "", "Accept-Encoding", "gzip")
	do("PUT", "/api/users/42", `{"name":"ada lovelace"}`, "Content-Type", "application/json")
	do("DELETE", "/api/users/42", "")
	do("GET", "/api/slow", "")
	do("GET", "/api/stream", "")
	do("HEAD", "/api/users", "")
	do("GET", "/api/fail", "")
	do("GET", "/login?user=ada&token=abc123", "", "Cookie", "session=xyz")
	pipelined(srv.Addr)
	redis(redisPort)
	srv.Close()
}

func api() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/users", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode([]map[string]any{{"id": 42, "name": "ada"}, {"id": 7, "name": "grace"}})
	})
	mux.HandleFunc("GET /api/users/{id}", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("id") != "42" {
			http.Error(w, `{"error":"not found"}`, http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"id":42,"name":"ada"}`)
	})
	mux.HandleFunc("POST /api/users", func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Set-Cookie", "session=abc; HttpOnly")
		w.WriteHeader(http.StatusCreated)
		fmt.Fprint(w, `{"id":43}`)
	})
	mux.HandleFunc("PUT /api/users/{id}", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("DELETE /api/users/{id}", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /api/report", func(w http.ResponseWriter, r *http.Request) {
		var b bytes.Buffer
		zw := gzip.NewWriter(&b)
		for i := 0; i < 200; i++ {
			fmt.Fprintf(zw, `{"line":%d,"status":"ok"}`+"\n", i)
		}
		zw.Close()
		w.Header().Set("Content-Encoding", "gzip")
		w.Header().Set("Content-Type", "application/x-ndjson")
		w.Write(b.Bytes())
	})
	mux.HandleFunc("GET /api/slow", func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(150 * time.Millisecond)
		fmt.Fprint(w, "done")
	})
	mux.HandleFunc("GET /api/stream", func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i < 5; i++ {
			fmt.Fprintf(w, "chunk %d\n", i)
			w.(http.Flusher).Flush()
		}
	})
	mux.HandleFunc("GET /api/fail", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "upstream unavailable", http.StatusServiceUnavailable)
	})
	mux.HandleFunc("GET /login", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/api/users", http.StatusFound)
	})
	return mux
}

// pipelined writes three requests in one segment, as pipelining clients do.
func pipelined(addr string) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	fmt.Fprint(c, "GET /api/users/42 HTTP/1.1\r\nHost: api\r\n\r\nGET /api/users/7 HTTP/1.1\r\nHost: api\r\n\r\nGET /api/users HTTP/1.1\r\nHost: api\r\nConnection: close\r\n\r\n")
	io.Copy(io.Discard, bufio.NewReader(c))
}

// redis runs a few commands against a redis-server it starts, when Debian's is installed.
func redis(port string) {
	path, err := exec.LookPath("redis-server")
	if err != nil {
		log.Print("redis-server not installed: the sample has HTTP only")
		return
	}
	srv := exec.Command(path, "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
	if err := srv.Start(); err != nil {
		log.Fatal(err)
	}
	defer func() { srv.Process.Kill(); srv.Wait() }()
	var c net.Conn
	for i := 0; i < 100; i++ {
		if c, err = net.Dial("tcp", "127.0.0.1:"+port); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if c == nil {
		log.Fatal(err)
	}
	defer c.Close()
	r, w := bufio.NewReader(c), bufio.NewWriter(c)
	cmd := func(args ...string) {
		fmt.Fprintf(w, "*%d\r\n", len(args))
		for _, a := range args {
			fmt.Fprintf(w, "$%d\r\n%s\r\n", len(a), a)
		}
	}
	cmds := [][]string{
		{"SET", "user:42", `{"name":"ada"}`}, {"GET", "user:42"}, {"GET", "user:404"},
		{"INCR", "visits"}, {"LPUSH", "queue", "a", "b"}, {"HSET", "h", "f", "v"}, {"GET", "h"},
	}
	for _, a := range cmds {
		cmd(a...)
	}
	w.Flush()
	// Replies are read after all commands were sent: a pipeline.
	for range cmds {
		line, _ := r.ReadString('\n')
		if strings.HasPrefix(line, "$") && line != "$-1\r\n" {
			r.ReadString('\n')
		}
	}
}
