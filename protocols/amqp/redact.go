package amqp

import (
	"bytes"
	"strings"

	"github.com/sondehq/sonde/protocols"
)

// redact replaces the credentials in a method's rendered arguments, in
// place, and reports whether it replaced any: the SASL response of
// connection.start-ok and connection.secure-ok, and the new secret of
// connection.update-secret. For PLAIN and AMQPLAIN only the password goes;
// the user name stays, because it tells who connected.
func redact(m *method, fields []protocols.AMQPField, vals []argValue) bool {
	if m.class != classConnection {
		return false
	}
	switch m.id {
	case 11: // start-ok
		return redactResponse(&fields[2], string(find(vals, "mechanism").str), find(vals, "response").str)
	case 21: // secure-ok: the mechanism's answer to a challenge
		return redactAll(&fields[0], find(vals, "response").str)
	case 70: // update-secret: a new token
		return redactAll(&fields[0], find(vals, "new-secret").str)
	}
	return false
}

// redactResponse redacts a SASL response of the named mechanism.
func redactResponse(f *protocols.AMQPField, mechanism string, raw []byte) bool {
	switch mechanism {
	case "PLAIN":
		// RFC 4616: authzid NUL authcid NUL passwd.
		if parts := bytes.SplitN(raw, []byte{0}, 3); len(parts) == 3 {
			*f = protocols.AMQPField{Name: f.Name, Type: f.Type,
				Value: string(parts[0]) + "\x00" + string(parts[1]) + "\x00" + protocols.Redacted}
			return true
		}
	case "AMQPLAIN":
		// A field table without its length prefix: LOGIN and PASSWORD.
		fields, _ := decodeTable(raw, 1, newLimits())
		found := false
		for i := range fields {
			if strings.EqualFold(fields[i].Name, "PASSWORD") {
				fields[i] = protocols.AMQPField{Name: fields[i].Name, Type: fields[i].Type, Value: protocols.Redacted}
				found = true
			}
		}
		if found {
			*f = protocols.AMQPField{Name: f.Name, Type: f.Type, Fields: fields}
			return true
		}
	case "EXTERNAL", "ANONYMOUS":
		// The identity comes from the TLS certificate, or there is none.
		return false
	}
	return redactAll(f, raw)
}

// redactAll replaces a whole value that may be a secret, unless it is empty.
func redactAll(f *protocols.AMQPField, raw []byte) bool {
	if len(raw) == 0 {
		return false
	}
	*f = protocols.AMQPField{Name: f.Name, Type: f.Type, Value: protocols.Redacted}
	return true
}

// redactContent redacts a message's content in place and reports whether it
// replaced anything: the headers table of its properties, where clients put
// tokens for the consumer (an "authorization" header, as HTTP would), and a
// JSON or form body.
func redactContent(cnt *protocols.AMQPContent, p protocols.SecretPolicy) bool {
	if cnt == nil {
		return false
	}
	changed := redactFields(cnt.Properties.Headers, p)
	if cnt.Properties.ContentEncoding == "" && p.RedactBody(&cnt.Body, cnt.Properties.ContentType) {
		changed = true
	}
	return changed
}

// redactFields replaces the values of secret-named fields of a table, at any
// depth, and what the policy's patterns match in the other values.
func redactFields(fields []protocols.AMQPField, p protocols.SecretPolicy) bool {
	changed := false
	for i := range fields {
		f := &fields[i]
		switch {
		case f.Value == protocols.Redacted && f.Fields == nil:
		case f.Name != "" && p.IsSecret(f.Name) && (f.Value != "" || f.Fields != nil):
			*f = protocols.AMQPField{Name: f.Name, Type: f.Type, Value: protocols.Redacted}
			changed = true
		case f.Fields != nil:
			changed = redactFields(f.Fields, p) || changed
		case f.Encoding == "":
			var c bool
			if f.Value, c = p.RedactValue(f.Value); c {
				changed = true
			}
		}
	}
	return changed
}
