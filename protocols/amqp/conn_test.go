package amqp

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sondehq/sonde/protocols"
	"github.com/sondehq/sonde/protocols/protocolstest"
)

// replay runs chunks through a new Conn and, so that no test forgets it,
// checks that cutting them at random points changes nothing.
func replay(t *testing.T, info protocols.ConnInfo, chunks []protocolstest.Chunk) protocolstest.Result {
	t.Helper()
	return protocolstest.CheckSplit(t, New(), chunks, protocolstest.SplitOptions{Info: info, Seeds: protocolstest.Seeds(1, 16)})
}

func handshake() []string {
	return []string{"AMQP\x00\x00\x09\x01", connStart, connStartOkPlain, connTune, connTuneOk + connOpen, connOpenOk, chOpen, chOpenOk}
}

var handshakeLines = []string{
	"connection.start  ok",
	"connection.tune  ok",
	"connection.open / ok",
	"channel.open  ok",
}

func TestConn(t *testing.T) {
	body := strings.Repeat("b", 300)
	tests := []struct {
		name      string
		msgs      []string // client, server, client, ...
		midStream bool
		bodyCap   int
		want      []string
		wantErr   string
		check     func(t *testing.T, es []*protocols.Entry)
	}{
		{
			name: "handshake",
			msgs: handshake(),
			want: handshakeLines,
			check: func(t *testing.T, es []*protocols.Entry) {
				start := es[0]
				if !start.Redacted || start.AMQP.ProtocolHeader != "AMQP 0-9-1" || start.AMQP.Sender != "server" {
					t.Errorf("connection.start: redacted %v, header %q, sender %q", start.Redacted, start.AMQP.ProtocolHeader, start.AMQP.Sender)
				}
				resp := start.AMQP.Reply.Arguments[2]
				if resp.Value != "\x00guest\x00"+protocols.Redacted {
					t.Errorf("start-ok response = %q", resp.Value)
				}
				caps := start.AMQP.Arguments[2].Fields[1]
				if caps.Name != "capabilities" || caps.Fields[0].Value != "true" {
					t.Errorf("server-properties capabilities = %+v", caps)
				}
			},
		},
		{
			name: "passive declare of a missing queue closes the channel",
			msgs: append(handshake(),
				queueDeclare(1, "nope", true, false),
				closeMethod(1, 20, 404, "NOT_FOUND - no queue 'nope' in vhost '/'", 50, 10),
				chCloseOk, ""),
			want: append(handshakeLines[:4:4],
				"queue.declare nope 404 NOT_FOUND",
				"channel.close queue.declare 404 NOT_FOUND"),
			check: func(t *testing.T, es []*protocols.Entry) {
				r := es[4].AMQP
				if r.Reply.Method != "channel.close" || r.ReplyCode != 404 || !strings.HasPrefix(r.ReplyText, "NOT_FOUND") {
					t.Errorf("queue.declare reply %+v code %d text %q", r.Reply, r.ReplyCode, r.ReplyText)
				}
				if es[5].AMQP.Sender != "server" || es[5].AMQP.Reply.Method != "channel.close-ok" {
					t.Errorf("channel.close: %+v", es[5].AMQP)
				}
			},
		},
		{
			name: "server-named queue and no-wait declare",
			msgs: []string{queueDeclare(1, "", false, false), queueDeclareOk(1, "amq.gen-X"), queueDeclare(1, "q2", false, true), ""},
			want: []string{"queue.declare amq.gen-X ok", "queue.declare q2 ok"},
		},
		{
			name: "publish without confirms is one-way, content across frames",
			msgs: []string{publish(1, "amq.topic", "orders.created") + hdr(1, 300, "text/plain") + bodyFrame(1, body[:100]) + heartbeat + bodyFrame(1, body[100:])},
			want: []string{"basic.publish amq.topic/orders.created ok"},
			check: func(t *testing.T, es []*protocols.Entry) {
				c := es[0].AMQP.Content
				if c.BodySize != 300 || c.BodyFrames != 2 || string(c.Body.Data) != body || c.Properties.ContentType != "text/plain" || c.Properties.DeliveryMode != 2 {
					t.Errorf("content = %+v", c)
				}
				if es[0].RequestSize != int64(len(publish(1, "amq.topic", "orders.created")+hdr(1, 300, "text/plain")+bodyFrame(1, body[:100])+bodyFrame(1, body[100:]))) {
					t.Errorf("request size = %d", es[0].RequestSize)
				}
			},
		},
		{
			name:    "body capped",
			bodyCap: 10,
			msgs:    []string{publish(1, "", "q") + hdr(1, 300, "x") + bodyFrame(1, body)},
			want:    []string{"basic.publish (default)/q ok"},
			check: func(t *testing.T, es []*protocols.Entry) {
				b := es[0].AMQP.Content.Body
				if len(b.Data) != 10 || !b.Truncated || b.Size != 300 {
					t.Errorf("body = %+v", b)
				}
			},
		},
		{
			name: "publisher confirms: multiple ack, nack, then one without confirm",
			msgs: []string{
				meth(1, 85, 10, args().bits(false)), meth(1, 85, 11, nil),
				publish(1, "ex", "a") + hdr(1, 1, "t") + bodyFrame(1, "1") +
					publish(1, "ex", "b") + hdr(1, 0, "t") +
					publish(1, "ex", "c") + hdr(1, 1, "t") + bodyFrame(1, "3"),
				ack(1, 2, true) + nack(1, 3, false, false),
			},
			want: []string{"confirm.select  ok", "basic.publish ex/a ack", "basic.publish ex/b ack", "basic.publish ex/c nack"},
			check: func(t *testing.T, es []*protocols.Entry) {
				for i, want := range []protocols.AMQPConfirm{{DeliveryTag: 1, Status: "ack", Multiple: true}, {DeliveryTag: 2, Status: "ack", Multiple: true}, {DeliveryTag: 3, Status: "nack"}} {
					if got := es[i+1].AMQP.Confirm; got == nil || *got != want {
						t.Errorf("publish %d confirm = %+v, want %+v", i+1, got, want)
					}
				}
			},
		},
		{
			name: "unconfirmed publish at the end",
			msgs: []string{meth(1, 85, 10, args().bits(true)) + publish(1, "ex", "a") + hdr(1, 0, "t")},
			want: []string{"confirm.select  ok", "basic.publish ex/a  unmatched=response"},
		},
		{
			name: "publish to a missing exchange in confirm mode is answered by the close",
			msgs: []string{
				meth(1, 85, 10, args().bits(true)) + publish(1, "nope", "k") + hdr(1, 0, "t"),
				closeMethod(1, 20, 404, "NOT_FOUND - no exchange 'nope' in vhost '/'", 60, 40),
				chCloseOk, "",
			},
			want: []string{"confirm.select  ok", "basic.publish nope/k 404 NOT_FOUND", "channel.close basic.publish 404 NOT_FOUND"},
		},
		{
			name: "server confirm without a publish seen",
			msgs: []string{"", ack(1, 7, false)},
			want: []string{"basic.ack  ack unmatched=request"},
		},
		{
			name: "get-ok carries content, get-empty",
			msgs: []string{
				meth(1, 60, 70, args().u16(0).short("q").bits(false)),
				meth(1, 60, 71, args().u64(1).bits(false).short("ex").short("rk").u32(0)) + hdr(1, 2, "t") + bodyFrame(1, "hi"),
				meth(1, 60, 70, args().u16(0).short("q").bits(false)),
				meth(1, 60, 72, args().short("")),
			},
			want: []string{"basic.get q ok", "basic.get q empty"},
			check: func(t *testing.T, es []*protocols.Entry) {
				r := es[0].AMQP
				if r.Reply.Content == nil || string(r.Reply.Content.Body.Data) != "hi" || r.DeliveryTag != 1 || r.Exchange != "ex" || r.RoutingKey != "rk" {
					t.Errorf("get-ok = %+v", r)
				}
			},
		},
		{
			name: "deliver and consumer ack are one-way, heartbeats are not entries",
			msgs: []string{
				meth(1, 60, 20, args().u16(0).short("q").short("").bits(false, false, false, false).table()),
				meth(1, 60, 21, args().short("ctag-1")) + heartbeat + deliver(1, "ctag-1", 1, "ex", "rk") + hdr(1, 1, "t") + bodyFrame(1, "x"),
				heartbeat + ack(1, 1, false),
			},
			want: []string{"basic.consume q ok", "basic.deliver ex/rk ok", "basic.ack  ok"},
			check: func(t *testing.T, es []*protocols.Entry) {
				if es[0].AMQP.ConsumerTag != "ctag-1" || es[1].AMQP.DeliveryTag != 1 || es[2].AMQP.Sender != "client" {
					t.Errorf("consume %+v deliver %+v ack %+v", es[0].AMQP, es[1].AMQP, es[2].AMQP)
				}
			},
		},
		{
			name: "transactions and RabbitMQ's exchange.unbind-ok 51",
			msgs: []string{
				meth(1, 90, 10, nil), meth(1, 90, 11, nil),
				meth(1, 90, 20, nil), meth(1, 90, 21, nil),
				meth(1, 90, 30, nil), meth(1, 90, 31, nil),
				meth(1, 40, 40, args().u16(0).short("dst").short("src").short("rk").bits(false).table()), meth(1, 40, 51, nil),
			},
			want: []string{"tx.select  ok", "tx.commit  ok", "tx.rollback  ok", "exchange.unbind dst ok"},
		},
		{
			name: "connection refused by the server",
			msgs: []string{"AMQP\x00\x00\x09\x01", connStart, connStartOkPlain, connTune, connTuneOk + meth(0, 10, 40, args().short("/bad").short("").bits(false)),
				closeMethod(0, 10, 530, "NOT_ALLOWED - vhost /bad not found", 10, 40), meth(0, 10, 51, nil)},
			want: []string{"connection.start  ok", "connection.tune  ok", "connection.open /bad 530 NOT_ALLOWED", "connection.close connection.open 530 NOT_ALLOWED"},
		},
		{
			name: "reply without its request",
			msgs: []string{"", queueDeclareOk(1, "q")},
			want: []string{"queue.declare q ok unmatched=request"},
		},
		{
			name: "request without its reply, and one passed over",
			msgs: []string{meth(1, 60, 10, args().u32(0).u16(10).bits(false)) + meth(1, 90, 10, nil), meth(1, 90, 11, nil), queueDeclare(1, "q", false, false)},
			want: []string{"basic.qos   unmatched=response", "tx.select  ok", "queue.declare q  unmatched=response"},
		},
		{
			name: "server rejects the protocol version",
			msgs: []string{"AMQP\x00\x00\x09\x01", "AMQP\x00\x01\x00\x00"},
			want: []string{"protocol-header AMQP 0-9-1 rejected"},
		},
		{
			name:      "joined mid-stream inside a body frame",
			midStream: true,
			msgs:      []string{body[:50] + "\xce" + publish(1, "ex", "k") + hdr(1, 1, "t") + bodyFrame(1, "z")},
			want:      []string{"basic.publish ex/k ok"},
		},
		{
			name:    "frame-end missing",
			msgs:    []string{"AMQP\x00\x00\x09\x01", connStart[:len(connStart)-1] + "X"},
			wantErr: codeFrameEnd,
		},
		{
			name:    "frame larger than frame_max",
			msgs:    []string{"AMQP\x00\x00\x09\x01" + "\x03\x00\x01\x00\x10\x00\x00"},
			wantErr: codeFrameSize,
		},
		{
			name:    "unknown method",
			msgs:    []string{"AMQP\x00\x00\x09\x01" + meth(1, 70, 10, nil)},
			wantErr: codeMethod,
		},
		{
			name:    "arguments cut short",
			msgs:    []string{meth(1, 50, 10, args().u16(0).short("q"))},
			wantErr: codeMethodArgs,
		},
		{
			name:    "body longer than declared",
			msgs:    []string{publish(1, "", "q") + hdr(1, 1, "t") + bodyFrame(1, "too long")},
			wantErr: codeBodySize,
		},
		{
			name:    "not AMQP 0-9-1",
			msgs:    []string{"AMQP\x00\x01\x00\x00"},
			wantErr: codeProtocolHeader,
		},
		{
			name:    "parse error flushes what was pending",
			msgs:    []string{queueDeclare(1, "q", false, false) + "\x07\x00\x01\x00\x00\x00\x00"},
			want:    []string{"queue.declare q  unmatched=response"},
			wantErr: codeFrameType,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			info := protocols.ConnInfo{Options: protocols.DefaultOptions(), MidStream: tt.midStream}
			if tt.bodyCap > 0 {
				info.Options.BodyCap = tt.bodyCap
			}
			// Tables that do not start with the protocol header join mid-stream
			// at a frame boundary.
			if len(tt.msgs) > 0 && !strings.HasPrefix(tt.msgs[0], "AMQP") {
				info.MidStream = true
			}
			res := replay(t, info, protocolstest.Stream(tt.msgs...))
			code := ""
			var pe *protocols.ParseError
			if errors.As(res.Err, &pe) {
				code = pe.Code
			} else if res.Err != nil {
				t.Fatalf("error %v is not a ParseError", res.Err)
			}
			if code != tt.wantErr {
				t.Fatalf("error code %q, want %q (%v)", code, tt.wantErr, res.Err)
			}
			if tt.wantErr != "" && tt.want == nil {
				return
			}
			got := protocolstest.DescribeAll(res.Entries)
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Fatalf("entries:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
			if tt.check != nil {
				tt.check(t, res.Entries)
			}
		})
	}
}

func TestCounters(t *testing.T) {
	var got []*protocols.Entry
	c := New().NewConn(protocols.ConnInfo{Options: protocols.DefaultOptions(), MidStream: true}, func(e *protocols.Entry) { got = append(got, e) })
	data := []byte(heartbeat + heartbeat + hdr(1, 1, "t") + bodyFrame(1, "x"))
	n, err := c.Feed(protocols.ClientToServer, data, time.Unix(0, 0))
	if err != nil || n != len(data) {
		t.Fatalf("Feed = %d, %v", n, err)
	}
	counts := c.(interface{ Counters() map[string]uint64 }).Counters()
	if counts[countHeartbeat] != 2 || counts[countOrphan] != 2 || len(got) != 0 {
		t.Errorf("counters %v, %d entries", counts, len(got))
	}
}
