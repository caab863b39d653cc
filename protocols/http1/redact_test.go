package http1

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/sondehq/sonde/protocols"
	"github.com/sondehq/sonde/protocols/protocolstest"
)

func gzipped(t *testing.T, s string) string {
	t.Helper()
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	if _, err := w.Write([]byte(s)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// zstdRaw is a zstd frame that carries p in one raw block, as encoders do
// with content too short to compress (RFC 8878 §3.1.1).
func zstdRaw(p string) string {
	frame := []byte{0x28, 0xb5, 0x2f, 0xfd, 0x20, byte(len(p))} // single segment, 1-byte content size
	h := uint32(len(p))<<3 | 1                                  // last block, raw
	frame = append(frame, byte(h), byte(h>>8), byte(h>>16))
	return string(append(frame, p...))
}

func zstdCompressed(t *testing.T, p string) string {
	t.Helper()
	w, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	return string(w.EncodeAll([]byte(p), nil))
}

func message(start, headers, body string) string {
	return fmt.Sprintf("%s\r\n%sContent-Length: %d\r\n\r\n%s", start, headers, len(body), body)
}

// TestRedactSecretShapes drives the dissector with exchanges that carry
// every secret shape HTTP/1 can: none may reach the entry.
func TestRedactSecretShapes(t *testing.T) {
	const s = "s3cr3tv4lue"
	tests := []struct {
		name   string
		chunks []protocolstest.Chunk
	}{
		{"query keys", protocolstest.Stream(
			message("GET /cb?code="+s+"1&session_id="+s+"2&sessionid="+s+"3&auth_token="+s+"4&private_token="+s+"5&jwt="+s+"6&key="+s+"7&X-Amz-Credential="+s+"8&acc%65ss_token="+s+"9&page=1 HTTP/1.1", "Host: a\r\n", ""),
			message("HTTP/1.1 204 No Content", "", ""))},
		{"headers", protocolstest.Stream(
			message("GET / HTTP/1.1", "Host: a\r\nX-CSRF-Token: "+s+"1\r\nX-Vault-Token: "+s+"2\r\nX-Goog-Api-Key: "+s+"3\r\nApi-Key: "+s+"4\r\nX-Access-Token: "+s+"5\r\nAuthentication: "+s+"6\r\nX-Forwarded-Authorization: Bearer "+s+"7\r\nPrivate-Token: "+s+"8\r\nReferer: https://u:"+s+"9@example.com/?token="+s+"A\r\n", ""),
			message("HTTP/1.1 302 Found", "Location: https://app.example/cb?code="+s+"B#access_token="+s+"C\r\nContent-Location: /x?jwt="+s+"D\r\n", ""))},
		{"json bodies", protocolstest.Stream(
			message("POST /login HTTP/1.1", "Host: a\r\nContent-Type: application/json\r\n", `{"user":"bob","password":"`+s+`1","client_secret":"`+s+`2"}`),
			message("HTTP/1.1 200 OK", "Content-Type: application/json\r\n", `{"access_token":"`+s+`3","token_type":"bearer","refresh_token":"`+s+`4","id_token":"`+s+`5"}`))},
		{"form bodies", protocolstest.Stream(
			message("POST /token HTTP/1.1", "Host: a\r\nContent-Type: application/x-www-form-urlencoded\r\n", "grant_type=authorization_code&code="+s+"1&client_secret="+s+"2"),
			message("HTTP/1.1 200 OK", "Content-Type: application/x-www-form-urlencoded\r\n", "access_token="+s+"3&scope=repo"))},
		{"compressed json body", protocolstest.Stream(
			message("GET /me HTTP/1.1", "Host: a\r\n", ""),
			message("HTTP/1.1 200 OK", "Content-Type: application/json\r\nContent-Encoding: gzip\r\n", gzipped(t, `{"access_token":"`+s+`1","refresh_token":"`+s+`2"}`)))},
		{"multipart and xml bodies", protocolstest.Stream(
			message("POST /login HTTP/1.1", "Host: a\r\nContent-Type: multipart/form-data; boundary=b\r\n",
				"--b\r\nContent-Disposition: form-data; name=\"user\"\r\n\r\nbob\r\n--b\r\nContent-Disposition: form-data; name=\"password\"\r\n\r\n"+s+"1\r\n--b--\r\n"),
			message("HTTP/1.1 204 No Content", "", ""),
			message("POST /soap HTTP/1.1", "Host: a\r\nContent-Type: text/xml; charset=utf-8\r\n",
				`<Envelope><wsse:Password>`+s+`2</wsse:Password><auth token="`+s+`3"/></Envelope>`),
			message("HTTP/1.1 204 No Content", "", ""))},
		// zstd keeps short content as is in raw blocks: undecoded, the
		// password would be in the bytes shown.
		{"zstd json body", protocolstest.Stream(
			message("POST /login HTTP/1.1", "Host: a\r\nContent-Type: application/json\r\nContent-Encoding: zstd\r\n", zstdRaw(`{"user":"bob","password":"`+s+`1"}`)),
			message("HTTP/1.1 200 OK", "Content-Type: application/json\r\nContent-Encoding: zstd\r\n", zstdCompressed(t, `{"access_token":"`+s+`2","n":"`+strings.Repeat("ab", 200)+`"}`)))},
		// Codings Sonde does not decode: br (an uncompressed meta-block
		// carries its bytes as they are), compress, an unknown one, and a
		// gzip body that does not decode.
		{"undecoded codings", protocolstest.Stream(
			message("POST /a HTTP/1.1", "Host: a\r\nContent-Type: text/plain\r\nContent-Encoding: br\r\n", "\x0b\x0a\x80token="+s+"1\x03"),
			message("HTTP/1.1 200 OK", "Content-Encoding: compress\r\n", "\x1f\x9dpassword="+s+"2"),
			message("POST /b HTTP/1.1", "Host: a\r\nContent-Type: application/octet-stream\r\nContent-Encoding: x-custom\r\n", "secret="+s+"3"),
			message("HTTP/1.1 200 OK", "Content-Type: text/html\r\nContent-Encoding: gzip\r\n", "\x1f\x8b not really: password="+s+"4"))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := protocolstest.CheckSplit(t, New(), tt.chunks, protocolstest.SplitOptions{Seeds: protocolstest.Seeds(0, 5)})
			if res.Err != nil {
				t.Fatal(res.Err)
			}
			protocolstest.NoSecret(t, res.Entries, s)
			for _, e := range res.Entries {
				for _, b := range []*protocols.Body{&e.HTTP.Request.Body, responseBody(e)} {
					if b != nil && b.Size > 0 && len(b.Data) == 0 && !strings.Contains(strings.Join(e.Warnings, ";"), "withheld") {
						t.Errorf("a body is withheld without a warning that says why: %q", e.Warnings)
					}
				}
			}
		})
	}
}

func responseBody(e *protocols.Entry) *protocols.Body {
	if e.HTTP.Response == nil {
		return nil
	}
	return &e.HTTP.Response.Body
}

// TestRedactTruncatedBody: a JSON body cut at the body cap still loses its
// secret, and what is not secret stays as sent.
func TestRedactTruncatedBody(t *testing.T) {
	const s = "s3cr3tv4lue"
	body := `{"pad":"` + strings.Repeat("x", 100) + `","password":"` + s + s + `"}`
	info := protocols.ConnInfo{Options: protocols.DefaultOptions()}
	info.Options.BodyCap = len(body) - 12
	res, err := protocolstest.Replay(New(), info, protocolstest.Stream(
		message("POST / HTTP/1.1", "Host: a\r\nContent-Type: application/json\r\n", body),
		message("HTTP/1.1 204 No Content", "", "")), protocols.ClosedFIN)
	if err != nil || res.Err != nil {
		t.Fatal(err, res.Err)
	}
	protocolstest.NoSecret(t, res.Entries, s[:6])
	got := res.Entries[0].HTTP.Request.Body
	if !got.Truncated || !strings.HasPrefix(string(got.Data), `{"pad":"xxx`) || !strings.HasSuffix(string(got.Data), `"password":"[REDACTED]"`) {
		t.Errorf("body %q truncated %v", got.Data, got.Truncated)
	}
}

// TestRedactPolicy: names and patterns the user adds are honoured, and
// nothing is redacted with the master switch off.
func TestRedactPolicy(t *testing.T) {
	chunks := protocolstest.Stream(
		message("GET /?tenant=t1 HTTP/1.1", "Host: a\r\nX-Tenant: t2\r\nX-Note: ghp_abcdefgh123\r\n", ""),
		message("HTTP/1.1 200 OK", "", `{"msg":"ghp_abcdefgh456"}`))
	info := protocols.ConnInfo{Options: protocols.DefaultOptions()}
	var err error
	info.Options.Secrets, err = protocols.NewSecretPolicy([]string{"tenant", "x_tenant"}, []string{`ghp_[a-z0-9]+`})
	if err != nil {
		t.Fatal(err)
	}
	res := protocolstest.CheckSplit(t, New(), chunks, protocolstest.SplitOptions{Info: info, Seeds: protocolstest.Seeds(0, 3)})
	protocolstest.NoSecret(t, res.Entries, "t1", "t2", "ghp_")

	info.Options.Redact = false
	res = protocolstest.CheckSplit(t, New(), chunks, protocolstest.SplitOptions{Info: info})
	if e := res.Entries[0]; e.Redacted || !regexp.MustCompile(`tenant=t1`).MatchString(e.HTTP.Request.Target) {
		t.Errorf("redacted with Redact off: %+v", e.HTTP.Request)
	}
}

// TestZstdBody: a zstd body is decoded for display, as gzip is, so that
// it can be read and searched for secrets.
func TestZstdBody(t *testing.T) {
	const doc = `{"user":"bob","password":"hunter2"}`
	for name, coded := range map[string]string{"raw block": zstdRaw(doc), "compressed": zstdCompressed(t, doc)} {
		t.Run(name, func(t *testing.T) {
			res := protocolstest.CheckSplit(t, New(), protocolstest.Stream(
				message("POST /login HTTP/1.1", "Host: a\r\nContent-Type: application/json\r\nContent-Encoding: zstd\r\n", coded),
				message("HTTP/1.1 204 No Content", "", "")), protocolstest.SplitOptions{Seeds: protocolstest.Seeds(0, 3)})
			b := res.Entries[0].HTTP.Request.Body
			if b.Encoding != "zstd" || string(b.Data) != `{"user":"bob","password":"[REDACTED]"}` {
				t.Errorf("body %+v (%s)", b, b.Data)
			}
		})
	}
}
