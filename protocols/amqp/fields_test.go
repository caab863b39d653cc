package amqp

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/sondehq/sonde/protocols"
	"github.com/sondehq/sonde/protocols/protocolstest"
)

func TestDecodeTable(t *testing.T) {
	nest := func(depth int) string {
		s := fInt("leaf", 1)
		for range depth {
			s = fTable("t", s)
		}
		return s
	}
	many := make([]string, maxFields+10)
	for i := range many {
		many[i] = fBool("b", true)
	}
	tests := []struct {
		name     string
		entries  []string
		want     string // JSON of the fields
		wantHits []string
	}{
		{
			name: "every value type",
			entries: []string{
				fRaw("t", 't', []byte{1}), fRaw("b", 'b', []byte{0xff}), fRaw("B", 'B', []byte{0xff}),
				fRaw("s", 's', []byte{0xff, 0xfe}), fRaw("u", 'u', []byte{0xff, 0xfe}), fRaw("U", 'U', []byte{0x80, 0}),
				fRaw("I", 'I', []byte{0xff, 0xff, 0xff, 0xfe}), fRaw("i", 'i', []byte{0xff, 0xff, 0xff, 0xfe}),
				fRaw("l", 'l', []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfd}), fRaw("L", 'L', []byte{0, 0, 0, 0, 0, 0, 0, 3}),
				fRaw("f", 'f', []byte{0x3f, 0xc0, 0, 0}), fRaw("d", 'd', f64(-2.25)),
				fRaw("D", 'D', []byte{2, 0xff, 0xff, 0xff, 0xfb}), fRaw("D0", 'D', []byte{0, 0, 0, 0, 7}),
				fStr("S", "text"), fRaw("x", 'x', []byte{0, 0, 0, 2, 0xff, 0x00}),
				fRaw("T", 'T', []byte{0, 0, 0, 0, 0x65, 0x53, 0xf1, 0x00}), fRaw("V", 'V', nil),
				fRaw("A", 'A', append([]byte{0, 0, 0, 7}, append([]byte("I\x00\x00\x00\x05"), 't', 0)...)),
				fTable("F", fStr("k", "v")),
			},
			want: `[{"name":"t","type":"bool","value":"true"},{"name":"b","type":"int8","value":"-1"},{"name":"B","type":"uint8","value":"255"},` +
				`{"name":"s","type":"int16","value":"-2"},{"name":"u","type":"uint16","value":"65534"},{"name":"U","type":"int16","value":"-32768"},` +
				`{"name":"I","type":"int32","value":"-2"},{"name":"i","type":"uint32","value":"4294967294"},` +
				`{"name":"l","type":"int64","value":"-3"},{"name":"L","type":"int64","value":"3"},` +
				`{"name":"f","type":"float","value":"1.5"},{"name":"d","type":"double","value":"-2.25"},` +
				`{"name":"D","type":"decimal","value":"-0.05"},{"name":"D0","type":"decimal","value":"7"},` +
				`{"name":"S","type":"longstr","value":"text"},{"name":"x","type":"bytes","value":"/wA=","encoding":"base64"},` +
				`{"name":"T","type":"timestamp","value":"2023-11-14T22:13:20Z"},{"name":"V","type":"void"},` +
				`{"name":"A","type":"array","fields":[{"type":"int32","value":"5"},{"type":"bool","value":"false"}]},` +
				`{"name":"F","type":"table","fields":[{"name":"k","type":"longstr","value":"v"}]}]`,
		},
		{
			name:    "binary string",
			entries: []string{fStr("S", "\xff\xfe")},
			want:    `[{"name":"S","type":"longstr","value":"//4=","encoding":"base64"}]`,
		},
		{
			name:     "long string cut at a character boundary",
			entries:  []string{fStr("S", "a"+strings.Repeat("é", maxValueLen))},
			want:     `[{"name":"S","type":"longstr","value":"a` + strings.Repeat("é", maxValueLen/2-1) + `","truncated":true}]`,
			wantHits: []string{countValueLen},
		},
		{
			name:    "nesting at the cap",
			entries: []string{nest(maxTableDepth - 1)},
			want:    strings.Repeat(`[{"name":"t","type":"table","fields":`, maxTableDepth-1) + `[{"name":"leaf","type":"int32","value":"1"}]` + strings.Repeat(`}]`, maxTableDepth-1),
		},
		{
			name:     "nesting past the cap",
			entries:  []string{nest(maxTableDepth)},
			want:     strings.Repeat(`[{"name":"t","type":"table","fields":`, maxTableDepth-1) + `[{"name":"t","type":"table","truncated":true}]` + strings.Repeat(`}]`, maxTableDepth-1),
			wantHits: []string{countTableDepth},
		},
		{
			name:     "too many fields",
			entries:  many,
			want:     "[" + strings.TrimSuffix(strings.Repeat(`{"name":"b","type":"bool","value":"true"},`, maxFields), ",") + "]",
			wantHits: []string{countTableFields},
		},
		{
			name:     "unknown type stops the table",
			entries:  []string{fBool("ok", true), fRaw("?", 'Z', []byte{1, 2}), fBool("lost", true)},
			want:     `[{"name":"ok","type":"bool","value":"true"}]`,
			wantHits: []string{countFieldType},
		},
		{
			name:     "string longer than the table",
			entries:  []string{fBool("ok", true), fRaw("S", 'S', []byte{0, 0, 1, 0, 'x'})},
			want:     `[{"name":"ok","type":"bool","value":"true"}]`,
			wantHits: []string{countTableBad},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newLimits()
			fields, _ := decodeTable([]byte(strings.Join(tt.entries, "")), 1, l)
			got, err := json.Marshal(fields)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("fields:\n got %s\nwant %s", got, tt.want)
			}
			if !slices.Equal(l.hits, tt.wantHits) {
				t.Errorf("hits %q, want %q", l.hits, tt.wantHits)
			}
		})
	}
}

