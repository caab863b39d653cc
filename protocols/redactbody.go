package protocols

import (
	"bytes"
	"encoding/json"
	"strings"
)

// redactedJSON replaces a secret member's value, whatever its type.
var redactedJSON = []byte(`"` + Redacted + `"`)

// RedactBody redacts the kept bytes of a body in place, reading them as the
// content type says (its media type; empty when unknown): the values of
// secret-named members of JSON (sniffed when the type does not say), the
// values of secret-named fields of a form, then what the policy's patterns
// match anywhere. It reports whether it replaced anything. Multipart
// bodies lose the content of secret-named parts, XML bodies the text of
// secret-named elements and the values of secret-named attributes. A body that is
// still content-coded (Encoding empty while the message named a coding
// Sonde could not decode) is left to the patterns alone.
func (p SecretPolicy) RedactBody(b *Body, contentType string) bool {
	if len(b.Data) == 0 {
		return false
	}
	changed := false
	mt := mediaType(contentType)
	switch {
	case mt == "application/x-www-form-urlencoded":
		if s, c := p.redactPairs(string(b.Data)); c {
			b.Data, changed = []byte(s), true
		}
	case strings.HasPrefix(mt, "multipart/"):
		if d := p.redactMultipart(b.Data, contentType); d != nil {
			b.Data, changed = d, true
		}
	case strings.HasSuffix(mt, "/xml") || strings.HasSuffix(mt, "+xml"):
		if d := p.redactXML(b.Data); d != nil {
			b.Data, changed = d, true
		}
	case strings.Contains(mt, "json") || mt == "" && looksJSON(b.Data) || mt == "text/plain" && looksJSON(b.Data):
		if d, c := p.RedactJSON(b.Data); c {
			b.Data, changed = d, true
		}
	}
	for _, re := range p.Patterns {
		if re.Match(b.Data) {
			b.Data, changed = re.ReplaceAllLiteral(b.Data, []byte(Redacted)), true
		}
	}
	return changed
}

// WithheldCodedWarning is the warning on an entry whose body was withheld
// by WithholdCoded; %s is the content coding.
const WithheldCodedWarning = "body withheld: its %s content coding was not decoded, so secrets in it could not be redacted"

// WithholdCoded withholds a body that is still in a content coding (coding,
// as the message named it) because Sonde did not or could not decode it
// (br, compress, an unknown or a damaged coding): its bytes cannot be
// searched for secrets, and some codings carry short content as is (zstd
// raw blocks, stored deflate blocks), so showing them could show a
// password. Data is then dropped (it would read Redacted, but a body never
// shows more bytes than it had), Size still says how long the body was,
// and Truncated is set; the entry says why in a warning. It reports whether it withheld anything; a
// body shown decoded (Encoding set), or sent without a coding, is left
// alone.
func WithholdCoded(b *Body, coding string) bool {
	coding = strings.ToLower(strings.TrimSpace(coding))
	if len(b.Data) == 0 || b.Encoding != "" || coding == "" || coding == "identity" {
		return false
	}
	b.Data, b.Truncated = nil, true
	return true
}

// mediaType is a Content-Type without parameters, in lower case.
func mediaType(ct string) string {
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	return strings.ToLower(strings.TrimSpace(ct))
}

// looksJSON says whether data starts like a JSON object or array.
func looksJSON(data []byte) bool {
	for _, c := range data {
		switch c {
		case ' ', '\t', '\r', '\n':
			continue
		case '{', '[':
			return true
		}
		return false
	}
	return false
}

