package apiserver

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/sondehq/sonde/protocols"
	"github.com/sondehq/sonde/protocols/wire"
)

// indexCheck compares an entry's index record, which searches read, with
// its JSON, which the UI shows, on the fields searches use most: protocol,
// the endpoints and the summary (method, target, status). An agent could
// otherwise send a record that a search finds and the UI contradicts (an
// entry that matches dst.namespace == "payments" but shows another). An
// entry whose record disagrees is indexed again from its JSON, and counted.
//
// It reads the JSON's tokens without decoding into values, up to the last
// field it checks (before the bodies and the protocol's record), and compares the JSON's
// bytes with the record's values written as encoding/json writes them (as
// agents do): JSON written any other way counts as disagreeing and is
// decoded, which is correct, only slower. Not safe for concurrent use.
type indexCheck struct {
	dec jsontext.Decoder
	buf bytes.Buffer // the line; the decoder reads a bytes.Buffer in place
	x   wire.Index
	tmp []byte
}

var (
	errDisagrees = errors.New("the index record disagrees with the JSON")
	// errChecked ends the walk once every field checked was read: they come
	// first in what encoding/json writes, before the bodies. The line's
	// syntax was checked whole by the Scan before, which also refuses a
	// name written twice.
	errChecked = errors.New("checked")
)

// agrees says whether rec (checked: r) says what line says on the fields
// checked.
func (k *indexCheck) agrees(r *wire.Record, rec, line []byte) (bool, error) {
	k.buf.Reset()
	k.buf.Write(line)
	k.dec.Reset(&k.buf)
	k.x.Reset(rec)
	src, dst := r.Endpoints()
	var seen [4]bool // protocol, src, dst, summary
	err := k.object(func(key []byte) error {
		switch string(key) {
		case `"protocol"`:
			seen[0] = true
			return k.stringIs(k.indexString("protocol"))
		case `"src"`:
			seen[1] = true
			return k.endpointIs(&src)
		case `"dst"`:
			seen[2] = true
			return k.endpointIs(&dst)
		case `"summary"`:
			seen[3] = true
			var got [3]bool
			err := k.object(func(key []byte) error {
				switch string(key) {
				case `"method"`:
					got[0] = true
					return k.stringIs(k.indexString("method"))
				case `"target"`:
					got[1] = true
					return k.stringIs(k.indexString("target"))
				case `"status"`:
					got[2] = true
					return k.stringIs(k.indexString("status"))
				}
				return errDisagrees
			})
			if err == nil && (!got[0] || !got[1] || !got[2]) {
				err = errDisagrees
			}
			if err == nil && seen == [4]bool{true, true, true, true} {
				err = errChecked
			}
			return err
		}
		return k.dec.SkipValue()
	})
	if errors.Is(err, errChecked) {
		return true, nil
	}
	if errors.Is(err, errDisagrees) || err == nil {
		return false, nil
	}
	return false, fmt.Errorf("checking the index record: %w", err)
}

func (k *indexCheck) indexString(name string) string {
	v, _ := k.x.Value(name)
	s, _ := v.(string)
	return s
}

// object reads an object, calling fn with each key (quoted, as written)
// to read its value.
func (k *indexCheck) object(fn func(key []byte) error) error {
	if t, err := k.dec.ReadToken(); err != nil {
		return err
	} else if t.Kind() != '{' {
		return errDisagrees
	}
	for k.dec.PeekKind() != '}' {
		key, err := k.dec.ReadValue()
		if err != nil {
			return err
		}
		if err := fn(key); err != nil {
			return err
		}
	}
	_, err := k.dec.ReadToken()
	return err
}

// stringIs reads a string equal to want.
func (k *indexCheck) stringIs(want string) error {
	v, err := k.dec.ReadValue()
	if err != nil {
		return err
	}
	if v.Kind() != '"' {
		return errDisagrees
	}
	k.tmp, err = jsontext.AppendUnquote(k.tmp[:0], v)
	if err != nil || string(k.tmp) != want {
		return errDisagrees
	}
	return nil
}

// endpointIs reads an endpoint equal to want.
func (k *indexCheck) endpointIs(want *protocols.Endpoint) error {
	var seen [7]bool
	err := k.object(func(key []byte) error {
		switch string(key) {
		case `"ip"`:
			seen[0] = true
			v, err := k.dec.ReadValue()
			if err != nil {
				return err
			}
			k.tmp = want.IP.AppendTo(append(k.tmp[:0], '"'))
			if !bytes.Equal(v, append(k.tmp, '"')) {
				return errDisagrees
			}
			return nil
		case `"port"`:
			seen[1] = true
			v, err := k.dec.ReadValue()
			if err != nil {
				return err
			}
			if !bytes.Equal(v, strconv.AppendUint(k.tmp[:0], uint64(want.Port), 10)) {
				return errDisagrees
			}
			return nil
		case `"pod"`:
			seen[2] = true
			return k.stringIs(want.Pod)
		case `"namespace"`:
			seen[3] = true
			return k.stringIs(want.Namespace)
		case `"service"`:
			seen[4] = true
			return k.stringIs(want.Service)
		case `"workload"`:
			seen[5] = true
			return k.stringIs(want.Workload)
		case `"node"`:
			seen[6] = true
			return k.stringIs(want.Node)
		}
		return errDisagrees
	})
	if err != nil {
		return err
	}
	// What the JSON leaves out (omitempty) must be empty in the record.
	if !seen[0] && want.IP.IsValid() || !seen[1] && want.Port != 0 || !seen[2] && want.Pod != "" || !seen[3] && want.Namespace != "" ||
		!seen[4] && want.Service != "" || !seen[5] && want.Workload != "" || !seen[6] && want.Node != "" {
		return errDisagrees
	}
	return nil
}
