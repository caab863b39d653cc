package amqp

import (
	"testing"

	"github.com/sondehq/sonde/protocols"
)

func TestDetect(t *testing.T) {
	match := func(fromClient bool) protocols.Detection {
		return protocols.Detection{Verdict: protocols.Match, FromClient: fromClient}
	}
	need := protocols.Detection{Verdict: protocols.NeedMore}
	no := protocols.Detection{Verdict: protocols.NoMatch}
	server := protocols.Ports{Src: 5672, Dst: 40000}
	tests := []struct {
		name   string
		prefix string
		ports  protocols.Ports
		want   protocols.Detection
	}{
		{"protocol header", "AMQP\x00\x00\x09\x01", protocols.Ports{}, match(true)},
		{"protocol header, cut", "AMQP\x00", protocols.Ports{}, need},
		{"AMQP 1.0", "AMQP\x00\x01\x00\x00", protocols.Ports{}, no},
		{"AMQP 0-8", "AMQP\x01\x01\x08\x00", protocols.Ports{}, no},
		{"HTTP", "GET / HTTP/1.1\r\n", protocols.Ports{}, no},
		{"empty", "", protocols.Ports{}, need},
		{"connection.start is the server's", connStart, protocols.Ports{}, match(false)},
		{"basic.publish is the client's", publish(1, "ex", "k"), protocols.Ports{}, match(true)},
		{"basic.deliver after a body frame", bodyFrame(1, "tail") + deliver(1, "c", 1, "ex", "k"), protocols.Ports{}, match(false)},
		{"cut inside a frame", publish(1, "ex", "k")[:12], protocols.Ports{}, need},
		{"heartbeats only, no port", heartbeat + heartbeat, protocols.Ports{}, need},
		{"heartbeats only, from the server port", heartbeat, server, match(false)},
		{"ambiguous methods only, to the server port", ack(1, 1, false), protocols.Ports{Src: 40000, Dst: 5672}, match(true)},
		{"frame-end wrong", publish(1, "ex", "k")[:len(publish(1, "ex", "k"))-1] + "\x00", protocols.Ports{}, no},
		{"unknown method", meth(1, 70, 10, nil), protocols.Ports{}, no},
		{"method arguments cut short", meth(1, 50, 10, args().u16(0).short("q")), protocols.Ports{}, no},
		{"unknown frame type", "\x04\x00\x01\x00\x00\x00\x00\xce", protocols.Ports{}, no},
		{"heartbeat on a channel", "\x08\x00\x01\x00\x00\x00\x00\xce", protocols.Ports{}, no},
		{"frame larger than the default frame_max", "\x03\x00\x01\x00\x10\x00\x00", protocols.Ports{}, no},
		{"content header of another class", frame(frameHeader, 1, string(args().u16(50).u16(0).u64(0).u16(0).b)), protocols.Ports{}, no},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := New().Detect([]byte(tt.prefix), tt.ports); got != tt.want {
				t.Errorf("Detect = %+v, want %+v", got, tt.want)
			}
		})
	}
}
