package amqp

import (
	"strings"
	"testing"

	"github.com/sondehq/sonde/protocols"
	"github.com/sondehq/sonde/protocols/protocolstest"
)

// hdrWithHeaders is a basic content header with content-type and a headers
// table.
func hdrWithHeaders(ch uint16, size uint64, contentType string, entries ...string) string {
	p := (&enc{}).u16(classBasic).u16(0).u64(size).u16(propContentType | propHeaders).short(contentType).table(entries...)
	return frame(frameHeader, ch, p.str())
}

// TestRedactMessage: a message's headers table and its JSON body lose
// their secrets; the rest of them stays.
func TestRedactMessage(t *testing.T) {
	const s = "s3cr3tv4lue"
	body := `{"order":42,"api_key":"` + s + `1"}`
	msgs := []string{
		publish(1, "ex", "k") +
			hdrWithHeaders(1, uint64(len(body)), "application/json",
				fStr("authorization", "Bearer "+s+"2"), fStr("trace", "t1"),
				fTable("auth", fStr("user", "u")), fTable("meta", fStr("x-session-token", s+"3"))) +
			bodyFrame(1, body),
	}
	info := protocols.ConnInfo{Options: protocols.DefaultOptions(), MidStream: true}
	res := replay(t, info, protocolstest.Stream(msgs...))
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	protocolstest.NoSecret(t, res.Entries, s)
	e := res.Entries[0]
	if !e.Redacted {
		t.Error("publish not marked redacted")
	}
	h := e.AMQP.Content.Properties.Headers
	if len(h) != 4 || h[1].Value != "t1" || h[2].Value != protocols.Redacted || h[3].Fields[0].Value != protocols.Redacted {
		t.Errorf("headers %+v", h)
	}
	if got := string(e.AMQP.Content.Body.Data); got != `{"order":42,"api_key":"[REDACTED]"}` {
		t.Errorf("body %s", got)
	}
}

// TestRedactCodedBody: a body sent with a content-encoding is shown as
// sent, which cannot be searched for secrets: it is withheld, with a
// warning, its size kept.
func TestRedactCodedBody(t *testing.T) {
	const s = "s3cr3tv4lue"
	body := `{"password":"` + s + `1"}`
	p := (&enc{}).u16(classBasic).u16(0).u64(uint64(len(body))).u16(propContentType | propContentEncoding).short("application/json").short("x-custom")
	msgs := []string{publish(1, "ex", "k") + frame(frameHeader, 1, p.str()) + bodyFrame(1, body)}
	info := protocols.ConnInfo{Options: protocols.DefaultOptions(), MidStream: true}
	res := replay(t, info, protocolstest.Stream(msgs...))
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	protocolstest.NoSecret(t, res.Entries, s)
	e := res.Entries[0]
	if b := e.AMQP.Content.Body; b.Size != int64(len(body)) || len(b.Data) != 0 || !b.Truncated {
		t.Errorf("body %+v", b)
	}
	if !strings.Contains(strings.Join(e.Warnings, ";"), "withheld") {
		t.Errorf("warnings %q", e.Warnings)
	}
}
