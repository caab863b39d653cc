package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/sondehq/sonde/protocols"
)

// Agents write each entry's index record beside its JSON (see the package
// doc), so that the hub stores, names and filters entries
// without decoding them. These are the checks and edits the hub makes to a
// record it did not write.

var (
	// ErrRecord: an index record does not follow the layout.
	ErrRecord = errors.New("malformed index record")
	// ErrRecordID: the ID is the hub's to give; an agent's record has none.
	ErrRecordID = errors.New("index record carries an ID")
)

// Record is what the hub reads from an agent's index record to store and
// name its entry.
type Record struct {
	Start time.Time
	// HasNode and HasSource say whether the record names the capturing
	// node and the capture source.
	HasNode, HasSource bool
	// src and dst are the endpoints' values, decoded on demand.
	src, dst []byte
}

// Endpoints decodes the record's src and dst.
func (r *Record) Endpoints() (src, dst protocols.Endpoint) {
	if v, _, ok := decodeValue(srcField, r.src); ok {
		src = v.(protocols.Endpoint)
	}
	if v, _, ok := decodeValue(dstField, r.dst); ok {
		dst = v.(protocols.Endpoint)
	}
	return src, dst
}

var (
	idField     = fieldNamed("id")
	startField  = fieldNamed("start")
	srcField    = fieldNamed("src")
	dstField    = fieldNamed("dst")
	nodeField   = fieldNamed("node")
	sourceField = fieldNamed("source")
)

// fieldNamed finds a field of the table for the package's own variables; a
// misspelt name fails as soon as the package loads.
func fieldNamed(name string) *Field {
	for i := range fields {
		if fields[i].Name == name {
			return &fields[i]
		}
	}
	panic("no query field " + name)
}

// CheckIndex checks an index record from outside: fields known, in
// ascending order, each once, every value whole and every string valid
// UTF-8, nothing after the last. It decodes only what Record holds, and
// allocates nothing. current is false for a record of another schema (an
// agent of another version), which the hub cannot trust to be complete: it
// decodes that entry's JSON instead, and err is nil.
func CheckIndex(rec []byte) (r Record, current bool, err error) {
	if len(rec) < 4 {
		return r, false, fmt.Errorf("%w: %d bytes", ErrRecord, len(rec))
	}
	if [4]byte(rec[:4]) != fingerprint {
		return r, false, nil
	}
	p := rec[4:]
	last := 0
	for len(p) > 0 {
		f := byID[p[0]]
		if f == nil || !f.Kind.Indexed() {
			return r, true, fmt.Errorf("%w: unknown field %d", ErrRecord, p[0])
		}
		if int(f.ID) <= last {
			return r, true, fmt.Errorf("%w: field %s out of order", ErrRecord, f.Name)
		}
		if f == idField {
			return r, true, ErrRecordID
		}
		last = int(f.ID)
		n, ok := skipValue(f.Kind, p[1:], true)
		if !ok {
			return r, true, fmt.Errorf("%w: bad value of %s", ErrRecord, f.Name)
		}
		v := p[1 : 1+n]
		switch f {
		case startField:
			ns, _ := binary.Varint(v)
			r.Start = time.Unix(0, ns)
		case srcField:
			r.src = v
		case dstField:
			r.dst = v
		case nodeField:
			r.HasNode = true
		case sourceField:
			r.HasSource = true
		}
		p = p[1+n:]
	}
	return r, true, nil
}

// Edits are values to set in an index record; the zero value of each
// member leaves its field as it is.
type Edits struct {
	ID       string
	Src, Dst *protocols.Endpoint
}

// AppendEdited appends rec, a record that CheckIndex accepts or that
// AppendIndex wrote, with the edits made, to dst.
func AppendEdited(dst, rec []byte, ed Edits) []byte {
	type edit struct {
		f *Field
		v any
	}
	var edits []edit // in field order
	if ed.ID != "" {
		edits = append(edits, edit{idField, ed.ID})
	}
	if ed.Src != nil {
		edits = append(edits, edit{srcField, *ed.Src})
	}
	if ed.Dst != nil {
		edits = append(edits, edit{dstField, *ed.Dst})
	}
	dst = append(dst, rec[:4]...)
	p := rec[4:]
	for len(p) > 0 {
		f := byID[p[0]]
		if f == nil {
			break // not a record AppendEdited takes
		}
		n, ok := skipValue(f.Kind, p[1:], false)
		if !ok {
			break
		}
		replaced := false
		for len(edits) > 0 && edits[0].f.ID <= f.ID {
			dst = appendValue(dst, edits[0].f, edits[0].v)
			replaced = replaced || edits[0].f == f
			edits = edits[1:]
		}
		if !replaced {
			dst = append(dst, p[:1+n]...)
		}
		p = p[1+n:]
	}
	for _, e := range edits {
		dst = appendValue(dst, e.f, e.v)
	}
	return dst
}
