package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"
)

func newVersionCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version of sonde and of the cluster it talks to",
		Args:  cobra.NoArgs,
	}
	kf := addKubeFlags(cmd, false)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		out := cmd.OutOrStdout()
		fmt.Fprintf(out, "sonde:   %s\n", version)
		ctx, cancel := context.WithTimeout(cmd.Context(), 5*time.Second)
		defer cancel()
		k, err := kf.connect(ctx)
		if err != nil {
			fmt.Fprintf(out, "cluster: %v\n", err)
			return nil
		}
		fmt.Fprintf(out, "cluster: %s at %s\n", k.server, k.host)
		return nil
	}
	return cmd
}
