package protocols

import (
	"net/netip"
	"time"
)

// Direction is the direction of bytes relative to the roles of a connection.
type Direction uint8

const (
	// ClientToServer carries requests.
	ClientToServer Direction = iota
	// ServerToClient carries responses.
	ServerToClient
)

func (d Direction) String() string {
	if d == ClientToServer {
		return "client->server"
	}
	return "server->client"
}

// Reverse returns the other direction.
func (d Direction) Reverse() Direction { return 1 - d }

// Verdict is a dissector's answer to "does this connection speak my protocol?".
type Verdict uint8

const (
	// NeedMore means the prefix is too short to tell.
	NeedMore Verdict = iota
	// Match means the prefix is this protocol's.
	Match
	// NoMatch means the prefix is not this protocol's.
	NoMatch
)

// Detection is the result of Detect.
type Detection struct {
	Verdict Verdict
	// FromClient says, on a Match, whether the examined bytes were written by
	// the client (a request) or by the server (a response). The pipeline uses
	// it to assign roles when the connection's SYN was not captured.
	FromClient bool
}

// Ports are the TCP ports of the segment whose payload is being detected.
// They are only a hint: detection decides from the bytes.
type Ports struct {
	Src, Dst uint16
}

// Dissector recognises one protocol and makes parsers for its connections.
// It is stateless and safe for concurrent use.
type Dissector interface {
	// Protocol is the protocol this dissector recognises (for HTTP/2, HTTP2;
	// its connections may emit gRPC entries as well).
	Protocol() Protocol
	// Detect looks at the first bytes one side of a connection sent. It must
	// not keep prefix, and must answer NoMatch rather than NeedMore once the
	// prefix is long enough to tell.
	Detect(prefix []byte, ports Ports) Detection
	// NewConn makes the parser for one connection.
	NewConn(info ConnInfo, emit EmitFunc) Conn
}

// EmitFunc receives the entries a Conn produces. The pipeline fills in the
// connection's endpoints, ID, node and source; a Conn fills in the rest.
type EmitFunc func(*Entry)

// ConnInfo describes a connection to the parser that will read it.
type ConnInfo struct {
	Client netip.AddrPort
	Server netip.AddrPort
	// Options are the dissection options in force.
	Options Options
	// MidStream is true when the connection's start (SYN) was not captured,
	// so the parser may begin in the middle of a message or session.
	MidStream bool
	// Upgrade is the request that switched the connection to this protocol
	// (an HTTP/1.1 "Upgrade: h2c" request), or nil. The new parser completes it.
	Upgrade *Entry
}

// Options configure the dissectors. The zero value is not useful: start from
// DefaultOptions.
type Options struct {
	// BodyCap is the most payload bytes kept per message (request or response body,
	// Kafka record value, AMQP content, gRPC messages in total).
	BodyCap int
	// DecodedCap bounds content decompression (gzip, deflate, snappy, lz4, zstd):
	// a payload that inflates past it is shown truncated.
	DecodedCap int
	// Redact replaces secrets (credentials, tokens, cookies) before entries
	// leave the agent. It is the master switch: Secrets says what a secret
	// is, and is not consulted without it.
	Redact bool
	// Secrets extends the built-in rule for secret names and values; its
	// zero value is that rule alone.
	Secrets SecretPolicy
	// MaxPending is the most requests a connection may have waiting for their
	// responses; older ones are emitted as unmatched beyond it.
	MaxPending int
	// Budget bounds the bytes every connection together holds in messages
	// not yet emitted (bodies being read, requests awaiting their
	// responses). nil: each connection is bounded only by its own caps.
	Budget *Budget
}

// DefaultBudget is the default Options.Budget, in bytes: a fifth of the
// agent's memory limit in deploy/ (512 MiB), which also holds reassembly
// (agent/assembly's total cap), the send buffer (agent/emit) and the ring
// buffer.
const DefaultBudget = 96 << 20

// DefaultOptions are the options Sonde runs with unless told otherwise.
func DefaultOptions() Options {
	return Options{
		BodyCap:    64 << 10,
		DecodedCap: 1 << 20,
		Budget:     NewBudget(DefaultBudget),
		Redact:     true,
		MaxPending: 1024,
	}
}

// CloseReason says why a connection ended.
type CloseReason uint8

const (
	// ClosedFIN: both sides (or one, at the end of the capture) sent FIN.
	ClosedFIN CloseReason = iota
	// ClosedRST: a reset ended the connection.
	ClosedRST
	// ClosedIdle: nothing was seen for the idle timeout, or a cap evicted it.
	ClosedIdle
	// ClosedEnd: the capture ended while the connection was open.
	ClosedEnd
)

func (r CloseReason) String() string {
	switch r {
	case ClosedFIN:
		return "fin"
	case ClosedRST:
		return "rst"
	case ClosedIdle:
		return "idle"
	default:
		return "end of capture"
	}
}

// Conn parses one connection. It is not safe for concurrent use.
type Conn interface {
	// Feed hands over bytes that dir carried, in order, ts being the capture
	// time of the newest of them. data starts with what the previous Feed for
	// dir left unconsumed. Feed returns how many bytes it consumed from the
	// front. An error makes the connection opaque: the pipeline counts the
	// error (see ParseError), feeds it nothing more, and calls Close once so
	// that what the parser holds is still emitted.
	Feed(dir Direction, data []byte, ts time.Time) (int, error)
	// Gap says that n bytes of dir are missing after what was fed (n < 0:
	// unknown). Unconsumed bytes from before the gap are discarded by the
	// pipeline; the parser resynchronises if it can, and marks the affected
	// entries with Gap.
	Gap(dir Direction, n int, ts time.Time)
	// Close ends the connection: the parser emits what it still holds
	// (requests without responses as unmatched) and is not used again.
	Close(reason CloseReason, ts time.Time)
}

// Counters is implemented by a Conn or a Dissector that counts caps hit and
// problems it recovered from, under stable names ("kafka_pending_evicted",
// "amqp_heartbeat"); every dissector counts with a CounterSet. The pipeline
// adds a Conn's counters up when the connection closes, and reports a
// Dissector's as they stand. Protocol errors are not counters: they end
// the connection and are counted by the pipeline under ParseError.Code.
type Counters interface {
	Counters() map[string]uint64
}
