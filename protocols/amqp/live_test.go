package amqp

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/sondehq/sonde/protocols"
	"github.com/sondehq/sonde/protocols/protocolstest"
)

// liveWait bounds each wait on the broker in the live tests.
const liveWait = 20 * time.Second

// TestRabbitMQ drives Debian's rabbitmq-server with amqp091-go through a
// recording proxy and checks that every method the client made, and every
// message the broker sent, appears once with the right fields and status.
func TestRabbitMQ(t *testing.T) {
	b := rabbitMQ(t)
	rec := protocolstest.NewRecorder(t, b.Addr)
	ctx, cancel := context.WithTimeout(context.Background(), 4*liveWait)
	defer cancel()

	conn, err := amqp091.DialConfig("amqp://guest:guest@"+rec.Addr+"/", amqp091.Config{
		// amqp091-go takes the first mechanism the broker offers; PLAIN
		// has a test of its own below.
		SASL: []amqp091.Authentication{&amqp091.AMQPlainAuth{Username: "guest", Password: "guest"}},
	})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	// On failure the connection must end before the recorder waits for it.
	t.Cleanup(func() { conn.Close() })
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	setup, err := conn.Channel() // channel 1
	must(err)
	must(setup.ExchangeDeclare("sonde.topic", "topic", false, true, false, false, nil))
	// Not auto-delete: the queue must outlive its consumer for basic.get.
	_, err = setup.QueueDeclare("sonde.orders", false, false, false, false, nil)
	must(err)
	must(setup.QueueBind("sonde.orders", "orders.*", "sonde.topic", false, nil))
	_, err = setup.QueueDeclare("sonde.full", false, true, false, false, amqp091.Table{"x-max-length": int32(0), "x-overflow": "reject-publish"})
	must(err)
	// An exchange-to-exchange binding to an exchange without queues:
	// what reaches it is still unroutable.
	must(setup.ExchangeDeclare("sonde.audit", "fanout", false, true, false, false, nil))
	must(setup.ExchangeBind("sonde.audit", "#", "sonde.topic", false, nil))

	pub, err := conn.Channel() // channel 2
	must(err)
	must(pub.Confirm(false))
	returns := pub.NotifyReturn(make(chan amqp091.Return, 1))
	var confirms []*amqp091.DeferredConfirmation
	for _, key := range []string{"orders.created", "orders.paid"} {
		dc, err := pub.PublishWithDeferredConfirmWithContext(ctx, "sonde.topic", key, false, false, amqp091.Publishing{
			ContentType: "application/json", DeliveryMode: amqp091.Persistent, MessageId: key,
			Headers: amqp091.Table{"tenant": "acme", "attempt": int32(1)},
			Body:    []byte(`{"order":"` + key + `"}`),
		})
		must(err)
		confirms = append(confirms, dc)
	}
	// Unroutable and mandatory: basic.return, then the broker's ack.
	dc, err := pub.PublishWithDeferredConfirmWithContext(ctx, "sonde.topic", "nobody.listens", true, false, amqp091.Publishing{Body: []byte("lost")})
	must(err)
	confirms = append(confirms, dc)
	// A full queue that rejects publishes: the broker's nack.
	dc, err = pub.PublishWithDeferredConfirmWithContext(ctx, "", "sonde.full", false, false, amqp091.Publishing{Body: []byte("rejected")})
	must(err)
	confirms = append(confirms, dc)
	wantAcks := []bool{true, true, true, false}
	for i, dc := range confirms {
		ok, err := dc.WaitContext(ctx)
		must(err)
		if ok != wantAcks[i] {
			t.Fatalf("publish %d: broker ack = %v, want %v", i+1, ok, wantAcks[i])
		}
	}
	select {
	case <-returns:
	case <-ctx.Done():
		t.Fatal("no basic.return")
	}

	cons, err := conn.Channel() // channel 3
	must(err)
	must(cons.Qos(10, 0, false))
	deliveries, err := cons.ConsumeWithContext(ctx, "sonde.orders", "sonde-consumer", false, false, false, false, nil)
	must(err)
	var got []amqp091.Delivery
	for len(got) < 2 {
		select {
		case d := <-deliveries:
			got = append(got, d)
		case <-ctx.Done():
			t.Fatalf("got %d deliveries", len(got))
		}
	}
	must(got[0].Ack(false))
	must(got[1].Nack(false, false))
	must(cons.Cancel("sonde-consumer", false))

	// basic.get: a message, then an empty queue. Publishing on a channel
	// without confirms is one-way; the get that finds it proves it arrived.
	must(setup.PublishWithContext(ctx, "sonde.topic", "orders.shipped", false, false, amqp091.Publishing{Body: []byte("got")}))
	var msg amqp091.Delivery
	ok := false
	for deadline := time.Now().Add(liveWait); !ok && time.Now().Before(deadline); {
		msg, ok, err = setup.Get("sonde.orders", false)
		must(err)
	}
	if !ok || string(msg.Body) != "got" {
		t.Fatalf("basic.get: ok=%v body=%q", ok, msg.Body)
	}
	must(msg.Reject(false))
	_, ok, err = setup.Get("sonde.orders", true)
	must(err)
	if ok {
		t.Fatal("basic.get found a message in an empty queue")
	}

	tx, err := conn.Channel() // channel 4
	must(err)
	must(tx.Tx())
	must(tx.PublishWithContext(ctx, "sonde.topic", "orders.tx", false, false, amqp091.Publishing{Body: []byte("committed")}))
	must(tx.TxCommit())
	must(tx.PublishWithContext(ctx, "sonde.topic", "orders.tx", false, false, amqp091.Publishing{Body: []byte("rolled back")}))
	must(tx.TxRollback())

	bad, err := conn.Channel() // channel 5
	must(err)
	_, err = bad.QueueDeclarePassive("sonde.missing", false, false, false, false, nil)
	var amqpErr *amqp091.Error
	if !errors.As(err, &amqpErr) || amqpErr.Code != amqp091.NotFound {
		t.Fatalf("passive declare of a missing queue: %v, want 404", err)
	}

	_, err = setup.QueueDelete("sonde.orders", false, false, false)
	must(err)
	must(tx.Close())
	must(cons.Close())
	must(pub.Close())
	must(setup.Close())
	must(conn.Close())
	rec.Close()

	conns := rec.Conns()
	if len(conns) != 1 {
		t.Fatalf("recorded %d connections, want 1", len(conns))
	}
	res, err := protocolstest.Replay(New(), protocols.ConnInfo{Options: protocols.DefaultOptions()}, conns[0], protocols.ClosedFIN)
	if err != nil || res.Err != nil {
		t.Fatalf("replay: %v, %v", err, res.Err)
	}
	saveRecording(t, "rabbitmq-session", conns[0])

	want := []string{
		"0 connection.start  ok",
		"0 connection.tune  ok",
		"0 connection.open / ok",
		"1 channel.open  ok",
		"1 exchange.declare sonde.topic ok",
		"1 queue.declare sonde.orders ok",
		"1 queue.bind sonde.orders ok",
		"1 queue.declare sonde.full ok",
		"1 exchange.declare sonde.audit ok",
		"1 exchange.bind sonde.audit ok",
		"2 channel.open  ok",
		"2 confirm.select  ok",
		"2 basic.publish sonde.topic/orders.created ack",
		"2 basic.publish sonde.topic/orders.paid ack",
		"2 basic.return sonde.topic/nobody.listens 312 NO_ROUTE",
		"2 basic.publish sonde.topic/nobody.listens ack",
		"2 basic.publish (default)/sonde.full nack",
		"3 channel.open  ok",
		"3 basic.qos  ok",
		"3 basic.consume sonde.orders ok",
		"3 basic.deliver sonde.topic/orders.created ok",
		"3 basic.deliver sonde.topic/orders.paid ok",
		"3 basic.ack  ok",
		"3 basic.nack  ok",
		"3 basic.cancel sonde-consumer ok",
		"1 basic.publish sonde.topic/orders.shipped ok",
		"1 basic.get sonde.orders ok",
		"1 basic.reject  ok",
		"1 basic.get sonde.orders empty",
		"1 queue.delete sonde.orders ok",
		"4 channel.open  ok",
		"4 tx.select  ok",
		"4 basic.publish sonde.topic/orders.tx ok",
		"4 tx.commit  ok",
		"4 basic.publish sonde.topic/orders.tx ok",
		"4 tx.rollback  ok",
		"5 channel.open  ok",
		"5 queue.declare sonde.missing 404 NOT_FOUND",
		"5 channel.close queue.declare 404 NOT_FOUND",
		"4 channel.close  ok",
		"3 channel.close  ok",
		"2 channel.close  ok",
		"1 channel.close  ok",
		"0 connection.close  ok",
	}
	// Entries come out as they complete: a publish waits for its confirm,
	// and the broker confirms an unroutable message before the routed ones
	// that were published first. Read them in the order they started;
	// channel 2's confirms are checked by tag below.
	slices.SortStableFunc(res.Entries, func(a, b *protocols.Entry) int { return a.Start.Compare(b.Start) })
	var gotLines []string
	for _, e := range res.Entries {
		gotLines = append(gotLines, strconv.Itoa(int(e.AMQP.Channel))+" "+protocolstest.Describe(e))
		if len(e.Warnings) > 0 {
			t.Errorf("%s: warnings %q", protocolstest.Describe(e), e.Warnings)
		}
	}
	// Channels run concurrently: compare as sets of lines, and in order
	// within each channel.
	if !slices.Equal(slices.Sorted(slices.Values(gotLines)), slices.Sorted(slices.Values(want))) {
		t.Fatalf("entries:\n%s\nwant:\n%s", strings.Join(gotLines, "\n"), strings.Join(want, "\n"))
	}
	for _, ch := range []int{0, 1, 3, 4, 5} {
		if a, b := onChannel(gotLines, ch), onChannel(want, ch); !slices.Equal(a, b) {
			t.Errorf("channel %d in order:\n%s\nwant:\n%s", ch, strings.Join(a, "\n"), strings.Join(b, "\n"))
		}
	}
	checkLiveFields(t, res.Entries)
}

