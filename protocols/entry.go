package protocols

import (
	"net/netip"
	"time"
)

// Protocol names the protocol of an entry as it appears in JSON and queries.
type Protocol string

// The protocols Sonde dissects. gRPC rides on HTTP/2 but is its own protocol
// for entries, because users filter and read it differently.
const (
	HTTP1 Protocol = "http1"
	HTTP2 Protocol = "http2"
	GRPC  Protocol = "grpc"
	Redis Protocol = "redis"
	Kafka Protocol = "kafka"
	AMQP  Protocol = "amqp"
)

// Unmatched says which half of an exchange was never seen.
type Unmatched string

const (
	// Matched is the zero value: both halves were seen, or the entry is one-way by nature.
	Matched Unmatched = ""
	// MissingResponse marks a request whose response never came.
	MissingResponse Unmatched = "response"
	// MissingRequest marks a response whose request was not captured.
	MissingRequest Unmatched = "request"
)

// Endpoint is one side of a connection. The names are empty until the hub (or a
// static resolver) enriches the entry.
type Endpoint struct {
	IP        netip.Addr `json:"ip"`
	Port      uint16     `json:"port"`
	Pod       string     `json:"pod,omitempty"`
	Namespace string     `json:"namespace,omitempty"`
	Service   string     `json:"service,omitempty"`
	Workload  string     `json:"workload,omitempty"`
	// Node is the node a pod ran on.
	Node string `json:"node,omitempty"`
}

// Summary is what one row of the traffic list shows. For HTTP: the method, the
// request target and the status code as a string.
type Summary struct {
	Method string `json:"method"`
	Target string `json:"target"`
	Status string `json:"status"`
}

// Entry is one request/response exchange, a one-way message, or a
// connection-level event. Exactly one of the per-protocol records is set.
//
// The JSON form is stable: tools, the hub, the UI and the tests rely on its keys.
type Entry struct {
	// ID is unique within one hub; the agent sets a node-unique one.
	ID       string   `json:"id"`
	Protocol Protocol `json:"protocol"`
	// Node is the Kubernetes node (or host) that captured the entry.
	Node string `json:"node,omitempty"`
	// Source is the capture source: "pcap", "ebpf" or "afpacket".
	Source string `json:"source,omitempty"`

	// Start is when the first byte of the request was captured (of the
	// response, for a response without its request).
	Start time.Time `json:"start"`
	// Duration runs from Start to the last byte of the response.
	Duration time.Duration `json:"duration_ns"`

	// Src is the client (the side that sent the request), Dst the server.
	Src Endpoint `json:"src"`
	Dst Endpoint `json:"dst"`
	// Via is the address the client dialled when NAT sent the connection
	// elsewhere: a Kubernetes service IP before kube-proxy's DNAT. Dst is
	// then the pod it reached.
	Via *Endpoint `json:"via,omitempty"`

	Summary Summary `json:"summary"`
	// RequestSize and ResponseSize count the bytes each message took on the
	// wire (headers and framing included), whether or not the body was kept.
	RequestSize  int64 `json:"request_size"`
	ResponseSize int64 `json:"response_size"`

	Unmatched Unmatched `json:"unmatched,omitempty"`
	// Gap is true when bytes were missing inside the exchange; what the entry
	// shows of the affected message may be partial.
	Gap bool `json:"gap,omitempty"`
	// Redacted is true when a secret was replaced before the entry left the agent.
	Redacted bool `json:"redacted,omitempty"`
	// Warnings say in words what the dissector could not show faithfully,
	// for example "headers not decodable: connection joined mid-stream".
	Warnings []string `json:"warnings,omitempty"`

	HTTP  *HTTPRecord  `json:"http,omitempty"`
	GRPC  *GRPCRecord  `json:"grpc,omitempty"`
	Redis *RedisRecord `json:"redis,omitempty"`
	Kafka *KafkaRecord `json:"kafka,omitempty"`
	AMQP  *AMQPRecord  `json:"amqp,omitempty"`
}

// Warn adds a warning once.
func (e *Entry) Warn(w string) {
	for _, have := range e.Warnings {
		if have == w {
			return
		}
	}
	e.Warnings = append(e.Warnings, w)
}

// End is the time of the last byte of the exchange.
func (e *Entry) End() time.Time { return e.Start.Add(e.Duration) }
