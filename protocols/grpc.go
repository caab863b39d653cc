package protocols

// GRPCRecord is the record of one gRPC call (unary or streaming), carried by an
// HTTP/2 stream. A gRPC entry has no HTTPRecord: what HTTP/2 carried that
// matters to a reader (metadata, trailers, reset code) is here.
type GRPCRecord struct {
	// Service and Method come from the :path "/pkg.Service/Method".
	Service string `json:"service"`
	Method  string `json:"method"`
	// StatusCode is the grpc-status code; -1 when the call did not finish.
	StatusCode int `json:"status_code"`
	// Status is the code's name ("OK", "NOT_FOUND", ...); empty when the call
	// did not finish.
	Status string `json:"status"`
	// Message is grpc-message, percent-decoded.
	Message string `json:"message,omitempty"`
	// StatusDetails is grpc-status-details-bin (a google.rpc.Status), decoded
	// without a schema.
	StatusDetails []ProtoField `json:"status_details,omitempty"`

	// Authority is the request's :authority.
	Authority string `json:"authority,omitempty"`
	// ContentType is the request's content-type ("application/grpc",
	// "application/grpc+proto", ...).
	ContentType string `json:"content_type,omitempty"`
	// StreamID is the HTTP/2 stream the call travelled on.
	StreamID uint32 `json:"stream_id,omitempty"`
	// HTTPStatus is the response's :status (200 unless a proxy intervened).
	HTTPStatus int `json:"http_status,omitempty"`
	// ResetCode is the HTTP/2 RST_STREAM error code name when the stream was
	// reset (a cancelled call, a client deadline).
	ResetCode string `json:"reset_code,omitempty"`

	// RequestMetadata and ResponseMetadata are the header fields other than
	// pseudo-headers, in wire order, secrets redacted. Trailers are the
	// trailing metadata (grpc-status and grpc-message included); for a
	// trailers-only response they are part of ResponseMetadata.
	RequestMetadata  Headers `json:"request_metadata,omitempty"`
	ResponseMetadata Headers `json:"response_metadata,omitempty"`
	Trailers         Headers `json:"trailers,omitempty"`

	Requests  GRPCMessages `json:"requests"`
	Responses GRPCMessages `json:"responses"`
}

// GRPCMessages are the length-prefixed messages one side of a call sent.
// Count and Bytes always cover every message; Messages keeps the first ones,
// their content capped in total.
type GRPCMessages struct {
	Count int `json:"count"`
	// Bytes is the sum of the messages' lengths as sent (compressed when
	// compressed), without the 5-byte prefixes.
	Bytes int64 `json:"bytes"`
	// Encoding is the grpc-encoding that compressed messages use ("gzip").
	Encoding string        `json:"encoding,omitempty"`
	Messages []GRPCMessage `json:"messages,omitempty"`
	// Truncated is true when some messages are counted but not listed.
	Truncated bool `json:"truncated,omitempty"`
}

// GRPCMessage is one length-prefixed message.
type GRPCMessage struct {
	// Size is the length from the prefix.
	Size int64 `json:"size"`
	// Compressed is the prefix's compressed flag.
	Compressed bool `json:"compressed,omitempty"`
	// Data is the message as kept (base64 in JSON): decompressed when it was
	// compressed with a known encoding, capped.
	Data []byte `json:"data,omitempty"`
	// Truncated is true when Data holds less than the whole message.
	Truncated bool `json:"truncated,omitempty"`
	// Fields is Data decoded as protobuf without a schema.
	Fields []ProtoField `json:"fields,omitempty"`
	// DecodeError says why Fields is missing or partial.
	DecodeError string `json:"decode_error,omitempty"`
}

// ProtoField is one protobuf field decoded without a schema: its number,
// its wire type, and the most plausible reading of its value.
type ProtoField struct {
	Number int32 `json:"number"`
	// Wire is the wire type: "varint", "i64", "len", "group" or "i32".
	Wire string `json:"wire"`
	// Kind says how the value was read: "varint", "i64" and "i32" (Value),
	// "string" (Value), "bytes" (Bytes), "message" and "group" (Fields),
	// "packed" (Values, a packed repeated varint field).
	Kind string `json:"kind"`
	// Value is a scalar as an unsigned decimal (a string: JSON numbers lose
	// precision past 2^53), or the text of a string.
	Value string `json:"value,omitempty"`
	// Signed is the two's complement reading of a varint that does not fit
	// in 63 bits (a negative int32 or int64).
	Signed string `json:"signed,omitempty"`
	// Float is the IEEE 754 reading of an i32 or i64 value.
	Float  string       `json:"float,omitempty"`
	Bytes  []byte       `json:"bytes,omitempty"`
	Values []string     `json:"values,omitempty"`
	Fields []ProtoField `json:"fields,omitempty"`
	// Size is the length of a len value in bytes.
	Size int `json:"size,omitempty"`
	// Truncated is true when a cap (depth, field count, kept bytes) left part
	// of the value out.
	Truncated bool `json:"truncated,omitempty"`
}
