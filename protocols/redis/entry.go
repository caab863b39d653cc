package redis

import (
	"strconv"
	"unicode/utf8"

	"github.com/sondehq/sonde/protocols"
)

// Display caps: what an entry shows of a command and of a reply.
const (
	maxArgs  = 64   // arguments shown
	argCap   = 512  // bytes shown of one argument, key or channel
	replyCap = 4096 // bytes of a rendered reply
)

// display shows b as it is when it is printable UTF-8, Go-quoted otherwise,
// cut to limit bytes of b ("..." marks the cut). It reports the cut.
func display(b []byte, limit int) (string, bool) {
	cut := len(b) > limit
	if cut {
		b = b[:limit]
		// Do not split a UTF-8 sequence.
		for len(b) > 0 && !utf8.Valid(b) && len(b) > limit-utf8.UTFMax {
			b = b[:len(b)-1]
		}
	}
	s := string(b)
	if !utf8.ValidString(s) || !printable(b) {
		s = strconv.Quote(s)
	}
	if cut {
		s += "..."
	}
	return s, cut
}

// typeName names a value's RESP type as RedisRecord.ReplyType does.
func typeName(v *value) string {
	if v.isNull() {
		return "null"
	}
	switch v.kind {
	case '+':
		return "simple_string"
	case '-':
		return "error"
	case ':':
		return "integer"
	case '$':
		return "bulk_string"
	case '*':
		return "array"
	case '#':
		return "boolean"
	case ',':
		return "double"
	case '(':
		return "big_number"
	case '!':
		return "bulk_error"
	case '=':
		return "verbatim_string"
	case '%':
		return "map"
	case '~':
		return "set"
	case '>':
		return "push"
	case '|':
		return "attribute"
	}
	return "unknown"
}

// describe fills in the reply fields of rec from v, and returns the
// Summary status: "OK", or an error's code.
func describe(rec *protocols.RedisRecord, v *value, limit int) string {
	rec.ReplyType = typeName(v)
	if v.isAggregate() && !v.isNull() {
		rec.ReplyCount = v.n
	}
	if v.attr != nil {
		rec.Attributes, _ = render(v.attr, limit)
	}
	if v.isError() {
		var cut bool
		rec.Error, cut = display(v.text, limit)
		rec.ReplyTruncated = cut || v.cut
		if code := errorCode(v.text); code != "" {
			return code
		}
		return "ERR"
	}
	var cut bool
	rec.Reply, cut = render(v, limit)
	rec.ReplyTruncated = cut || v.cut
	return "OK"
}

// render shows a value on one line, cut to about limit bytes: simple
// strings as sent, bulk strings quoted, arrays and pushes as [a, b], sets as
// {a, b}, maps as {k: v}, null as (nil), errors inside aggregates as
// (error) TEXT, attributes as |{k: v} before the value they qualify.
func render(v *value, limit int) (string, bool) {
	w := textWriter{limit: limit}
	w.value(v)
	return string(w.b), w.cut
}

type textWriter struct {
	b     []byte
	limit int
	cut   bool
}

func (w *textWriter) full() bool {
	if len(w.b) >= w.limit {
		if !w.cut {
			w.b = append(w.b, "..."...)
			w.cut = true
		}
		return true
	}
	return false
}

func (w *textWriter) write(s string) {
	if w.full() {
		return
	}
	if room := w.limit - len(w.b); len(s) > room {
		w.b = append(w.b, s[:room]...)
		w.full()
		return
	}
	w.b = append(w.b, s...)
}

func (w *textWriter) value(v *value) {
	if w.full() {
		return
	}
	if v.attr != nil && len(w.b) > 0 {
		w.write("|")
		w.value(v.attr)
		w.write(" ")
	}
	if v.isNull() {
		w.write("(nil)")
		return
	}
	switch v.kind {
	case '+', ':', ',', '(':
		s, _ := display(v.text, w.limit)
		w.write(s)
		if v.cut {
			w.write("...")
		}
	case '-', '!':
		s, _ := display(v.text, w.limit)
		w.write("(error) " + s)
		if v.cut {
			w.write("...")
		}
	case '#':
		if len(v.text) == 1 && v.text[0] == 't' {
			w.write("true")
		} else {
			w.write("false")
		}
	case '$', '=':
		text := v.text
		if v.kind == '=' && len(text) >= 4 && text[3] == ':' {
			text = text[4:]
		}
		w.write(strconv.Quote(string(text)))
		if v.cut {
			w.write("...")
		}
	case '*', '>':
		w.elems(v, "[", "]", false)
	case '~':
		w.elems(v, "{", "}", false)
	case '%', '|':
		w.elems(v, "{", "}", true)
	}
}

func (w *textWriter) elems(v *value, open, close string, pairs bool) {
	w.write(open)
	for i, e := range v.elems {
		if w.full() {
			return
		}
		switch {
		case pairs && i%2 == 1:
			w.write(": ")
		case i > 0:
			w.write(", ")
		}
		w.value(e)
	}
	declared := v.n
	if pairs {
		declared *= 2
	}
	if int64(len(v.elems)) < declared {
		if len(v.elems) > 0 {
			w.write(", ")
		}
		w.write("...")
	}
	w.write(close)
}
