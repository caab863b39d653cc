// Command web is the workload of the node's tests: a small HTTP server
// ("web serve ADDR") that answers every request with its path, and a client
// ("web get URL COUNT") that sends COUNT requests one after another and
// exits non-zero on the first that fails, so that a pod's exit status says
// whether the traffic went through.
package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"time"
)

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: web serve ADDR | web get URL COUNT")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "serve":
		http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain")
			fmt.Fprintf(w, "hello from %s: %s\n", os.Getenv("HOSTNAME"), r.URL.Path)
		})
		srv := &http.Server{Addr: os.Args[2], ReadHeaderTimeout: 5 * time.Second}
		fmt.Fprintln(os.Stderr, srv.ListenAndServe())
		os.Exit(1)
	case "get":
		count := 1
		if len(os.Args) > 3 {
			n, err := strconv.Atoi(os.Args[3])
			if err != nil {
				fmt.Fprintln(os.Stderr, "COUNT:", err)
				os.Exit(2)
			}
			count = n
		}
		c := &http.Client{Timeout: 5 * time.Second}
		for i := range count {
			// Retry the first request while the server's pod comes up.
			var resp *http.Response
			var err error
			for try := 0; try < 50; try++ {
				if resp, err = c.Get(fmt.Sprintf("%s/req/%d", os.Args[2], i)); err == nil || i > 0 {
					break
				}
				time.Sleep(200 * time.Millisecond)
			}
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			fmt.Printf("%d %s", resp.StatusCode, body)
		}
	default:
		fmt.Fprintln(os.Stderr, "unknown command", os.Args[1])
		os.Exit(2)
	}
}
