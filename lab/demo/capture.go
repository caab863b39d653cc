package demo

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/sondehq/sonde/agent/capture/live"
	"github.com/sondehq/sonde/agent/packet"
	"github.com/sondehq/sonde/agent/pipeline"
	"github.com/sondehq/sonde/protocols"
	"github.com/sondehq/sonde/protocols/all"
)

const (
	// flushEvery is how often captured entries go to the sink: often
	// enough that the UI feels live, seldom enough for batches.
	flushEvery = 200 * time.Millisecond
	// expireEvery is how often idle connections are looked for, as
	// `sonde agent` does.
	expireEvery = time.Second
)

// startCapture attaches to the pods' host-side interfaces in the node
// namespace and runs what they capture through the pipeline to the sink.
// The stop function detaches, drains the ring, closes the pipeline's
// connections and flushes their last entries. A capture or sink failure
// while running is sent on failed.
func (d *Demo) startCapture(failed chan<- error) (stop func() error, err error) {
	var ips []netip.Addr
	for _, p := range d.pods {
		ips = append(ips, p.IP, p.IP6)
	}
	src, err := live.Open(live.Config{Pods: ips, Netns: d.lab.Node.Handle, Log: d.cfg.Log})
	if err != nil {
		return nil, fmt.Errorf("starting the capture: %w", err)
	}
	st := src.Stats()
	fmt.Fprintf(d.out, "capture: %s on %d interfaces of the node namespace\n", st.Source, st.Interfaces)

	// Entries are emitted under p's lock; mu guards what they are collected in.
	var mu sync.Mutex
	var pending []*protocols.Entry
	counts := map[protocols.Protocol]int{}
	cfg := pipeline.DefaultConfig(all.Dissectors())
	cfg.Node, cfg.Source, cfg.IDPrefix = Node, st.Source, Node+"-"
	p := pipeline.NewShared(pipeline.New(cfg, func(e *protocols.Entry) {
		mu.Lock()
		pending = append(pending, e)
		counts[e.Protocol]++
		mu.Unlock()
	}))
	flush := func() error {
		mu.Lock()
		batch := pending
		pending = nil
		mu.Unlock()
		if len(batch) == 0 {
			return nil
		}
		return d.cfg.Sink(batch)
	}

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	// Errors reported while running are not reported again by stop.
	var runErr, sinkErr error
	report := func(err error) {
		select {
		case failed <- err:
		default: // one failure is enough to stop the demo
		}
	}
	wg.Go(func() {
		err := src.Run(ctx, func(f *live.Frame) {
			p.Frame(f.Data, f.WireLen, f.Time, packet.LinkEthernet)
		})
		if err == nil || errors.Is(err, context.Canceled) {
			return
		}
		err = fmt.Errorf("capture: %w", err)
		if ctx.Err() == nil {
			report(err)
			return
		}
		runErr = err
	})
	wg.Go(func() {
		flushTick := time.NewTicker(flushEvery)
		defer flushTick.Stop()
		expireTick := time.NewTicker(expireEvery)
		defer expireTick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-expireTick.C:
				p.Expire(now)
			case <-flushTick.C:
				if sinkErr = flush(); sinkErr != nil {
					report(sinkErr)
					return
				}
			}
		}
	})
	return func() error {
		cancel()
		wg.Wait() // Run has drained the ring and detached
		p.Close(time.Now())
		mu.Lock()
		fmt.Fprintf(d.out, "capture: %s\n", summary(counts))
		mu.Unlock()
		if sinkErr != nil {
			return runErr
		}
		return errors.Join(runErr, flush())
	}, nil
}

// summary says how many entries each protocol gave, in a fixed order.
func summary(counts map[protocols.Protocol]int) string {
	total := 0
	var parts []string
	for _, p := range []protocols.Protocol{protocols.HTTP1, protocols.HTTP2, protocols.GRPC, protocols.Redis, protocols.Kafka, protocols.AMQP} {
		total += counts[p]
		parts = append(parts, fmt.Sprintf("%s %d", p, counts[p]))
	}
	return fmt.Sprintf("%d entries (%s)", total, strings.Join(parts, ", "))
}
