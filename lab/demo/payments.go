package demo

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"
)

// The payments service is gRPC without generated code: its messages are
// protobuf's well-known Struct, so the service needs no protoc, and the
// calls on the wire are what a generated client would send.
const (
	paymentsService = "shop.payments.v1.Payments"
	chargeMethod    = "/" + paymentsService + "/Charge"
	historyMethod   = "/" + paymentsService + "/History"
	// chargeDeadline is what the API gives a charge; a slow provider
	// makes some calls miss it.
	chargeDeadline = 400 * time.Millisecond
	// paymentsExchange is where payments publishes what happened.
	paymentsExchange = "payments"
)

var paymentsDesc = grpc.ServiceDesc{
	ServiceName: paymentsService,
	HandlerType: (*any)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "Charge",
		Handler: func(srv any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
			req := new(structpb.Struct)
			if err := dec(req); err != nil {
				return nil, err
			}
			return srv.(*paymentsServer).charge(ctx, req)
		},
	}},
	Streams: []grpc.StreamDesc{{
		StreamName:    "History",
		ServerStreams: true,
		Handler: func(srv any, stream grpc.ServerStream) error {
			req := new(structpb.Struct)
			if err := stream.RecvMsg(req); err != nil {
				return err
			}
			return srv.(*paymentsServer).history(req, stream)
		},
	}},
}

// paymentsServer charges cards, badly at times: some are declined, the
// provider is sometimes unreachable and sometimes slower than the caller
// waits. Once rabbitmq-server is up it publishes each outcome.
type paymentsServer struct {
	pub atomic.Pointer[publisher]
	seq atomic.Uint64
}

func (s *paymentsServer) charge(ctx context.Context, req *structpb.Struct) (*structpb.Struct, error) {
	order := req.GetFields()["order_id"].GetStringValue()
	amount := req.GetFields()["amount_cents"].GetNumberValue()
	event := map[string]any{"order_id": order, "amount_cents": amount}
	switch r := rand.IntN(100); {
	case r < 5:
		if err := pause(ctx, chargeDeadline+200*time.Millisecond); err != nil {
			return nil, status.FromContextError(err).Err()
		}
	case r < 7:
		return nil, status.Error(codes.Unavailable, "payment provider unreachable")
	case r < 15:
		event["reason"] = "insufficient_funds"
		s.publish(ctx, "payment.declined", event, false)
		return nil, status.Error(codes.FailedPrecondition, "card declined: insufficient funds")
	}
	if err := pause(ctx, time.Duration(15+rand.IntN(45))*time.Millisecond); err != nil {
		return nil, status.FromContextError(err).Err()
	}
	id := fmt.Sprintf("pay_%06d", s.seq.Add(1))
	event["payment_id"] = id
	s.publish(ctx, "payment.captured", event, false)
	if rand.IntN(100) < 5 {
		// Nobody binds refunds yet: a mandatory publish comes back.
		s.publish(ctx, "refund.requested", event, true)
	}
	return structpb.NewStruct(map[string]any{"payment_id": id, "order_id": order, "status": "captured", "amount_cents": amount})
}

// history streams the states an order's payment went through.
func (s *paymentsServer) history(req *structpb.Struct, stream grpc.ServerStream) error {
	order := req.GetFields()["order_id"].GetStringValue()
	if order == "" {
		return status.Error(codes.InvalidArgument, "order_id is required")
	}
	states := []string{"created", "authorized", "captured", "settled"}
	for i, st := range states[:2+rand.IntN(3)] {
		if err := pause(stream.Context(), time.Duration(10+rand.IntN(30))*time.Millisecond); err != nil {
			return status.FromContextError(err).Err()
		}
		msg, err := structpb.NewStruct(map[string]any{"order_id": order, "seq": i + 1, "state": st,
			"at": time.Now().UTC().Format(time.RFC3339Nano)})
		if err != nil {
			return err
		}
		if err := stream.SendMsg(msg); err != nil {
			return err
		}
	}
	return nil
}

func (s *paymentsServer) publish(ctx context.Context, key string, event map[string]any, mandatory bool) {
	if p := s.pub.Load(); p != nil {
		p.publish(ctx, key, event, mandatory)
	}
}

// publisher publishes JSON events on one channel in confirm mode; the
// channel serialises concurrent publishes.
type publisher struct {
	ch *amqp091.Channel
}

func (p *publisher) publish(ctx context.Context, key string, event map[string]any, mandatory bool) {
	body, err := json.Marshal(event)
	if err != nil {
		return
	}
	// The broker's confirm is seen on the wire; nobody needs to wait for it.
	p.ch.PublishWithDeferredConfirmWithContext(ctx, paymentsExchange, key, mandatory, false, amqp091.Publishing{
		ContentType: "application/json", DeliveryMode: amqp091.Persistent, Timestamp: time.Now(),
		Type: key, AppId: payments, Body: body,
	})
}

// pause waits d, like work would, or until ctx ends.
func pause(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
