package protocols

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
)

// TestSecretNames is the corpus of names the rule must call secret, and of
// names that look close but carry data users need.
func TestSecretNames(t *testing.T) {
	secret := []string{
		// headers
		"Authorization", "Proxy-Authorization", "Cookie", "Set-Cookie", "X-Api-Key", "X-Auth-Token",
		"X-Amz-Security-Token", "X-CSRF-Token", "X-Vault-Token", "X-Goog-Api-Key", "Api-Key",
		"X-Access-Token", "Authentication", "X-Forwarded-Authorization", "Private-Token",
		// query keys
		"code", "session_id", "sessionid", "auth_token", "private_token", "jwt", "key",
		"X-Amz-Credential", "X-Amz-Signature", "sig", "acc%65ss_token", "access_token", "api_key",
		"PHPSESSID", "JSESSIONID",
		// body fields
		"password", "passwd", "client_secret", "refresh_token", "id_token", "userPassword",
		"password_confirmation", "private_key", "aws_secret_access_key", "client_assertion",
		// gRPC metadata, AMQP and Kafka headers
		"token", "x-session-token", "authorization",
		// exact short names
		"pass", "pwd", "auth", "session",
	}
	for _, n := range secret {
		if !IsSecretName(n) {
			t.Errorf("IsSecretName(%q) = false, want true", n)
		}
	}
	public := []string{
		"max_tokens", "Sec-WebSocket-Key", "Sec-WebSocket-Accept", "Content-Length", "Keep-Alive",
		"Content-Type", "Host", "User-Agent", "token_type", "expires_in", "scope", "author",
		"authority", ":authority", "bypass", "monkey", "keys", "codes", "country_code", "session_count",
		"nextPageToken", "page_token", "WWW-Authenticate", "grpc-status", "Idempotency-Key", "",
	}
	for _, n := range public {
		if IsSecretName(n) {
			t.Errorf("IsSecretName(%q) = true, want false", n)
		}
	}
}

