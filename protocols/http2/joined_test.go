package http2

import (
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/sondehq/sonde/protocols"
	"github.com/sondehq/sonde/protocols/protocolstest"
)

func TestJoinedMidStream(t *testing.T) {
	c := newConv(t).start().get(1, "/a").ok(1, "x")
	join := len(c.chunks)
	// Stream 3 reuses the dynamic table entries stream 1 added.
	c.get(3, "/b").ok(3, "y")
	// Stream 5 only adds entries, which stream 7 then references.
	newReq := []string{":method", "GET", ":scheme", "http", ":authority", "new.example", ":path", "/c", "x-new", "1"}
	c.headers(c2s, 5, true, newReq...)
	c.headers(s2c, 5, true, ":status", "404")
	c.headers(c2s, 7, true, newReq...)
	c.headers(s2c, 7, true, ":status", "404")
	chunks := c.chunks[join:]

	for _, dir := range []protocols.Direction{c2s, s2c} {
		var first []byte
		for _, ch := range chunks {
			if ch.Dir == dir {
				first = ch.Data
				break
			}
		}
		got := New().Detect(first, protocols.Ports{Src: 40000, Dst: 80})
		if got.Verdict != protocols.Match || got.FromClient != (dir == c2s) {
			t.Errorf("Detect(first %s bytes) = %+v", dir, got)
		}
	}

	res := replaySplit(t, protocols.ConnInfo{MidStream: true}, chunks)
	want := []string{
		"http2 GET /b 200 #3 [" + warnJoined + "]",
		"http2 GET /c 404 #5",
		"http2 GET /c 404 #7",
	}
	if got := lines(res.Entries); strings.Join(got, "\n") != strings.Join(want, "\n") || res.Err != nil {
		t.Fatalf("entries (err %v):\n%s\nwant:\n%s", res.Err, strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// What stream 3 shows is right, and what it could not decode is absent.
	req := res.Entries[0].HTTP.Request
	if req.Authority != "" || len(req.Headers) != 0 {
		t.Errorf("stream 3 request shows fields it cannot know: %+v", req)
	}
	if r := res.Entries[2].HTTP.Request; r.Authority != "new.example" || len(r.Headers) != 1 {
		t.Errorf("stream 7 request = %+v", r)
	}
}

func TestJoinedStreamsOpenedBeforeTheJoin(t *testing.T) {
	c := newConv(t).start()
	c.grpcRequest(1, "/s.S/Stream", true, pb("q", 1))
	c.headers(s2c, 1, false, ":status", "200", "content-type", "application/grpc")
	join := len(c.chunks)
	c.data(s2c, 1, false, grpcFrame(pb("r", 1), false))
	c.data(s2c, 1, false, grpcFrame(pb("r", 2), false))
	c.headers(s2c, 1, true, "grpc-status", "0")
	c.get(3, "/after").ok(3, "")
	res := replaySplit(t, protocols.ConnInfo{MidStream: true}, c.chunks[join:])
	want := []string{
		"http2    #1 unmatched=request",
		"http2 GET /after 200 #3",
	}
	if got := lines(res.Entries); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("entries:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// The response shows what was seen of it: its body and trailers, no status.
	r := res.Entries[0].HTTP.Response
	if v, _ := r.Trailers.Get("grpc-status"); r.StatusCode != 0 || len(r.Headers) != 0 || v != "0" || r.Body.Size != 20 {
		t.Errorf("stream 1 response = %+v", r)
	}
}

func TestJoinedInsideAFrame(t *testing.T) {
	c := newConv(t).start().get(1, "/a")
	c.headers(s2c, 1, false, ":status", "200")
	c.data(s2c, 1, false, []byte(strings.Repeat("z", 3000)))
	join := len(c.chunks) - 1
	c.data(s2c, 1, true, []byte("end"))
	c.get(3, "/b").ok(3, "b")
	c.write(s2c, func(fr *http2.Framer) error { return fr.WritePing(true, [8]byte{}) })
	chunks := append([]protocolstest.Chunk(nil), c.chunks[join:]...)
	// The server side starts 1000 bytes into a DATA frame.
	chunks[0].Data = chunks[0].Data[1000:]
	res := replaySplit(t, protocols.ConnInfo{MidStream: true}, chunks)
	want := []string{
		// The end of stream 1's response, found after the cut frame.
		"http2    #1 unmatched=request",
		"http2 GET /b 200 #3 [" + warnJoined + "]",
	}
	if got := lines(res.Entries); strings.Join(got, "\n") != strings.Join(want, "\n") || res.Err != nil {
		t.Fatalf("entries (err %v):\n%s\nwant:\n%s", res.Err, strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestGap(t *testing.T) {
	t.Run("mid-frame, boundary found by search", func(t *testing.T) {
		c := newConv(t).start().get(1, "/a").ok(1, "a")
		c.get(3, "/b")
		c.get(5, "/c")
		c.write(c2s, func(fr *http2.Framer) error { return fr.WritePing(false, [8]byte{}) })
		c.ok(3, "b").ok(5, "c")
		// Lose the first 4 bytes of stream 3's HEADERS frame and a byte of
		// its payload: what follows the gap is no frame header.
		i := len(c.chunks) - 7
		cut := c.chunks[i]
		chunks := append([]protocolstest.Chunk(nil), c.chunks[:i]...)
		chunks = append(chunks, protocolstest.Chunk{Dir: c2s, Gap: -1, Time: cut.Time},
			protocolstest.Chunk{Dir: c2s, Data: cut.Data[frameHeaderLen+1:], Time: cut.Time})
		chunks = append(chunks, c.chunks[i+1:]...)
		res := replaySplit(t, protocols.ConnInfo{}, chunks)
		want := []string{
			"http2 GET /a 200 #1",
			"http2   200 #3 unmatched=request",
			"http2 GET /c 200 #5 [" + warnJoined + "]",
		}
		if got := lines(res.Entries); strings.Join(got, "\n") != strings.Join(want, "\n") || res.Err != nil {
			t.Fatalf("entries (err %v):\n%s\nwant:\n%s", res.Err, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	})
	t.Run("inside a data frame", func(t *testing.T) {
		c := newConv(t).start().get(1, "/a")
		c.headers(s2c, 1, false, ":status", "200")
		c.data(s2c, 1, true, []byte(strings.Repeat("d", 1000)))
		c.get(3, "/b").ok(3, "fine")
		// Cut 300 bytes out of the middle of the DATA frame.
		i := len(c.chunks) - 4
		f := c.chunks[i]
		chunks := append([]protocolstest.Chunk(nil), c.chunks[:i]...)
		chunks = append(chunks,
			protocolstest.Chunk{Dir: s2c, Data: f.Data[:400], Time: f.Time},
			protocolstest.Chunk{Dir: s2c, Gap: 300, Time: f.Time},
			protocolstest.Chunk{Dir: s2c, Data: f.Data[700:], Time: f.Time})
		chunks = append(chunks, c.chunks[i+1:]...)
		res := replay(t, protocols.ConnInfo{}, chunks)
		want := []string{"http2 GET /a 200 #1 gap", "http2 GET /b 200 #3"}
		if got := lines(res.Entries); strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Fatalf("entries:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	})
	t.Run("across a header block", func(t *testing.T) {
		c := newConv(t).start().get(1, "/a").ok(1, "a")
		lost := len(c.chunks)
		c.get(3, "/b")
		c.get(5, "/c")
		c.ok(3, "b").ok(5, "c")
		chunks := append([]protocolstest.Chunk(nil), c.chunks[:lost]...)
		chunks = append(chunks, protocolstest.Chunk{Dir: c2s, Gap: -1, Time: c.now})
		chunks = append(chunks, c.chunks[lost+1:]...)
		res := replaySplit(t, protocols.ConnInfo{}, chunks)
		want := []string{
			"http2 GET /a 200 #1",
			"http2   200 #3 unmatched=request",
			"http2 GET /c 200 #5 [" + warnJoined + "]",
		}
		if got := lines(res.Entries); strings.Join(got, "\n") != strings.Join(want, "\n") || res.Err != nil {
			t.Fatalf("entries (err %v):\n%s\nwant:\n%s", res.Err, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	})
}

func TestUpgrade(t *testing.T) {
	start := time.Unix(1_700_000_000, 0)
	up := &protocols.Entry{
		Protocol:    protocols.HTTP1,
		Start:       start,
		RequestSize: 120,
		HTTP: &protocols.HTTPRecord{
			Upgrade: "h2c",
			Request: &protocols.HTTPRequest{
				Method: "GET", Target: "/up", Path: "/up", Version: "HTTP/1.1", Authority: "a",
				Headers: protocols.Headers{{Name: "Host", Value: "a"}, {Name: "Upgrade", Value: "h2c"},
					{Name: "HTTP2-Settings", Value: "AAMAAABkAAQAAP__"}},
			},
		},
	}
	c := newConv(t)
	c.write(s2c, func(fr *http2.Framer) error { return fr.WriteSettings() })
	c.add(c2s, []byte(clientPreface))
	c.write(c2s, func(fr *http2.Framer) error { return fr.WriteSettings() })
	c.ok(1, "upgraded")
	c.get(3, "/next").ok(3, "")
	res := replaySplit(t, protocols.ConnInfo{Upgrade: up}, c.chunks)
	want := []string{"http2 GET /up 200 #1", "http2 GET /next 200 #3"}
	if got := lines(res.Entries); strings.Join(got, "\n") != strings.Join(want, "\n") || res.Err != nil {
		t.Fatalf("entries (err %v):\n%s\nwant:\n%s", res.Err, strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	e := res.Entries[0]
	if e.HTTP.Upgrade != "h2c" || e.HTTP.Request.Version != "HTTP/1.1" || string(e.HTTP.Response.Body.Data) != "upgraded" ||
		!e.Start.Equal(start) || e.RequestSize < 120 || len(e.HTTP.Response.Informational) != 1 {
		t.Errorf("upgraded entry = %+v", e)
	}
}

func TestDetect(t *testing.T) {
	c := newConv(t)
	c.write(s2c, func(fr *http2.Framer) error {
		return fr.WriteSettings(http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: 100})
	})
	serverSettings := c.chunks[0].Data
	tests := []struct {
		name   string
		prefix string
		ports  protocols.Ports
		want   protocols.Detection
	}{
		{"preface", clientPreface + "\x00\x00", protocols.Ports{}, protocols.Detection{Verdict: protocols.Match, FromClient: true}},
		{"preface prefix", "PRI * HTTP/2", protocols.Ports{}, protocols.Detection{Verdict: protocols.NeedMore}},
		{"server settings first", string(serverSettings), protocols.Ports{Src: 80, Dst: 40000}, protocols.Detection{Verdict: protocols.Match}},
		{"http1 request", "GET / HTTP/1.1\r\nHost: a\r\n\r\n", protocols.Ports{}, protocols.Detection{Verdict: protocols.NoMatch}},
		{"http1 short", "GE", protocols.Ports{}, protocols.Detection{Verdict: protocols.NeedMore}},
		{"http1 response", "HTTP/1.1 200 OK\r\n", protocols.Ports{}, protocols.Detection{Verdict: protocols.NoMatch}},
		{"tls", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", protocols.Ports{}, protocols.Detection{Verdict: protocols.NoMatch}},
		{"redis", "*1\r\n$4\r\nPING\r\n", protocols.Ports{}, protocols.Detection{Verdict: protocols.NoMatch}},
		{"kafka", "\x00\x00\x00\x2a\x00\x12\x00\x03\x00\x00\x00\x01", protocols.Ports{}, protocols.Detection{Verdict: protocols.NoMatch}},
		{"amqp", "AMQP\x00\x00\x09\x01", protocols.Ports{}, protocols.Detection{Verdict: protocols.NoMatch}},
		{"settings ack then ping", "\x00\x00\x00\x04\x01\x00\x00\x00\x00" + "\x00\x00\x08\x06\x00\x00\x00\x00\x00" + "12345678",
			protocols.Ports{Src: 40000, Dst: 7070}, protocols.Detection{Verdict: protocols.Match, FromClient: true}},
		{"one data frame", "\x00\x00\x02\x00\x00\x00\x00\x00\x01hi", protocols.Ports{}, protocols.Detection{Verdict: protocols.NeedMore}},
		{"settings with stream", "\x00\x00\x00\x04\x00\x00\x00\x00\x01", protocols.Ports{}, protocols.Detection{Verdict: protocols.NoMatch}},
		{"ping of wrong length", "\x00\x00\x07\x06\x00\x00\x00\x00\x00", protocols.Ports{}, protocols.Detection{Verdict: protocols.NoMatch}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := New().Detect([]byte(tt.prefix), tt.ports); got != tt.want {
				t.Errorf("Detect = %+v, want %+v", got, tt.want)
			}
		})
	}
}
