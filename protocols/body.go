package protocols

import (
	"encoding/json"
	"unicode/utf8"
)

// Header is one header field, kept in wire order. Names keep the case they had
// on the wire (HTTP/2 and gRPC names are lowercase by definition).
type Header struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Headers is an ordered list of header fields.
type Headers []Header

// Get returns the first value of the named header, compared without regard to
// ASCII case, and whether it was present.
func (h Headers) Get(name string) (string, bool) {
	for _, f := range h {
		if equalFoldASCII(f.Name, name) {
			return f.Value, true
		}
	}
	return "", false
}

func equalFoldASCII(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		ca, cb := a[i], b[i]
		if 'A' <= ca && ca <= 'Z' {
			ca += 'a' - 'A'
		}
		if 'A' <= cb && cb <= 'Z' {
			cb += 'a' - 'A'
		}
		if ca != cb {
			return false
		}
	}
	return true
}

// Body is a message payload as Sonde keeps it: at most the configured cap.
type Body struct {
	// Size is the payload's length on the wire, after transfer framing (chunked,
	// length prefixes) was removed and before any content decoding.
	Size int64 `json:"size"`
	// Data holds the first bytes of the payload. When Encoding is set, Data
	// is the decoded content, itself capped. In JSON it is "text" when it is
	// valid UTF-8, so that people and tools read it as it is, and "base64"
	// otherwise.
	Data []byte `json:"data,omitempty"`
	// Truncated is true when Data holds less than the whole payload.
	Truncated bool `json:"truncated,omitempty"`
	// Encoding is the content coding that was decoded for display ("gzip",
	// "deflate"); empty when Data is the payload as sent.
	Encoding string `json:"encoding,omitempty"`
}

// Capture appends p to the body's data while it stays under limit, counts all
// of p in Size, and sets Truncated when something had to be left out.
func (b *Body) Capture(p []byte, limit int) {
	b.Size += int64(len(p))
	room := limit - len(b.Data)
	if room <= 0 {
		if len(p) > 0 {
			b.Truncated = true
		}
		return
	}
	if len(p) > room {
		p = p[:room]
		b.Truncated = true
	}
	b.Data = append(b.Data, p...)
}

// BodyJSON is Body's JSON form, for decoders other than encoding/json
// (the hub's) to read it as UnmarshalJSON does.
type BodyJSON struct {
	Size      int64  `json:"size"`
	Text      string `json:"text,omitempty"`
	Base64    []byte `json:"base64,omitempty"`
	Truncated bool   `json:"truncated,omitempty"`
	Encoding  string `json:"encoding,omitempty"`
}

// MarshalJSON writes Data as "text" when it is valid UTF-8, else as "base64".
func (b Body) MarshalJSON() ([]byte, error) {
	j := BodyJSON{Size: b.Size, Truncated: b.Truncated, Encoding: b.Encoding}
	if utf8.Valid(b.Data) {
		j.Text = string(b.Data)
	} else {
		j.Base64 = b.Data
	}
	return json.Marshal(j)
}

// UnmarshalJSON reads what MarshalJSON writes.
func (b *Body) UnmarshalJSON(data []byte) error {
	var j BodyJSON
	if err := json.Unmarshal(data, &j); err != nil {
		return err
	}
	*b = j.Body()
	return nil
}

// Body is the Body that j is the form of.
func (j *BodyJSON) Body() Body {
	b := Body{Size: j.Size, Truncated: j.Truncated, Encoding: j.Encoding, Data: j.Base64}
	if j.Text != "" {
		b.Data = []byte(j.Text)
	}
	return b
}