func TestSecretPolicyNames(t *testing.T) {
	p, err := NewSecretPolicy([]string{"X-Tenant-Id"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"x_tenant_id", "X-TENANT-ID", "xtenantid", "password"} {
		if !p.IsSecret(n) {
			t.Errorf("IsSecret(%q) = false with the extra name", n)
		}
	}
	if p.IsSecret("tenant") {
		t.Error("an extra name matched as a suffix")
	}
	if _, err := NewSecretPolicy(nil, []string{"a("}); err == nil || !strings.Contains(err.Error(), `"a("`) {
		t.Errorf("bad pattern gave %v", err)
	}
}

// TestRedactShapes is one row per secret shape: each must leave no trace
// of the secret, and must say it redacted something.
func TestRedactShapes(t *testing.T) {
	const s = "s3cr3tv4lue"
	var def SecretPolicy
	tests := []struct {
		name  string
		field string // header name, or "" for a target, or "body:<content type>"
		in    string
	}{
		{"header X-CSRF-Token", "X-CSRF-Token", s},
		{"header X-Vault-Token", "X-Vault-Token", s},
		{"header X-Goog-Api-Key", "X-Goog-Api-Key", s},
		{"header Api-Key", "Api-Key", s},
		{"header X-Access-Token", "X-Access-Token", s},
		{"header Authentication", "Authentication", "Bearer " + s},
		{"header X-Forwarded-Authorization", "X-Forwarded-Authorization", "Bearer " + s},
		{"header Private-Token", "Private-Token", s},
		{"header Location user info", "Location", "https://bob:" + s + "@example.com/"},
		{"header Location token", "Location", "/cb?code=" + s + "&state=1"},
		{"header Location fragment", "Location", "https://app/#access_token=" + s},
		{"header Referer", "Referer", "https://example.com/p?session_id=" + s},
		{"header Content-Location", "Content-Location", "/doc?jwt=" + s},
		{"query code", "", "/cb?code=" + s},
		{"query session_id", "", "/p?session_id=" + s},
		{"query sessionid", "", "/p?sessionid=" + s},
		{"query auth_token", "", "/p?auth_token=" + s},
		{"query private_token", "", "/p?private_token=" + s},
		{"query jwt", "", "/p?jwt=" + s},
		{"query key", "", "/maps?key=" + s},
		{"query X-Amz-Credential", "", "/b/o?X-Amz-Credential=" + s + "%2F20240101%2Fus-east-1&X-Amz-Signature=" + s},
		{"query percent-encoded key", "", "/p?acc%65ss_token=" + s},
		{"json password", "body:application/json", `{"user":"bob","password":"` + s + `"}`},
		{"json client_secret", "body:application/json; charset=utf-8", `{"client_id":"a","client_secret":"` + s + `"}`},
		{"json oauth response", "body:application/json", `{"access_token":"` + s + `","token_type":"bearer","refresh_token":"` + s + `","id_token":"` + s + `"}`},
		{"json nested object", "body:application/json", `{"credentials":{"user":"u","pw":"` + s + `"},"n":1}`},
		{"json number", "body:application/json", `{"pin":1,"password":12345` + s[:0] + `}`},
		{"json array value", "body:", `[{"tokens":[1],"secret":["` + s + `",2]}]`},
		{"json truncated in value", "body:application/json", `{"a":1,"password":"` + s[:5]},
		{"json escaped name", "body:application/json", `{"pass\u0077ord":"` + s + `"}`},
		{"json sniffed", "body:", ` {"api_key":"` + s + `"}`},
		{"form", "body:application/x-www-form-urlencoded", "grant_type=authorization_code&code=" + s + "&client_secret=" + s + "&redirect_uri=x"},
		{"form password", "body:application/x-www-form-urlencoded", "username=bob&password=" + s},
		{"form oauth response", "body:application/x-www-form-urlencoded", "access_token=" + s + "&scope=repo"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got string
			var changed bool
			secret := s
			if tt.name == "json number" {
				secret = "12345"
			}
			if tt.name == "json truncated in value" {
				secret = s[:5]
			}
			switch {
			case tt.field == "":
				got, changed = def.RedactTarget(tt.in)
			case strings.HasPrefix(tt.field, "body:"):
				b := Body{Data: []byte(tt.in), Size: int64(len(tt.in))}
				changed = def.RedactBody(&b, strings.TrimPrefix(tt.field, "body:"))
				got = string(b.Data)
				if strings.Contains(tt.field, "json") || tt.field == "body:" {
					if !strings.HasSuffix(tt.name, "truncated in value") && !json.Valid(b.Data) {
						t.Errorf("redacted JSON %s is not valid", got)
					}
				}
			default:
				h := Headers{{"Host", "a"}, {tt.field, tt.in}}
				changed = def.RedactHeaders(h)
				got = h[1].Value
				if h[0].Value != "a" {
					t.Errorf("Host changed to %q", h[0].Value)
				}
			}
			if strings.Contains(got, secret) || !changed || !strings.Contains(got, Redacted) {
				t.Errorf("%q redacted to %q (changed %v)", tt.in, got, changed)
			}
		})
	}
}

// TestRedactKeepsData guards the false positives: what is not a secret
// stays byte for byte.
func TestRedactKeepsData(t *testing.T) {
	var def SecretPolicy
	h := Headers{{"Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="}, {"Content-Length", "12"}, {"Keep-Alive", "timeout=5"},
		{"Location", "https://example.com/a?page=2#top"}, {"Referer", "https://example.com/"}}
	want := append(Headers(nil), h...)
	if def.RedactHeaders(h) {
		t.Error("RedactHeaders reported a change")
	}
	for i := range h {
		if h[i] != want[i] {
			t.Errorf("header %v became %v", want[i], h[i])
		}
	}
	for _, body := range []string{
		`{"model":"m","max_tokens":256,"messages":[{"role":"user","content":"password?"}]}`,
		`{"error":{"code":404,"message":"not found"},"key":"user:42","token_type":"bearer","nextPageToken":"abc"}`,
		`{"a":"password","b":["secret","token"]}`,
		`not json at all: password=1`,
		`{"password"`,
	} {
		b := Body{Data: []byte(body)}
		if def.RedactBody(&b, "application/json") || string(b.Data) != body {
			t.Errorf("%s became %s", body, b.Data)
		}
	}
	target := "/v1/completions?max_tokens=10&page_token=p&model=m"
	if got, changed := def.RedactTarget(target); changed || got != target {
		t.Errorf("%s became %s", target, got)
	}
}

