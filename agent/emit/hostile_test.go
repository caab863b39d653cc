package emit

import (
	"context"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// TestHostileHubMessage: whatever answers at the hub's address cannot make
// the agent buffer a message of its choosing. Before the read limit, a
// message of 64 MiB was read whole before it was refused.
func TestHostileHubMessage(t *testing.T) {
	const huge = 64 << 20
	served := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		up := websocket.Upgrader{}
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		defer close(served)
		c.ReadMessage() // the hello
		wr, err := c.NextWriter(websocket.TextMessage)
		if err != nil {
			return
		}
		chunk := []byte(strings.Repeat("a", 1<<20))
		for sent := 0; sent < huge; sent += len(chunk) {
			if _, err := wr.Write(chunk); err != nil {
				return // the agent hung up: what this test wants
			}
		}
		wr.Close()
	}))
	defer srv.Close()

	s := New(Config{HubURL: srv.URL, Token: []byte("t")})
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := s.session(ctx)
	runtime.ReadMemStats(&after)
	if err == nil {
		t.Fatal("the session went on after a message over the limit")
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > huge/4 {
		t.Errorf("reading one hostile message allocated %d MiB (the message was %d MiB)", grew>>20, huge>>20)
	}
	<-served
}
