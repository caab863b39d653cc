package wire

import (
	"encoding/binary"
	"hash/fnv"
	"net/netip"
	"time"
	"unicode/utf8"

	"github.com/sondehq/sonde/protocols"
)

// An index record holds the values of every indexed field of one entry, so
// that a query over stored history reads a few hundred bytes per entry and
// decodes only the fields it uses, instead of decoding the whole entry.
//
// Layout: a 4-byte schema fingerprint, then (field ID, value) pairs for the
// fields whose value is not the zero value. Values: Bool: none (present means
// true); Int, Duration: zigzag varint; Time: zigzag varint of Unix
// nanoseconds; String: uvarint length and bytes; Endpoint: an address (uvarint
// length, then 0, 4 or 16 bytes), a uvarint port, and five Strings (pod,
// namespace, service, workload, node).
//
// The fingerprint names the set of indexed fields and the layout's version. A record written under
// another set (before a field was added) is not trusted to be complete: a field
// it lacks is read from the whole entry instead.

// The lookup tables over fields, and the fingerprint of the indexed set,
// are computed once when the package is loaded; TestFieldTable checks that
// IDs are unique and grow down the table, which records rely on.
var (
	byName      = nameTable()
	byID        = idTable()
	fingerprint = fingerprintOf(fields)
)

// layoutVersion changes when a kind's encoding does (2: endpoints gained
// the node), so that records of the old layout are read from the entry.
const layoutVersion = 2

func nameTable() map[string]*Field {
	m := make(map[string]*Field, len(fields))
	for i := range fields {
		m[fields[i].Name] = &fields[i]
	}
	return m
}

func idTable() (t [256]*Field) {
	for i := range fields {
		t[fields[i].ID] = &fields[i]
	}
	return t
}

func fingerprintOf(fs []Field) (fp [4]byte) {
	h := fnv.New32a()
	h.Write([]byte{layoutVersion})
	for _, f := range fs {
		if f.Kind.Indexed() {
			h.Write([]byte{f.ID, byte(f.Kind)})
		}
	}
	copy(fp[:], h.Sum(nil))
	return fp
}

// AppendIndex appends the index record of e to dst, without e's ID: the
// hub adds the ID it gives the entry with AppendEdited.
func AppendIndex(dst []byte, e *protocols.Entry) []byte {
	dst = append(dst, fingerprint[:]...)
	for i := range fields {
		f := &fields[i]
		if !f.Kind.Indexed() || f == idField {
			continue
		}
		dst = appendValue(dst, f, f.Get(e))
	}
	return dst
}

func appendValue(dst []byte, f *Field, v any) []byte {
	switch f.Kind {
	case Bool:
		if v.(bool) {
			dst = append(dst, f.ID)
		}
	case Int:
		if n := v.(int64); n != 0 {
			dst = binary.AppendVarint(append(dst, f.ID), n)
		}
	case Duration:
		if d := v.(time.Duration); d != 0 {
			dst = binary.AppendVarint(append(dst, f.ID), int64(d))
		}
	case Time:
		if t := v.(time.Time); !t.IsZero() {
			dst = binary.AppendVarint(append(dst, f.ID), t.UnixNano())
		}
	case String:
		if s := v.(string); s != "" {
			dst = appendString(append(dst, f.ID), s)
		}
	case Endpoint:
		ep := v.(protocols.Endpoint)
		dst = append(dst, f.ID)
		var ip []byte
		if ep.IP.IsValid() {
			ip = ep.IP.AsSlice()
		}
		dst = binary.AppendUvarint(dst, uint64(len(ip)))
		dst = append(dst, ip...)
		dst = binary.AppendUvarint(dst, uint64(ep.Port))
		for _, s := range endpointNames(&ep) {
			dst = appendString(dst, *s)
		}
	}
	return dst
}

// endpointStrings is how many strings an endpoint's record holds.
const endpointStrings = 5

// endpointNames are an endpoint's strings in the record's order.
func endpointNames(ep *protocols.Endpoint) [endpointStrings]*string {
	return [...]*string{&ep.Pod, &ep.Namespace, &ep.Service, &ep.Workload, &ep.Node}
}

// appendString writes s as the entry's JSON has it: encoding/json replaces
// each byte that is not part of valid UTF-8 with U+FFFD, and a record
// written by an agent must match what the hub would make of that JSON.
func appendString(dst []byte, s string) []byte {
	if utf8.ValidString(s) {
		dst = binary.AppendUvarint(dst, uint64(len(s)))
		return append(dst, s...)
	}
	valid := make([]byte, 0, len(s)+8)
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			valid = utf8.AppendRune(valid, utf8.RuneError)
		} else {
			valid = append(valid, s[i:i+n]...)
		}
		i += n
	}
	dst = binary.AppendUvarint(dst, uint64(len(valid)))
	return append(dst, valid...)
}

// Index reads an index record without copying it. It is a small value meant
// to be reused across the records of one scan.
type Index struct {
	raw     []byte
	current bool
}

// Reset points the reader at a record; raw must stay valid while the reader is used.
func (x *Index) Reset(raw []byte) {
	x.raw = raw
	x.current = len(raw) >= 4 && [4]byte(raw[:4]) == fingerprint
}

// Current reports whether the record was written under this field set, so
// that a field it lacks has its zero value rather than being unknown.
func (x *Index) Current() bool { return x.current }

// Raw returns the record the reader points at.
func (x *Index) Raw() []byte { return x.raw }

// Lookup returns the value of an indexed field: its Go value typed by Kind,
// found=false when the record cannot say (corrupt, or written before the field
// existed).
func (x *Index) Lookup(want *Field) (v any, found bool) {
	p, present, known := x.locate(want)
	switch {
	case present:
		val, _, ok := decodeValue(want, p)
		return val, ok
	case known:
		return zero(want.Kind), true
	}
	return nil, false
}