func TestRedactJSONExact(t *testing.T) {
	var def SecretPolicy
	in := "{ \"a\" : 1,\n \"password\" :\t\"x\\\"y\" , \"obj\":{\"token\":{\"deep\":[1,{\"x\":\"}\"}]}}, \"n\":null, \"secret\":true}\n{\"jwt\":\"z\"}"
	want := "{ \"a\" : 1,\n \"password\" :\t\"[REDACTED]\" , \"obj\":{\"token\":\"[REDACTED]\"}, \"n\":null, \"secret\":\"[REDACTED]\"}\n{\"jwt\":\"[REDACTED]\"}"
	got, changed := def.RedactJSON([]byte(in))
	if string(got) != want || !changed {
		t.Errorf("RedactJSON =\n%s\nwant\n%s", got, want)
	}
	// Every cut of a document with a secret leaves no part of the secret.
	doc := []byte(`{"user":"bob","password":"hunter2hunter2","nested":{"refresh_token":["r1r1r1r1",{"x":1}]},"tail":"ok"}`)
	for i := range doc {
		got, _ := def.RedactJSON(doc[:i])
		if bytes.Contains(got, []byte("hunter2")) || bytes.Contains(got, []byte("r1r1")) {
			t.Errorf("cut at %d: %s", i, got)
		}
	}
}

func TestSecretPolicyPatterns(t *testing.T) {
	p := SecretPolicy{Patterns: []*regexp.Regexp{regexp.MustCompile(`ghp_[A-Za-z0-9]{8,}`)}}
	h := Headers{{"X-Note", "uses ghp_abcdefgh123 today"}}
	if !p.RedactHeaders(h) || h[0].Value != "uses [REDACTED] today" {
		t.Errorf("header value = %q", h[0].Value)
	}
	if got, _ := p.RedactTarget("/x?q=ghp_abcdefgh123&b=1"); got != "/x?q=[REDACTED]&b=1" {
		t.Errorf("target = %q", got)
	}
	b := Body{Data: []byte("log line ghp_abcdefgh123 end")}
	if !p.RedactBody(&b, "text/plain") || string(b.Data) != "log line [REDACTED] end" {
		t.Errorf("body = %q", b.Data)
	}
}

// TestRedactMarkupBodies: multipart and XML bodies lose the values of
// their secret-named fields, and nothing else.
func TestRedactMarkupBodies(t *testing.T) {
	const mp = "multipart/form-data; boundary=XyZ"
	tests := []struct {
		name, contentType, body, want string
	}{
		{"multipart password", mp,
			"--XyZ\r\nContent-Disposition: form-data; name=\"user\"\r\n\r\nbob\r\n--XyZ\r\nContent-Disposition: form-data; name=\"password\"\r\n\r\nhunter2\r\n--XyZ--\r\n",
			"--XyZ\r\nContent-Disposition: form-data; name=\"user\"\r\n\r\nbob\r\n--XyZ\r\nContent-Disposition: form-data; name=\"password\"\r\n\r\n[REDACTED]\r\n--XyZ--\r\n"},
		{"multipart cut inside a secret", mp,
			"--XyZ\r\nContent-Disposition: form-data; name=\"client_secret\"\r\n\r\nabcdef",
			"--XyZ\r\nContent-Disposition: form-data; name=\"client_secret\"\r\n\r\n[REDACTED]"},
		{"multipart without secrets", mp,
			"--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\nContent-Type: text/plain\r\n\r\nhello\r\n--XyZ--\r\n", ""},
		{"soap", "application/soap+xml",
			`<Envelope><Header><wsse:Security><wsse:Username>bob</wsse:Username><wsse:Password Type="PasswordText">hunter2</wsse:Password></wsse:Security></Header></Envelope>`,
			`<Envelope><Header><wsse:Security><wsse:Username>bob</wsse:Username><wsse:Password Type="PasswordText">[REDACTED]</wsse:Password></wsse:Security></Header></Envelope>`},
		{"xml attribute", "text/xml", `<login user="bob" api_key='k-123'/>`, `<login user="bob" api_key='[REDACTED]'/>`},
		{"xml cut inside a secret", "application/xml", `<a><token>abc`, `<a><token>[REDACTED]`},
		{"xml without secrets", "application/xml", `<a><token_type>bearer</token_type><b x="1">t</b></a>`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := Body{Data: []byte(tt.body), Size: int64(len(tt.body))}
			changed := SecretPolicy{}.RedactBody(&b, tt.contentType)
			want := tt.want
			if want == "" {
				want = tt.body
			}
			if string(b.Data) != want || changed != (tt.want != "") {
				t.Errorf("RedactBody = %v\n got %q\nwant %q", changed, b.Data, want)
			}
		})
	}
}
