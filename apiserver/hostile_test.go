package apiserver_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/sondehq/sonde/apiserver"
	"github.com/sondehq/sonde/protocols/wire"
)

// TestWindowBounds: a window too short to divide into the timeline's
// buckets, or too long, is a bad request with a sentence, never a panic
// (window=1ns divided the window by zero).
func TestWindowBounds(t *testing.T) {
	h := startHub(t, apiserver.Config{DataDir: t.TempDir(), StorageLimit: 64 << 20}, "127.0.0.1:0")
	for _, path := range []string{"/api/v1/stats", "/api/v1/servicemap"} {
		for _, w := range []string{"1ns", "59ms", "-1m", "200h", "soon"} {
			var e struct {
				Error string `json:"error"`
			}
			if code := h.get(path+"?window="+w, &e); code != http.StatusBadRequest || e.Error == "" {
				t.Errorf("%s?window=%s: %d %q, want 400 with a reason", path, w, code, e.Error)
			}
		}
		if code := h.get(path+"?window=60ms", nil); code != http.StatusOK {
			t.Errorf("%s?window=60ms: %d, want 200", path, code)
		}
	}
}

// TestAgentCountersBounded: an agent cannot make the hub keep counters
// without end. Every name was kept for the hub's life, and 1.5 million of
// them made /api/v1/agents, which each UI polls, 87 MB.
func TestAgentCountersBounded(t *testing.T) {
	h := startHub(t, apiserver.Config{DataDir: t.TempDir(), StorageLimit: 64 << 20}, "127.0.0.1:0")
	c, _, err := rawAgent(t, h, string(testToken))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.WriteJSON(wire.Hello{Type: wire.TypeHello, AgentID: "a1", Node: "n1"}); err != nil {
		t.Fatal(err)
	}
	counters := map[string]uint64{"capture_lost": 1, strings.Repeat("x", 4096): 1}
	for i := range 5000 {
		counters[fmt.Sprint("made_up_", i)] = 1
	}
	msg, _ := wire.AppendBatch(nil, 1, counters)
	if err := c.WriteMessage(websocket.TextMessage, msg); err != nil {
		t.Fatal(err)
	}
	var ack wire.Ack
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if err := c.ReadJSON(&ack); err != nil || ack.Seq != 1 {
		t.Fatalf("ack %+v, %v", ack, err)
	}
	var agents struct{ Agents []apiserver.AgentInfo }
	h.get("/api/v1/agents", &agents)
	if len(agents.Agents) != 1 {
		t.Fatalf("agents: %+v", agents.Agents)
	}
	a := agents.Agents[0]
	if len(a.Counters) > 1024+len(wire.AgentCounters()) || a.CountersRefused < 5001-1024 {
		t.Errorf("the hub keeps %d counters of one agent and refused %d", len(a.Counters), a.CountersRefused)
	}
	if a.Counters["capture_lost"] != 1 {
		t.Error("the agent's own capture_lost was crowded out")
	}
	if _, long := a.Counters[strings.Repeat("x", 4096)]; long {
		t.Error("a counter with a 4 KiB name was kept")
	}
}

// TestStreamsBounded: stream websockets were unlimited, each with its own
// goroutines, queue and history; past MaxStreams a new one gets 503 with a
// sentence, counted, and one closing makes room again.
func TestStreamsBounded(t *testing.T) {
	h := startHub(t, apiserver.Config{DataDir: t.TempDir(), StorageLimit: 64 << 20, MaxStreams: 3}, "127.0.0.1:0")
	var open []*websocket.Conn
	for range 3 {
		c, _, err := websocket.DefaultDialer.Dial(h.wsURL("/api/v1/stream"), nil)
		if err != nil {
			t.Fatal(err)
		}
		open = append(open, c)
	}
	_, resp, err := websocket.DefaultDialer.Dial(h.wsURL("/api/v1/stream"), nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("a fourth stream: %v, %v; want 503", err, resp)
	}
	if got := h.metric("sonde_hub_stream_refused_total"); got != 1 {
		t.Errorf("refused streams counted %v, want 1", got)
	}
	open[0].Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, _, err := websocket.DefaultDialer.Dial(h.wsURL("/api/v1/stream"), nil)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no room after a stream closed: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, c := range open[1:] {
		c.Close()
	}
}
