package wire

import (
	"slices"
	"strconv"
	"strings"

	"github.com/sondehq/sonde/protocols"
)

// Kind is the type of a query field, as CEL sees it.
type Kind uint8

// The kinds a field can have. Fields of the first six kinds are kept in the
// index record that queries scan; Map and List fields need the whole entry.
const (
	Bool Kind = iota + 1
	Int
	String
	Duration
	Time
	Endpoint
	Map
	List
)

func (k Kind) String() string {
	switch k {
	case Bool:
		return "bool"
	case Int:
		return "int"
	case String:
		return "string"
	case Duration:
		return "duration"
	case Time:
		return "timestamp"
	case Endpoint:
		return "endpoint"
	case Map:
		return "map"
	case List:
		return "list(string)"
	}
	return "unknown"
}

// Indexed reports whether values of the kind are kept in index records.
func (k Kind) Indexed() bool { return k <= Endpoint }

// Field is one name a query can use.
//
// ID is the field's number in index records: stable forever, unique, 1..255.
// Get returns the value for an entry, typed by Kind: bool, int64, string,
// time.Duration, time.Time, protocols.Endpoint, map[string]any or []string;
// the zero value when the entry has no such thing.
type Field struct {
	ID      uint8
	Name    string
	Kind    Kind
	Doc     string
	Example string
	Get     func(e *protocols.Entry) any
}

