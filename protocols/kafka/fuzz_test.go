package kafka

import (
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sondehq/sonde/protocols"
	"github.com/sondehq/sonde/protocols/protocolstest"
)

// fuzzOptions are small caps, so that the fuzzer reaches them.
var fuzzOptions = protocols.Options{BodyCap: 512, DecodedCap: 4 << 10, MaxPending: 4, Redact: true}

// seedConversations are client and server streams of real calls, the
// fuzzer's starting points for mutating array lengths and batches.
func seedConversations(t testing.TB) [][2][]byte {
	recs := []testRecord{{key: []byte("k"), value: []byte("value value value"), headers: [][2]string{{"h", "v"}}}, {value: []byte("v2")}}
	metaReq, metaResp := metadataExchange(1, "a", "b")
	commit := kmsg.NewPtrOffsetCommitRequest()
	commit.Group = "g"
	ct := kmsg.NewOffsetCommitRequestTopic()
	ct.Topic = "a"
	ct.Partitions = append(ct.Partitions, kmsg.NewOffsetCommitRequestTopicPartition())
	commit.Topics = append(commit.Topics, ct)
	var out [][2][]byte
	for codec := int8(0); codec <= 4; codec++ {
		out = append(out, [2][]byte{
			slices.Concat(metaReq, request(produceRequest(9, -1, "a", batch(t, codec, 0, recs...)), 9, 2, "c")),
			slices.Concat(metaResp, response(produceResponse("a", 0), 9, 2)),
		}, [2][]byte{
			request(fetchRequest("a"), 12, 3, "c"),
			response(fetchResponse("a", slices.Concat(batch(t, codec, 0, recs...), batch(t, codec, 2, recs...))), 12, 3),
		})
	}
	out = append(out, [2][]byte{
		request(commit, 8, 5, "c"), response(kmsg.NewPtrOffsetCommitResponse(), 8, 5),
	}, [2][]byte{
		request(fetchRequest("a"), 3, 4, "c"),
		response(fetchResponse("a", legacyMessage(1, 1, 0, nil, compress(t, 1, legacyMessage(1, 0, 0, []byte("a"), []byte("1"))))), 3, 4),
	})
	return out
}

// FuzzConn feeds arbitrary client and server streams, cut at points chosen
// by seed, and checks the contract and the caps on every entry. A connection
// followed from its start must give the same entries however it is cut.
func FuzzConn(f *testing.F) {
	for i, s := range seedConversations(f) {
		f.Add(s[0], s[1], uint64(i), false)
		f.Add(s[0][3:], s[1][5:], uint64(i), true)
	}
	d := New()
	f.Fuzz(func(t *testing.T, client, server []byte, seed uint64, mid bool) {
		info := protocols.ConnInfo{Options: fuzzOptions, MidStream: mid}
		chunks := conversation(client, server, client[len(client)/2:], server[len(server)/3:])
		opts := protocolstest.SplitOptions{Info: info, Entry: checkEntry}
		if mid {
			// Frames found after a loss depend on where segments end: the
			// cut is checked against the contract and the caps only.
			protocolstest.CheckSplit(t, d, protocolstest.Split(chunks, seed), opts)
			return
		}
		opts.Seeds = []uint64{seed}
		protocolstest.CheckSplit(t, d, chunks, opts)
	})
}

// checkEntry checks what every entry must satisfy, whatever the bytes.
func checkEntry(t testing.TB, e *protocols.Entry) {
	t.Helper()
	k := e.Kafka
	if e.Protocol != protocols.Kafka || k == nil {
		t.Fatalf("entry without a Kafka record: %+v", e)
	}
	if k.APIKey >= 0 && e.Summary.Method != k.API || k.APIKey < 0 && e.Unmatched != protocols.MissingRequest {
		t.Fatalf("summary %+v for %+v", e.Summary, k)
	}
	if len(k.Topics) > maxTopics || len(k.Errors) > maxErrors || len(k.Batches) > maxBatches || k.TopicCount < len(k.Topics) {
		t.Fatalf("lists past their caps: %d topics (count %d), %d errors, %d batches", len(k.Topics), k.TopicCount, len(k.Errors), len(k.Batches))
	}
	shown, kept := 0, 0
	var counted int64
	for _, b := range k.Batches {
		shown += len(b.Records)
		counted += b.RecordCount
		for _, r := range b.Records {
			if r.Key != nil {
				kept += len(r.Key.Data)
			}
			if r.Value != nil {
				kept += len(r.Value.Data)
			}
			for _, h := range r.Headers {
				kept += len(h.Name)
				if h.Value != nil {
					kept += len(h.Value.Data)
				}
			}
		}
	}
	if shown > maxShownRecords || kept > fuzzOptions.BodyCap || counted > k.RecordCount {
		t.Fatalf("%d records shown with %d bytes; %d counted in listed batches of %d", shown, kept, counted, k.RecordCount)
	}
	if e.Redacted && k.SASLAuth != nil && len(k.SASLAuth.Data) > 0 {
		t.Fatalf("redacted entry keeps the SASL token")
	}
}

// FuzzRecords reads arbitrary bytes as a partition's records, compressed or
// not, and checks the caps, decompression included.
func FuzzRecords(f *testing.F) {
	recs := []testRecord{{key: []byte("k"), value: make([]byte, 300)}, {value: []byte("v")}}
	for codec := int8(0); codec <= 4; codec++ {
		f.Add(batch(f, codec, 0, recs...))
		f.Add(slices.Concat(batch(f, codec, 0, recs...), batch(f, codec, 2, testRecord{value: make([]byte, 64<<10)})))
		f.Add(legacyMessage(1, codec, 0, nil, compress(f, codec, legacyMessage(1, 0, 0, []byte("a"), make([]byte, 9000)))))
	}
	d := New().(*Dissector)
	f.Fuzz(func(t *testing.T, data []byte) {
		c := newConn(d, protocols.ConnInfo{Options: fuzzOptions}, func(*protocols.Entry) {})
		e := &protocols.Entry{Protocol: protocols.Kafka, Kafka: &protocols.KafkaRecord{API: "Produce"}}
		w := &walker{c: c, e: e, rec: e.Kafka, recs: newRecordBudget(c.opts)}
		w.recordSet(data, where{topic: "t", ti: -1})
		c.d.codecs.release(w.buf)
		if w.recs.decodeLeft < 0 && w.recs.decodeLeft+fuzzOptions.DecodedCap < 0 {
			t.Fatalf("decompressed %d bytes past the budget", -w.recs.decodeLeft)
		}
		e.Summary.Method = "Produce"
		checkEntry(t, e)
	})
}
