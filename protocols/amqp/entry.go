package amqp

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/sondehq/sonde/protocols"
)

// fill copies the well-known arguments into the record's own fields; what
// the request said wins over what its reply says. fields are vals as
// rendered, whose strings it shares.
func fill(rec *protocols.AMQPRecord, vals []argValue, fields []protocols.AMQPField) {
	str := func(i int) string {
		if fields[i].Encoding == "" {
			return fields[i].Value
		}
		return string(vals[i].str)
	}
	for i, v := range vals {
		switch v.name {
		case "exchange", "source":
			if rec.Exchange == "" {
				rec.Exchange = str(i)
			}
		case "routing-key":
			if rec.RoutingKey == "" {
				rec.RoutingKey = str(i)
			}
		case "queue":
			if rec.Queue == "" {
				rec.Queue = str(i)
			}
		case "consumer-tag":
			if rec.ConsumerTag == "" {
				rec.ConsumerTag = str(i)
			}
		case "delivery-tag":
			if rec.DeliveryTag == 0 {
				rec.DeliveryTag = v.num
			}
		case "reply-code":
			rec.ReplyCode = uint16(v.num)
		case "reply-text":
			rec.ReplyText = str(i)
		}
	}
}

// finish emits msg once. A zero ts leaves the duration unknown (zero).
func (c *conn) finish(msg *message, ts time.Time) {
	if msg.emitted {
		return
	}
	msg.emitted = true
	c.opts.Budget.Release(msg.held)
	msg.held = 0
	e := msg.entry
	if c.opts.Redact {
		rec := msg.rec
		if redactContent(rec.Content, c.opts.Secrets) {
			e.Redacted = true
		}
		if rec.Reply != nil && redactContent(rec.Reply.Content, c.opts.Secrets) {
			e.Redacted = true
		}
		// A body sent with a content-encoding is shown as sent, which
		// cannot be searched for secrets: it is withheld.
		for _, cnt := range []*protocols.AMQPContent{rec.Content, replyContentOf(rec)} {
			if cnt != nil && protocols.WithholdCoded(&cnt.Body, cnt.Properties.ContentEncoding) {
				e.Redacted = true
				e.Warn(fmt.Sprintf(protocols.WithheldCodedWarning, cnt.Properties.ContentEncoding))
			}
		}
	}
	if ts.After(e.Start) {
		e.Duration = ts.Sub(e.Start)
	}
	if cnt := msg.content(); cnt != nil && cnt.Body.Truncated && !msg.hole && !msg.starved {
		c.count(countBodyTruncated, 1)
	}
	status := msg.status
	if status == "" && e.Unmatched != protocols.MissingResponse {
		status = "ok"
	}
	target := msg.target
	if target == "" {
		target = targetOf(msg.rec)
	}
	e.Summary = protocols.Summary{Method: msg.rec.Method, Target: target, Status: status}
	c.emit(e)
}

// targetOf names what a method acts on: the exchange and routing key a
// message travels by, or the queue, exchange or consumer it addresses.
func targetOf(rec *protocols.AMQPRecord) string {
	switch rec.ClassID {
	case classExchange:
		return rec.Exchange
	case classQueue:
		return rec.Queue
	case classBasic:
		switch rec.MethodID {
		case 40, 50, 60: // publish, return, deliver
			ex := rec.Exchange
			if ex == "" {
				ex = "(default)"
			}
			return ex + "/" + rec.RoutingKey
		case 20, 70: // consume, get
			return rec.Queue
		case 30: // cancel
			return rec.ConsumerTag
		}
	}
	return ""
}

// closeStatus names a reply code the way the spec's constants do: "ok" for
// 200, "404 NOT_FOUND" for the rest.
func closeStatus(code uint16, text string) string {
	if code == 200 {
		return "ok"
	}
	name := replyCodes[code]
	if name == "" {
		// RabbitMQ starts its texts with the constant's name.
		name, _, _ = strings.Cut(text, " ")
	}
	if name == "" {
		return strconv.Itoa(int(code))
	}
	return strconv.Itoa(int(code)) + " " + name
}

func replyContentOf(rec *protocols.AMQPRecord) *protocols.AMQPContent {
	if rec.Reply == nil {
		return nil
	}
	return rec.Reply.Content
}
