package protocols

// KafkaRecord is the record of one Kafka request and its response, matched by
// correlation ID. Fields that come from the response are empty when the
// response was not seen (see Entry.Unmatched), and the request's fields are
// empty (APIKey -1) for a response whose request was not captured.
type KafkaRecord struct {
	APIKey int16 `json:"api_key"`
	// API is the name of the API key ("Produce", "Fetch", "Metadata").
	API string `json:"api"`
	// APIVersion is the request's version; the response uses the same one.
	APIVersion    int16  `json:"api_version"`
	CorrelationID int32  `json:"correlation_id"`
	ClientID      string `json:"client_id,omitempty"`

	// Topics are the topics the request and its response name, in wire order,
	// each with the partitions they mention. Topics known only by ID (Fetch
	// v13 and later) have an empty Name.
	Topics []KafkaTopic `json:"topics,omitempty"`
	// TopicCount is the number of topics named, which can exceed len(Topics)
	// when the list was capped.
	TopicCount int `json:"topic_count,omitempty"`
	// GroupID is the consumer group the call is about (the first one, for
	// calls about several).
	GroupID         string `json:"group_id,omitempty"`
	TransactionalID string `json:"transactional_id,omitempty"`

	// ErrorCode is the response's first non-zero error code (top level
	// first, then per topic and partition), or 0.
	ErrorCode int16 `json:"error_code"`
	// Error is ErrorCode's name ("UNKNOWN_TOPIC_OR_PARTITION"), "NONE" for a
	// response without errors, and empty when no response was decoded.
	Error string `json:"error,omitempty"`
	// Errors lists every non-zero error code of the response with where it
	// occurred.
	Errors []KafkaError `json:"errors,omitempty"`

	// RecordCount is the number of records in the record batches of a
	// Produce request or a Fetch (or ShareFetch) response, counted from the
	// batch headers whether or not the records were decoded.
	RecordCount int64 `json:"record_count,omitempty"`
	// Batches are those record batches (legacy message sets count as one
	// batch per partition), with their first records.
	Batches []KafkaBatch `json:"batches,omitempty"`

	// SASLMechanism is the mechanism a SaslHandshake request asked for.
	SASLMechanism string `json:"sasl_mechanism,omitempty"`
	// SASLAuth is the token a SaslAuthenticate request carried. When
	// redaction is on only its size is kept (and Entry.Redacted is set).
	SASLAuth *Body `json:"sasl_auth,omitempty"`
}

// KafkaTopic is a topic a call names.
type KafkaTopic struct {
	Name string `json:"name,omitempty"`
	// ID is the topic's UUID, in the base64 form Kafka's tools print, when
	// the call carried one.
	ID         string  `json:"id,omitempty"`
	Partitions []int32 `json:"partitions,omitempty"`
}

// KafkaError is one non-zero error code in a response.
type KafkaError struct {
	Code int16 `json:"code"`
	// Name is the code's name as Kafka spells it ("NOT_LEADER_OR_FOLLOWER").
	Name  string `json:"name"`
	Topic string `json:"topic,omitempty"`
	// Partition is -1 when the error is not about one partition.
	Partition int32  `json:"partition"`
	Message   string `json:"message,omitempty"`
}

// KafkaBatch is one record batch (magic 2), or the legacy message set
// (magic 0 or 1) of one partition.
type KafkaBatch struct {
	// Topic is the topic's name, or its ID when the call named it by ID.
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Magic     int8   `json:"magic"`
	// Compression is the codec the records were compressed with: "none",
	// "gzip", "snappy", "lz4", "zstd" (or "codec-N" for an unknown one).
	Compression string `json:"compression"`
	BaseOffset  int64  `json:"base_offset"`
	// RecordCount is the batch header's count (for legacy message sets, the
	// messages counted, inner messages of compressed ones included).
	RecordCount int64 `json:"record_count"`
	// Size is the batch's length on the wire.
	Size          int  `json:"size"`
	Transactional bool `json:"transactional,omitempty"`
	Control       bool `json:"control,omitempty"`
	// Records are the first records, within the entry's caps.
	Records []KafkaMessage `json:"records,omitempty"`
	// Truncated is true when Records holds fewer than RecordCount records.
	Truncated bool `json:"truncated,omitempty"`
}

// KafkaMessage is one record of a batch.
type KafkaMessage struct {
	Offset int64 `json:"offset"`
	// TimestampMs is the record's timestamp in milliseconds since the epoch,
	// -1 when the record has none (magic 0).
	TimestampMs int64 `json:"timestamp_ms"`
	// Key and Value are nil when null on the wire (a null value is a tombstone).
	Key     *Body         `json:"key,omitempty"`
	Value   *Body         `json:"value,omitempty"`
	Headers []KafkaHeader `json:"headers,omitempty"`
}

// KafkaHeader is a record header. Its value is bytes, often binary (trace
// context, type hints), so it is a Body; nil when null on the wire.
type KafkaHeader struct {
	Name  string `json:"name"`
	Value *Body  `json:"value,omitempty"`
}
