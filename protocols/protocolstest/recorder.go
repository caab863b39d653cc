package protocolstest

import (
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/sondehq/sonde/protocols"
)

// Recorder is a TCP proxy on loopback that records what a client and a real
// server said to each other, in the order the proxy read it. Point the client
// at Addr; each accepted connection is recorded separately.
type Recorder struct {
	Addr string

	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  [][]Chunk
	wg     sync.WaitGroup
}

// NewRecorder starts a proxy to target (host:port) and stops it when the test ends.
func NewRecorder(t testing.TB, target string) *Recorder {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("recorder: %v", err)
	}
	r := &Recorder{Addr: ln.Addr().String(), ln: ln, target: target}
	r.wg.Add(1)
	go r.accept()
	t.Cleanup(r.Close)
	return r
}

func (r *Recorder) accept() {
	defer r.wg.Done()
	for {
		c, err := r.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", r.target)
		if err != nil {
			c.Close()
			continue
		}
		r.mu.Lock()
		idx := len(r.conns)
		r.conns = append(r.conns, nil)
		r.mu.Unlock()
		r.wg.Add(2)
		go r.pump(idx, protocols.ClientToServer, c, s)
		go r.pump(idx, protocols.ServerToClient, s, c)
	}
}

func (r *Recorder) pump(idx int, dir protocols.Direction, from, to net.Conn) {
	defer r.wg.Done()
	buf := make([]byte, 32<<10)
	for {
		n, err := from.Read(buf)
		if n > 0 {
			// Record before forwarding, so that the recorded order is a
			// causal order: a reply is never recorded before its request.
			r.mu.Lock()
			r.conns[idx] = append(r.conns[idx], Chunk{Dir: dir, Data: append([]byte(nil), buf[:n]...), Time: time.Now()})
			r.mu.Unlock()
			if _, werr := to.Write(buf[:n]); werr != nil {
				break
			}
		}
		if err != nil {
			break
		}
	}
	if tc, ok := to.(*net.TCPConn); ok {
		tc.CloseWrite()
	} else {
		to.Close()
	}
	if err := from.(*net.TCPConn).CloseRead(); err != nil && err != io.EOF {
		from.Close()
	}
}

// Close stops accepting and waits for the open connections to finish.
func (r *Recorder) Close() {
	r.ln.Close()
	r.wg.Wait()
}

// Conns returns the recorded connections so far, in the order they were accepted.
func (r *Recorder) Conns() [][]Chunk {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([][]Chunk, len(r.conns))
	for i, c := range r.conns {
		out[i] = append([]Chunk(nil), c...)
	}
	return out
}
