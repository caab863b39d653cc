// Command pause is the sandbox image's program: containerd's CRI starts one
// per pod to hold the pod's namespaces, and the node's containerd is told to
// use this one because no registry is reachable to pull the usual one. It
// does nothing until it is told to stop, and reaps the children that a
// shared PID namespace would hand it.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for s := range sigs {
		if s != syscall.SIGCHLD {
			os.Exit(0)
		}
		for {
			var ws syscall.WaitStatus
			if pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil); pid <= 0 || err != nil {
				break
			}
		}
	}
}
