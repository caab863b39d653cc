package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRoot().ExecuteContext(ctx)
	stop()
	if err != nil {
		var quiet *exitError
		if !errors.As(err, &quiet) {
			fmt.Fprintf(os.Stderr, "sonde: %v\n", err)
		}
		os.Exit(1)
	}
}

// exitError ends the program with a failure after the command already told
// the user why.
type exitError struct{ error }

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:           "sonde",
		Short:         "Sonde shows the traffic inside a Kubernetes cluster, request by request.",
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version,
	}
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return fmt.Errorf("%w (see '%s --help')", err, c.CommandPath())
	})
	root.AddCommand(newReadCmd(), newAgentCmd(), newHubCmd(), newDemoCmd(),
		newTapCmd(), newCleanCmd(), newProxyCmd(), newManifestsCmd(), newCheckCmd(), newVersionCmd())
	return root
}
