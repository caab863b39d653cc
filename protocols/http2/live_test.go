package http2

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	_ "google.golang.org/grpc/encoding/gzip" // registers the gzip compressor
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/sondehq/sonde/protocols"
	"github.com/sondehq/sonde/protocols/protocolstest"
)

// testService is gRPC's interop TestService, answering with payloads of
// readable text so that their decoding can be checked.
type testService struct {
	testgrpc.UnimplementedTestServiceServer
}

func payload(n int32) *testgrpc.Payload {
	return &testgrpc.Payload{Body: []byte(strings.Repeat("sonde", int(n)/5+1)[:n])}
}

func (testService) EmptyCall(ctx context.Context, _ *testgrpc.Empty) (*testgrpc.Empty, error) {
	// Only ever called with a deadline: wait for it.
	<-ctx.Done()
	return nil, status.FromContextError(ctx.Err()).Err()
}

func (testService) UnaryCall(_ context.Context, req *testgrpc.SimpleRequest) (*testgrpc.SimpleResponse, error) {
	if st := req.GetResponseStatus(); st != nil {
		return nil, status.Error(codes.Code(st.Code), st.Message)
	}
	return &testgrpc.SimpleResponse{Payload: payload(req.ResponseSize), Username: "sonde-user"}, nil
}

func (testService) StreamingOutputCall(req *testgrpc.StreamingOutputCallRequest, stream grpc.ServerStreamingServer[testgrpc.StreamingOutputCallResponse]) error {
	for _, p := range req.ResponseParameters {
		if err := stream.Send(&testgrpc.StreamingOutputCallResponse{Payload: payload(p.Size)}); err != nil {
			return err
		}
	}
	return nil
}

func (testService) StreamingInputCall(stream grpc.ClientStreamingServer[testgrpc.StreamingInputCallRequest, testgrpc.StreamingInputCallResponse]) error {
	var sum int32
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return stream.SendAndClose(&testgrpc.StreamingInputCallResponse{AggregatedPayloadSize: sum})
		}
		if err != nil {
			return err
		}
		sum += int32(len(req.Payload.GetBody()))
	}
}

func (testService) FullDuplexCall(stream grpc.BidiStreamingServer[testgrpc.StreamingOutputCallRequest, testgrpc.StreamingOutputCallResponse]) error {
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		for _, p := range req.ResponseParameters {
			if err := stream.Send(&testgrpc.StreamingOutputCallResponse{Payload: payload(p.Size)}); err != nil {
				return err
			}
		}
	}
}

// field finds a field by number path ("3.2" is field 2 of the message in field 3).
func field(fs []protocols.ProtoField, path string) (protocols.ProtoField, bool) {
	nums := strings.Split(path, ".")
	for i, s := range nums {
		n, _ := strconv.Atoi(s)
		var found *protocols.ProtoField
		for j := range fs {
			if fs[j].Number == int32(n) {
				found = &fs[j]
				break
			}
		}
		if found == nil {
			return protocols.ProtoField{}, false
		}
		if i == len(nums)-1 {
			return *found, true
		}
		fs = found.Fields
	}
	return protocols.ProtoField{}, false
}

