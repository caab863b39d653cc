// Package rabbit runs a private RabbitMQ node from Debian's rabbitmq-server
// package, for the live AMQP tests and for the demo (cmd/sonde-demo): its
// own epmd, ports, node name, configuration and directories, in the caller's
// network namespace or in a lab pod's, never the system service or its files.
//
// Start waits until the node accepts AMQP (the Erlang VM takes seconds);
// Node.Stop ends the node and every process it started, and removes its
// directory. A node whose owner dies without stopping it gets SIGTERM from
// the kernel (Pdeathsig) and stops cleanly.
//
// Concurrency: Start may be called from any goroutine; Stop once.
package rabbit
