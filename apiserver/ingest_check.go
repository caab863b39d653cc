package apiserver

import (
	"bytes"
	"encoding/json"
	"fmt"

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
// It reads only the JSON's top-level keys, skipping the rest (bodies, the
// protocol's record) without decoding them. Not safe for concurrent use.
type indexCheck struct {
	dec jsontext.Decoder
	rd  bytes.Reader
	x   wire.Index
}

// agrees says whether rec says what line says on the fields checked.
func (k *indexCheck) agrees(rec, line []byte) (bool, error) {
	k.rd.Reset(line)
	k.dec.Reset(&k.rd)
	if t, err := k.dec.ReadToken(); err != nil || t.Kind() != '{' {
		return false, fmt.Errorf("checking the index record: not a JSON object")
	}
	var (
		proto    string
		src, dst protocols.Endpoint
		sum      protocols.Summary
	)
	for k.dec.PeekKind() != '}' {
		name, err := k.dec.ReadToken()
		if err != nil {
			return false, fmt.Errorf("checking the index record: %w", err)
		}
		var into any
		switch name.String() {
		case "protocol":
			into = &proto
		case "src":
			into = &src
		case "dst":
			into = &dst
		case "summary":
			into = &sum
		default:
			if err := k.dec.SkipValue(); err != nil {
				return false, fmt.Errorf("checking the index record: %w", err)
			}
			continue
		}
		v, err := k.dec.ReadValue()
		if err != nil {
			return false, fmt.Errorf("checking the index record: %w", err)
		}
		if err := json.Unmarshal(v, into); err != nil {
			return false, fmt.Errorf("checking the index record: %s: %w", name.String(), err)
		}
	}
	k.x.Reset(rec)
	for _, f := range [...]struct{ name, want string }{
		{"protocol", proto}, {"method", sum.Method}, {"target", sum.Target}, {"status", sum.Status},
	} {
		if v, _ := k.x.Value(f.name); v != f.want {
			return false, nil
		}
	}
	if s, _ := k.x.Endpoint(false); s != src {
		return false, nil
	}
	if d, _ := k.x.Endpoint(true); d != dst {
		return false, nil
	}
	return true, nil
}
