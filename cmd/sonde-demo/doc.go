// Command sonde-demo builds a small shop of real services in network
// namespaces on this machine (lab/demo), captures it with the agent's
// runtime (agent/runner) and shows it in the browser: what `make demo` runs.
//
// It is a program of its own so that the shipped sonde binary, which the
// DaemonSet runs on every node, links neither the lab nor the servers and
// clients it starts. The demo is wired as a cluster would be: the hub
// (apiserver) listens on --listen with a token made for this run, and the
// runtime sends it the entries over the ingest websocket, as `sonde agent
// --hub URL --token-file F` does.
package main
