package amqp

// The classes and methods of AMQP 0-9-1 as RabbitMQ speaks it: the spec
// (amqp0-9-1.xml) plus RabbitMQ's extensions (exchange.bind/unbind,
// basic.nack, confirm, connection.blocked/unblocked/update-secret).

// kind is the wire type of a method argument.
type kind uint8

const (
	kOctet kind = iota
	kShort
	kLong
	kLongLong
	kBit
	kShortstr
	kLongstr
	kTable
	kTimestamp
)

// typeName is a kind's name in AMQPField.Type.
var typeName = [...]string{
	kOctet:     "uint8",
	kShort:     "uint16",
	kLong:      "uint32",
	kLongLong:  "uint64",
	kBit:       "bool",
	kShortstr:  "shortstr",
	kLongstr:   "longstr",
	kTable:     "table",
	kTimestamp: "timestamp",
}

type arg struct {
	name string
	kind kind
}

// sender says which peer may send a method.
type sender uint8

const (
	byClient sender = 1 << iota
	byServer
	byEither = byClient | byServer
)

// method describes one class.method.
type method struct {
	class, id uint16
	name      string
	args      []arg
	from      sender
	// replies are the method ids (same class) that answer this method when
	// it is synchronous; nil for asynchronous methods.
	replies []uint16
	// answers is the method id of the request this reply answers, 0 if it
	// is not a reply.
	answers uint16
	// content is true when a content header and body frames follow.
	content bool
}

// nowait reports whether a synchronous method's no-wait bit is set in its
// decoded arguments: then no reply follows.
func (m *method) nowait(fields []argValue) bool {
	for _, f := range fields {
		// confirm.select spells it "nowait".
		if f.name == "no-wait" || f.name == "nowait" {
			return f.num != 0
		}
	}
	return false
}

const (
	classConnection = 10
	classChannel    = 20
	classExchange   = 40
	classQueue      = 50
	classBasic      = 60
	classConfirm    = 85
	classTx         = 90
)

// Method ids that the connection logic treats specially.
const (
	connectionStart   = 10
	connectionTune    = 30
	connectionTuneOk  = 31
	connectionClose   = 50
	connectionCloseOk = 51
	channelOpen       = 10
	channelClose      = 40
	channelCloseOk    = 41
	basicPublish      = 40
	basicAck          = 80
	basicNack         = 120
	confirmSelect     = 10
)

var (
	reserved1Short    = arg{"reserved-1", kShort}
	reserved1Shortstr = arg{"reserved-1", kShortstr}
	noWait            = arg{"no-wait", kBit}
	arguments         = arg{"arguments", kTable}
	closeArgs         = []arg{{"reply-code", kShort}, {"reply-text", kShortstr}, {"class-id", kShort}, {"method-id", kShort}}
	tuneArgs          = []arg{{"channel-max", kShort}, {"frame-max", kLong}, {"heartbeat", kShort}}
)

