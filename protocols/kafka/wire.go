package kafka

import "encoding/binary"

// reader reads Kafka's primitive types from a byte slice with a sticky error:
// once a read runs past the end, every later read returns zero values and ok
// stays false, so a parser reads in a straight line and checks once.
type reader struct {
	b   []byte
	bad bool
}

func (r *reader) ok() bool { return !r.bad }

func (r *reader) fail() {
	r.bad = true
	r.b = nil
}

// span returns the next n bytes without copying.
func (r *reader) span(n int) []byte {
	if n < 0 || n > len(r.b) {
		r.fail()
		return nil
	}
	p := r.b[:n]
	r.b = r.b[n:]
	return p
}

func (r *reader) int8() int8 {
	p := r.span(1)
	if p == nil {
		return 0
	}
	return int8(p[0])
}

func (r *reader) int16() int16 {
	p := r.span(2)
	if p == nil {
		return 0
	}
	return int16(binary.BigEndian.Uint16(p))
}

func (r *reader) int32() int32 {
	p := r.span(4)
	if p == nil {
		return 0
	}
	return int32(binary.BigEndian.Uint32(p))
}

func (r *reader) int64() int64 {
	p := r.span(8)
	if p == nil {
		return 0
	}
	return int64(binary.BigEndian.Uint64(p))
}

// uvarint reads an unsigned varint of at most 64 bits.
func (r *reader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

// varint reads a zig-zag encoded signed varint (Kafka's varint and varlong).
func (r *reader) varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

// varintBytes reads a varint length and that many bytes; null (-1) is nil.
func (r *reader) varintBytes() ([]byte, bool) {
	n := r.varint()
	if n < 0 {
		if n != -1 {
			r.fail()
		}
		return nil, false
	}
	if n > int64(len(r.b)) {
		r.fail()
		return nil, false
	}
	return r.span(int(n)), true
}

// bytes32 reads an int32 length and that many bytes; null (-1) is nil.
func (r *reader) bytes32() ([]byte, bool) {
	n := r.int32()
	if n < 0 {
		if n != -1 {
			r.fail()
		}
		return nil, false
	}
	return r.span(int(n)), true
}

// skipTags skips a tagged-field section (KIP-482): a count, then for each
// field a tag and a length-prefixed value.
func (r *reader) skipTags() {
	n := r.uvarint()
	if n > uint64(len(r.b)) {
		r.fail()
		return
	}
	for i := uint64(0); i < n && r.ok(); i++ {
		r.uvarint()
		l := r.uvarint()
		if l > uint64(len(r.b)) {
			r.fail()
			return
		}
		r.span(int(l))
	}
}