func TestLiveGRPC(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	testgrpc.RegisterTestServiceServer(srv, testService{})
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	rec := protocolstest.NewRecorder(t, ln.Addr().String())

	cc, err := grpc.NewClient("passthrough:///"+rec.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	client := testgrpc.NewTestServiceClient(cc)
	ctx := metadata.AppendToOutgoingContext(context.Background(), "x-user", "alice", "authorization", "Bearer s3cret")

	// The calls, one after the other, so that their entries come in this order.
	if _, err := client.UnaryCall(ctx, &testgrpc.SimpleRequest{ResponseSize: 5, Payload: &testgrpc.Payload{Body: []byte("hello")}}); err != nil {
		t.Fatalf("unary: %v", err)
	}
	out, err := client.StreamingOutputCall(ctx, &testgrpc.StreamingOutputCallRequest{ResponseParameters: []*testgrpc.ResponseParameters{{Size: 10}, {Size: 20}, {Size: 30}, {Size: 40}}})
	if err != nil {
		t.Fatal(err)
	}
	for n := 0; ; n++ {
		if _, err := out.Recv(); err != nil {
			if !errors.Is(err, io.EOF) || n != 4 {
				t.Fatalf("server streaming: %d messages, %v", n, err)
			}
			break
		}
	}
	in, err := client.StreamingInputCall(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []int32{100, 200, 300} {
		if err := in.Send(&testgrpc.StreamingInputCallRequest{Payload: payload(s)}); err != nil {
			t.Fatal(err)
		}
	}
	if resp, err := in.CloseAndRecv(); err != nil || resp.AggregatedPayloadSize != 600 {
		t.Fatalf("client streaming: %v, %v", resp, err)
	}
	bidi, err := client.FullDuplexCall(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []int32{7, 8, 9} {
		if err := bidi.Send(&testgrpc.StreamingOutputCallRequest{ResponseParameters: []*testgrpc.ResponseParameters{{Size: s}}}); err != nil {
			t.Fatal(err)
		}
		if _, err := bidi.Recv(); err != nil {
			t.Fatal(err)
		}
	}
	bidi.CloseSend()
	if _, err := bidi.Recv(); !errors.Is(err, io.EOF) {
		t.Fatalf("bidi end: %v", err)
	}
	_, err = client.UnaryCall(ctx, &testgrpc.SimpleRequest{ResponseStatus: &testgrpc.EchoStatus{Code: int32(codes.NotFound), Message: "no such thing"}})
	if status.Code(err) != codes.NotFound {
		t.Fatalf("error status: %v", err)
	}
	dctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	_, err = client.EmptyCall(dctx, &testgrpc.Empty{})
	cancel()
	if status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("deadline: %v", err)
	}
	if _, err := client.UnaryCall(ctx, &testgrpc.SimpleRequest{ResponseSize: 3000, Payload: payload(2000)}, grpc.UseCompressor("gzip")); err != nil {
		t.Fatalf("gzip: %v", err)
	}
	if _, err := client.UnaryCall(ctx, &testgrpc.SimpleRequest{ResponseSize: 300_000, Payload: payload(1 << 20)}); err != nil {
		t.Fatalf("large: %v", err)
	}
	cc.Close()
	srv.Stop()
	<-served
	rec.Close()

	conns := rec.Conns()
	if len(conns) != 1 {
		t.Fatalf("recorded %d connections, want 1", len(conns))
	}
	info := protocols.ConnInfo{
		Client: netip.MustParseAddrPort("127.0.0.1:40000"), Server: netip.MustParseAddrPort("127.0.0.1:50051"),
		Options: protocols.DefaultOptions(),
	}
	res := replaySplit(t, info, conns[0])
	if res.Err != nil {
		t.Fatalf("parse error: %v", res.Err)
	}
	const svc = "/grpc.testing.TestService/"
	type want struct {
		method     string
		status     string
		reqs, resp int
		check      func(t *testing.T, g *protocols.GRPCRecord)
	}
	wants := []want{
		{"UnaryCall", "OK", 1, 1, func(t *testing.T, g *protocols.GRPCRecord) {
			if f, _ := field(g.Requests.Messages[0].Fields, "3.2"); f.Value != "hello" {
				t.Errorf("request payload = %+v", g.Requests.Messages[0].Fields)
			}
			if f, _ := field(g.Requests.Messages[0].Fields, "2"); f.Value != "5" {
				t.Errorf("request response_size = %+v", f)
			}
			if f, _ := field(g.Responses.Messages[0].Fields, "2"); f.Value != "sonde-user" {
				t.Errorf("response username = %+v", g.Responses.Messages[0].Fields)
			}
			if v, _ := g.RequestMetadata.Get("x-user"); v != "alice" {
				t.Errorf("x-user = %q", v)
			}
			if v, _ := g.RequestMetadata.Get("authorization"); v != protocols.Redacted {
				t.Errorf("authorization = %q", v)
			}
		}},
		{"StreamingOutputCall", "OK", 1, 4, func(t *testing.T, g *protocols.GRPCRecord) {
			for i, m := range g.Responses.Messages {
				if f, _ := field(m.Fields, "1.2"); f.Size != 10*(i+1) {
					t.Errorf("response %d payload = %+v", i, f)
				}
			}
		}},
		{"StreamingInputCall", "OK", 3, 1, func(t *testing.T, g *protocols.GRPCRecord) {
			if f, _ := field(g.Responses.Messages[0].Fields, "1"); f.Value != "600" {
				t.Errorf("aggregated size = %+v", f)
			}
		}},
		{"FullDuplexCall", "OK", 3, 3, nil},
		{"UnaryCall", "NOT_FOUND", 1, 0, func(t *testing.T, g *protocols.GRPCRecord) {
			if g.Message != "no such thing" || g.StatusCode != 5 {
				t.Errorf("status %d %q", g.StatusCode, g.Message)
			}
		}},
		{"EmptyCall", "", 1, 0, func(t *testing.T, g *protocols.GRPCRecord) {
			// Client and server see the deadline pass at the same moment:
			// either the server's status or the client's reset comes first.
			if g.Status != "DEADLINE_EXCEEDED" && g.ResetCode != "CANCEL" {
				t.Errorf("deadline call: status %q, reset %q", g.Status, g.ResetCode)
			}
			if _, ok := g.RequestMetadata.Get("grpc-timeout"); !ok {
				t.Errorf("no grpc-timeout in %v", g.RequestMetadata)
			}
		}},
		{"UnaryCall", "OK", 1, 1, func(t *testing.T, g *protocols.GRPCRecord) {
			for _, m := range []protocols.GRPCMessage{g.Requests.Messages[0], g.Responses.Messages[0]} {
				if !m.Compressed || m.DecodeError != "" {
					t.Errorf("gzip message: compressed %v, error %q", m.Compressed, m.DecodeError)
				}
			}
			if f, _ := field(g.Requests.Messages[0].Fields, "3.2"); f.Size != 2000 || f.Kind != "string" {
				t.Errorf("decompressed request payload = %+v", f)
			}
			if f, _ := field(g.Responses.Messages[0].Fields, "1.2"); f.Size != 3000 {
				t.Errorf("decompressed response payload size = %d", f.Size)
			}
			if g.Requests.Encoding != "gzip" {
				t.Errorf("encoding %q", g.Requests.Encoding)
			}
		}},
		{"UnaryCall", "OK", 1, 1, func(t *testing.T, g *protocols.GRPCRecord) {
			m := g.Requests.Messages[0]
			if m.Size < 1<<20 || !m.Truncated || len(m.Data) != protocols.DefaultOptions().BodyCap || g.Requests.Bytes != m.Size {
				t.Errorf("large request: size %d, kept %d, truncated %v", m.Size, len(m.Data), m.Truncated)
			}
			if f, _ := field(m.Fields, "2"); f.Value != "300000" {
				t.Errorf("fields before the cap = %+v", m.Fields)
			}
			if r := g.Responses.Messages[0]; r.Size < 300_000 || !r.Truncated {
				t.Errorf("large response: size %d, truncated %v", r.Size, r.Truncated)
			}
		}},
	}
	if len(res.Entries) != len(wants) {
		t.Fatalf("%d entries, want %d:\n%s", len(res.Entries), len(wants), strings.Join(lines(res.Entries), "\n"))
	}
	for i, w := range wants {
		e := res.Entries[i]
		g := e.GRPC
		if e.Protocol != protocols.GRPC || g == nil || e.Summary.Method != svc+w.method {
			t.Errorf("entry %d = %s, want %s", i, line(e), w.method)
			continue
		}
		if w.status != "" && (e.Summary.Status != w.status || g.Status != w.status) {
			t.Errorf("entry %d (%s): status %q, want %q", i, w.method, g.Status, w.status)
		}
		if g.Requests.Count != w.reqs || g.Responses.Count != w.resp || e.Unmatched != "" || e.Gap {
			t.Errorf("entry %d: %s", i, line(e))
		}
		if e.Summary.Target != g.Authority || g.Service != "grpc.testing.TestService" || !e.Redacted {
			t.Errorf("entry %d: target %q, service %q, redacted %v", i, e.Summary.Target, g.Service, e.Redacted)
		}
		if w.check != nil {
			t.Run(strconv.Itoa(i)+"_"+w.method, func(t *testing.T) { w.check(t, g) })
		}
	}
	if big := res.Entries[7]; big.RequestSize < 1<<20 || big.ResponseSize < 300_000 {
		t.Errorf("large call sizes: %d, %d", big.RequestSize, big.ResponseSize)
	}
}

// dropPrefix removes the first n[dir] bytes each direction carried.
func dropPrefix(chunks []protocolstest.Chunk, n [2]int) []protocolstest.Chunk {
	var out []protocolstest.Chunk
	for _, ch := range chunks {
		k := min(n[ch.Dir], len(ch.Data))
		n[ch.Dir] -= k
		if k < len(ch.Data) {
			ch.Data = ch.Data[k:]
			out = append(out, ch)
		}
	}
	return out
}

// joined returns what dir carried, in order.
func joined(chunks []protocolstest.Chunk, dir protocols.Direction) []byte {
	var b bytes.Buffer
	for _, ch := range chunks {
		if ch.Dir == dir {
			b.Write(ch.Data)
		}
	}
	return b.Bytes()
}
