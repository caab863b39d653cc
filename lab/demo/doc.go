// Package demo is the demo that cmd/sonde-demo runs: a pretend Kubernetes
// node built from network namespaces (lab/netlab), with real services of
// every protocol Sonde dissects talking to each other, captured live by the
// eBPF agent.
//
// The shop it runs: a frontend calls an HTTP/1 JSON API through a service
// IP; the API reads a catalog over HTTP/2 (h2c), charges payments over gRPC
// (a unary call and a server stream), caches in redis-server and produces
// order events to a Kafka broker (franz-go's kfake); payments publishes to
// rabbitmq-server, and a worker consumes both the Kafka topic and the AMQP
// queue. Some calls fail (404s, declined cards, Redis WRONGTYPE, an
// unroutable publish) and some are slow (a report, payments past their
// deadline). The frontend makes Config.Rate requests a second at most, each
// bounded in time. Debian's redis-server and rabbitmq-server are used when
// installed; without them their protocol is skipped, saying so in one line.
//
// Capture runs on the lab's host-side interfaces (agent/capture/live), in
// the node namespace, through the agent's runtime (agent/runner), which
// sends the entries to Config.Hub over the ingest websocket, exactly as
// `sonde agent --hub` does. Names lists the lab's addresses with the pod,
// namespace, service and workload they stand for, for the hub's resolver.
//
// Run tears down everything it made when its context ends: clients, then
// the capture (its TC attachments and eBPF programs), then the servers and
// their processes, then every namespace with its veths and iptables rules.
// It needs root, iproute2 and iptables.
//
// Concurrency: New, Names and Run are called from one goroutine; Run once.
package demo
