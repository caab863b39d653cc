package http2

import (
	"strings"
	"testing"

	"github.com/sondehq/sonde/protocols"
	"github.com/sondehq/sonde/protocols/protocolstest"
)

// TestRedactSecretShapes drives HTTP/2 and gRPC streams that carry every
// secret shape they can: none may reach the entries.
func TestRedactSecretShapes(t *testing.T) {
	const s = "s3cr3tv4lue"
	c := newConv(t).start()
	// Query keys and headers of a plain request, a redirect's URL headers.
	c.headers(c2s, 1, true, ":method", "GET", ":scheme", "https", ":authority", "example.com",
		":path", "/cb?code="+s+"1&session_id="+s+"2&acc%65ss_token="+s+"3&X-Amz-Credential="+s+"4",
		"x-csrf-token", s+"5", "x-goog-api-key", s+"6", "authentication", s+"7", "referer", "https://example.com/?jwt="+s+"8")
	c.headers(s2c, 1, true, ":status", "302", "location", "https://u:"+s+"9@app/cb#access_token="+s+"A")
	// A JSON request body and a compressed OAuth token response.
	c.headers(c2s, 3, false, ":method", "POST", ":scheme", "https", ":authority", "example.com", ":path", "/token",
		"content-type", "application/json")
	c.data(c2s, 3, true, []byte(`{"client_id":"a","client_secret":"`+s+`B","password":"`+s+`C"}`))
	c.headers(s2c, 3, false, ":status", "200", "content-type", "application/json", "content-encoding", "gzip")
	c.data(s2c, 3, true, gzipped(t, []byte(`{"access_token":"`+s+`D","refresh_token":"`+s+`E","id_token":"`+s+`F","token_type":"bearer"}`)))
	// A form body.
	c.headers(c2s, 5, false, ":method", "POST", ":scheme", "https", ":authority", "example.com", ":path", "/login",
		"content-type", "application/x-www-form-urlencoded")
	c.data(c2s, 5, true, []byte("user=bob&password="+s+"G"))
	c.ok(5, "")
	// gRPC metadata.
	c.headers(c2s, 7, false, ":method", "POST", ":scheme", "http", ":authority", "svc:50051", ":path", "/pkg.S/M",
		"content-type", "application/grpc", "token", s+"H", "x-session-token", s+"I")
	c.data(c2s, 7, true, grpcFrame(pb("a", 1), false))
	c.grpcResponse(7, "0", pb("b", 2))

	res := replaySplit(t, protocols.ConnInfo{}, c.chunks)
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	if len(res.Entries) != 4 {
		t.Fatalf("%d entries: %s", len(res.Entries), protocolstest.DescribeAll(res.Entries))
	}
	protocolstest.NoSecret(t, res.Entries, s)
	for _, e := range res.Entries {
		if !e.Redacted {
			t.Errorf("not marked redacted: %s", protocolstest.Describe(e))
		}
	}
	if e := res.Entries[1]; e.HTTP.Response.Body.Encoding != "gzip" {
		t.Errorf("token response not decoded: %+v", e.HTTP.Response.Body)
	}
}

// TestRedactCodedBodies: bodies and gRPC messages left in a coding Sonde
// does not decode cannot be searched for secrets, and some codings carry
// short content as is: they are withheld, with a warning; zstd is decoded.
func TestRedactCodedBodies(t *testing.T) {
	const s = "s3cr3tv4lue"
	c := newConv(t).start()
	c.headers(c2s, 1, false, ":method", "POST", ":scheme", "https", ":authority", "example.com", ":path", "/a",
		"content-type", "text/plain", "content-encoding", "br")
	c.data(c2s, 1, true, []byte("\x0b\x0a\x80token="+s+"1\x03"))
	c.headers(s2c, 1, false, ":status", "200", "content-type", "application/json", "content-encoding", "zstd")
	zraw := []byte{0x28, 0xb5, 0x2f, 0xfd, 0x20}
	doc := `{"password":"` + s + `2"}`
	h := uint32(len(doc))<<3 | 1
	zraw = append(zraw, byte(len(doc)), byte(h), byte(h>>8), byte(h>>16))
	c.data(s2c, 1, true, append(zraw, doc...))
	// A gRPC message compressed with a codec Sonde does not know.
	c.headers(c2s, 3, false, ":method", "POST", ":scheme", "http", ":authority", "svc:50051", ":path", "/pkg.S/M",
		"content-type", "application/grpc", "grpc-encoding", "x-custom")
	c.data(c2s, 3, true, grpcFrame([]byte("password="+s+"3"), true))
	c.grpcResponse(3, "0", pb("b", 2))

	res := replaySplit(t, protocols.ConnInfo{}, c.chunks)
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	protocolstest.NoSecret(t, res.Entries, s)
	if len(res.Entries) != 2 {
		t.Fatalf("%d entries: %s", len(res.Entries), protocolstest.DescribeAll(res.Entries))
	}
	if b := res.Entries[0].HTTP.Response.Body; b.Encoding != "zstd" || !strings.Contains(string(b.Data), protocols.Redacted) {
		t.Errorf("zstd response not decoded and redacted: %+v", b)
	}
	for _, e := range res.Entries {
		if !strings.Contains(strings.Join(e.Warnings, ";"), "withheld") {
			t.Errorf("no warning says what was withheld: %s %q", protocolstest.Describe(e), e.Warnings)
		}
	}
}
