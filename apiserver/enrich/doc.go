// Package enrich names the endpoints of entries: an address at a moment in
// time resolves to a pod, namespace, service and workload. The hub passes
// every entry it ingests through a Resolver before storing it.
//
// The Kubernetes resolver (informers over pods, services and endpointslices,
// answering at the entry's own time because IPs are reused) implements the
// same interface elsewhere; Static serves `sonde read` and the lab from a
// file or flags.
//
// Resolvers must be safe for concurrent use; Static is immutable after
// construction.
package enrich
