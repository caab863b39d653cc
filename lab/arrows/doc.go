// Package arrows holds the test that keeps the direction of imports that
// DESIGN.md draws: the agent never imports the hub, the contract
// (protocols and protocols/wire) stays on the standard library, a dissector
// never imports another protocol nor a capture, cluster or query library,
// the hub never imports the agent or the eBPF loader, nothing shipped
// imports the lab (the demo's program, cmd/sonde-demo, is not shipped), and
// the shipped binary links none of the demo's servers and clients. It
// reads the import graph with `go list`, so a wrong import fails
// `go test ./...` (and `make test`) rather than waiting for a reviewer.
// Extend the rules as the tree grows.
package arrows
