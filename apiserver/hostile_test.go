package apiserver_test

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/sondehq/sonde/apiserver"
	"github.com/sondehq/sonde/protocols"
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

// TestAgentCannotSilenceAnother: anyone holding the shared token could read
// an agent's agent_id from /api/v1/agents, send one empty batch numbered
// 2^64-1 under it, and from then on that agent's batches were acknowledged
// as resends and never stored, with nothing counted. Now a connected
// agent_id cannot be used by a second connection, and a batch number far
// ahead of the agent's last stored one is refused with a sentence; both
// are counted, and every entry the victim sends is stored.
func TestAgentCannotSilenceAnother(t *testing.T) {
	h := startHub(t, apiserver.Config{DataDir: t.TempDir(), StorageLimit: 64 << 20}, "127.0.0.1:0")
	at := time.Now()
	var want []string
	// send sends one batch on c and returns its ack.
	send := func(c *websocket.Conn, seq uint64, from int) wire.Ack {
		t.Helper()
		es := []*protocols.Entry{makeEntry(from, at), makeEntry(from+1, at)}
		want = append(want, es[0].Summary.Target, es[1].Summary.Target)
		if err := c.WriteMessage(websocket.TextMessage, batchJSON(t, seq, es...)); err != nil {
			t.Fatal(err)
		}
		var a wire.Ack
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if err := c.ReadJSON(&a); err != nil {
			t.Fatalf("victim's batch %d: %v", seq, err)
		}
		return a
	}
	connect := func(id string) *websocket.Conn {
		t.Helper()
		c, _, err := rawAgent(t, h, string(testToken))
		if err != nil {
			t.Fatal(err)
		}
		if err := c.WriteJSON(wire.Hello{Type: wire.TypeHello, AgentID: id, Node: "n1"}); err != nil {
			t.Fatal(err)
		}
		return c
	}
	// attack says hello as id and sends an empty batch numbered 2^64-1,
	// returning what the hub answered.
	attack := func(id string) error {
		c := connect(id)
		defer c.Close()
		msg, _ := wire.AppendBatch(nil, math.MaxUint64, nil)
		if err := c.WriteMessage(websocket.TextMessage, msg); err != nil {
			return err
		}
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		var a wire.Ack
		return c.ReadJSON(&a)
	}
	victim := connect("victim-agent")
	if a := send(victim, 1, 0); a.Stored != 2 {
		t.Fatalf("victim's first batch: %+v", a)
	}
	var agents struct{ Agents []apiserver.AgentInfo }
	h.get("/api/v1/agents", &agents)
	id := agents.Agents[0].AgentID

	// While the victim is connected.
	if err := attack(id); err == nil || !strings.Contains(err.Error(), "already connected") {
		t.Errorf("a second connection under a connected agent_id: %v, want a refusal saying it is already connected", err)
	}
	if a := send(victim, 2, 2); a.Stored != 2 {
		t.Errorf("victim's batch 2 after the attack: %+v, want 2 stored", a)
	}
	// While it is away.
	victim.Close()
	if err := attack(id); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Errorf("batch 2^64-1 under a known agent_id: %v, want a refusal", err)
	}
	victim = connect(id)
	if a := send(victim, 3, 4); a.Stored != 2 {
		t.Errorf("victim's batch 3 after the attack: %+v, want 2 stored", a)
	}
	victim.Close()

	if got := h.allTargets(); !slices.Equal(got, want) {
		t.Errorf("stored %v, want %v", got, want)
	}
	if got := h.metric(`sonde_hub_ingest_rejected_total{reason="agent_connected"}`); got != 1 {
		t.Errorf("second connections refused: counted %v, want 1", got)
	}
	if got := h.metric(`sonde_hub_ingest_rejected_total{reason="batch_ahead"}`); got != 1 {
		t.Errorf("batches far ahead refused: counted %v, want 1", got)
	}
}

// TestIndexRecordMustAgreeWithJSON: the hub trusted an entry's index record
// over its JSON, so an agent could send an entry that searches found under
// one namespace, method and status while the UI showed another. Now an
// entry whose record disagrees with its JSON is indexed from its JSON, and
// counted.
func TestIndexRecordMustAgreeWithJSON(t *testing.T) {
	h := startHub(t, apiserver.Config{DataDir: t.TempDir(), StorageLimit: 64 << 20}, "127.0.0.1:0")
	c, _, err := rawAgent(t, h, string(testToken))
	if err != nil {
		t.Fatal(err)
	}
	c.WriteJSON(wire.Hello{Type: wire.TypeHello, AgentID: "a1", Node: "n1", Source: "ebpf"})
	shown := makeEntry(0, time.Now()) // what the UI shows
	shown.Node, shown.Source = "n1", "ebpf"
	shown.Dst.Namespace = "shop"
	claimed := *shown // what the index record claims
	claimed.Dst.Namespace = "payments"
	claimed.Summary = protocols.Summary{Method: "DELETE", Target: "/admin", Status: "500"}
	honest := makeEntry(2, time.Now())
	honest.Node, honest.Source = "n1", "ebpf"
	j, _ := json.Marshal(shown)
	lying := [2][]byte{wire.AppendIndex(nil, &claimed), j}
	c.WriteMessage(websocket.BinaryMessage, indexedBatch(1, lying, indexed(honest)))
	var ack wire.Ack
	if err := c.ReadJSON(&ack); err != nil || ack.Stored != 2 {
		t.Fatalf("ack %+v, %v", ack, err)
	}
	for _, tc := range []struct {
		q    string
		want []string
	}{
		{`dst.namespace == "payments" || method == "DELETE" || status == "500" || target == "/admin"`, nil},
		{`target == "t-0" && dst.namespace == "shop" && method == "` + shown.Summary.Method + `"`, []string{"t-0"}},
		{`target == "t-2"`, []string{"t-2"}},
	} {
		var p page
		if code := h.get("/api/v1/entries?q="+urlEscape(tc.q), &p); code != http.StatusOK {
			t.Fatalf("%s: %d", tc.q, code)
		}
		var got []string
		for _, e := range p.Entries {
			got = append(got, e.Summary.Target)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: found %v, want %v", tc.q, got, tc.want)
		}
	}
	if got := h.metric("sonde_hub_index_mismatch_entries_total"); got != 1 {
		t.Errorf("entries whose record disagreed: counted %v, want 1", got)
	}
}