// locate finds want's value in the record: present with p starting at it,
// or absent but known (a current record leaves zero values out), or
// neither when the record cannot say.
func (x *Index) locate(want *Field) (p []byte, present, known bool) {
	if len(x.raw) < 4 {
		return nil, false, false
	}
	p = x.raw[4:]
	for len(p) > 0 {
		f := byID[p[0]]
		if f == nil {
			return nil, false, false
		}
		p = p[1:]
		if f == want {
			return p, true, true
		}
		n, ok := skipValue(f.Kind, p, false)
		if !ok {
			return nil, false, false
		}
		p = p[n:]
	}
	return nil, false, x.current
}

// EndpointNamespace returns the namespace of src (dst=false) or dst as the
// record holds it, without decoding the endpoint or copying: a reader's
// access is decided by it for every entry a scan passes. Empty when the
// record names none or cannot say.
func (x *Index) EndpointNamespace(dst bool) []byte {
	f := byName["src"]
	if dst {
		f = byName["dst"]
	}
	p, present, _ := x.locate(f)
	if !present {
		return nil
	}
	// The address and the port, then the pod, before the namespace (see
	// endpointNames).
	l, w := binary.Uvarint(p)
	if w <= 0 || uint64(len(p)-w) < l {
		return nil
	}
	off := w + int(l)
	if _, w = binary.Uvarint(p[off:]); w <= 0 {
		return nil
	}
	off += w
	_, n, ok := stringAt(p[off:])
	if !ok {
		return nil
	}
	ns, _, ok := stringAt(p[off+n:])
	if !ok {
		return nil
	}
	return ns
}

// Endpoint reads src (dst=false) or dst from the record.
func (x *Index) Endpoint(dst bool) (protocols.Endpoint, bool) {
	f := byName["src"]
	if dst {
		f = byName["dst"]
	}
	v, ok := x.Lookup(f)
	if !ok {
		return protocols.Endpoint{}, false
	}
	return v.(protocols.Endpoint), true
}

// Value returns a field's value from the record, by name.
func (x *Index) Value(name string) (any, bool) {
	f := byName[name]
	if f == nil || !f.Kind.Indexed() {
		return nil, false
	}
	return x.Lookup(f)
}

func zero(k Kind) any {
	switch k {
	case Bool:
		return false
	case Int:
		return int64(0)
	case Duration:
		return time.Duration(0)
	case Time:
		return time.Time{}
	case String:
		return ""
	case Endpoint:
		return protocols.Endpoint{}
	}
	return nil
}

// decodeValue decodes one value of f's kind from the front of p and says how
// many bytes it took.
func decodeValue(f *Field, p []byte) (any, int, bool) {
	switch f.Kind {
	case Bool:
		return true, 0, true
	case Int, Duration, Time:
		n, w := binary.Varint(p)
		if w <= 0 {
			return nil, 0, false
		}
		switch f.Kind {
		case Int:
			return n, w, true
		case Duration:
			return time.Duration(n), w, true
		}
		return time.Unix(0, n), w, true
	case String:
		s, w, ok := readString(p)
		return s, w, ok
	case Endpoint:
		var ep protocols.Endpoint
		l, w := binary.Uvarint(p)
		if w <= 0 || l > 16 || uint64(len(p)-w) < l {
			return nil, 0, false
		}
		off := w
		if l > 0 {
			ip, ok := netip.AddrFromSlice(p[off : off+int(l)])
			if !ok {
				return nil, 0, false
			}
			ep.IP = ip
		}
		off += int(l)
		port, w := binary.Uvarint(p[off:])
		if w <= 0 || port > 0xffff {
			return nil, 0, false
		}
		ep.Port = uint16(port)
		off += w
		for _, s := range endpointNames(&ep) {
			v, w, ok := readString(p[off:])
			if !ok {
				return nil, 0, false
			}
			*s = v
			off += w
		}
		return ep, off, true
	}
	return nil, 0, false
}

// skipValue says how many bytes the value of kind k at the front of p
// takes, without decoding it. An endpoint must have an address of 0, 4 or 16
// bytes and a port that fits 16 bits, as decodeValue requires. checkUTF8 also
// checks that strings are valid UTF-8, for records from outside (CheckIndex);
// records the hub wrote are, and scans skip many.
func skipValue(k Kind, p []byte, checkUTF8 bool) (int, bool) {
	switch k {
	case Bool:
		return 0, true
	case Int, Duration, Time:
		_, w := binary.Varint(p)
		return w, w > 0
	case String:
		s, n, ok := stringAt(p)
		return n, ok && (!checkUTF8 || utf8.Valid(s))
	case Endpoint:
		l, w := binary.Uvarint(p)
		if w <= 0 || l != 0 && l != 4 && l != 16 || uint64(len(p)-w) < l {
			return 0, false
		}
		off := w + int(l)
		port, w := binary.Uvarint(p[off:])
		if w <= 0 || port > 0xffff {
			return 0, false
		}
		off += w
		for range endpointStrings {
			n, ok := skipValue(String, p[off:], checkUTF8)
			if !ok {
				return 0, false
			}
			off += n
		}
		return off, true
	}
	return 0, false
}

// stringAt returns the string at the front of p and how many bytes it
// takes with its length.
func stringAt(p []byte) ([]byte, int, bool) {
	l, w := binary.Uvarint(p)
	if w <= 0 || uint64(len(p)-w) < l {
		return nil, 0, false
	}
	return p[w : w+int(l)], w + int(l), true
}

func readString(p []byte) (string, int, bool) {
	s, n, ok := stringAt(p)
	return string(s), n, ok
}
