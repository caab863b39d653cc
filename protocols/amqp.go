package protocols

// AMQPRecord is the record of one AMQP 0-9-1 method (with its content, when it
// carries one) and, for synchronous methods, its -Ok reply.
type AMQPRecord struct {
	Channel uint16 `json:"channel"`
	// Method is the class.method name, "basic.publish" style.
	Method string `json:"method"`
}
