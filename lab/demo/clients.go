package demo

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/sondehq/sonde/lab/netlab"
)

// dialWait bounds a client's connection attempt.
const dialWait = 5 * time.Second

// startClients starts the API (a server that is every other service's
// client), the worker's consumers and the frontend's traffic, and adds to
// down a stop that ends the traffic and closes every client.
func (d *Demo) startClients(ctx context.Context, s *servers, down *teardown) error {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var closers teardown
	down.add(func() error {
		cancel()
		wg.Wait()
		return closers.run()
	})

	ap := d.pods[api]
	a := &apiServer{
		catalog:    &http.Client{Transport: &http.Transport{Protocols: h2cOnly(), DialContext: ap.DialContext}},
		catalogURL: "http://" + d.svc[catalog].String(),
	}
	closers.add(func() error { a.catalog.CloseIdleConnections(); return nil })
	var err error
	a.pay, err = grpc.NewClient("passthrough:///"+d.svc[payments].String(),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithAuthority(fmt.Sprintf("%s:%d", host(payments), paymentsPort)),
		grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
			return ap.DialContext(ctx, "tcp", addr)
		}))
	if err != nil {
		return fmt.Errorf("payments client: %w", err)
	}
	closers.add(a.pay.Close)
	if s.redis {
		a.rdb = newRedis(ap, d.svc[redisW])
		closers.add(a.rdb.Close)
	}
	if a.kafka, err = kgo.NewClient(kgo.SeedBrokers(s.kafka), kgo.Dialer(ap.DialContext), kgo.ClientID(api)); err != nil {
		return fmt.Errorf("kafka producer: %w", err)
	}
	closers.add(func() error { a.kafka.Close(); return nil })
	ln, err := ap.Listen("tcp", fmt.Sprintf(":%d", apiPort))
	if err != nil {
		return fmt.Errorf("api: %w", err)
	}
	hs := &http.Server{Handler: a.routes(), ReadHeaderTimeout: 5 * time.Second}
	go hs.Serve(ln)
	closers.add(hs.Close) // first: the API stops before its clients
	d.say("http1", api, "a JSON API over HTTP/1.1")

	wp := d.pods[worker]
	var wrdb *redis.Client
	if s.redis {
		wrdb = newRedis(wp, d.svc[redisW])
		closers.add(wrdb.Close)
	}
	kc, err := kgo.NewClient(kgo.SeedBrokers(s.kafka), kgo.Dialer(wp.DialContext), kgo.ClientID(worker),
		kgo.ConsumerGroup(fulfillmentGroup), kgo.ConsumeTopics(ordersTopic), kgo.FetchMaxWait(2*time.Second))
	if err != nil {
		return fmt.Errorf("kafka consumer: %w", err)
	}
	closers.add(func() error { kc.Close(); return nil }) // leaves the group, on the wire
	wg.Go(func() { fulfil(ctx, kc, wrdb) })
	wg.Go(func() { d.runAMQP(ctx, s) })

	fp := d.pods[frontend]
	sh := &shopper{
		client: &http.Client{Transport: &http.Transport{DialContext: fp.DialContext, MaxIdleConnsPerHost: frontendInFlight}},
		base:   "http://" + d.svc[api].String(),
	}
	closers.add(func() error { sh.client.CloseIdleConnections(); return nil })
	wg.Go(func() { sh.run(ctx, d.cfg.Rate) })
	return nil
}

// runAMQP waits for rabbitmq-server, connects payments' publisher and the
// worker's consumer, and consumes until ctx ends.
func (d *Demo) runAMQP(ctx context.Context, s *servers) {
	select {
	case <-ctx.Done():
		return
	case <-s.rabbitReady:
	}
	if !s.rabbitUp {
		return
	}
	pub, err := d.amqpDial(ctx, payments)
	if err != nil {
		fmt.Fprintf(d.out, "amqp: payments cannot connect: %v\n", err)
		return
	}
	defer pub.Close()
	sub, err := d.amqpDial(ctx, worker)
	if err != nil {
		fmt.Fprintf(d.out, "amqp: worker cannot connect: %v\n", err)
		return
	}
	defer sub.Close()

	pch, err := pub.Channel()
	if err == nil {
		err = declarePayments(pch, false)
	}
	if err == nil {
		err = pch.Confirm(false)
	}
	if err != nil {
		fmt.Fprintf(d.out, "amqp: payments cannot publish: %v\n", err)
		return
	}
	sch, err := sub.Channel()
	if err == nil {
		err = declarePayments(sch, true)
	}
	if err == nil {
		err = sch.Qos(16, 0, false)
	}
	if err != nil {
		fmt.Fprintf(d.out, "amqp: worker cannot consume: %v\n", err)
		return
	}
	s.payments.pub.Store(&publisher{ch: pch})
	defer s.payments.pub.Store(nil)
	if err := notify(ctx, sch); err != nil && ctx.Err() == nil {
		fmt.Fprintf(d.out, "amqp: worker stopped consuming: %v\n", err)
	}
}

// amqpDial connects a workload's pod to the rabbitmq service as guest.
func (d *Demo) amqpDial(ctx context.Context, workload string) (*amqp091.Connection, error) {
	p := d.pods[workload]
	return amqp091.DialConfig("amqp://guest:guest@"+d.svc[rabbitW].String()+"/", amqp091.Config{
		Properties: amqp091.Table{"connection_name": workload, "product": spec(workload).Name},
		Dial:       podDialer(ctx, p),
	})
}

// podDialer fits amqp091.Config.Dial, which takes no context.
func podDialer(ctx context.Context, p *netlab.Pod) func(network, addr string) (net.Conn, error) {
	return func(network, addr string) (net.Conn, error) {
		ctx, cancel := context.WithTimeout(ctx, dialWait)
		defer cancel()
		return p.DialContext(ctx, network, addr)
	}
}
