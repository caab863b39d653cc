// Package all lists every dissector Sonde ships, in the order detection asks them.
package all

import (
	"github.com/sondehq/sonde/protocols"
	"github.com/sondehq/sonde/protocols/amqp"
	"github.com/sondehq/sonde/protocols/http1"
	"github.com/sondehq/sonde/protocols/http2"
	"github.com/sondehq/sonde/protocols/kafka"
	"github.com/sondehq/sonde/protocols/redis"
)

// Dissectors returns a new list of every dissector. Those whose first bytes
// are the most distinctive come first, so that a looser check later in the
// list never claims a connection a stricter one would have recognised.
func Dissectors() []protocols.Dissector {
	return []protocols.Dissector{
		http2.New(), // the client preface is unmistakable
		amqp.New(),  // "AMQP" protocol header
		http1.New(),
		kafka.New(),
		redis.New(),
	}
}
