package kafka

import (
	"testing"

	"github.com/sondehq/sonde/protocols"
	"github.com/sondehq/sonde/protocols/protocolstest"
)

// TestRedactRecords: record headers with secret names and secret members of
// JSON values are gone from a Produce request and a Fetch response, the
// values of compressed batches included.
func TestRedactRecords(t *testing.T) {
	const s = "s3cr3tv4lue"
	recs := []testRecord{
		{key: []byte("k1"), value: []byte(`{"user":"bob","password":"` + s + `1"}`),
			headers: [][2]string{{"authorization", "Bearer " + s + "2"}, {"trace-id", "t1"}}},
		{key: []byte("k2"), value: []byte("plain text"), headers: [][2]string{{"X-Api-Key", s + "3"}}},
	}
	info := protocols.ConnInfo{Options: protocols.DefaultOptions()}
	res := replay(t, info, conversation(
		request(produceRequest(9, 1, "orders", batch(t, 0, 0, recs...)), 9, 1, "app"),
		response(produceResponse("orders", 0), 9, 1),
		request(fetchRequest("orders"), 12, 2, "app"),
		response(fetchResponse("orders", batch(t, 1, 0, recs...)), 12, 2),
	))
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	protocolstest.NoSecret(t, res.Entries, s)
	if len(res.Entries) != 2 {
		t.Fatalf("entries %q", lines(res.Entries))
	}
	for _, e := range res.Entries {
		if !e.Redacted || len(e.Kafka.Batches) != 1 || len(e.Kafka.Batches[0].Records) != 2 {
			t.Fatalf("entry %s: %+v", line(e), e.Kafka.Batches)
		}
		r := e.Kafka.Batches[0].Records
		if string(r[0].Headers[1].Value.Data) != "t1" || string(r[1].Value.Data) != "plain text" ||
			string(r[0].Value.Data) != `{"user":"bob","password":"[REDACTED]"}` || string(r[1].Headers[0].Value.Data) != protocols.Redacted {
			t.Errorf("records of %s: %+v", line(e), r)
		}
	}
}
