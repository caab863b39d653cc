package wire

import (
	"errors"
	"testing"
)

func TestBatchRoundTrip(t *testing.T) {
	msg, err := AppendBatch(nil, 7, map[string]uint64{"emit_dropped": 2}, []byte(`{"id":"a"}`), []byte(`{"id":"b\n"}`))
	if err != nil {
		t.Fatal(err)
	}
	h, es := SplitMessage(msg)
	if string(h) != `{"type":"batch","seq":7,"counters":{"emit_dropped":2}}` || len(es) != 2 || string(es[1]) != `{"id":"b\n"}` {
		t.Errorf("header %s entries %q", h, es)
	}
	if _, err := AppendBatch(nil, 1, nil, []byte("{\n}")); !errors.Is(err, ErrNewline) {
		t.Errorf("multi-line entry: %v", err)
	}
	if h, es := SplitMessage([]byte(`{"type":"hello"}`)); string(h) != `{"type":"hello"}` || es != nil {
		t.Errorf("hello split into %s %q", h, es)
	}
	if _, es := SplitMessage([]byte("{}\n\n{}")); len(es) != 2 || len(es[0]) != 0 {
		t.Errorf("empty line: %q", es)
	}
}
