// Package kube tells a node's agent which pods to capture: it watches the
// pods scheduled to its own node (one watch, through which client-go also
// lists, with the field selector spec.nodeName, so that an agent's cost to
// the API server does not grow with the cluster) and reports the addresses of those that a Selector
// picks whenever that set changes. The capture attaches to the interfaces
// behind those addresses (see agent/capture/live).
//
// The selection comes from the agent's flags (Selector.AddFlags), which the
// DaemonSet that `sonde tap` renders sets: a pod name pattern, namespaces to
// capture and namespaces to leave alone. Pods come and go without any word
// from the CLI; a new node gets an agent from the DaemonSet, and that agent
// finds its pods itself.
//
// Pods on the host's network are never selected: their address is the
// node's, and capturing it would capture the node. Neither are pods without
// an address yet or whose containers have all finished.
//
// Concurrency: calls of OnChange never overlap, and each sees the set that
// the one before it was followed by; Pods is safe for concurrent use.
package kube
