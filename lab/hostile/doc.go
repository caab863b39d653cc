// Package hostile runs the real agent (`sonde agent`, built from this
// checkout) in a cgroup v1 memory cgroup limited to what deploy/agent.yaml
// gives the DaemonSet, capturing a veth of a network lab (lab/netlab) while
// clients in the lab send what any client of a captured pod could: many
// gzip POSTs that wait for responses that never come, and large requests
// left unanswered on many connections. Its test asserts that the agent is
// never OOM-killed, reports its peak memory (memory.max_usage_in_bytes),
// and checks that what it had to give up was counted.
//
// It needs root and the cgroup v1 memory controller
// (/sys/fs/cgroup/memory); without them the test skips and says which is
// missing. It is for tests only; nothing shipped imports it.
package hostile
