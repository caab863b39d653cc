package protocols

import "time"

// AMQPRecord is the record of one AMQP 0-9-1 method (with its content, when it
// carries one) and, for synchronous methods, the reply that answered it: the
// method's -Ok, or the Channel.Close or Connection.Close the peer sent instead.
//
// The convenience fields (Exchange ... ReplyText) repeat what the arguments of
// the method and its reply say, so that queries need not search Arguments.
type AMQPRecord struct {
	Channel uint16 `json:"channel"`
	// Method is the class.method name, "basic.publish" style. For a reply whose
	// request was not seen (Entry.Unmatched == MissingRequest) it is the name of
	// the request the reply answers.
	Method   string `json:"method"`
	ClassID  uint16 `json:"class_id"`
	MethodID uint16 `json:"method_id"`
	// Sender is the peer that sent Method: "client" or "server".
	Sender string `json:"sender"`
	// Arguments are the method's arguments in wire order (reserved ones too).
	Arguments []AMQPField `json:"arguments,omitempty"`
	// Content is the message a content-bearing method carried
	// (basic.publish, basic.deliver, basic.return).
	Content *AMQPContent `json:"content,omitempty"`
	// Reply is what answered a synchronous method; nil for one-way methods
	// and for requests whose reply was not seen.
	Reply *AMQPReply `json:"reply,omitempty"`

	Exchange    string `json:"exchange,omitempty"`
	RoutingKey  string `json:"routing_key,omitempty"`
	Queue       string `json:"queue,omitempty"`
	ConsumerTag string `json:"consumer_tag,omitempty"`
	DeliveryTag uint64 `json:"delivery_tag,omitempty"`
	// ReplyCode and ReplyText come from a Close (the method itself or the
	// Close that answered it) or a basic.return.
	ReplyCode uint16 `json:"reply_code,omitempty"`
	ReplyText string `json:"reply_text,omitempty"`

	// Confirm links a basic.publish on a channel in confirm mode to the
	// broker's basic.ack or basic.nack that confirmed it.
	Confirm *AMQPConfirm `json:"confirm,omitempty"`
	// ProtocolHeader is the protocol header the client opened the connection
	// with ("AMQP 0-9-1"), kept on the connection.start entry.
	ProtocolHeader string `json:"protocol_header,omitempty"`
}

// AMQPReply is the method that answered a synchronous request.
type AMQPReply struct {
	Method    string      `json:"method"`
	ClassID   uint16      `json:"class_id"`
	MethodID  uint16      `json:"method_id"`
	Arguments []AMQPField `json:"arguments,omitempty"`
	// Content is the message a basic.get-ok carried.
	Content *AMQPContent `json:"content,omitempty"`
}

// AMQPContent is a message as its content header and body frames carried it.
type AMQPContent struct {
	ClassID uint16 `json:"class_id"`
	// BodySize is the body size the content header declared.
	BodySize   uint64         `json:"body_size"`
	Properties AMQPProperties `json:"properties"`
	// Body holds the first bytes of the body, capped like every body.
	Body Body `json:"body"`
	// BodyFrames counts the body frames the content took.
	BodyFrames int `json:"body_frames"`
}

// AMQPProperties are the basic class's content properties; absent ones are
// zero.
type AMQPProperties struct {
	ContentType     string      `json:"content_type,omitempty"`
	ContentEncoding string      `json:"content_encoding,omitempty"`
	Headers         []AMQPField `json:"headers,omitempty"`
	// DeliveryMode is 1 (transient) or 2 (persistent).
	DeliveryMode  uint8     `json:"delivery_mode,omitempty"`
	Priority      uint8     `json:"priority,omitempty"`
	CorrelationID string    `json:"correlation_id,omitempty"`
	ReplyTo       string    `json:"reply_to,omitempty"`
	Expiration    string    `json:"expiration,omitempty"`
	MessageID     string    `json:"message_id,omitempty"`
	Timestamp     time.Time `json:"timestamp,omitzero"`
	Type          string    `json:"type,omitempty"`
	UserID        string    `json:"user_id,omitempty"`
	AppID         string    `json:"app_id,omitempty"`
	ClusterID     string    `json:"cluster_id,omitempty"`
}

// AMQPField is one method argument, field-table entry or array element, in
// wire order. Scalars are rendered into Value as text (timestamps in RFC 3339,
// decimals with their point); tables and arrays hold their members in Fields.
type AMQPField struct {
	// Name is empty for array elements.
	Name string `json:"name,omitempty"`
	// Type is one of bool, int8, uint8, int16, uint16, int32, uint32, int64,
	// uint64, float, double, decimal, shortstr, longstr, bytes, timestamp,
	// array, table, void.
	Type   string      `json:"type"`
	Value  string      `json:"value,omitempty"`
	Fields []AMQPField `json:"fields,omitempty"`
	// Encoding is "base64" when Value holds bytes that are not UTF-8 text.
	Encoding string `json:"encoding,omitempty"`
	// Truncated is true when Value, or the list of Fields, was cut by a cap.
	Truncated bool `json:"truncated,omitempty"`
}

// AMQPConfirm is the broker's confirmation of one published message.
type AMQPConfirm struct {
	// DeliveryTag is the publish's sequence number on its channel, counted
	// from 1 after confirm.select, which the broker's ack or nack names.
	DeliveryTag uint64 `json:"delivery_tag"`
	// Status is "ack" or "nack".
	Status string `json:"status"`
	// Multiple is true when one basic.ack or basic.nack with multiple=true
	// confirmed this publish together with earlier ones.
	Multiple bool `json:"multiple,omitempty"`
}
