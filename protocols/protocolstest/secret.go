package protocolstest

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/sondehq/sonde/protocols"
)

// NoSecret fails t when any entry, in the JSON form it leaves the agent in,
// holds one of secrets, or when no entry says it was redacted. Bodies kept
// as text show in that form as they are; the bytes of every body, also
// those the JSON form writes in base64 (a compressed body shown as sent),
// are searched too.
func NoSecret(t testing.TB, entries []*protocols.Entry, secrets ...string) {
	t.Helper()
	if len(entries) == 0 {
		t.Fatal("no entries")
	}
	redacted := false
	for _, e := range entries {
		out, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range secrets {
			if strings.Contains(string(out), s) {
				t.Errorf("secret %q left in %s", s, out)
			}
			if where := bytesHolding(reflect.ValueOf(e), s, "entry"); where != "" {
				t.Errorf("secret %q left in the bytes of %s: %s", s, where, Describe(e))
			}
		}
		redacted = redacted || e.Redacted
	}
	if !redacted {
		t.Errorf("no entry marked Redacted: %s", DescribeAll(entries))
	}
}

// bytesHolding names the first byte slice reachable from v that holds s.
func bytesHolding(v reflect.Value, s, path string) string {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return ""
		}
		return bytesHolding(v.Elem(), s, path)
	case reflect.Struct:
		for i := range v.NumField() {
			if w := bytesHolding(v.Field(i), s, path+"."+v.Type().Field(i).Name); w != "" {
				return w
			}
		}
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			if bytes.Contains(v.Bytes(), []byte(s)) {
				return path
			}
			return ""
		}
		for i := range v.Len() {
			if w := bytesHolding(v.Index(i), s, path); w != "" {
				return w
			}
		}
	}
	return ""
}
