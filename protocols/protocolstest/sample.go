package protocolstest

import (
	"net/netip"
	"time"

	"github.com/sondehq/sonde/protocols"
)

// Sample returns a small set of entries, one or two per protocol, keyed by
// what makes each one distinct; the query and index-record tests match
// against them.
func Sample() map[string]*protocols.Entry {
	now := time.Now()
	return map[string]*protocols.Entry{
		"http500": {ID: "1", Protocol: protocols.HTTP1, Start: now.Add(-time.Minute), Duration: 150 * time.Millisecond,
			Src:     protocols.Endpoint{IP: netip.MustParseAddr("10.0.0.1"), Port: 40000, Pod: "frontend-7d9f", Namespace: "shop", Node: "worker-1"},
			Dst:     protocols.Endpoint{IP: netip.MustParseAddr("10.0.0.2"), Port: 8080, Pod: "api-1", Namespace: "shop"},
			Summary: protocols.Summary{Method: "POST", Target: "/api/orders", Status: "503"},
			HTTP: &protocols.HTTPRecord{
				Request:  &protocols.HTTPRequest{Method: "POST", Target: "/api/orders", Path: "/api/orders", Headers: protocols.Headers{{Name: "Content-Type", Value: "application/json"}}},
				Response: &protocols.HTTPResponse{StatusCode: 503},
			}},
		"http200old": {ID: "2", Protocol: protocols.HTTP2, Start: now.Add(-time.Hour), Duration: time.Millisecond,
			Dst:     protocols.Endpoint{IP: netip.MustParseAddr("fd00::2"), Port: 443, Namespace: "payments"},
			Summary: protocols.Summary{Method: "GET", Target: "/healthz", Status: "200"},
			HTTP: &protocols.HTTPRecord{
				Request:  &protocols.HTTPRequest{Method: "GET", Target: "/healthz", Path: "/healthz"},
				Response: &protocols.HTTPResponse{StatusCode: 200},
			}},
		"grpcNotFound": {ID: "3", Protocol: protocols.GRPC, Start: now, GRPC: &protocols.GRPCRecord{Service: "shop.Orders", Method: "Get", StatusCode: 5, Status: "NOT_FOUND"}},
		"grpcOK":       {ID: "4", Protocol: protocols.GRPC, Start: now, GRPC: &protocols.GRPCRecord{Service: "shop.Orders", Method: "Get", Status: "OK"}},
		"redisGet":     {ID: "5", Protocol: protocols.Redis, Start: now, Gap: true, Redis: &protocols.RedisRecord{Command: "GET", Key: "k"}},
		"kafkaProduce": {ID: "6", Protocol: protocols.Kafka, Start: now, Kafka: &protocols.KafkaRecord{API: "Produce"}},
		"amqpPublish":  {ID: "7", Protocol: protocols.AMQP, Start: now, Unmatched: protocols.MissingResponse, AMQP: &protocols.AMQPRecord{Method: "basic.publish"}},
	}
}
