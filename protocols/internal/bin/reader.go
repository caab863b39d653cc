package bin

import "encoding/binary"

// Reader reads fields from the front of a byte slice.
type Reader struct {
	b   []byte
	bad bool
}

// NewReader returns a Reader of b.
func NewReader(b []byte) Reader { return Reader{b: b} }

// Ok reports whether every read so far was within the bytes.
func (r *Reader) Ok() bool { return !r.bad }

// Fail fails the reader, for a field whose value the parser refuses.
func (r *Reader) Fail() {
	r.bad = true
	r.b = nil
}

// Len is how many bytes are left.
func (r *Reader) Len() int { return len(r.b) }

// Rest returns the bytes left, without consuming them.
func (r *Reader) Rest() []byte { return r.b }

// Span returns the next n bytes, capped at their length so that appending
// to them cannot overwrite what follows.
func (r *Reader) Span(n int) []byte {
	if r.bad || n < 0 || n > len(r.b) {
		r.Fail()
		return nil
	}
	p := r.b[:n:n]
	r.b = r.b[n:]
	return p
}

// Count checks a length or an element count read from the wire: one larger
// than the bytes left (each element takes at least one byte), or negative,
// fails the reader and gives 0.
func (r *Reader) Count(n int64) int {
	if r.bad || n < 0 || n > int64(len(r.b)) {
		r.Fail()
		return 0
	}
	return int(n)
}

func (r *Reader) Uint8() uint8 {
	if p := r.Span(1); p != nil {
		return p[0]
	}
	return 0
}

func (r *Reader) Uint16() uint16 {
	if p := r.Span(2); p != nil {
		return binary.BigEndian.Uint16(p)
	}
	return 0
}

func (r *Reader) Uint32() uint32 {
	if p := r.Span(4); p != nil {
		return binary.BigEndian.Uint32(p)
	}
	return 0
}

func (r *Reader) Uint64() uint64 {
	if p := r.Span(8); p != nil {
		return binary.BigEndian.Uint64(p)
	}
	return 0
}

func (r *Reader) Int8() int8   { return int8(r.Uint8()) }
func (r *Reader) Int16() int16 { return int16(r.Uint16()) }
func (r *Reader) Int32() int32 { return int32(r.Uint32()) }
func (r *Reader) Int64() int64 { return int64(r.Uint64()) }

// Uvarint reads an unsigned LEB128 varint of at most 64 bits.
func (r *Reader) Uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if r.bad || n <= 0 {
		r.Fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

// Varint reads a zig-zag encoded signed varint.
func (r *Reader) Varint() int64 {
	v, n := binary.Varint(r.b)
	if r.bad || n <= 0 {
		r.Fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

// Bytes8 reads a one-byte length and that many bytes.
func (r *Reader) Bytes8() []byte { return r.Span(int(r.Uint8())) }

// Bytes32 reads an unsigned four-byte length and that many bytes; a length
// past the end fails the reader before it is converted.
func (r *Reader) Bytes32() []byte {
	n := r.Uint32()
	return r.Span(r.Count(int64(n)))
}
