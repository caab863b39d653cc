package kafka

import (
	"bytes"
	"encoding/binary"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/golang/snappy"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sondehq/sonde/protocols"
	"github.com/sondehq/sonde/protocols/protocolstest"
)

func TestDetect(t *testing.T) {
	metadata := request(kmsg.NewPtrMetadataRequest(), 12, 5, "console-producer")
	apiVersions := request(kmsg.NewPtrApiVersionsRequest(), 3, 1, "rdkafka")
	resp := response(kmsg.NewPtrMetadataResponse(), 12, 5)
	badClientID := slices.Clone(metadata)
	badClientID[15] = '\n'
	tooNew := slices.Clone(metadata)
	binary.BigEndian.PutUint16(tooNew[6:], 99)
	unknownKey := slices.Clone(metadata)
	binary.BigEndian.PutUint16(unknownKey[4:], 999)
	broker := protocols.Ports{Src: 9092, Dst: 40000}
	client := protocols.Ports{Src: 40000, Dst: 9092}
	tests := []struct {
		name  string
		p     []byte
		ports protocols.Ports
		want  protocols.Detection
	}{
		{"metadata request", metadata, client, protocols.Detection{Verdict: protocols.Match, FromClient: true}},
		{"api versions on another port", apiVersions, protocols.Ports{Src: 1, Dst: 2}, protocols.Detection{Verdict: protocols.Match, FromClient: true}},
		{"request header probe only", metadata[:requestProbe], client, protocols.Detection{Verdict: protocols.Match, FromClient: true}},
		{"short prefix", metadata[:9], client, protocols.Detection{Verdict: protocols.NeedMore}},
		{"empty", nil, client, protocols.Detection{Verdict: protocols.NeedMore}},
		{"response from the broker port", resp, broker, protocols.Detection{Verdict: protocols.Match}},
		{"response elsewhere", resp, protocols.Ports{Src: 5000, Dst: 40000}, protocols.Detection{Verdict: protocols.NoMatch}},
		// From the broker port, a response is the likelier reading.
		{"request-shaped bytes from the broker port", metadata, broker, protocols.Detection{Verdict: protocols.Match}},
		{"control byte in client id", badClientID, client, protocols.Detection{Verdict: protocols.NoMatch}},
		{"version kmsg does not know", tooNew, client, protocols.Detection{Verdict: protocols.NoMatch}},
		{"unknown api key", unknownKey, client, protocols.Detection{Verdict: protocols.NoMatch}},
		{"http", []byte("GET / HTTP/1.1\r\nHost: a\r\n\r\n"), client, protocols.Detection{Verdict: protocols.NoMatch}},
		{"http one byte", []byte("G"), client, protocols.Detection{Verdict: protocols.NoMatch}},
		{"redis", []byte("*1\r\n$4\r\nPING\r\n"), broker, protocols.Detection{Verdict: protocols.NoMatch}},
		{"amqp", []byte("AMQP\x00\x00\x09\x01"), client, protocols.Detection{Verdict: protocols.NoMatch}},
		{"tls", []byte{0x16, 0x03, 0x01, 0x02, 0x00, 0x01}, client, protocols.Detection{Verdict: protocols.NoMatch}},
		{"length too small", []byte{0, 0, 0, 3, 0, 3, 0, 1, 0, 0, 0, 1, 0, 0}, client, protocols.Detection{Verdict: protocols.NoMatch}},
	}
	d := New()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := d.Detect(tt.p, tt.ports); got != tt.want {
				t.Errorf("Detect = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func metadataTopic(name string, code int16) kmsg.MetadataResponseTopic {
	t := kmsg.NewMetadataResponseTopic()
	t.Topic = kmsg.StringPtr(name)
	t.ErrorCode = code
	return t
}

func metadataExchange(corr int32, topics ...string) ([]byte, []byte) {
	req := kmsg.NewPtrMetadataRequest()
	resp := kmsg.NewPtrMetadataResponse()
	for _, name := range topics {
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(name)
		req.Topics = append(req.Topics, rt)
		resp.Topics = append(resp.Topics, metadataTopic(name, 0))
	}
	return request(req, 12, corr, "app"), response(resp, 12, corr)
}

func produceRequest(version int16, acks int16, topic string, records []byte) kmsg.Request {
	req := kmsg.NewPtrProduceRequest()
	req.Acks = acks
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	p := kmsg.NewProduceRequestTopicPartition()
	p.Records = records
	rt.Partitions = append(rt.Partitions, p)
	req.Topics = append(req.Topics, rt)
	req.SetVersion(version)
	return req
}

func produceResponse(topic string, code int16) kmsg.Response {
	resp := kmsg.NewPtrProduceResponse()
	rt := kmsg.NewProduceResponseTopic()
	rt.Topic = topic
	p := kmsg.NewProduceResponseTopicPartition()
	p.ErrorCode = code
	rt.Partitions = append(rt.Partitions, p)
	resp.Topics = append(resp.Topics, rt)
	return resp
}

func fetchResponse(topic string, batches []byte) kmsg.Response {
	resp := kmsg.NewPtrFetchResponse()
	rt := kmsg.NewFetchResponseTopic()
	rt.Topic = topic
	p := kmsg.NewFetchResponseTopicPartition()
	p.RecordBatches = batches
	rt.Partitions = append(rt.Partitions, p)
	resp.Topics = append(resp.Topics, rt)
	return resp
}

func fetchRequest(topic string) kmsg.Request {
	req := kmsg.NewPtrFetchRequest()
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = topic
	rt.Partitions = append(rt.Partitions, kmsg.NewFetchRequestTopicPartition())
	req.Topics = append(req.Topics, rt)
	return req
}

// withTags replaces the empty tagged-field section at offset at of a frame.
func withTags(f []byte, at int, tags ...byte) []byte {
	out := slices.Concat(f[:at], tags, f[at+1:])
	binary.BigEndian.PutUint32(out, uint32(len(out)-4))
	return out
}

func TestConn(t *testing.T) {
	two := []testRecord{{key: []byte("k1"), value: []byte("v1"), headers: [][2]string{{"h", "x"}}}, {value: []byte("v2")}}
	metaReq, metaResp := metadataExchange(9, "orders")

	unknownTopic := kmsg.NewPtrMetadataResponse()
	unknownTopic.Topics = append(unknownTopic.Topics, metadataTopic("orders", 3))

	apiVersionsV0 := binary.BigEndian.AppendUint32(nil, 10)
	apiVersionsV0 = binary.BigEndian.AppendUint32(apiVersionsV0, 4)
	apiVersionsV0 = append(apiVersionsV0, 0, 35, 0, 0, 0, 0) // UNSUPPORTED_VERSION, no keys

	handshake0 := kmsg.NewPtrSASLHandshakeRequest()
	handshake0.Mechanism = "PLAIN"
	rawToken := appendBytes32(nil, []byte("\x00alice\x00s3cret-pw"))

	// A request header with a tagged field (tag 0, two bytes), and a
	// response header with one.
	taggedReq := withTags(metaReq, 4+2+2+4+2+len("app"), 1, 0, 2, 'x', 'y')
	taggedResp := withTags(metaResp, 8, 1, 0, 1, 'z')

	tests := []struct {
		name      string
		info      protocols.ConnInfo
		chunks    []protocolstest.Chunk
		want      []string
		wantErr   string
		wantCount string
	}{
		{
			name:   "metadata with an unknown topic",
			chunks: conversation(metaReq, response(unknownTopic, 12, 9)),
			want:   []string{`Metadata v12 #9 "orders" "UNKNOWN_TOPIC_OR_PARTITION"`},
		},
		{
			name: "produce v9 and its response",
			chunks: conversation(
				request(produceRequest(9, -1, "t", batch(t, 0, 0, two...)), 9, 2, "app"),
				response(produceResponse("t", 0), 9, 2)),
			want: []string{`Produce v9 #2 "t" "NONE" records=2`},
		},
		{
			name: "produce error per partition",
			chunks: conversation(
				request(produceRequest(3, 1, "t", batch(t, 0, 0, two...)), 3, 2, "app"),
				response(produceResponse("t", 6), 3, 2)),
			want: []string{`Produce v3 #2 "t" "NOT_LEADER_FOR_PARTITION" records=2`},
		},
		{
			name: "produce with acks=0 expects no response",
			chunks: conversation(
				request(produceRequest(7, 0, "t", batch(t, 0, 0, two...)), 7, 3, "app"), nil,
				metaReq, metaResp),
			want: []string{`Produce v7 #3 "t" "" records=2`, `Metadata v12 #9 "orders" "NONE"`},
		},
		{
			name: "fetch v3 with a gzip legacy message set",
			chunks: conversation(
				request(fetchRequest("logs"), 3, 4, "app"),
				response(fetchResponse("logs", legacyMessage(1, 1, 2, nil, compress(t, 1, slices.Concat(
					legacyMessage(1, 0, 0, []byte("a"), []byte("1")),
					legacyMessage(1, 0, 1, []byte("b"), []byte("2")),
					legacyMessage(1, 0, 2, []byte("c"), []byte("3")))))), 3, 4)),
			want: []string{`Fetch v3 #4 "logs" "NONE" records=3`},
		},
		{
			name: "fetch v12 with two batches and a partial third",
			chunks: conversation(
				request(fetchRequest("logs"), 12, 4, "app"),
				response(fetchResponse("logs", slices.Concat(batch(t, 4, 0, two...), batch(t, 3, 2, two...), batch(t, 0, 4, two...)[:30])), 12, 4)),
			want: []string{`Fetch v12 #4 "logs" "NONE" records=4`},
		},
		{
			name: "api versions answered in v0",
			chunks: conversation(
				request(kmsg.NewPtrApiVersionsRequest(), 3, 4, "app"), apiVersionsV0),
			want: []string{`ApiVersions v3 #4 "" "UNSUPPORTED_VERSION"`},
		},
		{
			name:   "tagged fields in both headers",
			chunks: conversation(taggedReq, taggedResp),
			want:   []string{`Metadata v12 #9 "orders" "NONE"`},
		},
		{
			name:      "response whose request was not seen",
			info:      protocols.ConnInfo{MidStream: true},
			chunks:    conversation(nil, metaResp),
			want:      []string{` v-1 #9 "" "" unmatched=request`},
			wantCount: CountUnmatchedResponse,
		},
		{
			name: "an unanswered request before an answered one",
			chunks: conversation(
				request(kmsg.NewPtrHeartbeatRequest(), 4, 8, "app"), nil,
				metaReq, metaResp),
			want: []string{`Heartbeat v4 #8 "" "" unmatched=response`, `Metadata v12 #9 "orders" "NONE"`},
		},
		{
			name: "pending requests beyond MaxPending",
			info: protocols.ConnInfo{Options: protocols.Options{BodyCap: 1024, DecodedCap: 1024, MaxPending: 2}},
			chunks: conversation(
				request(kmsg.NewPtrHeartbeatRequest(), 4, 1, "app"), nil,
				request(kmsg.NewPtrHeartbeatRequest(), 4, 2, "app"), nil,
				request(kmsg.NewPtrHeartbeatRequest(), 4, 3, "app")),
			want: []string{
				`Heartbeat v4 #1 "" "" unmatched=response`,
				`Heartbeat v4 #2 "" "" unmatched=response`,
				`Heartbeat v4 #3 "" "" unmatched=response`,
			},
			wantCount: CountPendingEvicted,
		},
		{
			name: "sasl handshake v0 and a raw token",
			chunks: conversation(
				request(handshake0, 0, 1, "app"), response(kmsg.NewPtrSASLHandshakeResponse(), 0, 1),
				rawToken, []byte{0, 0, 0, 0},
				metaReq, metaResp),
			want: []string{
				`SASLHandshake v0 #1 "" "NONE"`,
				`SASLAuthenticate v-1 #-1 "" "" redacted`,
				`Metadata v12 #9 "orders" "NONE"`,
			},
			wantCount: CountRawSASL,
		},
		{
			name: "gap of known size inside a request",
			chunks: []protocolstest.Chunk{
				{Dir: protocols.ClientToServer, Data: metaReq[:20], Time: t0},
				{Dir: protocols.ClientToServer, Gap: 5, Time: t0},
				{Dir: protocols.ClientToServer, Data: metaReq[25:], Time: t0},
				{Dir: protocols.ServerToClient, Data: metaResp, Time: t0},
				{Dir: protocols.ClientToServer, Data: request(kmsg.NewPtrHeartbeatRequest(), 4, 10, "app"), Time: t0},
				{Dir: protocols.ServerToClient, Data: response(kmsg.NewPtrHeartbeatResponse(), 4, 10), Time: t0},
			},
			want:      []string{`Metadata v12 #9 "orders" "NONE" gap`, `Heartbeat v4 #10 "" "NONE"`},
			wantCount: CountGapInFrame,
		},
		{
			name: "gap of unknown size, then the middle of a request",
			chunks: []protocolstest.Chunk{
				{Dir: protocols.ClientToServer, Gap: -1, Time: t0},
				{Dir: protocols.ClientToServer, Data: slices.Concat(metaReq[7:], metaReq), Time: t0},
				{Dir: protocols.ServerToClient, Data: metaResp, Time: t0},
			},
			want:      []string{`Metadata v12 #9 "orders" "NONE"`},
			wantCount: CountResync,
		},
		{
			name: "joined mid-stream inside a response",
			info: protocols.ConnInfo{MidStream: true},
			chunks: []protocolstest.Chunk{
				{Dir: protocols.ServerToClient, Data: metaResp[5:], Time: t0},
				{Dir: protocols.ClientToServer, Data: metaReq, Time: t0},
				{Dir: protocols.ServerToClient, Data: metaResp, Time: t0},
			},
			want: []string{`Metadata v12 #9 "orders" "NONE"`},
		},
		{
			name:    "not kafka",
			chunks:  conversation([]byte("GET / HTTP/1.1\r\n\r\n")),
			wantErr: "kafka_frame_length",
		},
		{
			name:    "unknown api key on a connection followed from its start",
			chunks:  conversation([]byte{0, 0, 0, 10, 3, 232, 0, 0, 0, 0, 0, 1, 0xff, 0xff}),
			wantErr: "kafka_request_header",
		},
		{
			name:   "request cut off by the close",
			chunks: conversation(metaReq[:len(metaReq)-3]),
			want:   []string{`Metadata v12 #9 "" "" unmatched=response gap`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := New().(*Dissector)
			before := d.Counters()
			res, err := protocolstest.Replay(d, tt.info, tt.chunks, protocols.ClosedFIN)
			if err != nil {
				t.Fatal(err)
			}
			if tt.wantErr != "" {
				var pe *protocols.ParseError
				if !errors.As(res.Err, &pe) || pe.Code != tt.wantErr {
					t.Fatalf("error = %v, want code %s", res.Err, tt.wantErr)
				}
				return
			}
			if res.Err != nil {
				t.Fatalf("error: %v", res.Err)
			}
			replay(t, tt.info, tt.chunks)
			if got := lines(res.Entries); !slices.Equal(got, tt.want) {
				t.Errorf("entries:\n got %q\nwant %q", got, tt.want)
			}
			if tt.wantCount != "" && d.Counters()[tt.wantCount] == before[tt.wantCount] {
				t.Errorf("counter %s did not move", tt.wantCount)
			}
		})
	}
}

func TestRecords(t *testing.T) {
	recs := []testRecord{
		{key: []byte("user-1"), value: []byte(`{"n":1}`), headers: [][2]string{{"trace", "abc"}, {"k", ""}}},
		{key: nil, value: nil},
		{key: []byte("user-3"), value: bytes.Repeat([]byte("x"), 300)},
	}
	for codec := int8(0); codec <= 4; codec++ {
		t.Run(codecName(codec), func(t *testing.T) {
			chunks := conversation(
				request(produceRequest(9, -1, "t", batch(t, codec, 0, recs...)), 9, 2, "app"),
				response(produceResponse("t", 0), 9, 2))
			res := replay(t, protocols.ConnInfo{}, chunks)
			if len(res.Entries) != 1 {
				t.Fatalf("%d entries", len(res.Entries))
			}
			k := res.Entries[0].Kafka
			if len(k.Batches) != 1 || k.Batches[0].Compression != codecName(codec) || k.Batches[0].RecordCount != 3 {
				t.Fatalf("batches: %+v", k.Batches)
			}
			got := k.Batches[0].Records
			if len(got) != 3 {
				t.Fatalf("%d records shown", len(got))
			}
			if string(got[0].Key.Data) != "user-1" || string(got[0].Value.Data) != `{"n":1}` ||
				len(got[0].Headers) != 2 || got[0].Headers[0].Name != "trace" || string(got[0].Headers[0].Value.Data) != "abc" {
				t.Errorf("record 0: %+v", got[0])
			}
			if got[1].Key != nil || got[1].Value != nil {
				t.Errorf("record 1 should have null key and value: %+v", got[1])
			}
			if got[2].Offset != 2 || got[2].Value.Size != 300 || got[2].Value.Truncated {
				t.Errorf("record 2: %+v", got[2])
			}
		})
	}
}

func TestRecordCaps(t *testing.T) {
	big := bytes.Repeat([]byte("y"), 100)
	many := make([]testRecord, 200)
	for i := range many {
		many[i] = testRecord{value: big}
	}
	opts := protocols.Options{BodyCap: 250, DecodedCap: 1 << 20, MaxPending: 8, Redact: true}
	chunks := conversation(request(produceRequest(9, -1, "t", batch(t, 0, 0, many...)), 9, 1, "app"))
	res := replay(t, protocols.ConnInfo{Options: opts}, chunks)
	b := res.Entries[0].Kafka.Batches[0]
	if b.RecordCount != 200 || !b.Truncated || len(b.Records) != 3 {
		t.Fatalf("count %d truncated %v shown %d", b.RecordCount, b.Truncated, len(b.Records))
	}
	if v := b.Records[2].Value; v.Size != 100 || len(v.Data) != 50 || !v.Truncated {
		t.Errorf("third value: size %d kept %d truncated %v", v.Size, len(v.Data), v.Truncated)
	}
}

func TestDecompressionBomb(t *testing.T) {
	huge := []testRecord{{value: make([]byte, 16<<20)}} // 16 times DecodedCap
	for _, codec := range []int8{1, 2, 3, 4} {
		t.Run(codecName(codec), func(t *testing.T) {
			d := New().(*Dissector)
			opts := protocols.DefaultOptions()
			chunks := conversation(request(produceRequest(9, -1, "t", batch(t, codec, 0, huge...)), 9, 1, "app"))
			res, err := protocolstest.Replay(d, protocols.ConnInfo{Options: opts}, chunks, protocols.ClosedFIN)
			if err != nil || res.Err != nil {
				t.Fatal(err, res.Err)
			}
			e := res.Entries[0]
			if e.Kafka.RecordCount != 1 || len(e.Kafka.Batches[0].Records) != 0 {
				t.Errorf("records: %+v", e.Kafka.Batches)
			}
			if d.Counters()[CountDecodedCap] != 1 {
				t.Errorf("counts: %v", d.Counters())
			}
			if !strings.Contains(strings.Join(e.Warnings, "\n"), "cap") {
				t.Errorf("warnings: %q", e.Warnings)
			}
		})
	}
}

func TestOversizedFrame(t *testing.T) {
	value := make([]byte, decodeCap+1)
	req := request(produceRequest(9, -1, "t", batch(t, 0, 0, testRecord{value: value})), 9, 1, "app")
	metaReq, metaResp := metadataExchange(9, "orders")
	chunks := conversation(req, response(produceResponse("t", 0), 9, 1), metaReq, metaResp)
	res := replay(t, protocols.ConnInfo{}, chunks)
	want := []string{`Produce v9 #1 "t" "NONE"`, `Metadata v12 #9 "orders" "NONE"`}
	if got := lines(res.Entries); !slices.Equal(got, want) {
		t.Fatalf("entries:\n got %q\nwant %q", got, want)
	}
	if w := res.Entries[0].Warnings; len(w) != 1 || !strings.Contains(w[0], "decode cap") {
		t.Errorf("warnings: %q", w)
	}
	if res.Entries[0].RequestSize != int64(len(req)) {
		t.Errorf("request size %d, want %d", res.Entries[0].RequestSize, len(req))
	}
}

func TestSASLAuthenticate(t *testing.T) {
	auth := kmsg.NewPtrSASLAuthenticateRequest()
	auth.SASLAuthBytes = []byte("\x00alice\x00s3cret-pw")
	handshake := kmsg.NewPtrSASLHandshakeRequest()
	handshake.Mechanism = "PLAIN"
	chunks := conversation(
		request(handshake, 1, 1, "app"), response(kmsg.NewPtrSASLHandshakeResponse(), 1, 1),
		request(auth, 2, 2, "app"), response(kmsg.NewPtrSASLAuthenticateResponse(), 2, 2))
	tests := []struct {
		name   string
		redact bool
		want   []string
	}{
		{"redacted", true, []string{`SASLHandshake v1 #1 "" "NONE"`, `SASLAuthenticate v2 #2 "" "NONE" redacted`}},
		{"shown", false, []string{`SASLHandshake v1 #1 "" "NONE"`, `SASLAuthenticate v2 #2 "" "NONE"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := protocols.DefaultOptions()
			opts.Redact = tt.redact
			res := replay(t, protocols.ConnInfo{Options: opts}, chunks)
			if got := lines(res.Entries); !slices.Equal(got, tt.want) {
				t.Fatalf("entries:\n got %q\nwant %q", got, tt.want)
			}
			if m := res.Entries[0].Kafka.SASLMechanism; m != "PLAIN" {
				t.Errorf("mechanism %q", m)
			}
			a := res.Entries[1].Kafka.SASLAuth
			if a == nil || a.Size != int64(len(auth.SASLAuthBytes)) || tt.redact != (len(a.Data) == 0) {
				t.Errorf("sasl_auth %+v", a)
			}
		})
	}
}

// TestEveryAPIVersion frames the default request and response of every API
// key at every version kmsg knows, and checks that each pair is dissected
// and decoded: request header v0, v1 or v2, response header v0 or v1
// (ApiVersions always v0).
func TestEveryAPIVersion(t *testing.T) {
	d := New()
	n := 0
	for key := range int16(maxKey) {
		req := kmsg.RequestForKey(key)
		if req == nil {
			continue
		}
		for v := int16(0); v <= req.MaxVersion(); v++ {
			req := kmsg.RequestForKey(key)
			if p, ok := req.(*kmsg.ProduceRequest); ok {
				p.Acks = -1 // acks=0 has no response
			}
			reqFrame := request(req, v, 7, "every")
			if headerV0(key, v) {
				// kmsg's formatter writes no body for request header v0.
				reqFrame = binary.BigEndian.AppendUint32(nil, 8)
				reqFrame = binary.BigEndian.AppendUint16(reqFrame, uint16(key))
				reqFrame = binary.BigEndian.AppendUint16(reqFrame, uint16(v))
				reqFrame = binary.BigEndian.AppendUint32(reqFrame, 7)
				reqFrame = req.AppendTo(reqFrame)
				binary.BigEndian.PutUint32(reqFrame, uint32(len(reqFrame)-4))
			}
			res, err := protocolstest.Replay(d, protocols.ConnInfo{}, conversation(reqFrame, response(kmsg.ResponseForKey(key), v, 7)), protocols.ClosedFIN)
			if err != nil || res.Err != nil {
				t.Fatalf("%s v%d: %v %v", kmsg.NameForKey(key), v, err, res.Err)
			}
			if len(res.Entries) != 1 {
				t.Fatalf("%s v%d: %d entries", kmsg.NameForKey(key), v, len(res.Entries))
			}
			e := res.Entries[0]
			if e.Kafka.APIKey != key || e.Kafka.APIVersion != v || e.Summary.Method != kmsg.NameForKey(key) ||
				e.Unmatched != "" || e.Kafka.Error != "NONE" || len(e.Warnings) > 0 {
				t.Errorf("%s v%d: %s %q", kmsg.NameForKey(key), v, line(e), e.Warnings)
			}
			if !headerV0(key, v) && e.Kafka.ClientID != "every" {
				t.Errorf("%s v%d: client ID %q", kmsg.NameForKey(key), v, e.Kafka.ClientID)
			}
			n++
		}
	}
	t.Logf("%d API versions", n)
}

// metadataV0Response is a Metadata v0 response naming n topics, each with
// error code 3, a two-byte name and no partitions: ten bytes a topic.
func metadataV0Response(corr int32, n int) []byte {
	b := binary.BigEndian.AppendUint32(nil, 0)
	b = binary.BigEndian.AppendUint32(b, uint32(corr))
	b = binary.BigEndian.AppendUint32(b, 0) // brokers
	b = binary.BigEndian.AppendUint32(b, uint32(n))
	for i := range n {
		b = append(b, 0, 3, 0, 2, byte(i>>8), byte(i), 0, 0, 0, 0)
	}
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	return b
}

func TestMessageCaps(t *testing.T) {
	tests := []struct {
		name      string
		topics    int
		wantWarn  string
		wantCount string
	}{
		{"decoded, lists capped", 1000, "lists capped", CountListCap},
		{"walk capped", maxVisits + 10, "only the first", CountWalkCap},
		{"frame over the cap for messages without records", messageCap/10 + 1, "cap for messages without records", CountFrameOverCap},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := New().(*Dissector)
			chunks := conversation(request(kmsg.NewPtrMetadataRequest(), 0, 5, "app"), metadataV0Response(5, tt.topics))
			res, err := protocolstest.Replay(d, protocols.ConnInfo{}, chunks, protocols.ClosedFIN)
			if err != nil || res.Err != nil || len(res.Entries) != 1 {
				t.Fatalf("%v %v %d entries", err, res.Err, len(res.Entries))
			}
			e := res.Entries[0]
			if !strings.Contains(strings.Join(e.Warnings, "\n"), tt.wantWarn) || d.Counters()[tt.wantCount] != 1 {
				t.Errorf("warnings %q, counts %v", e.Warnings, d.Counters())
			}
			if e.Unmatched != "" || e.Kafka.CorrelationID != 5 {
				t.Errorf("entry %s", line(e))
			}
		})
	}
}

func TestSnappyFramings(t *testing.T) {
	data := bytes.Repeat([]byte("kafka record bytes "), 5000) // 95000 bytes: three xerial blocks
	tests := []struct {
		name       string
		src        []byte
		limit      int
		wantLen    int
		wantCapped bool
	}{
		{"raw block", snappy.Encode(nil, data), 1 << 20, len(data), false},
		{"raw block over the limit", snappy.Encode(nil, data), 1000, 0, true},
		{"xerial", compress(t, 2, data), 1 << 20, len(data), false},
		{"xerial cut at a block", compress(t, 2, data), 70000, 64 << 10, true},
	}
	var c codecs
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, capped, err := c.decompress(2, tt.src, tt.limit, new(bytes.Buffer))
			if err != nil || capped != tt.wantCapped || len(out) != tt.wantLen || !bytes.HasPrefix(data, out) {
				t.Errorf("got %d bytes, capped %v, err %v", len(out), capped, err)
			}
		})
	}
}
