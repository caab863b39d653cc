package demo

import (
	"context"
	"fmt"
	"net/netip"
	"strings"

	"github.com/sondehq/sonde/agent/capture/live"
	"github.com/sondehq/sonde/agent/runner"
	"github.com/sondehq/sonde/protocols"
)

// startCapture attaches to the pods' host-side interfaces in the node
// namespace and runs the agent's runtime on them, sending to the hub as
// `sonde agent --hub` does. The stop function detaches, drains the ring,
// closes the pipeline's connections and waits for the hub to acknowledge
// their last entries. A capture failure while running is sent on failed.
func (d *Demo) startCapture(failed chan<- error) (stop func() error, err error) {
	var ips []netip.Addr
	for _, p := range d.pods {
		ips = append(ips, p.IP, p.IP6)
	}
	hub := d.cfg.Hub
	rt, err := runner.Open(runner.Config{
		Live: &live.Config{Pods: ips, Netns: d.lab.Node.Handle},
		Node: Node, Version: d.cfg.Version, Hub: &hub, Log: d.cfg.Log,
	})
	if err != nil {
		return nil, err
	}
	st := rt.Source().Stats()
	fmt.Fprintf(d.out, "capture: %s on %d interfaces of the node namespace\n", st.Source, st.Interfaces)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		err := rt.Run(ctx)
		if err != nil && ctx.Err() == nil {
			select {
			case failed <- err:
				err = nil // reported once, while running
			default: // one failure is enough to stop the demo
			}
		}
		done <- err
	}()
	return func() error {
		cancel()
		err := <-done // Run has drained the ring, detached and flushed
		fmt.Fprintf(d.out, "capture: %s\n", summary(rt.Stats().Pipeline.Entries))
		return err
	}, nil
}

// summary says how many entries each protocol gave, in a fixed order.
func summary(counts map[protocols.Protocol]uint64) string {
	var total uint64
	var parts []string
	for _, p := range []protocols.Protocol{protocols.HTTP1, protocols.HTTP2, protocols.GRPC, protocols.Redis, protocols.Kafka, protocols.AMQP} {
		total += counts[p]
		parts = append(parts, fmt.Sprintf("%s %d", p, counts[p]))
	}
	return fmt.Sprintf("%d entries (%s)", total, strings.Join(parts, ", "))
}
