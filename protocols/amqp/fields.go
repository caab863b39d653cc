package amqp

import (
	"encoding/base64"
	"math"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/sondehq/sonde/protocols"
	"github.com/sondehq/sonde/protocols/internal/bin"
)

// Caps on what one method or content header may make Sonde keep. Tables are
// length-prefixed, so a cap never loses the framing: what is past it is
// skipped, the field is marked Truncated and the hit is counted.
const (
	// maxTableDepth bounds the nesting of tables and arrays; real ones nest
	// two or three levels (client properties → capabilities).
	maxTableDepth = 8
	// maxFields bounds the fields and array elements decoded per method or
	// content header, at all levels together.
	maxFields = 256
	// maxValueLen bounds the bytes of one string value that are kept.
	maxValueLen = 1024
)

// hitWarnings say in words what each counted hit means for the entry.
var hitWarnings = map[string]string{
	countTableDepth:    "field table nested deeper than 8 levels: inner tables not shown",
	countTableFields:   "more than 256 fields: the rest not shown",
	countValueLen:      "field value longer than 1024 bytes: cut",
	countTableBad:      "field table malformed: shown up to the damage",
	countFieldType:     "field table holds an unknown value type: shown up to it",
	countTrailingBytes: "frame longer than its fields: extra bytes ignored",
}

// limits carries the field budget of one method or content header and
// records which caps it hit, in the order they were first hit.
type limits struct {
	fieldsLeft int
	hits       []string
}

func newLimits() *limits { return &limits{fieldsLeft: maxFields} }

func (l *limits) hit(code string) {
	for _, h := range l.hits {
		if h == code {
			return
		}
	}
	l.hits = append(l.hits, code)
}

// text sets f.Value from p, cut at maxValueLen; bytes that are not UTF-8
// text are kept as base64.
func (l *limits) text(f *protocols.AMQPField, p []byte) {
	if len(p) > maxValueLen {
		p = p[:maxValueLen]
		f.Truncated = true
		l.hit(countValueLen)
		// A cut may split a multi-byte character; that alone must not turn
		// text into base64.
		for i := 0; i < utf8.UTFMax-1 && len(p) > 0 && !utf8.Valid(p); i++ {
			p = p[:len(p)-1]
		}
	}
	if utf8.Valid(p) {
		f.Value = string(p)
		return
	}
	f.Value = base64.StdEncoding.EncodeToString(p)
	f.Encoding = "base64"
}

// decodeTable decodes the packed name-value pairs of a field table (without
// its length prefix). depth is the nesting level of the table, 1 for a
// table that is a method argument. It reports whether it left fields out.
func decodeTable(raw []byte, depth int, l *limits) ([]protocols.AMQPField, bool) {
	r := bin.NewReader(raw)
	var out []protocols.AMQPField
	for r.Len() > 0 {
		if l.fieldsLeft <= 0 {
			l.hit(countTableFields)
			return out, true
		}
		l.fieldsLeft--
		name := r.Bytes8()
		typ := r.Uint8()
		if !r.Ok() {
			l.hit(countTableBad)
			return out, true
		}
		f, ok := decodeValue(&r, typ, depth, l)
		if !ok {
			return out, true
		}
		// Names are short strings (at most 255 bytes); JSON shows any
		// byte that is not UTF-8 as U+FFFD.
		f.Name = string(name)
		out = append(out, f)
	}
	return out, false
}

// decodeArray decodes the values of a field array (without its length prefix).
func decodeArray(raw []byte, depth int, l *limits) ([]protocols.AMQPField, bool) {
	r := bin.NewReader(raw)
	var out []protocols.AMQPField
	for r.Len() > 0 {
		if l.fieldsLeft <= 0 {
			l.hit(countTableFields)
			return out, true
		}
		l.fieldsLeft--
		typ := r.Uint8()
		f, ok := decodeValue(&r, typ, depth, l)
		if !ok {
			return out, true
		}
		out = append(out, f)
	}
	return out, false
}

