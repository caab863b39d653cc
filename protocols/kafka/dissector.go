package kafka

import (
	"encoding/binary"
	"reflect"
	"strings"
	"sync"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sondehq/sonde/protocols"
)

const (
	// maxFrame is the largest length a frame may declare. Brokers refuse
	// requests above socket.request.max.bytes (100 MiB by default) and
	// clients refuse responses above the same size (kgo's BrokerMaxReadBytes),
	// so a larger length means the bytes are not Kafka, or not aligned.
	maxFrame = 100 << 20
	// decodeCap is the largest frame buffered and decoded. Larger frames
	// (big Fetch responses) are passed over as they stream by, keeping only
	// keepPrefix bytes for their headers.
	decodeCap  = 16 << 20
	keepPrefix = 64 << 10
	// messageCap is the largest frame decoded for a message that carries no
	// records. kmsg's decoder allocates up to about twelve times the size
	// of a frame made of minimal array elements; frames that large are
	// metadata about a huge cluster or hostile, and only record-carrying
	// ones are worth that.
	messageCap = 4 << 20
	// maxVisits bounds the parts of one decoded message walked for what
	// the entry shows.
	maxVisits = 100_000
	// minRequest is a request header v0 (api_key, api_version,
	// correlation_id); minResponse a correlation ID and an error code, the
	// smallest body any response has.
	minRequest  = 8
	minResponse = 6
	// requestProbe is how many bytes tell a request header apart: length,
	// api_key, api_version, correlation_id and the client ID's length.
	requestProbe = 14
	// responseProbe is a length and a correlation ID.
	responseProbe = 8
	// kafkaPort is the broker port IANA registered; a server-first prefix
	// is only taken for Kafka on it, because a response header has too
	// little shape to tell on its own.
	kafkaPort = 9092
	// maxKey bounds the API keys looked up in kmsg.
	maxKey = 1024
	// maxTopicNames bounds the topic names remembered by ID.
	maxTopicNames = 16384
)

// Dissector recognises Kafka connections and makes their parsers. It is safe
// for concurrent use; its Conns share its counters, its decompressor pools,
// its cache of how to walk kmsg's types, and the topic names it learnt.
type Dissector struct {
	// maxVersion[key] is the newest version kmsg decodes for an API key,
	// -1 for keys kmsg does not know.
	maxVersion [maxKey]int16
	counts     *protocols.CounterSet
	plans      sync.Map // reflect.Type -> *plan
	codecs     codecs
	topics     topicNames
}

// topicNames remembers topic names by topic ID, learnt from the calls that
// carry both (Metadata v10+, CreateTopics v7+, DescribeTopicPartitions, ...),
// so that calls naming topics by ID only (Produce v13+, Fetch v13+) show
// names. Clients fetch metadata on one connection and produce or fetch on
// others, so the names are shared by every connection of the dissector.
// Forgetting a name (past maxTopicNames) only leaves an ID unnamed.
type topicNames struct {
	mu sync.Mutex
	m  map[[16]byte]string
}

func (t *topicNames) learn(id [16]byte, name string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.m[id] == name {
		return
	}
	if t.m == nil {
		t.m = make(map[[16]byte]string)
	}
	if len(t.m) >= maxTopicNames {
		for k := range t.m {
			delete(t.m, k)
			break
		}
	}
	t.m[id] = strings.Clone(name)
}

func (t *topicNames) name(id [16]byte) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.m[id]
}

// New returns the Kafka dissector.
func New() protocols.Dissector { return newDissector() }

func newDissector() *Dissector {
	d := &Dissector{counts: counterNames.New()}
	for k := range d.maxVersion {
		d.maxVersion[k] = -1
		if req := kmsg.RequestForKey(int16(k)); req != nil {
			d.maxVersion[k] = req.MaxVersion()
		}
	}
	return d
}

// Protocol implements protocols.Dissector.
func (d *Dissector) Protocol() protocols.Protocol { return protocols.Kafka }

// Counters returns how often each cap and each recoverable problem was hit,
// by stable name, since the dissector was made.
func (d *Dissector) Counters() map[string]uint64 { return d.counts.Counters() }

func (d *Dissector) count(name string) { d.counts.Add(name, 1) }

// knownVersion reports whether kmsg decodes this API key at this version.
func (d *Dissector) knownVersion(key, version int16) bool {
	return key >= 0 && int(key) < maxKey && version >= 0 && version <= d.maxVersion[key]
}