var methodList = []method{
	{class: classConnection, id: 10, name: "connection.start", from: byServer, replies: []uint16{11},
		args: []arg{{"version-major", kOctet}, {"version-minor", kOctet}, {"server-properties", kTable}, {"mechanisms", kLongstr}, {"locales", kLongstr}}},
	{class: classConnection, id: 11, name: "connection.start-ok", from: byClient, answers: 10,
		args: []arg{{"client-properties", kTable}, {"mechanism", kShortstr}, {"response", kLongstr}, {"locale", kShortstr}}},
	{class: classConnection, id: 20, name: "connection.secure", from: byServer, replies: []uint16{21},
		args: []arg{{"challenge", kLongstr}}},
	{class: classConnection, id: 21, name: "connection.secure-ok", from: byClient, answers: 20,
		args: []arg{{"response", kLongstr}}},
	{class: classConnection, id: 30, name: "connection.tune", from: byServer, replies: []uint16{31}, args: tuneArgs},
	{class: classConnection, id: 31, name: "connection.tune-ok", from: byClient, answers: 30, args: tuneArgs},
	{class: classConnection, id: 40, name: "connection.open", from: byClient, replies: []uint16{41},
		args: []arg{{"virtual-host", kShortstr}, reserved1Shortstr, {"reserved-2", kBit}}},
	{class: classConnection, id: 41, name: "connection.open-ok", from: byServer, answers: 40,
		args: []arg{reserved1Shortstr}},
	{class: classConnection, id: 50, name: "connection.close", from: byEither, replies: []uint16{51}, args: closeArgs},
	{class: classConnection, id: 51, name: "connection.close-ok", from: byEither, answers: 50},
	{class: classConnection, id: 60, name: "connection.blocked", from: byServer,
		args: []arg{{"reason", kShortstr}}},
	{class: classConnection, id: 61, name: "connection.unblocked", from: byServer},
	{class: classConnection, id: 70, name: "connection.update-secret", from: byClient, replies: []uint16{71},
		args: []arg{{"new-secret", kLongstr}, {"reason", kShortstr}}},
	{class: classConnection, id: 71, name: "connection.update-secret-ok", from: byServer, answers: 70},

	{class: classChannel, id: 10, name: "channel.open", from: byClient, replies: []uint16{11},
		args: []arg{reserved1Shortstr}},
	{class: classChannel, id: 11, name: "channel.open-ok", from: byServer, answers: 10,
		args: []arg{{"reserved-1", kLongstr}}},
	{class: classChannel, id: 20, name: "channel.flow", from: byEither, replies: []uint16{21},
		args: []arg{{"active", kBit}}},
	{class: classChannel, id: 21, name: "channel.flow-ok", from: byEither, answers: 20,
		args: []arg{{"active", kBit}}},
	{class: classChannel, id: 40, name: "channel.close", from: byEither, replies: []uint16{41}, args: closeArgs},
	{class: classChannel, id: 41, name: "channel.close-ok", from: byEither, answers: 40},

	{class: classExchange, id: 10, name: "exchange.declare", from: byClient, replies: []uint16{11},
		args: []arg{reserved1Short, {"exchange", kShortstr}, {"type", kShortstr}, {"passive", kBit}, {"durable", kBit},
			{"auto-delete", kBit}, {"internal", kBit}, noWait, arguments}},
	{class: classExchange, id: 11, name: "exchange.declare-ok", from: byServer, answers: 10},
	{class: classExchange, id: 20, name: "exchange.delete", from: byClient, replies: []uint16{21},
		args: []arg{reserved1Short, {"exchange", kShortstr}, {"if-unused", kBit}, noWait}},
	{class: classExchange, id: 21, name: "exchange.delete-ok", from: byServer, answers: 20},
	{class: classExchange, id: 30, name: "exchange.bind", from: byClient, replies: []uint16{31},
		args: []arg{reserved1Short, {"destination", kShortstr}, {"source", kShortstr}, {"routing-key", kShortstr}, noWait, arguments}},
	{class: classExchange, id: 31, name: "exchange.bind-ok", from: byServer, answers: 30},
	{class: classExchange, id: 40, name: "exchange.unbind", from: byClient, replies: []uint16{51},
		args: []arg{reserved1Short, {"destination", kShortstr}, {"source", kShortstr}, {"routing-key", kShortstr}, noWait, arguments}},
	// RabbitMQ numbers exchange.unbind-ok 51, not 41.
	{class: classExchange, id: 51, name: "exchange.unbind-ok", from: byServer, answers: 40},

	{class: classQueue, id: 10, name: "queue.declare", from: byClient, replies: []uint16{11},
		args: []arg{reserved1Short, {"queue", kShortstr}, {"passive", kBit}, {"durable", kBit}, {"exclusive", kBit},
			{"auto-delete", kBit}, noWait, arguments}},
	{class: classQueue, id: 11, name: "queue.declare-ok", from: byServer, answers: 10,
		args: []arg{{"queue", kShortstr}, {"message-count", kLong}, {"consumer-count", kLong}}},
	{class: classQueue, id: 20, name: "queue.bind", from: byClient, replies: []uint16{21},
		args: []arg{reserved1Short, {"queue", kShortstr}, {"exchange", kShortstr}, {"routing-key", kShortstr}, noWait, arguments}},
	{class: classQueue, id: 21, name: "queue.bind-ok", from: byServer, answers: 20},
	{class: classQueue, id: 30, name: "queue.purge", from: byClient, replies: []uint16{31},
		args: []arg{reserved1Short, {"queue", kShortstr}, noWait}},
	{class: classQueue, id: 31, name: "queue.purge-ok", from: byServer, answers: 30,
		args: []arg{{"message-count", kLong}}},
	{class: classQueue, id: 40, name: "queue.delete", from: byClient, replies: []uint16{41},
		args: []arg{reserved1Short, {"queue", kShortstr}, {"if-unused", kBit}, {"if-empty", kBit}, noWait}},
	{class: classQueue, id: 41, name: "queue.delete-ok", from: byServer, answers: 40,
		args: []arg{{"message-count", kLong}}},
	{class: classQueue, id: 50, name: "queue.unbind", from: byClient, replies: []uint16{51},
		args: []arg{reserved1Short, {"queue", kShortstr}, {"exchange", kShortstr}, {"routing-key", kShortstr}, arguments}},
	{class: classQueue, id: 51, name: "queue.unbind-ok", from: byServer, answers: 50},

	{class: classBasic, id: 10, name: "basic.qos", from: byClient, replies: []uint16{11},
		args: []arg{{"prefetch-size", kLong}, {"prefetch-count", kShort}, {"global", kBit}}},
	{class: classBasic, id: 11, name: "basic.qos-ok", from: byServer, answers: 10},
	{class: classBasic, id: 20, name: "basic.consume", from: byClient, replies: []uint16{21},
		args: []arg{reserved1Short, {"queue", kShortstr}, {"consumer-tag", kShortstr}, {"no-local", kBit}, {"no-ack", kBit},
			{"exclusive", kBit}, noWait, arguments}},
	{class: classBasic, id: 21, name: "basic.consume-ok", from: byServer, answers: 20,
		args: []arg{{"consumer-tag", kShortstr}}},
	// The server sends basic.cancel too, when a queue it consumes from goes
	// away (RabbitMQ's consumer cancel notification).
	{class: classBasic, id: 30, name: "basic.cancel", from: byEither, replies: []uint16{31},
		args: []arg{{"consumer-tag", kShortstr}, noWait}},
	{class: classBasic, id: 31, name: "basic.cancel-ok", from: byEither, answers: 30,
		args: []arg{{"consumer-tag", kShortstr}}},
	{class: classBasic, id: 40, name: "basic.publish", from: byClient, content: true,
		args: []arg{reserved1Short, {"exchange", kShortstr}, {"routing-key", kShortstr}, {"mandatory", kBit}, {"immediate", kBit}}},
	{class: classBasic, id: 50, name: "basic.return", from: byServer, content: true,
		args: []arg{{"reply-code", kShort}, {"reply-text", kShortstr}, {"exchange", kShortstr}, {"routing-key", kShortstr}}},
	{class: classBasic, id: 60, name: "basic.deliver", from: byServer, content: true,
		args: []arg{{"consumer-tag", kShortstr}, {"delivery-tag", kLongLong}, {"redelivered", kBit}, {"exchange", kShortstr}, {"routing-key", kShortstr}}},
	{class: classBasic, id: 70, name: "basic.get", from: byClient, replies: []uint16{71, 72},
		args: []arg{reserved1Short, {"queue", kShortstr}, {"no-ack", kBit}}},
	{class: classBasic, id: 71, name: "basic.get-ok", from: byServer, answers: 70, content: true,
		args: []arg{{"delivery-tag", kLongLong}, {"redelivered", kBit}, {"exchange", kShortstr}, {"routing-key", kShortstr}, {"message-count", kLong}}},
	{class: classBasic, id: 72, name: "basic.get-empty", from: byServer, answers: 70,
		args: []arg{reserved1Shortstr}},
	// From the client basic.ack acknowledges deliveries; from the server, on
	// a channel in confirm mode, it confirms publishes.
	{class: classBasic, id: 80, name: "basic.ack", from: byEither,
		args: []arg{{"delivery-tag", kLongLong}, {"multiple", kBit}}},
	{class: classBasic, id: 90, name: "basic.reject", from: byClient,
		args: []arg{{"delivery-tag", kLongLong}, {"requeue", kBit}}},
	{class: classBasic, id: 100, name: "basic.recover-async", from: byClient,
		args: []arg{{"requeue", kBit}}},
	{class: classBasic, id: 110, name: "basic.recover", from: byClient, replies: []uint16{111},
		args: []arg{{"requeue", kBit}}},
	{class: classBasic, id: 111, name: "basic.recover-ok", from: byServer, answers: 110},
	{class: classBasic, id: 120, name: "basic.nack", from: byEither,
		args: []arg{{"delivery-tag", kLongLong}, {"multiple", kBit}, {"requeue", kBit}}},

	{class: classConfirm, id: 10, name: "confirm.select", from: byClient, replies: []uint16{11},
		args: []arg{{"nowait", kBit}}},
	{class: classConfirm, id: 11, name: "confirm.select-ok", from: byServer, answers: 10},

	{class: classTx, id: 10, name: "tx.select", from: byClient, replies: []uint16{11}},
	{class: classTx, id: 11, name: "tx.select-ok", from: byServer, answers: 10},
	{class: classTx, id: 20, name: "tx.commit", from: byClient, replies: []uint16{21}},
	{class: classTx, id: 21, name: "tx.commit-ok", from: byServer, answers: 20},
	{class: classTx, id: 30, name: "tx.rollback", from: byClient, replies: []uint16{31}},
	{class: classTx, id: 31, name: "tx.rollback-ok", from: byServer, answers: 30},
}

