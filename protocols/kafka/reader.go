package kafka

import "github.com/sondehq/sonde/protocols/internal/bin"

// reader is the shared sticky reader with the compositions of Kafka's
// primitive types on top: nullable byte strings and tagged fields.
type reader struct{ bin.Reader }

// varintBytes reads a varint length and that many bytes; null (-1) is nil.
func (r *reader) varintBytes() ([]byte, bool) {
	n := r.Varint()
	if n < 0 {
		if n != -1 {
			r.Fail()
		}
		return nil, false
	}
	if n > int64(r.Len()) {
		r.Fail()
		return nil, false
	}
	return r.Span(int(n)), true
}

// bytes32 reads an int32 length and that many bytes; null (-1) is nil.
func (r *reader) bytes32() ([]byte, bool) {
	n := r.Int32()
	if n < 0 {
		if n != -1 {
			r.Fail()
		}
		return nil, false
	}
	return r.Span(int(n)), true
}

// skipTags skips a tagged-field section (KIP-482): a count, then for each
// field a tag and a length-prefixed value. Every field takes at least two
// bytes, so a count larger than the bytes left is refused.
func (r *reader) skipTags() {
	n := r.Uvarint()
	if n > uint64(r.Len()) {
		r.Fail()
		return
	}
	for i := uint64(0); i < n && r.Ok(); i++ {
		r.Uvarint()
		l := r.Uvarint()
		if l > uint64(r.Len()) {
			r.Fail()
			return
		}
		r.Span(int(l))
	}
}
