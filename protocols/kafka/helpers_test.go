package kafka

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sondehq/sonde/protocols"
	"github.com/sondehq/sonde/protocols/protocolstest"
)

// request frames a kmsg request the way a client sends it.
func request(req kmsg.Request, version int16, corr int32, clientID string) []byte {
	req.SetVersion(version)
	return kmsg.NewRequestFormatter(kmsg.FormatterClientID(clientID)).AppendRequest(nil, req, corr)
}

// response frames a kmsg response the way a broker sends it: response header
// v1 for flexible versions, except ApiVersions.
func response(resp kmsg.Response, version int16, corr int32) []byte {
	resp.SetVersion(version)
	b := binary.BigEndian.AppendUint32(nil, 0)
	b = binary.BigEndian.AppendUint32(b, uint32(corr))
	if resp.IsFlexible() && resp.Key() != 18 {
		b = append(b, 0)
	}
	b = resp.AppendTo(b)
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	return b
}

// testRecord is a record to put in a batch.
type testRecord struct {
	key, value []byte
	headers    [][2]string
}

// batch builds a magic 2 record batch, its records compressed with codec.
func batch(t testing.TB, codec int8, base int64, recs ...testRecord) []byte {
	t.Helper()
	var raw []byte
	for i, r := range recs {
		var body []byte
		body = append(body, 0)                     // attributes
		body = binary.AppendVarint(body, int64(i)) // timestamp delta
		body = binary.AppendVarint(body, int64(i)) // offset delta
		body = appendVarBytes(body, r.key)
		body = appendVarBytes(body, r.value)
		body = binary.AppendVarint(body, int64(len(r.headers)))
		for _, h := range r.headers {
			body = appendVarBytes(body, []byte(h[0]))
			body = appendVarBytes(body, []byte(h[1]))
		}
		raw = binary.AppendVarint(raw, int64(len(body)))
		raw = append(raw, body...)
	}
	payload := compress(t, codec, raw)
	b := kmsg.RecordBatch{
		FirstOffset:     base,
		Length:          int32(49 + len(payload)),
		Magic:           2,
		Attributes:      int16(codec),
		LastOffsetDelta: int32(len(recs) - 1),
		FirstTimestamp:  1_700_000_000_000,
		MaxTimestamp:    1_700_000_000_000 + int64(len(recs)),
		ProducerID:      -1,
		ProducerEpoch:   -1,
		FirstSequence:   -1,
		NumRecords:      int32(len(recs)),
		Records:         payload,
	}
	return b.AppendTo(nil)
}

func appendVarBytes(b, p []byte) []byte {
	if p == nil {
		return binary.AppendVarint(b, -1)
	}
	return append(binary.AppendVarint(b, int64(len(p))), p...)
}

// compress compresses p with Kafka's codec number; snappy in the xerial
// framing Java clients use.
func compress(t testing.TB, codec int8, p []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	switch codec {
	case 0:
		return p
	case 1:
		w := gzip.NewWriter(&buf)
		w.Write(p)
		w.Close()
	case 2:
		buf.Write(xerialMagic)
		buf.Write([]byte{0, 0, 0, 1, 0, 0, 0, 1})
		for len(p) > 0 {
			n := min(len(p), 32<<10)
			block := snappy.Encode(nil, p[:n])
			buf.Write(binary.BigEndian.AppendUint32(nil, uint32(len(block))))
			buf.Write(block)
			p = p[n:]
		}
	case 3:
		w := lz4.NewWriter(&buf)
		w.Write(p)
		w.Close()
	case 4:
		w, err := zstd.NewWriter(&buf)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(p)
		w.Close()
	default:
		t.Fatalf("codec %d", codec)
	}
	return buf.Bytes()
}

// legacyMessage builds a magic 0 or 1 message with its offset and size.
func legacyMessage(magic, codec int8, offset int64, key, value []byte) []byte {
	var m []byte
	m = binary.BigEndian.AppendUint32(m, 0) // crc, not checked
	m = append(m, byte(magic), byte(codec))
	if magic == 1 {
		m = binary.BigEndian.AppendUint64(m, 1_700_000_000_000)
	}
	m = appendBytes32(m, key)
	m = appendBytes32(m, value)
	out := binary.BigEndian.AppendUint64(nil, uint64(offset))
	out = binary.BigEndian.AppendUint32(out, uint32(len(m)))
	return append(out, m...)
}

func appendBytes32(b, p []byte) []byte {
	if p == nil {
		return binary.BigEndian.AppendUint32(b, 0xffffffff)
	}
	return append(binary.BigEndian.AppendUint32(b, uint32(len(p))), p...)
}

// conversation turns alternating client and server frames into chunks.
func conversation(frames ...[]byte) []protocolstest.Chunk {
	msgs := make([]string, len(frames))
	for i, f := range frames {
		msgs[i] = string(f)
	}
	return protocolstest.Stream(msgs...)
}

// line is a one-line account of an entry for table tests.
func line(e *protocols.Entry) string {
	k := e.Kafka
	var b strings.Builder
	fmt.Fprintf(&b, "%s v%d #%d %q %q", e.Summary.Method, k.APIVersion, k.CorrelationID, e.Summary.Target, e.Summary.Status)
	if e.Unmatched != "" {
		fmt.Fprintf(&b, " unmatched=%s", e.Unmatched)
	}
	if e.Gap {
		b.WriteString(" gap")
	}
	if e.Redacted {
		b.WriteString(" redacted")
	}
	if k.RecordCount > 0 {
		fmt.Fprintf(&b, " records=%d", k.RecordCount)
	}
	return b.String()
}

func lines(es []*protocols.Entry) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = line(e)
	}
	return out
}

// replay feeds chunks in one piece and cut at random points, and checks that
// every cut yields the same entries.
func replay(t *testing.T, info protocols.ConnInfo, chunks []protocolstest.Chunk) protocolstest.Result {
	t.Helper()
	return replayWith(t, New(), info, chunks)
}

// replayWith is replay with a given dissector, whose learnt topic names
// every replay shares.
func replayWith(t *testing.T, d protocols.Dissector, info protocols.ConnInfo, chunks []protocolstest.Chunk) protocolstest.Result {
	t.Helper()
	return protocolstest.CheckSplit(t, d, chunks, protocolstest.SplitOptions{Info: info, Seeds: protocolstest.Seeds(1, 8)})
}

var t0 = time.Unix(1_700_000_000, 0)
