package amqp

import (
	"slices"
	"strconv"
	"time"

	"github.com/sondehq/sonde/protocols"
	"github.com/sondehq/sonde/protocols/internal/bin"
)

// argValue is one decoded method argument. str aliases the frame payload and
// is valid only while the frame is being handled.
type argValue struct {
	name      string
	kind      kind
	num       uint64
	str       []byte
	table     []protocols.AMQPField
	truncated bool
}

// decodeArgs decodes a method's arguments (the payload after class and
// method id). "Bits are accumulated into whole octets. When two or more
// bits are contiguous in a frame these will be packed into one or more
// octets, starting from the low bit in each octet" (0-9-1 §4.2.5.2).
//
// The values are appended to vals[:0], which a caller may reuse.
func decodeArgs(m *method, payload []byte, l *limits, vals []argValue) ([]argValue, error) {
	r := bin.NewReader(payload)
	vals = slices.Grow(vals[:0], len(m.args))[:len(m.args)]
	var bits uint8
	bitPos := 8
	for i, a := range m.args {
		v := argValue{name: a.name, kind: a.kind}
		if a.kind == kBit {
			if bitPos == 8 {
				bits, bitPos = r.Uint8(), 0
			}
			v.num = uint64(bits >> bitPos & 1)
			bitPos++
			vals[i] = v
			continue
		}
		bitPos = 8
		switch a.kind {
		case kOctet:
			v.num = uint64(r.Uint8())
		case kShort:
			v.num = uint64(r.Uint16())
		case kLong:
			v.num = uint64(r.Uint32())
		case kLongLong, kTimestamp:
			v.num = r.Uint64()
		case kShortstr:
			v.str = r.Bytes8()
		case kLongstr:
			v.str = r.Bytes32()
		case kTable:
			raw := r.Bytes32()
			if r.Ok() {
				v.table, v.truncated = decodeTable(raw, 1, l)
			}
		}
		vals[i] = v
	}
	if !r.Ok() {
		return nil, errShort
	}
	if r.Len() > 0 {
		l.hit(countTrailingBytes)
	}
	return vals, nil
}

// toFields renders decoded arguments as the record's fields, copying what
// they alias.
func toFields(vals []argValue, l *limits) []protocols.AMQPField {
	if len(vals) == 0 {
		return nil
	}
	out := make([]protocols.AMQPField, len(vals))
	for i, v := range vals {
		f := protocols.AMQPField{Name: v.name, Type: typeName[v.kind]}
		switch v.kind {
		case kBit:
			f.Value = strconv.FormatBool(v.num != 0)
		case kOctet, kShort, kLong, kLongLong:
			f.Value = strconv.FormatUint(v.num, 10)
		case kTimestamp:
			f.Value = formatTimestamp(v.num)
		case kShortstr, kLongstr:
			l.text(&f, v.str)
		case kTable:
			f.Fields, f.Truncated = v.table, v.truncated
		}
		out[i] = f
	}
	return out
}

// find returns the named argument, or the zero argValue.
func find(vals []argValue, name string) argValue {
	for _, v := range vals {
		if v.name == name {
			return v
		}
	}
	return argValue{}
}

// Basic content property flags, high bit first (0-9-1 §4.2.6.1); bit 0
// says another flag word follows.
const (
	propContentType = 1 << (15 - iota)
	propContentEncoding
	propHeaders
	propDeliveryMode
	propPriority
	propCorrelationID
	propReplyTo
	propExpiration
	propMessageID
	propTimestamp
	propType
	propUserID
	propAppID
	propClusterID
	propContinued = 1
)

// contentHeader is a decoded content header frame.
type contentHeader struct {
	class    uint16
	bodySize uint64
	props    protocols.AMQPProperties
	// unknown is true when flags name properties the class does not have,
	// whose sizes are therefore unknown.
	unknown bool
}

// decodeContentHeader decodes a content header payload: class-id, weight
// (always 0), body size, property flags and the properties they announce.
func decodeContentHeader(payload []byte, l *limits) (contentHeader, error) {
	r := bin.NewReader(payload)
	var h contentHeader
	h.class = r.Uint16()
	r.Uint16() // weight
	h.bodySize = r.Uint64()
	flags := r.Uint16()
	for more := flags; more&propContinued != 0 && r.Ok(); {
		more = r.Uint16()
		if more&^propContinued != 0 {
			h.unknown = true
		}
	}
	if !r.Ok() {
		return h, errShort
	}
	if h.class != classBasic {
		// Only the basic class carries content in 0-9-1; another class's
		// properties cannot be sized.
		h.unknown = flags&^propContinued != 0
		return h, nil
	}
	p := &h.props
	// Short strings are at most 255 bytes, below every cap; JSON shows any
	// byte that is not UTF-8 as U+FFFD.
	str := func(bit uint16, dst *string) {
		if flags&bit != 0 {
			*dst = string(r.Bytes8())
		}
	}
	str(propContentType, &p.ContentType)
	str(propContentEncoding, &p.ContentEncoding)
	if flags&propHeaders != 0 {
		raw := r.Bytes32()
		if r.Ok() {
			p.Headers, _ = decodeTable(raw, 1, l)
		}
	}
	if flags&propDeliveryMode != 0 {
		p.DeliveryMode = r.Uint8()
	}
	if flags&propPriority != 0 {
		p.Priority = r.Uint8()
	}
	str(propCorrelationID, &p.CorrelationID)
	str(propReplyTo, &p.ReplyTo)
	str(propExpiration, &p.Expiration)
	str(propMessageID, &p.MessageID)
	if flags&propTimestamp != 0 {
		if sec := r.Uint64(); sec <= maxRFC3339 {
			p.Timestamp = time.Unix(int64(sec), 0).UTC()
		}
	}
	str(propType, &p.Type)
	str(propUserID, &p.UserID)
	str(propAppID, &p.AppID)
	str(propClusterID, &p.ClusterID)
	if !r.Ok() {
		return h, errShort
	}
	if r.Len() > 0 {
		l.hit(countTrailingBytes)
	}
	return h, nil
}
