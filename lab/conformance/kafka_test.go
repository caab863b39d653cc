package conformance

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/sondehq/sonde/protocols"
)

// kafkaKnown lists the Kafka captures where Sonde and tshark disagree. None
// do. deepflow__kafka__01-fetch-v12-unknown.pcap comes closest: frame 2's
// Fetch v12 response carries error code 0x1400 (bytes 14 00 after the
// throttle time), 5120, which Kafka does not define and Sonde shows as
// ERROR_CODE_5120. tshark does not decode that version's body, and deepflow's
// parse, which the comparison then uses, reads the same 5120.
var kafkaKnown = map[string]knownDifference{}

// TestKafkaConformance: for every Kafka capture, the same exchanges per
// connection as tshark shows, matched by correlation ID. A request carries
// its API key (compared as a number: kmsg and tshark name some APIs
// differently, ListOffsets and "Offsets"), version, client ID and size; a
// response its size and its first non-zero error code (0 being status
// NONE). A request without a response row is an entry whose response is
// missing, and a response without a request row one whose request is
// missing, with API key -1. Sizes count the 4-byte length prefix, which
// tshark's length leaves out. Entries are emitted as exchanges complete, so
// each connection's exchanges are compared as a multiset.
//
// tshark 4.0 decodes bodies only up to roughly the Kafka 2.4 versions: for a
// response to a newer one it shows the header alone, without API key or error
// codes. There deepflow's own parse of its captures gives the error code when
// it has one; otherwise only the correlation ID and size are compared.
func TestKafkaConformance(t *testing.T) {
	for _, f := range inventory(t, "kafka") {
		t.Run(f.Name, func(t *testing.T) {
			want, blind := kafkaExpected(t, f)
			if len(want) == 0 {
				t.Fatal("tshark shows no Kafka messages: the expected table did not load")
			}
			entries, st := dissect(t, f)
			got := sequences{}
			for _, e := range entries {
				if e.Kafka == nil {
					got.add(entryConn(e), "a "+string(e.Protocol)+" entry")
					continue
				}
				got.add(entryConn(e), kafkaItem(e, blind[kafkaExchangeKey(entryConn(e), e.Kafka.CorrelationID)]))
			}
			for _, s := range []sequences{want, got} {
				for _, items := range s {
					sort.Strings(items)
				}
			}
			compare(t, f, want, got, kafkaKnown)
			if len(st.Pipeline.ParseErrors) > 0 || st.Pipeline.Undetected > 0 || st.Pipeline.OpaqueConns > 0 {
				t.Errorf("parse errors %v, undetected %d, opaque connections %d",
					st.Pipeline.ParseErrors, st.Pipeline.Undetected, st.Pipeline.OpaqueConns)
			}
		})
	}
}

// kafkaExchange is one request and its response as tshark shows them.
type kafkaExchange struct {
	conn          string
	correlationID int32
	request       string // "" when no request row was seen
	response      string // "" when no response row was seen
}

func (x *kafkaExchange) item() string {
	req, resp := x.request, x.response
	if req == "" {
		req = "none"
	}
	if resp == "" {
		resp = "none"
	}
	return fmt.Sprintf("id=%d > %s < %s", x.correlationID, req, resp)
}

func kafkaExchangeKey(conn string, correlationID int32) string {
	return conn + " " + strconv.Itoa(int(correlationID))
}

