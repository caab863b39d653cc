package amqp

import (
	"strings"
	"testing"
	"time"

	"github.com/sondehq/sonde/protocols"
	"github.com/sondehq/sonde/protocols/protocolstest"
)

func TestLoss(t *testing.T) {
	c2s, s2c := protocols.ClientToServer, protocols.ServerToClient
	at := func(ms int) time.Time { return time.Unix(1_700_000_000, 0).Add(time.Duration(ms) * time.Millisecond) }
	data := func(dir protocols.Direction, ms int, s string) protocolstest.Chunk {
		return protocolstest.Chunk{Dir: dir, Data: []byte(s), Time: at(ms)}
	}
	gap := func(dir protocols.Direction, ms, n int) protocolstest.Chunk {
		return protocolstest.Chunk{Dir: dir, Gap: n, Time: at(ms)}
	}
	body := strings.Repeat("x", 100)
	pub := publish(1, "ex", "k") + hdr(1, 100, "t")
	bf := bodyFrame(1, body)
	tests := []struct {
		name       string
		chunks     []protocolstest.Chunk
		maxPending int
		want       []string
		check      func(t *testing.T, es []*protocols.Entry, counters map[string]uint64)
	}{
		{
			name: "hole inside a body frame keeps the framing",
			chunks: []protocolstest.Chunk{
				data(c2s, 0, pub+bf[:7+10]), gap(c2s, 1, 30), data(c2s, 2, bf[7+40:]+publish(1, "ex", "next")+hdr(1, 0, "t")),
			},
			want: []string{"basic.publish ex/k ok gap", "basic.publish ex/next ok"},
			check: func(t *testing.T, es []*protocols.Entry, _ map[string]uint64) {
				b := es[0].AMQP.Content.Body
				if b.Size != 100 || string(b.Data) != body[:10] || !b.Truncated {
					t.Errorf("body = %+v", b)
				}
			},
		},
		{
			name: "gap past the frame: resynchronised at the next method",
			chunks: []protocolstest.Chunk{
				data(c2s, 0, pub+bf[:20]), gap(c2s, 1, 500), data(c2s, 2, body[:33]+"\xce"+publish(1, "ex", "next")+hdr(1, 0, "t")),
			},
			want: []string{"basic.publish ex/k ok gap", "basic.publish ex/next ok"},
			check: func(t *testing.T, es []*protocols.Entry, counters map[string]uint64) {
				if counters[countResync] != 34 || !strings.Contains(strings.Join(es[0].Warnings, ";"), "content incomplete") {
					t.Errorf("counters %v, warnings %q", counters, es[0].Warnings)
				}
			},
		},
		{
			name: "content header lost: body taken until the next method",
			chunks: []protocolstest.Chunk{
				data(c2s, 0, publish(1, "ex", "k")+hdr(1, 100, "t")[:9]), gap(c2s, 1, 5), data(c2s, 2, hdr(1, 100, "t")[14:]+bf+ack(1, 1, false)),
			},
			want: []string{"basic.publish ex/k ok gap", "basic.ack  ok"},
			check: func(t *testing.T, es []*protocols.Entry, counters map[string]uint64) {
				if c := es[0].AMQP.Content; c.Body.Size != 100 || c.BodyFrames != 1 || counters[countLostFrame] != 1 {
					t.Errorf("content %+v, counters %v", c, counters)
				}
			},
		},
		{
			name: "lost reply: the request is passed over by the next one's reply",
			chunks: []protocolstest.Chunk{
				data(c2s, 0, queueDeclare(1, "a", false, false)), gap(s2c, 1, -1),
				data(c2s, 2, meth(1, 90, 10, nil)), data(s2c, 3, meth(1, 90, 11, nil)),
			},
			want: []string{"queue.declare a  unmatched=response gap", "tx.select  ok"},
		},
		{
			name:       "pending cap",
			maxPending: 2,
			chunks: []protocolstest.Chunk{
				data(c2s, 0, meth(1, 85, 10, args().bits(true))+pub+bf+pub+bf+pub+bf), data(s2c, 1, ack(1, 3, true)),
			},
			want: []string{"confirm.select  ok", "basic.publish ex/k  unmatched=response", "basic.publish ex/k ack", "basic.publish ex/k ack"},
			check: func(t *testing.T, es []*protocols.Entry, counters map[string]uint64) {
				if counters[countPendingCap] != 1 {
					t.Errorf("counters %v", counters)
				}
			},
		},
		{
			name: "confirm that never comes",
			chunks: []protocolstest.Chunk{
				data(c2s, 0, meth(1, 85, 10, args().bits(true))+pub+bf), data(c2s, int(confirmWait/time.Millisecond)+1, heartbeat+pub+bf), data(s2c, int(confirmWait/time.Millisecond)+2, ack(1, 2, false)),
			},
			want: []string{"confirm.select  ok", "basic.publish ex/k  unmatched=response", "basic.publish ex/k ack"},
			check: func(t *testing.T, es []*protocols.Entry, counters map[string]uint64) {
				if counters[countConfirmTimeout] != 1 || es[2].AMQP.Confirm.DeliveryTag != 2 {
					t.Errorf("counters %v, confirm %+v", counters, es[2].AMQP.Confirm)
				}
			},
		},
		{
			name:   "channel closed by the client's peer under a publish",
			chunks: []protocolstest.Chunk{data(c2s, 0, pub+bf[:20]), data(s2c, 1, closeMethod(1, 20, 320, "CONNECTION_FORCED", 0, 0)), data(c2s, 2, bf[20:]+chCloseOk)},
			want:   []string{"basic.publish ex/k ok", "channel.close  320 CONNECTION_FORCED"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := protocols.DefaultOptions()
			if tt.maxPending > 0 {
				opts.MaxPending = tt.maxPending
			}
			info := protocols.ConnInfo{Options: opts, MidStream: true}
			res := replay(t, info, tt.chunks)
			if res.Err != nil {
				t.Fatal(res.Err)
			}
			if got := protocolstest.DescribeAll(res.Entries); strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Fatalf("entries:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
			if tt.check != nil {
				tt.check(t, res.Entries, counters(t, info, tt.chunks))
			}
		})
	}
}

// counters replays chunks and returns the Conn's counters.
func counters(t *testing.T, info protocols.ConnInfo, chunks []protocolstest.Chunk) map[string]uint64 {
	t.Helper()
	var c protocols.Conn
	d := dissectorFunc(func(info protocols.ConnInfo, emit protocols.EmitFunc) protocols.Conn {
		c = New().NewConn(info, emit)
		return c
	})
	if _, err := protocolstest.Replay(d, info, chunks, protocols.ClosedFIN); err != nil {
		t.Fatal(err)
	}
	return c.(interface{ Counters() map[string]uint64 }).Counters()
}

// dissectorFunc is the AMQP dissector with NewConn replaced.
type dissectorFunc func(protocols.ConnInfo, protocols.EmitFunc) protocols.Conn

func (f dissectorFunc) Protocol() protocols.Protocol { return protocols.AMQP }
func (f dissectorFunc) Detect(p []byte, ports protocols.Ports) protocols.Detection {
	return New().Detect(p, ports)
}
func (f dissectorFunc) NewConn(info protocols.ConnInfo, emit protocols.EmitFunc) protocols.Conn {
	return f(info, emit)
}