// fields is the query language's vocabulary. The README section and the UI's
// help are generated from it (see Markdown and the fields endpoint), and the
// tests check every example compiles. To let queries see a new part of a
// record, add a line here with a new ID.
var fields = []Field{
	// Protocol flags.
	{ID: 1, Name: "http", Kind: Bool, Doc: "HTTP/1.x or HTTP/2 exchange (gRPC has its own flag)", Example: `http && status_code >= 500`,
		Get: func(e *protocols.Entry) any { return e.Protocol == protocols.HTTP1 || e.Protocol == protocols.HTTP2 }},
	{ID: 2, Name: "http1", Kind: Bool, Doc: "HTTP/1.x exchange", Example: `http1`,
		Get: func(e *protocols.Entry) any { return e.Protocol == protocols.HTTP1 }},
	{ID: 3, Name: "http2", Kind: Bool, Doc: "HTTP/2 exchange that is not gRPC", Example: `http2`,
		Get: func(e *protocols.Entry) any { return e.Protocol == protocols.HTTP2 }},
	{ID: 4, Name: "grpc", Kind: Bool, Doc: "gRPC call", Example: `grpc && grpc_status != "OK"`,
		Get: func(e *protocols.Entry) any { return e.Protocol == protocols.GRPC }},
	{ID: 5, Name: "redis", Kind: Bool, Doc: "Redis command", Example: `redis && redis_command == "GET"`,
		Get: func(e *protocols.Entry) any { return e.Protocol == protocols.Redis }},
	{ID: 6, Name: "kafka", Kind: Bool, Doc: "Kafka request", Example: `kafka && kafka_api == "Produce"`,
		Get: func(e *protocols.Entry) any { return e.Protocol == protocols.Kafka }},
	{ID: 7, Name: "amqp", Kind: Bool, Doc: "AMQP 0-9-1 method", Example: `amqp && amqp_method == "basic.publish"`,
		Get: func(e *protocols.Entry) any { return e.Protocol == protocols.AMQP }},

	// Every entry.
	{ID: 10, Name: "id", Kind: String, Doc: "the entry's ID in this hub", Example: `id == "1042"`,
		Get: func(e *protocols.Entry) any { return e.ID }},
	{ID: 11, Name: "protocol", Kind: String, Doc: "http1, http2, grpc, redis, kafka or amqp", Example: `protocol == "http2"`,
		Get: func(e *protocols.Entry) any { return string(e.Protocol) }},
	{ID: 12, Name: "node", Kind: String, Doc: "the node that captured the entry", Example: `node == "worker-1"`,
		Get: func(e *protocols.Entry) any { return e.Node }},
	{ID: 13, Name: "source", Kind: String, Doc: "capture source: ebpf, afpacket or pcap", Example: `source == "pcap"`,
		Get: func(e *protocols.Entry) any { return e.Source }},
	{ID: 14, Name: "start", Kind: Time, Doc: "when the request's first byte was captured", Example: `start > now() - duration("5m")`,
		Get: func(e *protocols.Entry) any { return e.Start }},
	{ID: 15, Name: "elapsed", Kind: Duration, Doc: "from the request's first byte to the response's last", Example: `elapsed > duration("100ms")`,
		Get: func(e *protocols.Entry) any { return e.Duration }},
	{ID: 16, Name: "src", Kind: Endpoint, Doc: "the client: src.ip, src.port, src.pod, src.namespace, src.service, src.workload, src.node", Example: `src.pod == "frontend-7d9f" || dst.namespace == "payments"`,
		Get: func(e *protocols.Entry) any { return e.Src }},
	{ID: 17, Name: "dst", Kind: Endpoint, Doc: "the server, with the same keys as src", Example: `dst.port == 6379`,
		Get: func(e *protocols.Entry) any { return e.Dst }},
	{ID: 18, Name: "method", Kind: String, Doc: "the list's method column: HTTP method, gRPC method, Redis command, Kafka API, AMQP method", Example: `method == "POST" && path.startsWith("/api")`,
		Get: func(e *protocols.Entry) any { return e.Summary.Method }},
	{ID: 19, Name: "target", Kind: String, Doc: "the list's target column: request target, gRPC path, Redis key, topic or exchange", Example: `target.contains("orders")`,
		Get: func(e *protocols.Entry) any { return e.Summary.Target }},
	{ID: 20, Name: "status", Kind: String, Doc: "the list's status column, as text (\"200\", \"NOT_FOUND\", \"ERR\")", Example: `status == "404"`,
		Get: func(e *protocols.Entry) any { return e.Summary.Status }},
	{ID: 21, Name: "request_size", Kind: Int, Doc: "bytes the request took on the wire", Example: `request_size > 1000000`,
		Get: func(e *protocols.Entry) any { return e.RequestSize }},
	{ID: 22, Name: "response_size", Kind: Int, Doc: "bytes the response took on the wire", Example: `response_size == 0`,
		Get: func(e *protocols.Entry) any { return e.ResponseSize }},
	{ID: 23, Name: "unmatched", Kind: String, Doc: `the half never seen: "response", "request" or ""`, Example: `gap || unmatched != ""`,
		Get: func(e *protocols.Entry) any { return string(e.Unmatched) }},
	{ID: 24, Name: "gap", Kind: Bool, Doc: "bytes were missing inside the exchange", Example: `gap`,
		Get: func(e *protocols.Entry) any { return e.Gap }},
	{ID: 25, Name: "redacted", Kind: Bool, Doc: "a secret was replaced before the entry left the node", Example: `redacted`,
		Get: func(e *protocols.Entry) any { return e.Redacted }},
	{ID: 26, Name: "error", Kind: Bool, Doc: "HTTP status ≥ 500, gRPC status other than OK, or a Redis error reply", Example: `error && dst.service == "orders"`,
		Get: func(e *protocols.Entry) any { return IsError(e) }},
	{ID: 27, Name: "status_class", Kind: String, Doc: `"2xx".."5xx" for HTTP, "ok" or "error" otherwise, "unmatched" without a response`, Example: `status_class == "4xx"`,
		Get: func(e *protocols.Entry) any { return StatusClass(e) }},
	{ID: 28, Name: "warnings", Kind: List, Doc: "what the dissector could not show faithfully", Example: `warnings.exists(w, w.contains("mid-stream"))`,
		Get: func(e *protocols.Entry) any { return e.Warnings }},

	// HTTP.
	{ID: 40, Name: "path", Kind: String, Doc: "HTTP request path without the query (gRPC: /pkg.Service/Method)", Example: `path.startsWith("/api")`,
		Get: func(e *protocols.Entry) any {
			if r := httpRequest(e); r != nil {
				return r.Path
			}
			if e.GRPC != nil {
				return "/" + e.GRPC.Service + "/" + e.GRPC.Method
			}
			return ""
		}},
	{ID: 41, Name: "status_code", Kind: Int, Doc: "HTTP response status; 0 without a response", Example: `status_code >= 400 && status_code < 500`,
		Get: func(e *protocols.Entry) any {
			if e.HTTP != nil && e.HTTP.Response != nil {
				return int64(e.HTTP.Response.StatusCode)
			}
			return int64(0)
		}},
	{ID: 42, Name: "host", Kind: String, Doc: "HTTP authority (Host header or :authority)", Example: `host == "api.example.com"`,
		Get: func(e *protocols.Entry) any {
			if r := httpRequest(e); r != nil {
				return r.Authority
			}
			return ""
		}},
	{ID: 43, Name: "http_version", Kind: String, Doc: "HTTP version of the request (\"HTTP/1.1\", \"HTTP/2.0\")", Example: `http_version == "HTTP/1.0"`,
		Get: func(e *protocols.Entry) any {
			if r := httpRequest(e); r != nil {
				return r.Version
			}
			return ""
		}},
	{ID: 44, Name: "request", Kind: Map, Doc: "HTTP request: method, target, path, headers (lowercase names), body (text), body_size", Example: `request.headers["content-type"].contains("json")`,
		Get: func(e *protocols.Entry) any { return requestMap(e) }},
	{ID: 45, Name: "response", Kind: Map, Doc: "HTTP response: status_code, headers (lowercase names), body (text), body_size", Example: `response.body.contains("timeout")`,
		Get: func(e *protocols.Entry) any { return responseMap(e) }},

	// gRPC.
	{ID: 50, Name: "grpc_service", Kind: String, Doc: "gRPC service, package included", Example: `grpc_service == "shop.Orders"`,
		Get: func(e *protocols.Entry) any {
			return grpcField(e, func(g *protocols.GRPCRecord) any { return g.Service }, "")
		}},
	{ID: 51, Name: "grpc_method", Kind: String, Doc: "gRPC method", Example: `grpc_method == "Create"`,
		Get: func(e *protocols.Entry) any {
			return grpcField(e, func(g *protocols.GRPCRecord) any { return g.Method }, "")
		}},
	{ID: 52, Name: "grpc_status", Kind: String, Doc: `gRPC status name ("OK", "NOT_FOUND", ...)`, Example: `grpc_status != "OK"`,
		Get: func(e *protocols.Entry) any {
			return grpcField(e, func(g *protocols.GRPCRecord) any { return g.Status }, "")
		}},
	{ID: 53, Name: "grpc_status_code", Kind: Int, Doc: "gRPC status code; -1 when the call did not finish", Example: `grpc_status_code == 14`,
		Get: func(e *protocols.Entry) any {
			return grpcField(e, func(g *protocols.GRPCRecord) any { return int64(g.StatusCode) }, int64(0))
		}},
	{ID: 54, Name: "grpc_message", Kind: String, Doc: "gRPC status message", Example: `grpc_message.contains("deadline")`,
		Get: func(e *protocols.Entry) any {
			return grpcField(e, func(g *protocols.GRPCRecord) any { return g.Message }, "")
		}},

	// Redis.
	{ID: 60, Name: "redis_command", Kind: String, Doc: "Redis command, upper case", Example: `redis_command == "GET"`,
		Get: func(e *protocols.Entry) any {
			return redisField(e, func(r *protocols.RedisRecord) string { return r.Command })
		}},
	{ID: 61, Name: "redis_key", Kind: String, Doc: "the command's first key", Example: `redis_key.startsWith("session:")`,
		Get: func(e *protocols.Entry) any {
			return redisField(e, func(r *protocols.RedisRecord) string { return r.Key })
		}},
	{ID: 62, Name: "redis_error", Kind: String, Doc: "the error reply, if any", Example: `redis_error != ""`,
		Get: func(e *protocols.Entry) any {
			return redisField(e, func(r *protocols.RedisRecord) string { return r.Error })
		}},
	{ID: 63, Name: "redis_args", Kind: List, Doc: "the command's arguments after the command name", Example: `"EX" in redis_args`,
		Get: func(e *protocols.Entry) any {
			if e.Redis != nil {
				return e.Redis.Args
			}
			return []string(nil)
		}},

	// Kafka.
	{ID: 70, Name: "kafka_api", Kind: String, Doc: `Kafka API name ("Produce", "Fetch", ...)`, Example: `kafka_api == "Produce"`,
		Get: func(e *protocols.Entry) any {
			return kafkaField(e, func(k *protocols.KafkaRecord) any { return k.API }, "")
		}},
	{ID: 71, Name: "kafka_api_key", Kind: Int, Doc: "Kafka API key number", Example: `kafka_api_key == 0`,
		Get: func(e *protocols.Entry) any {
			return kafkaField(e, func(k *protocols.KafkaRecord) any { return int64(k.APIKey) }, int64(-1))
		}},
	{ID: 72, Name: "kafka_api_version", Kind: Int, Doc: "Kafka API version", Example: `kafka_api_version >= 9`,
		Get: func(e *protocols.Entry) any {
			return kafkaField(e, func(k *protocols.KafkaRecord) any { return int64(k.APIVersion) }, int64(0))
		}},
	{ID: 73, Name: "kafka_client_id", Kind: String, Doc: "Kafka client ID", Example: `kafka_client_id == "checkout"`,
		Get: func(e *protocols.Entry) any {
			return kafkaField(e, func(k *protocols.KafkaRecord) any { return k.ClientID }, "")
		}},

	// AMQP.
	{ID: 80, Name: "amqp_method", Kind: String, Doc: `AMQP class.method ("basic.publish")`, Example: `amqp_method == "basic.publish"`,
		Get: func(e *protocols.Entry) any {
			if e.AMQP != nil {
				return e.AMQP.Method
			}
			return ""
		}},
	{ID: 81, Name: "amqp_channel", Kind: Int, Doc: "AMQP channel number", Example: `amqp_channel == 1`,
		Get: func(e *protocols.Entry) any {
			if e.AMQP != nil {
				return int64(e.AMQP.Channel)
			}
			return int64(0)
		}},
}

