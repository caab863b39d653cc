package protocols

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
	// Data holds the first bytes of the payload (base64 in JSON). When Encoding
	// is set, Data is the decoded content, itself capped.
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