// Detect implements protocols.Dissector. A request is recognised by its
// header; a response (a connection joined mid-stream, server first) only on
// the Kafka port, because four bytes of correlation ID say little.
// LossCounters names the counters that count loss (protocols.LossCounters).
func (d *Dissector) LossCounters() []string { return counterNames.Loss() }

func (d *Dissector) Detect(prefix []byte, ports protocols.Ports) protocols.Detection {
	if ports.Src == kafkaPort && ports.Dst != kafkaPort {
		switch responseShape(prefix) {
		case protocols.Match:
			return protocols.Detection{Verdict: protocols.Match}
		case protocols.NeedMore:
			return protocols.Detection{Verdict: protocols.NeedMore}
		}
	}
	v := d.requestShape(prefix)
	return protocols.Detection{Verdict: v, FromClient: v == protocols.Match}
}

// requestShape checks a request header byte by byte, so that text protocols
// (whose first byte makes an absurd length) are refused at once.
//
//	Request => Size RequestHeader Body
//	  Size => INT32
//	RequestHeader v1 => request_api_key request_api_version correlation_id client_id
//	  client_id => NULLABLE_STRING (INT16 length, -1 for null)
func (d *Dissector) requestShape(p []byte) protocols.Verdict {
	if len(p) > 0 && p[0] > maxFrame>>24 {
		return protocols.NoMatch
	}
	if len(p) < 4 {
		return protocols.NeedMore
	}
	size := int(binary.BigEndian.Uint32(p))
	if size < minRequest || size > maxFrame {
		return protocols.NoMatch
	}
	if len(p) < 6 {
		return protocols.NeedMore
	}
	key := int16(binary.BigEndian.Uint16(p[4:]))
	if !d.knownVersion(key, 0) {
		return protocols.NoMatch
	}
	if len(p) < 8 {
		return protocols.NeedMore
	}
	if !d.knownVersion(key, int16(binary.BigEndian.Uint16(p[6:]))) {
		return protocols.NoMatch
	}
	if len(p) < 12 {
		return protocols.NeedMore
	}
	// Clients count correlation IDs up from zero.
	if int32(binary.BigEndian.Uint32(p[8:])) < 0 {
		return protocols.NoMatch
	}
	if headerV0(key, int16(binary.BigEndian.Uint16(p[6:]))) {
		return protocols.Match
	}
	if len(p) < requestProbe {
		return protocols.NeedMore
	}
	n := int(int16(binary.BigEndian.Uint16(p[12:])))
	if n < -1 || n > size-10 {
		return protocols.NoMatch
	}
	for _, c := range p[requestProbe:min(len(p), requestProbe+max(n, 0))] {
		if c < 0x20 || c == 0x7f {
			return protocols.NoMatch
		}
	}
	return protocols.Match
}

// responseShape checks a length and a correlation ID.
//
//	Response => Size ResponseHeader Body
//	ResponseHeader v0 => correlation_id
func responseShape(p []byte) protocols.Verdict {
	if len(p) > 0 && p[0] > maxFrame>>24 {
		return protocols.NoMatch
	}
	if len(p) < responseProbe {
		return protocols.NeedMore
	}
	size := int(binary.BigEndian.Uint32(p))
	if size < minResponse || size > maxFrame || int32(binary.BigEndian.Uint32(p[4:])) < 0 {
		return protocols.NoMatch
	}
	return protocols.Match
}

// carriesRecords reports whether a message of an API key carries record
// batches: Produce requests, Fetch and ShareFetch responses.
func carriesRecords(key int16, response bool) bool {
	if response {
		return key == 1 || key == 78
	}
	return key == 0
}

// headerV0 reports whether a request uses request header v0, without a
// client ID: only ControlledShutdown v0 does.
func headerV0(key, version int16) bool { return key == 7 && version == 0 }

// NewConn implements protocols.Dissector.
func (d *Dissector) NewConn(info protocols.ConnInfo, emit protocols.EmitFunc) protocols.Conn {
	return newConn(d, info, emit)
}

func (d *Dissector) planFor(t reflect.Type) *plan {
	if p, ok := d.plans.Load(t); ok {
		return p.(*plan)
	}
	p, _ := d.plans.LoadOrStore(t, makePlan(t))
	return p.(*plan)
}
