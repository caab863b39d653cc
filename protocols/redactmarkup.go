package protocols

import (
	"bytes"
	"mime"
)

// redactMultipart replaces the content of every part of a multipart body
// (multipart/form-data, RFC 7578) whose field name is secret, as a form's
// fields are: a login form posted as multipart carries its password there.
// A body cut at the cap is read as far as it goes, and a secret part it
// cuts is replaced to the end. It returns nil when nothing was replaced.
func (p SecretPolicy) redactMultipart(data []byte, contentType string) []byte {
	_, params, err := mime.ParseMediaType(contentType)
	if err != nil || params["boundary"] == "" {
		return nil
	}
	delim := []byte("--" + params["boundary"])
	var out []byte
	last := 0
	i := bytes.Index(data, delim)
	for i >= 0 {
		start := i + len(delim)
		hdrEnd := bytes.Index(data[start:], []byte("\r\n\r\n"))
		if hdrEnd < 0 {
			break
		}
		content := start + hdrEnd + 4
		next := bytes.Index(data[content:], append([]byte("\r\n"), delim...))
		end := len(data)
		if next >= 0 {
			end = content + next
		}
		if name := partName(data[start : start+hdrEnd]); name != "" && p.IsSecret(name) && end > content {
			out = append(append(out, data[last:content]...), Redacted...)
			last = end
		}
		if next < 0 {
			break
		}
		i = end + 2
	}
	if out == nil {
		return nil
	}
	return append(out, data[last:]...)
}

// partName is the name parameter of a part's Content-Disposition field.
func partName(headers []byte) string {
	for line := range bytes.SplitSeq(headers, []byte("\r\n")) {
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok || !bytes.EqualFold(bytes.TrimSpace(name), []byte("Content-Disposition")) {
			continue
		}
		if _, params, err := mime.ParseMediaType(string(value)); err == nil {
			return params["name"]
		}
	}
	return ""
}

// redactXML replaces the text of every element, and the value of every
// attribute, whose local name is secret, as JSON members are (a SOAP
// login's <password>, a WS-Security <wsse:Password>). It scans tags, never
// builds a tree, so a body cut at the cap is read as far as it goes. It
// returns nil when nothing was replaced.
func (p SecretPolicy) redactXML(data []byte) []byte {
	var out []byte
	last := 0
	for i := 0; i < len(data); {
		lt := bytes.IndexByte(data[i:], '<')
		if lt < 0 {
			break
		}
		i += lt + 1
		if i >= len(data) || data[i] == '/' || data[i] == '?' || data[i] == '!' {
			continue
		}
		gt := bytes.IndexByte(data[i:], '>')
		if gt < 0 {
			gt = len(data) - i
		}
		tag := data[i : i+gt]
		nameEnd := bytes.IndexAny(tag, " \t\r\n/")
		if nameEnd < 0 {
			nameEnd = len(tag)
		}
		// Attributes: name="value" or name='value'.
		for a := nameEnd; a < len(tag); {
			eq := bytes.IndexByte(tag[a:], '=')
			if eq < 0 {
				break
			}
			attr := bytes.TrimSpace(tag[a : a+eq])
			v := a + eq + 1
			for v < len(tag) && (tag[v] == ' ' || tag[v] == '\t') {
				v++
			}
			if v >= len(tag) || (tag[v] != '"' && tag[v] != '\'') {
				break
			}
			closing := bytes.IndexByte(tag[v+1:], tag[v])
			vEnd := len(tag)
			if closing >= 0 {
				vEnd = v + 1 + closing
			}
			if p.isSecretField(string(localName(attr))) && vEnd > v+1 {
				out = append(append(out, data[last:i+v+1]...), Redacted...)
				last = i + vEnd
			}
			a = vEnd + 1
		}
		i += gt + 1
		if gt > 0 && tag[gt-1] == '/' || !p.isSecretField(string(localName(tag[:nameEnd]))) {
			continue
		}
		textEnd := bytes.IndexByte(data[i:], '<')
		if textEnd < 0 {
			textEnd = len(data) - i
		}
		if textEnd > 0 && i >= last {
			out = append(append(out, data[last:i]...), Redacted...)
			last = i + textEnd
		}
		i += textEnd
	}
	if out == nil {
		return nil
	}
	return append(out, data[last:]...)
}

// localName is an XML name without its namespace prefix.
func localName(n []byte) []byte {
	if i := bytes.LastIndexByte(n, ':'); i >= 0 {
		return n[i+1:]
	}
	return n
}
