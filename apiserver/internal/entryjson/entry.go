package entryjson

import (
	"bytes"
	stdjson "encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"unicode/utf8"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	jsonv1 "github.com/go-json-experiment/json/v1"

	"github.com/sondehq/sonde/protocols"
)

// entryOptions make json/v2 read an Entry as encoding/json does. The
// defaults that differ and matter here: a Duration is a number of
// nanoseconds, and names match without regard to case (but with their
// underscores). What v2 still refuses and encoding/json accepts (invalid
// UTF-8, a name given twice) encoding/json never writes.
var entryOptions = json.JoinOptions(
	jsonv1.FormatDurationAsNano(true),
	json.MatchCaseInsensitiveNames(true),
	jsonv1.MatchCaseSensitiveDelimiter(true),
	json.WithUnmarshalers(json.UnmarshalFromFunc(unmarshalBody)),
)

// Span is where a value lies in an entry line: line[Start:End]. The zero
// Span means the line does not have it.
type Span struct{ Start, End int }

// Endpoints are the spans of an entry line's "src", "dst" and "via" values.
type Endpoints struct{ Src, Dst, Via Span }

// EntryDecoder decodes the entry lines of batches. It reads what
// encoding/json writes into the same Entry that encoding/json would make of
// it, at well under half the cost: json/v2 checks the syntax as it goes
// instead of in a pass of its own, and reads a Body without going through its
// UnmarshalJSON method (which would start a whole encoding/json decode for
// each body). It also reports where the line's endpoints are, so that an
// entry whose endpoints the hub names can be encoded again by replacing
// those alone (see ReplaceEndpoints). It is not safe for concurrent use;
// make one per connection.
type EntryDecoder struct {
	opts json.Options
	at   Endpoints
	dec  jsontext.Decoder // for Scan
	buf  bytes.Buffer     // the line Scan reads
}

// NewEntryDecoder makes an EntryDecoder.
func NewEntryDecoder() *EntryDecoder {
	d := new(EntryDecoder)
	d.opts = json.JoinOptions(entryOptions, json.WithUnmarshalers(json.JoinUnmarshalers(
		json.UnmarshalFromFunc(unmarshalBody),
		json.UnmarshalFromFunc(d.endpoint),
	)))
	return d
}

// Decode decodes one entry line into e, which should be zero.
func (d *EntryDecoder) Decode(line []byte, e *protocols.Entry) (Endpoints, error) {
	d.at = Endpoints{}
	err := json.Unmarshal(line, e, d.opts)
	return d.at, err
}

var (
	// ErrEntryShape: an entry line is not an object that starts with its
	// "id" and has "src" and "dst" objects.
	ErrEntryShape = errors.New(`an entry must be a JSON object that starts with "id" and has "src" and "dst" objects`)
	errTrailing   = errors.New("data after the entry")
)

var scanOptions = jsontext.AllowDuplicateNames(true)

// Scan checks that line is valid JSON of an entry's shape (see
// ErrEntryShape) and says where its endpoints are, without decoding it: the
// hub's work on an entry that arrives with its index record, at about a
// quarter of the cost of Decode.
func (d *EntryDecoder) Scan(line []byte) (Endpoints, error) {
	var at Endpoints
	// A bytes.Buffer lets the decoder read line in place. Checking names
	// for duplicates inside every object cost a sixth of the scan; only the
	// names the hub reads must be unique, and it checks those itself.
	d.buf = *bytes.NewBuffer(line)
	d.dec.Reset(&d.buf, scanOptions)
	if tok, err := d.dec.ReadToken(); err != nil {
		return at, err
	} else if tok.Kind() != '{' {
		return at, ErrEntryShape
	}
	for first := true; d.dec.PeekKind() != '}'; first = false {
		name, err := d.dec.ReadValue()
		if err != nil {
			return at, err
		}
		v, err := d.dec.ReadValue()
		if err != nil {
			return at, err
		}
		end := int(d.dec.InputOffset())
		span := Span{Start: end - len(v), End: end}
		// encoding/json writes names as they are declared, without
		// escapes; an agent that writes them otherwise is refused, so that
		// no name can stand for another (a second "id" would replace the
		// hub's in a browser).
		if first != (string(name) == `"id"`) || bytes.IndexByte(name, '\\') >= 0 {
			return at, ErrEntryShape
		}
		var ep *Span
		switch string(name) {
		case `"id"`:
			if v.Kind() != '"' {
				return at, ErrEntryShape
			}
		case `"src"`:
			ep = &at.Src
		case `"dst"`:
			ep = &at.Dst
		case `"via"`:
			ep = &at.Via
		}
		if ep != nil {
			if v.Kind() != '{' || *ep != (Span{}) {
				return at, ErrEntryShape
			}
			*ep = span
		}
	}
	if _, err := d.dec.ReadToken(); err != nil {
		return at, err
	}
	if at.Src == (Span{}) || at.Dst == (Span{}) {
		return at, ErrEntryShape
	}
	if _, err := d.dec.ReadToken(); err != io.EOF {
		return at, errTrailing
	}
	return at, nil
}

