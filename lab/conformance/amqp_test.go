package conformance

import (
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/sondehq/sonde/protocols"
)

var amqpKnown = map[string]knownDifference{}

// numberSuffix strips tshark's " (60)" after a class or method name.
var numberSuffix = regexp.MustCompile(` \(\d+\)$`)

// TestAMQPConformance: every frame tshark shows (protocol header, method,
// content header, content body) is accounted for by Sonde's entries, per
// connection and channel. Entries pair a method with its reply and carry
// their content, so the frames are compared as a multiset: their order in
// the list is the order exchanges complete, not the order frames arrived.
func TestAMQPConformance(t *testing.T) {
	for _, f := range inventory(t, "amqp") {
		t.Run(f.Name, func(t *testing.T) {
			want := sequences{}
			for _, r := range readTSV(t, f.Msgs) {
				conn := rowConn(t, r)
				switch kind := r["kind"]; kind {
				case "protocol-header":
					want.add(conn, kind)
				case "method":
					class := numberSuffix.ReplaceAllString(r["class"], "")
					method := numberSuffix.ReplaceAllString(r["method"], "")
					want.add(conn+" ch"+r["channel"], strings.ToLower(class+"."+method))
				case "content-header", "content-body":
					want.add(conn+" ch"+r["channel"], kind)
				}
			}
			entries, st := dissect(t, f)
			got := sequences{}
			for _, e := range entries {
				if e.AMQP == nil {
					continue
				}
				amqpFrames(e, got)
			}
			for _, s := range []sequences{want, got} {
				for _, items := range s {
					sort.Strings(items)
				}
			}
			if len(want) == 0 {
				t.Fatal("tshark shows no AMQP frames: the expected table did not load")
			}
			compare(t, f, want, got, amqpKnown)
			if len(st.Pipeline.ParseErrors) > 0 || st.Pipeline.Undetected > 0 {
				t.Errorf("parse errors %v, undetected %d", st.Pipeline.ParseErrors, st.Pipeline.Undetected)
			}
		})
	}
}

// amqpFrames adds the frames an entry stands for.
func amqpFrames(e *protocols.Entry, got sequences) {
	r := e.AMQP
	conn := entryConn(e)
	ch := conn + " ch" + strconv.Itoa(int(r.Channel))
	if r.ProtocolHeader != "" || r.Method == "protocol-header" {
		got.add(conn, "protocol-header")
	}
	content := func(c *protocols.AMQPContent) {
		if c == nil {
			return
		}
		got.add(ch, "content-header")
		for i := 0; i < c.BodyFrames; i++ {
			got.add(ch, "content-body")
		}
	}
	// A reply whose request was not captured stands alone in Reply.
	if r.Method != "" && r.Method != "protocol-header" && !(e.Unmatched == protocols.MissingRequest && r.Reply != nil) {
		got.add(ch, r.Method)
	}
	content(r.Content)
	if rp := r.Reply; rp != nil {
		// A Close answering another method is also an entry of its own.
		closes := rp.Method == "channel.close" || rp.Method == "connection.close"
		if !closes || r.Method == "channel.close" || r.Method == "connection.close" {
			got.add(ch, rp.Method)
		}
		content(rp.Content)
	}
	if r.Confirm != nil && e.ResponseSize > 0 && !r.Confirm.Multiple {
		got.add(ch, "basic."+r.Confirm.Status)
	}
}