// methods indexes methodList by class<<16 | id.
var methods = indexMethods(methodList)

func indexMethods(list []method) map[uint32]*method {
	m := make(map[uint32]*method, len(list))
	for i := range list {
		m[uint32(list[i].class)<<16|uint32(list[i].id)] = &list[i]
	}
	return m
}

func lookup(class, id uint16) *method { return methods[uint32(class)<<16|uint32(id)] }

// replyCodes are the spec's reply-code constants, by which a Close's status
// is named ("404 NOT_FOUND").
var replyCodes = map[uint16]string{
	200: "OK",
	311: "CONTENT_TOO_LARGE",
	312: "NO_ROUTE",
	313: "NO_CONSUMERS",
	320: "CONNECTION_FORCED",
	402: "INVALID_PATH",
	403: "ACCESS_REFUSED",
	404: "NOT_FOUND",
	405: "RESOURCE_LOCKED",
	406: "PRECONDITION_FAILED",
	501: "FRAME_ERROR",
	502: "SYNTAX_ERROR",
	503: "COMMAND_INVALID",
	504: "CHANNEL_ERROR",
	505: "UNEXPECTED_FRAME",
	506: "RESOURCE_ERROR",
	530: "NOT_ALLOWED",
	540: "NOT_IMPLEMENTED",
	541: "INTERNAL_ERROR",
}
