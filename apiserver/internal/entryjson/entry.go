package entryjson

import (
	"bytes"
	stdjson "encoding/json"
	"errors"
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

// Spans say where an entry line's "id", "src", "dst" and "via" values are.
// When the line has no "id", ID is the empty span just inside its opening
// brace, where the hub's ID goes.
type Spans struct{ ID, Src, Dst, Via Span }

// EntryDecoder decodes the entry lines of batches. It reads what
// encoding/json writes into the same Entry that encoding/json would make of
// it, at well under half the cost: json/v2 checks the syntax as it goes
// instead of in a pass of its own, and reads a Body without going through its
// UnmarshalJSON method (which would start a whole encoding/json decode for
// each body). It also reports where the line's ID and endpoints are, for
// Merge. It is not safe for concurrent use; make one per connection.
type EntryDecoder struct {
	opts json.Options
	at   Spans
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
func (d *EntryDecoder) Decode(line []byte, e *protocols.Entry) (Spans, error) {
	d.at = Spans{}
	if err := json.Unmarshal(line, e, d.opts); err != nil {
		return d.at, err
	}
	// encoding/json writes the ID first; finding it there costs nothing,
	// anywhere else a scan.
	if id, ok := LeadingID(line); ok {
		d.at.ID = id
		return d.at, nil
	}
	return d.Scan(line)
}

// LeadingID finds the span of an "id" that starts the line, as
// encoding/json writes it, without checking the rest of the line.
func LeadingID(line []byte) (Span, bool) {
	const prefix = `{"id":"`
	if !bytes.HasPrefix(line, []byte(prefix)) {
		return Span{}, false
	}
	for i := len(prefix); i < len(line); i++ {
		switch line[i] {
		case '\\':
			i++
		case '"':
			return Span{Start: len(prefix) - 1, End: i + 1}, true
		}
	}
	return Span{}, false
}

var (
	// ErrEntryShape: an entry line is not an object with "src" and "dst"
	// objects and at most one "id", a string.
	ErrEntryShape = errors.New(`an entry must be a JSON object with "src" and "dst" objects and at most one "id", a string`)
	errTrailing   = errors.New("data after the entry")
	errOverlay    = errors.New("malformed overlay")
)

var scanOptions = jsontext.AllowDuplicateNames(true)

// Scan checks that line is valid JSON of an entry's shape (see
// ErrEntryShape) and says where its endpoints are, without decoding it: the
// hub's work on an entry that arrives with its index record, at about a
// quarter of the cost of Decode.
func (d *EntryDecoder) Scan(line []byte) (Spans, error) {
	var at Spans
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
	open := int(d.dec.InputOffset())
	for d.dec.PeekKind() != '}' {
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
		if bytes.IndexByte(name, '\\') >= 0 {
			return at, ErrEntryShape
		}
		var ep *Span
		switch string(name) {
		case `"id"`:
			if v.Kind() != '"' || at.ID != (Span{}) {
				return at, ErrEntryShape
			}
			at.ID = span
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
	if at.ID == (Span{}) {
		at.ID = Span{Start: open, End: open}
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