// kafkaExpected reads tshark's PDUs as exchanges per connection, and says
// which responses have no error code to compare (by kafkaExchangeKey).
func kafkaExpected(t *testing.T, f corpusFile) (want sequences, blind map[string]bool) {
	t.Helper()
	opinion := deepflowErrors(t, f)
	var all []*kafkaExchange
	waiting := map[string][]*kafkaExchange{} // requests without a response yet, by kafkaExchangeKey
	blind = map[string]bool{}
	for _, r := range readTSV(t, f.Msgs) {
		id, err := strconv.ParseInt(r["correlation_id"], 10, 32)
		if err != nil {
			t.Fatalf("frame %s: bad correlation ID %q", r["frame"], r["correlation_id"])
		}
		length, err := strconv.Atoi(r["length"])
		if err != nil {
			t.Fatalf("frame %s: bad length %q", r["frame"], r["length"])
		}
		conn := rowConn(t, r)
		key := kafkaExchangeKey(conn, int32(id))
		switch r["kind"] {
		case "request":
			x := &kafkaExchange{conn: conn, correlationID: int32(id),
				request: fmt.Sprintf("key=%s v=%s client=%q %dB", r["api_key"], r["api_version"], r["client_id"], length+4)}
			all = append(all, x)
			waiting[key] = append(waiting[key], x)
		case "response":
			var x *kafkaExchange
			if w := waiting[key]; len(w) > 0 {
				x, waiting[key] = w[0], w[1:]
			} else {
				x = &kafkaExchange{conn: conn, correlationID: int32(id)}
				all = append(all, x)
			}
			x.response = fmt.Sprintf("%dB", length+4)
			switch code, ok := opinion[int32(id)]; {
			case r["api_key"] != "":
				x.response += fmt.Sprintf(" err=%d", firstError(t, r))
			case ok:
				x.response += fmt.Sprintf(" err=%d", code)
			default:
				blind[key] = true
			}
		default:
			t.Fatalf("frame %s: unknown kind %q", r["frame"], r["kind"])
		}
	}
	want = sequences{}
	for _, x := range all {
		want.add(x.conn, x.item())
	}
	return want, blind
}

// firstError is the first non-zero code of a row's error_codes, or 0.
func firstError(t *testing.T, r map[string]string) int {
	t.Helper()
	for _, s := range strings.Split(r["error_codes"], ",") {
		if s == "" {
			continue
		}
		code, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil {
			t.Fatalf("frame %s: bad error code %q", r["frame"], s)
		}
		if code != 0 {
			return code
		}
	}
	return 0
}

// deepflowResponse picks a response's correlation ID and status code out of
// a line of deepflow's expected parse (Rust Debug output).
var deepflowResponse = regexp.MustCompile(`msg_type: Response, correlation_id: Some\((-?\d+)\),.* status_code: Some\((-?\d+)\)`)

// deepflowErrors reads deepflow's own parse of one of its captures: the
// error code of each response by correlation ID (its parse names no
// connection; correlation IDs are unique within each of its captures). Files
// from elsewhere, and deepflow captures it has no parse for, have none.
func deepflowErrors(t *testing.T, f corpusFile) map[int32]int {
	t.Helper()
	path := filepath.Join(corpusDir(t), "thirdparty_expected", "deepflow", strings.TrimSuffix(f.Name, filepath.Ext(f.Name))+".result")
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	out := map[int32]int{}
	for _, m := range deepflowResponse.FindAllStringSubmatch(string(b), -1) {
		id, err1 := strconv.ParseInt(m[1], 10, 32)
		code, err2 := strconv.Atoi(m[2])
		if err1 != nil || err2 != nil {
			t.Fatalf("%s: bad response %q", path, m[0])
		}
		out[int32(id)] = code
	}
	return out
}

// kafkaItem renders an entry as kafkaExchange.item does tshark's rows. A
// half is "none" when the entry says it is missing and holds nothing of it;
// an entry that says a half is missing yet holds some of it, or holds
// nothing of a half it does not say is missing, never passes for tshark's.
func kafkaItem(e *protocols.Entry, blind bool) string {
	k := e.Kafka
	x := kafkaExchange{correlationID: k.CorrelationID}
	x.request = fmt.Sprintf("key=%d v=%d client=%q %dB", k.APIKey, k.APIVersion, k.ClientID, e.RequestSize)
	if e.Unmatched == protocols.MissingRequest {
		x.request = kafkaMissing(k.APIKey == -1 && e.RequestSize == 0, x.request)
	}
	x.response = fmt.Sprintf("%dB", e.ResponseSize)
	switch {
	case blind:
	case k.Error == "":
		x.response += " err=undecoded"
	case (k.ErrorCode == 0) != (k.Error == "NONE") || e.Summary.Status != k.Error:
		x.response += fmt.Sprintf(" err=%d named %q, status %q", k.ErrorCode, k.Error, e.Summary.Status)
	default:
		x.response += fmt.Sprintf(" err=%d", k.ErrorCode)
	}
	if e.Unmatched == protocols.MissingResponse {
		x.response = kafkaMissing(e.ResponseSize == 0 && k.Error == "", x.response)
	}
	return x.item()
}

// kafkaMissing renders a half the entry says is missing: "" (shown as
// "none") when it holds nothing of it.
func kafkaMissing(empty bool, half string) string {
	if empty {
		return ""
	}
	return "none, yet " + half
}
