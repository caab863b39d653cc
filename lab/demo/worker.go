package demo

import (
	"context"
	"math/rand/v2"

	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kgo"
)

const (
	fulfillmentGroup   = "fulfillment"
	notificationsQueue = "notifications"
)

// fulfil consumes order events as the fulfillment group and notes each
// order's state in Redis (rdb may be nil), until ctx ends.
func fulfil(ctx context.Context, cl *kgo.Client, rdb *redis.Client) {
	for {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return
		}
		fetches.EachRecord(func(r *kgo.Record) {
			if rdb != nil {
				rdb.HSet(ctx, "fulfillment:"+string(r.Key), "state", "queued", "partition", r.Partition, "offset", r.Offset)
			}
		})
	}
}

// notify consumes payment events; one in ten cannot be delivered (a bad
// address, say) and is rejected without requeueing.
func notify(ctx context.Context, ch *amqp091.Channel) error {
	deliveries, err := ch.ConsumeWithContext(ctx, notificationsQueue, worker, false, false, false, false, nil)
	if err != nil {
		return err
	}
	for d := range deliveries {
		if rand.IntN(10) == 0 {
			d.Reject(false)
			continue
		}
		d.Ack(false)
	}
	return nil
}

// declarePayments declares the exchange payments publishes to and the
// queue the worker reads; both sides declare them, whichever comes first.
func declarePayments(ch *amqp091.Channel, withQueue bool) error {
	if err := ch.ExchangeDeclare(paymentsExchange, "topic", true, false, false, false, nil); err != nil {
		return err
	}
	if !withQueue {
		return nil
	}
	if _, err := ch.QueueDeclare(notificationsQueue, true, false, false, false, nil); err != nil {
		return err
	}
	return ch.QueueBind(notificationsQueue, "payment.*", paymentsExchange, false, nil)
}
