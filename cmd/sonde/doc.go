// Command sonde shows the traffic inside a Kubernetes cluster, request by
// request. It is the one shipped binary: the DaemonSet runs it as the agent
// on every node and the hub Deployment as the hub, and users run it for
// read and the cluster commands. This package only wires the others into
// cobra commands; the agent's runtime is agent/runner. The demo is a
// program of its own (cmd/sonde-demo), so that none of the lab is linked
// here.
package main