func TestContentHeader(t *testing.T) {
	props := args().u16(classBasic).u16(0).u64(5).u16(0xfffc).
		short("application/json").short("gzip").table(fStr("tenant", "acme")).u8(2).u8(9).
		short("corr").short("reply.q").short("60000").short("msg-1").u64(1700000000).
		short("order").short("guest").short("app").short("cluster")
	h, err := decodeContentHeader(props.b, newLimits())
	if err != nil {
		t.Fatal(err)
	}
	got, _ := json.Marshal(h.props)
	want := `{"content_type":"application/json","content_encoding":"gzip","headers":[{"name":"tenant","type":"longstr","value":"acme"}],` +
		`"delivery_mode":2,"priority":9,"correlation_id":"corr","reply_to":"reply.q","expiration":"60000","message_id":"msg-1",` +
		`"timestamp":"2023-11-14T22:13:20Z","type":"order","user_id":"guest","app_id":"app","cluster_id":"cluster"}`
	if string(got) != want || h.bodySize != 5 || h.class != classBasic || h.unknown {
		t.Errorf("header %+v\n got %s\nwant %s", h, got, want)
	}
	if _, err := decodeContentHeader(props.b[:len(props.b)-3], newLimits()); err == nil {
		t.Error("a cut header decoded")
	}
	// A second flag word names properties the basic class does not have.
	more := args().u16(classBasic).u16(0).u64(0).u16(propContinued).u16(0x8000)
	if h, err := decodeContentHeader(more.b, newLimits()); err != nil || !h.unknown {
		t.Errorf("continued flags: %+v, %v", h, err)
	}
}

func TestRedact(t *testing.T) {
	amqplain := strings.Join([]string{fStr("LOGIN", "guest"), fStr("PASSWORD", "s3cret")}, "")
	tests := []struct {
		name         string
		frame        string
		redact       bool
		wantResponse string // JSON of the response field
		wantRedacted bool
	}{
		{"PLAIN", connStartOkPlain, true, `{"name":"response","type":"longstr","value":"\u0000guest\u0000[REDACTED]"}`, true},
		{"PLAIN, redaction off", connStartOkPlain, false, `{"name":"response","type":"longstr","value":"\u0000guest\u0000s3cret"}`, false},
		{"AMQPLAIN", meth(0, 10, 11, args().table().short("AMQPLAIN").long(amqplain).short("en_US")), true,
			`{"name":"response","type":"longstr","fields":[{"name":"LOGIN","type":"longstr","value":"guest"},{"name":"PASSWORD","type":"longstr","value":"[REDACTED]"}]}`, true},
		{"EXTERNAL", meth(0, 10, 11, args().table().short("EXTERNAL").long("").short("en_US")), true, `{"name":"response","type":"longstr"}`, false},
		{"another mechanism", meth(0, 10, 11, args().table().short("RABBIT-CR-DEMO").long("guest").short("en_US")), true, `{"name":"response","type":"longstr","value":"[REDACTED]"}`, true},
		{"PLAIN without its separators", meth(0, 10, 11, args().table().short("PLAIN").long("token").short("en_US")), true, `{"name":"response","type":"longstr","value":"[REDACTED]"}`, true},
		{"secure-ok", "", true, `{"name":"response","type":"longstr","value":"[REDACTED]"}`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := protocols.DefaultOptions()
			opts.Redact = tt.redact
			msgs := []string{"AMQP\x00\x00\x09\x01", connStart, tt.frame}
			if tt.frame == "" {
				msgs = []string{"AMQP\x00\x00\x09\x01", connStart, connStartOkPlain, meth(0, 10, 20, args().long("challenge")), meth(0, 10, 21, args().long("My password is s3cret"))}
			}
			res := replay(t, protocols.ConnInfo{Options: opts}, protocolstest.Stream(msgs...))
			e := res.Entries[len(res.Entries)-1]
			got, _ := json.Marshal(e.AMQP.Reply.Arguments[len(e.AMQP.Reply.Arguments)-1])
			if tt.frame != "" {
				got, _ = json.Marshal(e.AMQP.Reply.Arguments[2])
			}
			if string(got) != tt.wantResponse || e.Redacted != tt.wantRedacted {
				t.Errorf("response %s redacted=%v, want %s redacted=%v", got, e.Redacted, tt.wantResponse, tt.wantRedacted)
			}
		})
	}
}