// decodeValue decodes one field value of type typ. The type letters are
// RabbitMQ's (its errata to the 0-9-1 grammar, which clients and Wireshark
// follow): 's' is a signed 16-bit integer, not a short string, and 'l' a
// signed 64-bit one. The spec's 'U' and 'L' are read too; all types have a
// known size, so only an unknown letter stops the table.
func decodeValue(r *bin.Reader, typ byte, depth int, l *limits) (protocols.AMQPField, bool) {
	var f protocols.AMQPField
	switch typ {
	case 't':
		f.Type, f.Value = "bool", strconv.FormatBool(r.Uint8() != 0)
	case 'b':
		f.Type, f.Value = "int8", strconv.FormatInt(int64(int8(r.Uint8())), 10)
	case 'B':
		f.Type, f.Value = "uint8", strconv.FormatUint(uint64(r.Uint8()), 10)
	case 's', 'U':
		f.Type, f.Value = "int16", strconv.FormatInt(int64(int16(r.Uint16())), 10)
	case 'u':
		f.Type, f.Value = "uint16", strconv.FormatUint(uint64(r.Uint16()), 10)
	case 'I':
		f.Type, f.Value = "int32", strconv.FormatInt(int64(int32(r.Uint32())), 10)
	case 'i':
		f.Type, f.Value = "uint32", strconv.FormatUint(uint64(r.Uint32()), 10)
	case 'l', 'L':
		f.Type, f.Value = "int64", strconv.FormatInt(int64(r.Uint64()), 10)
	case 'f':
		f.Type, f.Value = "float", strconv.FormatFloat(float64(math.Float32frombits(r.Uint32())), 'g', -1, 32)
	case 'd':
		f.Type, f.Value = "double", strconv.FormatFloat(math.Float64frombits(r.Uint64()), 'g', -1, 64)
	case 'D':
		scale := r.Uint8()
		f.Type, f.Value = "decimal", formatDecimal(int32(r.Uint32()), scale)
	case 'S':
		f.Type = "longstr"
		l.text(&f, r.Bytes32())
	case 'x':
		f.Type = "bytes"
		p := r.Bytes32()
		if len(p) > maxValueLen {
			p = p[:maxValueLen]
			f.Truncated = true
			l.hit(countValueLen)
		}
		f.Value, f.Encoding = base64.StdEncoding.EncodeToString(p), "base64"
	case 'T':
		f.Type, f.Value = "timestamp", formatTimestamp(r.Uint64())
	case 'F', 'A':
		raw := r.Bytes32()
		f.Type = "table"
		if typ == 'A' {
			f.Type = "array"
		}
		if !r.Ok() {
			break
		}
		if depth >= maxTableDepth {
			l.hit(countTableDepth)
			f.Truncated = true
			break
		}
		if typ == 'F' {
			f.Fields, f.Truncated = decodeTable(raw, depth+1, l)
		} else {
			f.Fields, f.Truncated = decodeArray(raw, depth+1, l)
		}
	case 'V':
		f.Type = "void"
	default:
		l.hit(countFieldType)
		return f, false
	}
	if !r.Ok() {
		l.hit(countTableBad)
		return f, false
	}
	return f, true
}

// formatDecimal renders an AMQP decimal: value × 10^-scale.
func formatDecimal(v int32, scale uint8) string {
	s := strconv.FormatInt(int64(v), 10)
	if scale == 0 {
		return s
	}
	neg := v < 0
	if neg {
		s = s[1:]
	}
	for len(s) <= int(scale) {
		s = "0" + s
	}
	s = s[:len(s)-int(scale)] + "." + s[len(s)-int(scale):]
	if neg {
		s = "-" + s
	}
	return s
}

// maxRFC3339 is the last second RFC 3339 can write, 9999-12-31T23:59:59Z.
const maxRFC3339 = 253402300799

// formatTimestamp renders seconds since the epoch in RFC 3339, or as the
// bare number when it is past what RFC 3339 can say.
func formatTimestamp(sec uint64) string {
	if sec > maxRFC3339 {
		return strconv.FormatUint(sec, 10)
	}
	return time.Unix(int64(sec), 0).UTC().Format(time.RFC3339)
}
