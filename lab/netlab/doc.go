// Package netlab builds a small network of Linux network namespaces that
// looks like one Kubernetes node to the capture code: a "node" namespace with
// a bridge, "pod" namespaces joined to it by veth pairs, and an iptables DNAT
// rule that gives a pod a "service IP", as kube-proxy would. A routed lab
// (Options.Routed) has no bridge: each pod's address is routed to its own
// veth, as with Calico or Cilium.
//
// It is for tests and for the demo (cmd/sonde-demo), never for the agent's
// production path. It needs root, iproute2 (`ip`) and iptables.
//
// All addresses (10.77.0.0/24, fd00:77::/64, service IPs in 10.96.0.0/24)
// exist only inside the lab's namespaces: traffic never leaves them, and two
// labs never see each other because each has its own node namespace.
//
// Servers and clients run inside a pod with Pod.Listen and Pod.DialContext
// (sockets are created in the pod's namespace and then used from any
// goroutine) or, for programs such as redis-server and iperf3, with
// Pod.Command. Lab.Close removes the namespaces and everything in them;
// tests call it from t.Cleanup so that it runs even when they fail.
//
// Concurrency: a Lab's methods are safe for concurrent use.
package netlab