// IsError is the notion of failure that the error field, the stats and the
// service map share.
func IsError(e *protocols.Entry) bool {
	switch {
	case e.HTTP != nil && e.HTTP.Response != nil:
		return e.HTTP.Response.StatusCode >= 500
	case e.GRPC != nil:
		return e.GRPC.StatusCode > 0
	case e.Redis != nil:
		return e.Redis.Error != ""
	}
	return false
}

// StatusClass buckets an entry's outcome for the stats.
func StatusClass(e *protocols.Entry) string {
	switch {
	case e.HTTP != nil && e.HTTP.Response != nil:
		c := e.HTTP.Response.StatusCode / 100
		if c < 1 || c > 5 {
			return "other"
		}
		return strconv.Itoa(c) + "xx"
	case e.Unmatched == protocols.MissingResponse:
		return "unmatched"
	case IsError(e):
		return "error"
	}
	return "ok"
}

func httpRequest(e *protocols.Entry) *protocols.HTTPRequest {
	if e.HTTP == nil {
		return nil
	}
	return e.HTTP.Request
}

func grpcField(e *protocols.Entry, f func(*protocols.GRPCRecord) any, zero any) any {
	if e.GRPC == nil {
		return zero
	}
	return f(e.GRPC)
}

func redisField(e *protocols.Entry, f func(*protocols.RedisRecord) string) any {
	if e.Redis == nil {
		return ""
	}
	return f(e.Redis)
}

