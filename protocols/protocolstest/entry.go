package protocolstest

import (
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/sondehq/sonde/protocols"
)

// orderBody is the request body of HTTPEntry: JSON text of about 360 bytes.
var orderBody = []byte(strings.Repeat(`{"order":42,"items":["a","b"]}`, 12))

// HTTPEntry is a typical entry of about 1 KiB as it leaves a dissector: an
// HTTP/1.1 POST with a JSON body from client i to 10.1.0.7:8080, and its
// 200. Benchmarks of what happens to entries after dissection (sending,
// storing) use it.
func HTTPEntry(i int) *protocols.Entry {
	target := fmt.Sprint("/api/orders/", i)
	return &protocols.Entry{ID: fmt.Sprint("agent-", i), Protocol: protocols.HTTP1, Start: time.Now(), Duration: time.Millisecond,
		Src:     protocols.Endpoint{IP: netip.AddrFrom4([4]byte{10, 0, 0, byte(i)}), Port: uint16(30000 + i), Pod: "frontend-7d9f", Namespace: "shop"},
		Dst:     protocols.Endpoint{IP: netip.AddrFrom4([4]byte{10, 1, 0, 7}), Port: 8080, Pod: "orders-1", Namespace: "shop"},
		Summary: protocols.Summary{Method: "POST", Target: target, Status: "200"}, RequestSize: 300, ResponseSize: 700,
		HTTP: &protocols.HTTPRecord{
			Request: &protocols.HTTPRequest{Method: "POST", Target: target, Path: target, Version: "HTTP/1.1",
				Headers: protocols.Headers{{Name: "Content-Type", Value: "application/json"}, {Name: "User-Agent", Value: "Go-http-client/1.1"}},
				Body:    protocols.Body{Size: int64(len(orderBody)), Data: orderBody}},
			Response: &protocols.HTTPResponse{Version: "HTTP/1.1", StatusCode: 200, Reason: "OK", Body: protocols.Body{Size: 2, Data: []byte("{}")}},
		}}
}
