package amqp

import (
	"encoding/binary"
	"math"
)

// enc builds AMQP wire bytes for tests.
type enc struct{ b []byte }

func (e *enc) u8(v uint8) *enc   { e.b = append(e.b, v); return e }
func (e *enc) u16(v uint16) *enc { e.b = binary.BigEndian.AppendUint16(e.b, v); return e }
func (e *enc) u32(v uint32) *enc { e.b = binary.BigEndian.AppendUint32(e.b, v); return e }
func (e *enc) u64(v uint64) *enc { e.b = binary.BigEndian.AppendUint64(e.b, v); return e }
func (e *enc) short(s string) *enc {
	e.b = append(append(e.b, byte(len(s))), s...)
	return e
}
func (e *enc) long(s string) *enc {
	e.b = append(binary.BigEndian.AppendUint32(e.b, uint32(len(s))), s...)
	return e
}

// bits packs booleans into one octet, low bit first.
func (e *enc) bits(bs ...bool) *enc {
	var v uint8
	for i, b := range bs {
		if b {
			v |= 1 << i
		}
	}
	return e.u8(v)
}

// table appends a field table built from already encoded entries.
func (e *enc) table(entries ...string) *enc {
	var body []byte
	for _, x := range entries {
		body = append(body, x...)
	}
	return e.long(string(body))
}

func (e *enc) str() string { return string(e.b) }

// Field table entries: name, type letter, value.
func fStr(name, v string) string { return string((&enc{}).short(name).u8('S').long(v).b) }
func fInt(name string, v int32) string {
	return string((&enc{}).short(name).u8('I').u32(uint32(v)).b)
}
func fBool(name string, v bool) string {
	b := uint8(0)
	if v {
		b = 1
	}
	return string((&enc{}).short(name).u8('t').u8(b).b)
}
func fTable(name string, entries ...string) string {
	return string((&enc{}).short(name).u8('F').table(entries...).b)
}
func fRaw(name string, typ byte, raw []byte) string {
	return string(append((&enc{}).short(name).u8(typ).b, raw...))
}
func f64(v float64) []byte { return binary.BigEndian.AppendUint64(nil, math.Float64bits(v)) }

func frame(typ byte, ch uint16, payload string) string {
	e := (&enc{}).u8(typ).u16(ch).u32(uint32(len(payload)))
	return string(append(append(e.b, payload...), frameEnd))
}

// meth is a method frame; args are the encoded arguments.
func meth(ch, class, id uint16, args *enc) string {
	p := (&enc{}).u16(class).u16(id)
	if args != nil {
		p.b = append(p.b, args.b...)
	}
	return frame(frameMethod, ch, p.str())
}

func args() *enc { return &enc{} }

// hdr is a basic content header with content-type and delivery-mode set.
func hdr(ch uint16, size uint64, contentType string) string {
	p := (&enc{}).u16(classBasic).u16(0).u64(size).u16(propContentType | propDeliveryMode).short(contentType).u8(2)
	return frame(frameHeader, ch, p.str())
}

func bodyFrame(ch uint16, s string) string { return frame(frameBody, ch, s) }

const heartbeat = "\x08\x00\x00\x00\x00\x00\x00\xce"

// A small vocabulary of frames the tests speak.
var (
	connStart = meth(0, 10, 10, args().u8(0).u8(9).table(fStr("product", "RabbitMQ"),
		fTable("capabilities", fBool("publisher_confirms", true))).long("PLAIN AMQPLAIN").long("en_US"))
	connStartOkPlain = meth(0, 10, 11, args().table(fStr("product", "sonde-test")).short("PLAIN").long("\x00guest\x00s3cret").short("en_US"))
	connTune         = meth(0, 10, 30, args().u16(2047).u32(131072).u16(60))
	connTuneOk       = meth(0, 10, 31, args().u16(2047).u32(131072).u16(60))
	connOpen         = meth(0, 10, 40, args().short("/").short("").bits(false))
	connOpenOk       = meth(0, 10, 41, args().short(""))
	chOpen           = meth(1, 20, 10, args().short(""))
	chOpenOk         = meth(1, 20, 11, args().long(""))
	chCloseOk        = meth(1, 20, 41, nil)
)

func queueDeclare(ch uint16, q string, passive, noWait bool) string {
	return meth(ch, 50, 10, args().u16(0).short(q).bits(passive, false, false, false, noWait).table())
}

func queueDeclareOk(ch uint16, q string) string {
	return meth(ch, 50, 11, args().short(q).u32(0).u32(0))
}

func publish(ch uint16, exchange, key string) string {
	return meth(ch, 60, 40, args().u16(0).short(exchange).short(key).bits(false, false))
}

func closeMethod(ch, class uint16, code uint16, text string, blameClass, blameMethod uint16) string {
	return meth(ch, class, map[uint16]uint16{10: 50, 20: 40}[class], args().u16(code).short(text).u16(blameClass).u16(blameMethod))
}

func ack(ch uint16, tag uint64, multiple bool) string {
	return meth(ch, 60, 80, args().u64(tag).bits(multiple))
}

func nack(ch uint16, tag uint64, multiple, requeue bool) string {
	return meth(ch, 60, 120, args().u64(tag).bits(multiple, requeue))
}

func deliver(ch uint16, consumer string, tag uint64, exchange, key string) string {
	return meth(ch, 60, 60, args().short(consumer).u64(tag).bits(false).short(exchange).short(key))
}