func onChannel(lines []string, ch int) []string {
	var out []string
	for _, l := range lines {
		if strings.HasPrefix(l, strconv.Itoa(ch)+" ") {
			out = append(out, l)
		}
	}
	return out
}

// entry returns the first entry with the method and target.
func entry(t *testing.T, es []*protocols.Entry, method, target string) *protocols.Entry {
	t.Helper()
	for _, e := range es {
		if e.Summary.Method == method && e.Summary.Target == target {
			return e
		}
	}
	t.Fatalf("no %s %s entry", method, target)
	return nil
}

func field(fs []protocols.AMQPField, name string) protocols.AMQPField {
	for _, f := range fs {
		if f.Name == name {
			return f
		}
	}
	return protocols.AMQPField{}
}

func checkLiveFields(t *testing.T, es []*protocols.Entry) {
	start := entry(t, es, "connection.start", "")
	resp := field(start.AMQP.Reply.Arguments, "response")
	if !start.Redacted || field(resp.Fields, "LOGIN").Value != "guest" || field(resp.Fields, "PASSWORD").Value != protocols.Redacted {
		t.Errorf("AMQPLAIN start-ok: redacted=%v response=%+v", start.Redacted, resp)
	}
	if start.AMQP.ProtocolHeader != "AMQP 0-9-1" || field(field(start.AMQP.Arguments, "server-properties").Fields, "product").Value != "RabbitMQ" {
		t.Errorf("connection.start: header %q, arguments %+v", start.AMQP.ProtocolHeader, start.AMQP.Arguments)
	}

	full := entry(t, es, "queue.declare", "sonde.full")
	args := field(full.AMQP.Arguments, "arguments").Fields
	if f := field(args, "x-max-length"); f.Type != "int32" || f.Value != "0" ||
		field(args, "x-overflow").Value != "reject-publish" {
		t.Errorf("queue.declare arguments = %+v", args)
	}

	pub := entry(t, es, "basic.publish", "sonde.topic/orders.created")
	c := pub.AMQP.Content
	if c == nil || string(c.Body.Data) != `{"order":"orders.created"}` || c.Properties.ContentType != "application/json" ||
		c.Properties.DeliveryMode != 2 || c.Properties.MessageID != "orders.created" ||
		field(c.Properties.Headers, "tenant").Value != "acme" || field(c.Properties.Headers, "attempt").Type != "int32" {
		t.Errorf("publish content = %+v", c)
	}
	for tag, target := range []string{"sonde.topic/orders.created", "sonde.topic/orders.paid", "sonde.topic/nobody.listens", "(default)/sonde.full"} {
		status := "ack"
		if tag == 3 {
			status = "nack"
		}
		if c := entry(t, es, "basic.publish", target).AMQP.Confirm; c == nil || c.DeliveryTag != uint64(tag+1) || c.Status != status {
			t.Errorf("publish %s: confirm %+v, want tag %d %s", target, c, tag+1, status)
		}
	}

	del := entry(t, es, "basic.deliver", "sonde.topic/orders.paid")
	if del.AMQP.ConsumerTag != "sonde-consumer" || del.AMQP.DeliveryTag != 2 || string(del.AMQP.Content.Body.Data) != `{"order":"orders.paid"}` || del.AMQP.Sender != "server" {
		t.Errorf("deliver = %+v", del.AMQP)
	}

	get := entry(t, es, "basic.get", "sonde.orders")
	if get.AMQP.Reply == nil || get.AMQP.Reply.Content == nil || string(get.AMQP.Reply.Content.Body.Data) != "got" || get.AMQP.RoutingKey != "orders.shipped" {
		t.Errorf("basic.get = %+v", get.AMQP)
	}

	missing := entry(t, es, "queue.declare", "sonde.missing")
	if missing.AMQP.ReplyCode != 404 || missing.AMQP.Reply.Method != "channel.close" || missing.Duration <= 0 {
		t.Errorf("passive declare = %+v, duration %v", missing.AMQP, missing.Duration)
	}
}

