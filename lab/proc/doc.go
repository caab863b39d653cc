// Package proc runs the daemons of the lab's test environments (etcd, the
// control plane, containerd, a kubelet). Each writes to a log file of its
// own, dies with the test binary even when that is killed before its
// cleanup, is stopped with SIGTERM and then for good, and, when it exits
// early, says how its log ended.
package proc