// RedactJSON replaces the value of every member with a secret name, whether
// a string, a number, a literal or a whole object or array, by the string
// "[REDACTED]", and reports whether it replaced any. Everything else is
// kept byte for byte: the tokens are scanned, never decoded and encoded
// again. Text cut anywhere (at the body cap) is read as far as it goes, and
// a secret value it cuts is replaced to the end. A sequence of values
// (NDJSON) is read as such. data is not modified; the result is a new slice
// when something was replaced.
func (p SecretPolicy) RedactJSON(data []byte) ([]byte, bool) {
	var out []byte
	last := 0
	// stack holds, for each open container, whether it is an object.
	stack := make([]bool, 0, 16)
	expectKey := false
	var key []byte
	haveKey := false
	for i := 0; i < len(data); {
		c := data[i]
		switch c {
		case '{':
			stack = append(stack, true)
			expectKey, haveKey = true, false
			i++
		case '[':
			stack = append(stack, false)
			expectKey, haveKey = false, false
			i++
		case '}', ']':
			if len(stack) > 0 {
				stack = stack[:len(stack)-1]
			}
			expectKey, haveKey = false, false
			i++
		case ',':
			expectKey = len(stack) > 0 && stack[len(stack)-1]
			haveKey = false
			i++
		case ':':
			i++
			if !haveKey {
				continue
			}
			haveKey = false
			if !p.isSecretMember(key) {
				continue
			}
			start := skipSpace(data, i)
			if start == len(data) {
				i = start
				continue
			}
			end := valueEnd(data, start)
			if bytes.Equal(data[start:end], redactedJSON) {
				i = end
				continue
			}
			if out == nil {
				out = make([]byte, 0, len(data)+len(data)/8)
			}
			out = append(out, data[last:start]...)
			out = append(out, redactedJSON...)
			last, i = end, end
		case '"':
			end, closed := stringEnd(data, i)
			if expectKey && closed {
				key, haveKey, expectKey = data[i+1:end-1], true, false
			}
			i = end
		default:
			i++
		}
	}
	if out == nil {
		return data, false
	}
	return append(out, data[last:]...), true
}

// isSecretMember reports whether a JSON member name, as it appears between
// its quotes, is secret: the rule without secretParams. Escapes are decoded
// first, so that "pass\u0077ord" is a password too.
func (p SecretPolicy) isSecretMember(raw []byte) bool {
	if bytes.IndexByte(raw, '\\') >= 0 {
		var s string
		q := make([]byte, 0, len(raw)+2)
		q = append(append(append(q, '"'), raw...), '"')
		if json.Unmarshal(q, &s) == nil {
			return p.isSecretField(s)
		}
	}
	var buf [64]byte
	return p.secretNormalized(normalizeName(buf[:0], raw), false)
}

func skipSpace(data []byte, i int) int {
	for i < len(data) {
		switch data[i] {
		case ' ', '\t', '\r', '\n':
			i++
		default:
			return i
		}
	}
	return i
}

// stringEnd returns the index just past the string that starts at data[i]
// (a quote), and whether its closing quote was there.
func stringEnd(data []byte, i int) (int, bool) {
	for j := i + 1; j < len(data); {
		q := bytes.IndexByte(data[j:], '"')
		if q < 0 {
			break
		}
		j += q
		// The quote is escaped when an odd number of backslashes precede it.
		k := j
		for k > i+1 && data[k-1] == '\\' {
			k--
		}
		if (j-k)%2 == 0 {
			return j + 1, true
		}
		j++
	}
	return len(data), false
}

// valueEnd returns the index just past the value that starts at data[i], or
// len(data) when the text ends inside it.
func valueEnd(data []byte, i int) int {
	switch data[i] {
	case '"':
		end, _ := stringEnd(data, i)
		return end
	case '{', '[':
		depth := 0
		for j := i; j < len(data); j++ {
			switch data[j] {
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1
				}
			case '"':
				end, _ := stringEnd(data, j)
				j = end - 1
			}
		}
		return len(data)
	}
	// A number or a literal runs to the next delimiter.
	for j := i; j < len(data); j++ {
		switch data[j] {
		case ',', '}', ']', ' ', '\t', '\r', '\n':
			return j
		}
	}
	return len(data)
}