// TestRabbitMQPlain checks the PLAIN mechanism's redaction on a real
// handshake.
func TestRabbitMQPlain(t *testing.T) {
	b := rabbitMQ(t)
	rec := protocolstest.NewRecorder(t, b.Addr)
	conn, err := amqp091.Dial("amqp://guest:guest@" + rec.Addr + "/")
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	if err := conn.Close(); err != nil {
		t.Fatal(err)
	}
	rec.Close()
	res, err := protocolstest.Replay(New(), protocols.ConnInfo{Options: protocols.DefaultOptions()}, rec.Conns()[0], protocols.ClosedFIN)
	if err != nil || res.Err != nil {
		t.Fatalf("replay: %v, %v", err, res.Err)
	}
	saveRecording(t, "rabbitmq-plain", rec.Conns()[0])
	if got := protocolstest.DescribeAll(res.Entries); !slices.Equal(got, []string{"connection.start  ok", "connection.tune  ok", "connection.open / ok", "connection.close  ok"}) {
		t.Fatalf("entries %q", got)
	}
	start := res.Entries[0]
	if resp := field(start.AMQP.Reply.Arguments, "response"); !start.Redacted || resp.Value != "\x00guest\x00"+protocols.Redacted {
		t.Errorf("PLAIN start-ok: redacted=%v response=%q", start.Redacted, resp.Value)
	}
	if field(start.AMQP.Reply.Arguments, "mechanism").Value != "PLAIN" {
		t.Errorf("mechanism = %+v", start.AMQP.Reply.Arguments)
	}
}
