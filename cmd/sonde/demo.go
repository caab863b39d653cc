package main

import (
	"errors"

	"github.com/spf13/cobra"
)

// errDemoMoved is all `sonde demo` says: the demo is a program of its own,
// so that the binary the DaemonSet runs does not carry the lab, its servers
// and its clients.
var errDemoMoved = errors.New("the demo is a program of its own: run `make demo` in a checkout of Sonde, or bin/sonde-demo after it was built")

func newDemoCmd() *cobra.Command {
	return &cobra.Command{
		Use:                "demo",
		Short:              "Say how to run the demo (make demo, or bin/sonde-demo)",
		DisableFlagParsing: true,
		RunE:               func(*cobra.Command, []string) error { return errDemoMoved },
	}
}
