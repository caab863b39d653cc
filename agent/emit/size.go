package emit

import (
	"strings"

	"github.com/sondehq/sonde/protocols"
)

// The sender bounds what it holds in bytes, not only in entries: an entry
// can carry a body of several hundred KiB, and a hub away for minutes under
// load would otherwise let a count-bounded buffer grow to gigabytes.
// footprint is what an entry is charged while it waits: the bytes it holds
// (payloads, headers, the strings a list shows) and a fixed part for the
// rest; a batch is charged its encoded size.

// entryOverhead is the charge for an entry's fixed fields and its JSON
// framing.
const entryOverhead = 512

// cutWarning is what an entry cut to fit a batch says about itself.
const cutWarning = "cut to fit the hub's message size: payloads shortened, or the record dropped"

// footprint estimates the bytes an entry holds.
func footprint(e *protocols.Entry) int {
	n := entryOverhead + len(e.Summary.Target) + len(e.Summary.Method) + len(e.Summary.Status)
	for _, w := range e.Warnings {
		n += len(w)
	}
	payloads(e, func(p *[]byte) { n += len(*p) })
	headers := func(h protocols.Headers) {
		for _, f := range h {
			n += len(f.Name) + len(f.Value)
		}
	}
	if r := e.HTTP; r != nil {
		if r.Request != nil {
			n += len(r.Request.Target)
			headers(r.Request.Headers)
			headers(r.Request.Trailers)
		}
		if r.Response != nil {
			headers(r.Response.Headers)
			headers(r.Response.Trailers)
		}
	}
	if r := e.Redis; r != nil {
		n += len(r.Reply)
		for _, a := range r.Args {
			n += len(a)
		}
	}
	for _, c := range amqpContents(e) {
		for _, f := range c.Properties.Headers {
			n += len(f.Name) + len(f.Value)
		}
	}
	return n
}

// payloads calls fn with every payload an entry keeps: bodies, records'
// keys and values, gRPC messages. They are what cut shortens.
func payloads(e *protocols.Entry, fn func(p *[]byte)) {
	body := func(b *protocols.Body) {
		if b != nil {
			fn(&b.Data)
		}
	}
	if r := e.HTTP; r != nil {
		if r.Request != nil {
			body(&r.Request.Body)
		}
		if r.Response != nil {
			body(&r.Response.Body)
		}
	}
	for _, c := range amqpContents(e) {
		body(&c.Body)
	}
	if r := e.Kafka; r != nil {
		body(r.SASLAuth)
		for i := range r.Batches {
			for j := range r.Batches[i].Records {
				m := &r.Batches[i].Records[j]
				body(m.Key)
				body(m.Value)
				for k := range m.Headers {
					body(m.Headers[k].Value)
				}
			}
		}
	}
	if r := e.GRPC; r != nil {
		for _, side := range []*protocols.GRPCMessages{&r.Requests, &r.Responses} {
			for i := range side.Messages {
				fn(&side.Messages[i].Data)
			}
		}
	}
}

// amqpContents are the messages an AMQP entry carries: the method's own and
// the one a basic.get-ok answered with.
func amqpContents(e *protocols.Entry) []*protocols.AMQPContent {
	var out []*protocols.AMQPContent
	if r := e.AMQP; r != nil {
		if r.Content != nil {
			out = append(out, r.Content)
		}
		if r.Reply != nil && r.Reply.Content != nil {
			out = append(out, r.Reply.Content)
		}
	}
	return out
}

// cut shortens e's payloads to at most limit bytes each, marking the bodies
// it cuts as truncated, and reports whether it cut anything. gRPC messages
// cut short lose their decoded fields, which no longer describe the bytes.
func cut(e *protocols.Entry, limit int) bool {
	cutAny := false
	payloads(e, func(p *[]byte) {
		if len(*p) > limit {
			*p = (*p)[:limit:limit]
			cutAny = true
		}
	})
	if !cutAny {
		return false
	}
	markTruncated := func(b *protocols.Body) {
		if b != nil && int64(len(b.Data)) < b.Size {
			b.Truncated = true
		}
	}
	if r := e.HTTP; r != nil {
		if r.Request != nil {
			markTruncated(&r.Request.Body)
		}
		if r.Response != nil {
			markTruncated(&r.Response.Body)
		}
	}
	for _, c := range amqpContents(e) {
		markTruncated(&c.Body)
	}
	if r := e.GRPC; r != nil {
		for _, side := range []*protocols.GRPCMessages{&r.Requests, &r.Responses} {
			for i := range side.Messages {
				if len(side.Messages[i].Data) == limit {
					side.Messages[i].Fields = nil
				}
			}
		}
	}
	return true
}

// stub reduces e to what the list shows (endpoints, times, sizes, summary,
// loss markers): the last resort for an entry that does not fit a batch even
// with its payloads cut, so that the exchange is still seen, with its reason.
func stub(e *protocols.Entry) {
	*e = protocols.Entry{
		ID: e.ID, Protocol: e.Protocol, Node: e.Node, Source: e.Source,
		Start: e.Start, Duration: e.Duration, Src: e.Src, Dst: e.Dst, Via: e.Via,
		Summary: e.Summary, RequestSize: e.RequestSize, ResponseSize: e.ResponseSize,
		Unmatched: e.Unmatched, Gap: e.Gap, Redacted: e.Redacted,
	}
	for _, s := range []*string{&e.Summary.Method, &e.Summary.Target, &e.Summary.Status} {
		if len(*s) > maxSummaryField {
			*s = strings.ToValidUTF8((*s)[:maxSummaryField], "")
		}
	}
}

// maxSummaryField bounds each summary field of a stub.
const maxSummaryField = 1024