func kafkaField(e *protocols.Entry, f func(*protocols.KafkaRecord) any, zero any) any {
	if e.Kafka == nil {
		return zero
	}
	return f(e.Kafka)
}

func requestMap(e *protocols.Entry) map[string]any {
	r := httpRequest(e)
	if r == nil {
		return map[string]any{"headers": map[string]string{}}
	}
	return map[string]any{
		"method": r.Method, "target": r.Target, "path": r.Path,
		"headers": headerMap(r.Headers), "body": string(r.Body.Data), "body_size": r.Body.Size,
	}
}

func responseMap(e *protocols.Entry) map[string]any {
	if e.HTTP == nil || e.HTTP.Response == nil {
		return map[string]any{"headers": map[string]string{}}
	}
	r := e.HTTP.Response
	return map[string]any{
		"status_code": int64(r.StatusCode), "headers": headerMap(r.Headers),
		"body": string(r.Body.Data), "body_size": r.Body.Size,
	}
}

// headerMap keys headers by lowercase name; repeated fields are joined with
// ", " as HTTP allows.
func headerMap(h protocols.Headers) map[string]string {
	m := make(map[string]string, len(h))
	for _, f := range h {
		k := strings.ToLower(f.Name)
		if v, ok := m[k]; ok {
			m[k] = v + ", " + f.Value
			continue
		}
		m[k] = f.Value
	}
	return m
}

// FieldInfo is a field as the UI's help shows it.
type FieldInfo struct {
	Name    string `json:"name"`
	Type    string `json:"type"`
	Doc     string `json:"doc"`
	Example string `json:"example"`
}

// Fields lists the query vocabulary in table order.
func Fields() []FieldInfo {
	out := make([]FieldInfo, len(fields))
	for i, f := range fields {
		out[i] = FieldInfo{Name: f.Name, Type: f.Kind.String(), Doc: f.Doc, Example: f.Example}
	}
	return out
}

// Table returns a copy of the vocabulary, in table order.
func Table() []Field { return slices.Clone(fields) }

// Lookup returns the field of that name, or nil.
func Lookup(name string) *Field { return byName[name] }