// endpoint decodes an Endpoint, noting where it was when it is one of the
// entry's own.
func (d *EntryDecoder) endpoint(dec *jsontext.Decoder, ep *protocols.Endpoint) error {
	v, err := dec.ReadValue()
	if err != nil {
		return err
	}
	end := int(dec.InputOffset())
	at := Span{Start: end - len(v), End: end}
	switch dec.StackPointer() {
	case "/src":
		d.at.Src = at
	case "/dst":
		d.at.Dst = at
	case "/via":
		d.at.Via = at
	}
	return json.Unmarshal(v, ep, entryOptions)
}

// ReplaceEndpoints appends to dst the entry line with its endpoints' values
// (at, from EntryDecoder) replaced by e's endpoints as encoding/json writes
// them: the line that encoding/json would write for e when only e's
// endpoints changed since line was decoded, for much less than encoding all
// of e. It returns false, having appended nothing, when the line has no
// src or dst, or has a via that e lacks or the reverse.
func ReplaceEndpoints(dst, line []byte, at Endpoints, e *protocols.Entry) ([]byte, bool, error) {
	if at.Src == (Span{}) || at.Dst == (Span{}) || (at.Via == (Span{})) != (e.Via == nil) {
		return dst, false, nil
	}
	type part struct {
		at Span
		ep *protocols.Endpoint
	}
	// In the order they appear in the line; a fixed array, sorted by hand,
	// keeps e off the heap.
	all := [3]part{{at.Src, &e.Src}, {at.Dst, &e.Dst}, {at.Via, e.Via}}
	parts := all[:2]
	if e.Via != nil {
		parts = all[:3]
	}
	for i := 1; i < len(parts); i++ {
		for j := i; j > 0 && parts[j].at.Start < parts[j-1].at.Start; j-- {
			parts[j], parts[j-1] = parts[j-1], parts[j]
		}
	}
	n, from := len(dst), 0
	for _, p := range parts {
		dst = append(dst, line[from:p.at.Start]...)
		var err error
		if dst, err = appendEndpoint(dst, p.ep); err != nil {
			return dst[:n], false, fmt.Errorf("encoding an endpoint: %w", err)
		}
		from = p.at.End
	}
	return append(dst, line[from:]...), true, nil
}

// appendEndpoint appends ep as encoding/json writes it, without its
// reflection, which was most of the cost of naming an entry.
func appendEndpoint(dst []byte, ep *protocols.Endpoint) ([]byte, error) {
	dst = append(dst, `{"ip":"`...)
	if ep.IP.IsValid() {
		dst = ep.IP.AppendTo(dst)
	}
	dst = append(dst, `","port":`...)
	dst = strconv.AppendUint(dst, uint64(ep.Port), 10)
	for _, f := range [...]struct{ name, v string }{
		{`,"pod":`, ep.Pod}, {`,"namespace":`, ep.Namespace}, {`,"service":`, ep.Service},
		{`,"workload":`, ep.Workload}, {`,"node":`, ep.Node},
	} {
		if f.v == "" {
			continue
		}
		dst = append(dst, f.name...)
		var err error
		if dst, err = appendString(dst, f.v); err != nil {
			return dst, err
		}
	}
	return append(dst, '}'), nil
}

// appendString appends s as a JSON string as encoding/json writes it: as it
// is when nothing in it needs escaping (a pod or service name never does),
// through encoding/json otherwise.
func appendString(dst []byte, s string) ([]byte, error) {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' || c >= utf8.RuneSelf || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			b, err := stdjson.Marshal(s)
			return append(dst, b...), err
		}
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"'), nil
}

// unmarshalBody does what protocols.Body.UnmarshalJSON does, with json/v2.
func unmarshalBody(dec *jsontext.Decoder, b *protocols.Body) error {
	var j protocols.BodyJSON
	if err := json.UnmarshalDecode(dec, &j); err != nil {
		return err
	}
	*b = j.Body()
	return nil
}
