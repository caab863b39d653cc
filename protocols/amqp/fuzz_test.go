package amqp

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/sondehq/sonde/protocols"
	"github.com/sondehq/sonde/protocols/protocolstest"
)

// A fuzz input is a conversation: one flags byte (bit 0: joined
// mid-stream), then chunks, each a control byte (bit 0: server to client,
// bit 1: a gap), a big-endian uint16 length, and that many bytes (none for
// a gap, whose size is the length).

func encodeConversation(midStream bool, chunks []protocolstest.Chunk) []byte {
	out := []byte{0}
	if midStream {
		out[0] = 1
	}
	for _, ch := range chunks {
		if ch.Gap != 0 {
			out = binary.BigEndian.AppendUint16(append(out, byte(ch.Dir)|2), uint16(min(max(ch.Gap, 0), 0xffff)))
			continue
		}
		for data := ch.Data; len(data) > 0; {
			n := min(len(data), 0xffff)
			out = append(binary.BigEndian.AppendUint16(append(out, byte(ch.Dir)), uint16(n)), data[:n]...)
			data = data[n:]
		}
	}
	return out
}

func decodeConversation(in []byte) (bool, []protocolstest.Chunk) {
	if len(in) == 0 {
		return false, nil
	}
	midStream := in[0]&1 == 1
	in = in[1:]
	var chunks []protocolstest.Chunk
	t := time.Unix(1_700_000_000, 0)
	for i := 0; len(in) >= 3; i++ {
		ctrl, n := in[0], int(binary.BigEndian.Uint16(in[1:3]))
		in = in[3:]
		ch := protocolstest.Chunk{Dir: protocols.Direction(ctrl & 1), Time: t.Add(time.Duration(i) * time.Second)}
		if ctrl&2 != 0 {
			ch.Gap = n
			if n == 0 {
				ch.Gap = -1
			}
		} else {
			n = min(n, len(in))
			ch.Data, in = in[:n], in[n:]
		}
		chunks = append(chunks, ch)
	}
	return midStream, chunks
}

// fuzzSeeds are conversations from the table tests and a recorded
// RabbitMQ session.
func fuzzSeeds(t testing.TB) [][]byte {
	seeds := [][]byte{
		encodeConversation(false, protocolstest.Stream(handshake()...)),
		encodeConversation(true, protocolstest.Stream(
			meth(1, 85, 10, args().bits(false)), meth(1, 85, 11, nil),
			publish(1, "ex", "a")+hdr(1, 3, "t")+bodyFrame(1, "abc")+heartbeat, ack(1, 1, true),
			queueDeclare(1, "nope", true, false), closeMethod(1, 20, 404, "NOT_FOUND", 50, 10),
			chCloseOk)),
		encodeConversation(true, []protocolstest.Chunk{
			{Dir: protocols.ServerToClient, Data: []byte(deliver(1, "c", 1, "ex", "k") + hdr(1, 10, "t") + bodyFrame(1, "01234"))},
			{Dir: protocols.ServerToClient, Gap: 3},
			{Dir: protocols.ServerToClient, Data: []byte("89\xce" + heartbeat)},
		}),
	}
	for _, g := range goldenCases(t) {
		seeds = append(seeds, encodeConversation(false, g))
	}
	return seeds
}

var parseCodes = []string{codeProtocolHeader, codeFrameType, codeFrameEnd, codeFrameSize, codeHeartbeat,
	codeMethod, codeMethodArgs, codeContentHeader, codeBodySize, codeChannels}

