package wire

import (
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

// UnmarshalEntry decodes one entry line of a batch into e, which should be
// zero. It reads what encoding/json writes into the same Entry that
// encoding/json would make of it, at a fraction of the cost: json/v2 checks
// the syntax as it goes instead of in a pass of its own, and reads a Body
// without going through its UnmarshalJSON method (which would start a whole
// encoding/json decode for each body).
func UnmarshalEntry(line []byte, e *protocols.Entry) error {
	return json.Unmarshal(line, e, entryOptions)
}

// bodyJSON mirrors protocols.Body's JSON form (see Body.MarshalJSON).
type bodyJSON struct {
	Size      int64  `json:"size"`
	Text      string `json:"text,omitempty"`
	Base64    []byte `json:"base64,omitempty"`
	Truncated bool   `json:"truncated,omitempty"`
	Encoding  string `json:"encoding,omitempty"`
}

// unmarshalBody does what protocols.Body.UnmarshalJSON does, with json/v2.
func unmarshalBody(dec *jsontext.Decoder, b *protocols.Body) error {
	var j bodyJSON
	if err := json.UnmarshalDecode(dec, &j); err != nil {
		return err
	}
	*b = protocols.Body{Size: j.Size, Truncated: j.Truncated, Encoding: j.Encoding, Data: j.Base64}
	if j.Text != "" {
		b.Data = []byte(j.Text)
	}
	return nil
}
