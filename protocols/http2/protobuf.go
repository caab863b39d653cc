package http2

import (
	"fmt"
	"math"
	"strconv"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/sondehq/sonde/protocols"
)

// Caps of the schema-less protobuf decoder. A message deeper or with more
// fields than this is shown in part, marked truncated; the messages of one
// side of a call share maxCallFields.
const (
	maxProtoDepth  = 12
	maxProtoFields = 2048
	maxCallFields  = 2 * maxProtoFields
	// maxGuessNumber is the largest field number accepted when guessing
	// whether bytes are a nested message: real schemas rarely go higher,
	// while binary data misread as a message usually does.
	maxGuessNumber = 1 << 16
)

var wireNames = [...]string{
	protowire.VarintType:     "varint",
	protowire.Fixed64Type:    "i64",
	protowire.BytesType:      "len",
	protowire.StartGroupType: "group",
	protowire.EndGroupType:   "egroup",
	protowire.Fixed32Type:    "i32",
}

// protoDecoder decodes protobuf without a schema. Nested messages are a
// guess: a len value is read as a message only when it is not printable
// text and parses completely, with plausible field numbers.
type protoDecoder struct {
	budget    int // fields still allowed
	truncated bool
}

// decodeProto decodes b as one protobuf message, with at most budget
// fields (and maxProtoFields). It returns the fields it could read, how many
// it made, and, when it could not read all of b, why.
func decodeProto(b []byte, budget int) ([]protocols.ProtoField, int, error) {
	budget = min(budget, maxProtoFields)
	d := protoDecoder{budget: budget}
	fields, n, err := d.fields(b, 0, 0, false)
	used := budget - d.budget
	if err != nil {
		return fields, used, fmt.Errorf("not protobuf at byte %d: %w", n, err)
	}
	if d.truncated {
		return fields, used, fmt.Errorf("more than %d fields or %d levels: rest not decoded", budget, maxProtoDepth)
	}
	return fields, used, nil
}

// fields reads fields from b until it ends (group == 0) or until the end
// marker of group. It returns the bytes consumed, the end marker included.
// guessing makes the plausibility checks for nested messages apply.
func (d *protoDecoder) fields(b []byte, depth int, group protowire.Number, guessing bool) ([]protocols.ProtoField, int, error) {
	var out []protocols.ProtoField
	off := 0
	for off < len(b) {
		if d.budget <= 0 {
			d.truncated = true
			return out, len(b), nil
		}
		num, typ, n := protowire.ConsumeTag(b[off:])
		if n < 0 {
			return out, off, protowire.ParseError(n)
		}
		if guessing && num > maxGuessNumber {
			return out, off, fmt.Errorf("field number %d is implausible", num)
		}
		if typ == protowire.EndGroupType {
			if group == 0 || num != group {
				return out, off, fmt.Errorf("unexpected end of group %d", num)
			}
			return out, off + n, nil
		}
		start := off
		off += n
		saved := d.budget
		d.budget--
		f, m, err := d.value(b[off:], num, typ, depth, guessing)
		if err != nil {
			// Fields read inside a value that failed are not shown: not
			// counted either.
			d.budget = saved
			return out, start, err
		}
		off += m
		out = append(out, f)
	}
	if group != 0 && !d.truncated {
		return out, off, fmt.Errorf("group %d not closed", group)
	}
	return out, off, nil
}

// value reads the value of a field whose tag was just read, and returns
// its length.
func (d *protoDecoder) value(b []byte, num protowire.Number, typ protowire.Type, depth int, guessing bool) (protocols.ProtoField, int, error) {
	f := protocols.ProtoField{Number: int32(num)}
	if int(typ) < len(wireNames) {
		f.Wire = wireNames[typ]
	}
	var n int
	switch typ {
	case protowire.VarintType:
		var v uint64
		if v, n = protowire.ConsumeVarint(b); n < 0 {
			return f, 0, protowire.ParseError(n)
		}
		f.Kind, f.Value = "varint", strconv.FormatUint(v, 10)
		if v > math.MaxInt64 {
			f.Signed = strconv.FormatInt(int64(v), 10)
		}
	case protowire.Fixed32Type:
		var v uint32
		if v, n = protowire.ConsumeFixed32(b); n < 0 {
			return f, 0, protowire.ParseError(n)
		}
		f.Kind, f.Value = "i32", strconv.FormatUint(uint64(v), 10)
		f.Float = formatFloat(float64(math.Float32frombits(v)), 32)
	case protowire.Fixed64Type:
		var v uint64
		if v, n = protowire.ConsumeFixed64(b); n < 0 {
			return f, 0, protowire.ParseError(n)
		}
		f.Kind, f.Value = "i64", strconv.FormatUint(v, 10)
		f.Float = formatFloat(math.Float64frombits(v), 64)
	case protowire.BytesType:
		var v []byte
		if v, n = protowire.ConsumeBytes(b); n < 0 {
			return f, 0, protowire.ParseError(n)
		}
		d.lenValue(&f, v, depth)
	case protowire.StartGroupType:
		if depth+1 >= maxProtoDepth {
			d.truncated = true
			return f, 0, fmt.Errorf("groups nested deeper than %d", maxProtoDepth)
		}
		sub, m, err := d.fields(b, depth+1, num, guessing)
		if err != nil {
			return f, 0, err
		}
		n = m
		f.Kind, f.Fields = "group", sub
	default:
		return f, 0, fmt.Errorf("reserved wire type %d", typ)
	}
	return f, n, nil
}

// lenValue picks the reading of a len value: printable text, a nested
// message, packed small varints, or bytes.
func (d *protoDecoder) lenValue(f *protocols.ProtoField, v []byte, depth int) {
	f.Size = len(v)
	switch {
	case isText(v):
		f.Kind, f.Value = "string", string(v)
		return
	case depth+1 < maxProtoDepth:
		saved := *d
		sub, _, err := d.fields(v, depth+1, 0, true)
		if err == nil && len(sub) > 0 {
			f.Kind, f.Fields = "message", sub
			return
		}
		*d = saved
	default:
		d.truncated = true
		f.Truncated = true
	}
	if vals, ok := packedVarints(v); ok {
		f.Kind, f.Values = "packed", vals
		return
	}
	f.Kind, f.Bytes = "bytes", append([]byte(nil), v...)
}

// packedVarints reads v as a packed repeated varint field. Any byte string
// ending below 0x80 parses as varints, so only minimal encodings of values
// below 2^14 count (enums, small counts, flags): the packed fields that are
// told apart from binary data with some confidence.
func packedVarints(v []byte) ([]string, bool) {
	var vals []string
	for len(v) > 0 {
		x, n := protowire.ConsumeVarint(v)
		if n < 0 || n > 2 || n != protowire.SizeVarint(x) {
			return nil, false
		}
		vals = append(vals, strconv.FormatUint(x, 10))
		v = v[n:]
	}
	return vals, len(vals) > 0
}

// isText reports whether v reads as text: valid UTF-8 without control
// characters other than tab, newline and carriage return.
func isText(v []byte) bool {
	if !utf8.Valid(v) {
		return false
	}
	for _, r := range string(v) {
		if (r < 0x20 && r != '\t' && r != '\n' && r != '\r') || r == 0x7f || r == utf8.RuneError {
			return false
		}
	}
	return true
}

func formatFloat(f float64, bits int) string {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return ""
	}
	return strconv.FormatFloat(f, 'g', -1, bits)
}