// FuzzConn feeds conversations, whole and cut at random points, and checks
// the Conn's promises.
func FuzzConn(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		midStream, chunks := decodeConversation(in)
		opts := protocols.DefaultOptions()
		opts.BodyCap, opts.MaxPending = 64, 16
		info := protocols.ConnInfo{Options: opts, MidStream: midStream}
		res := protocolstest.CheckSplit(t, New(), chunks, protocolstest.SplitOptions{
			Info:   info,
			Seeds:  []uint64{uint64(len(in))},
			Entry:  func(t testing.TB, e *protocols.Entry) { checkEntry(t, e, opts) },
			Strict: true,
		})
		if res.Err != nil {
			var pe *protocols.ParseError
			if !errors.As(res.Err, &pe) || pe.Protocol != protocols.AMQP || !strings.Contains(strings.Join(parseCodes, " "), pe.Code) {
				t.Fatalf("error %v is not an AMQP ParseError with a known code", res.Err)
			}
		}
		// Leftovers stay small: everything but a partial frame header, or a
		// resynchronisation candidate, is consumed.
		for _, l := range res.Leftover {
			if l > 16<<10+frameOverhead+4 {
				t.Fatalf("%d bytes left unconsumed", l)
			}
		}
	})
}

func checkEntry(t testing.TB, e *protocols.Entry, opts protocols.Options) {
	t.Helper()
	r := e.AMQP
	if e.Protocol != protocols.AMQP || r == nil || e.Summary.Method != r.Method || e.Duration < 0 || e.RequestSize < 0 || e.ResponseSize < 0 {
		t.Fatalf("bad entry %+v", e)
	}
	for _, c := range []*protocols.AMQPContent{r.Content, replyContent(r)} {
		if c != nil && (len(c.Body.Data) > opts.BodyCap || int64(len(c.Body.Data)) > c.Body.Size) {
			t.Fatalf("body %d bytes of %d kept, cap %d", len(c.Body.Data), c.Body.Size, opts.BodyCap)
		}
	}
	n := 0
	var walk func(fs []protocols.AMQPField, depth int)
	walk = func(fs []protocols.AMQPField, depth int) {
		if depth > maxTableDepth+1 {
			t.Fatalf("fields nested %d deep", depth)
		}
		for _, f := range fs {
			n++
			if len(f.Value) > maxValueLen*4/3+4 || f.Encoding == "" && !utf8.ValidString(f.Value) {
				t.Fatalf("field %q: value of %d bytes, encoding %q", f.Name, len(f.Value), f.Encoding)
			}
			walk(f.Fields, depth+1)
		}
	}
	walk(r.Arguments, 0)
	if r.Content != nil {
		walk(r.Content.Properties.Headers, 1)
	}
	if n > 3*(maxFields+len(methodList)) {
		t.Fatalf("%d fields in one entry", n)
	}
	if _, err := json.Marshal(e); err != nil {
		t.Fatal(err)
	}
}

func replyContent(r *protocols.AMQPRecord) *protocols.AMQPContent {
	if r.Reply == nil {
		return nil
	}
	return r.Reply.Content
}

// FuzzTable decodes field tables and checks the caps.
func FuzzTable(f *testing.F) {
	f.Add([]byte(fStr("k", "v") + fTable("t", fInt("i", 1), fBool("b", true))))
	f.Add([]byte(fRaw("A", 'A', append([]byte{0, 0, 0, 7}, append([]byte("I\x00\x00\x00\x05"), 't', 0)...))))
	f.Add([]byte(fRaw("D", 'D', []byte{2, 0xff, 0xff, 0xff, 0xfb}) + fRaw("x", 'x', []byte{0, 0, 0, 1, 0xff})))
	f.Fuzz(func(t *testing.T, raw []byte) {
		l := newLimits()
		fields, _ := decodeTable(raw, 1, l)
		count, depth := 0, 0
		var walk func(fs []protocols.AMQPField, d int)
		walk = func(fs []protocols.AMQPField, d int) {
			depth = max(depth, d)
			for _, f := range fs {
				count++
				if len(f.Value) > maxValueLen*4/3+4 {
					t.Fatalf("value of %d bytes", len(f.Value))
				}
				walk(f.Fields, d+1)
			}
		}
		walk(fields, 1)
		if count > maxFields || depth > maxTableDepth || l.fieldsLeft < 0 {
			t.Fatalf("%d fields, %d deep, budget %d", count, depth, l.fieldsLeft)
		}
		if _, err := json.Marshal(fields); err != nil {
			t.Fatal(err)
		}
	})
}
