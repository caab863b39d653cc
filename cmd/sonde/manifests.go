package main

import (
	"github.com/spf13/cobra"

	"github.com/sondehq/sonde/deploy"
)

func newManifestsCmd() *cobra.Command {
	var (
		inst       installFlags
		install    string
		namespaces []string
	)
	cmd := &cobra.Command{
		Use:   "manifests [POD-REGEX]",
		Short: "Print the manifests Sonde installs, for GitOps",
		Long: `manifests prints the objects 'sonde tap' would apply, as YAML, with the same
options. The ingest token's Secret is left for the cluster to fill at install (a
service-account token of an account bound to no role), so the output holds no
secret and can be kept in Git.`,
		Args: cobra.MaximumNArgs(1),
	}
	inst.register(cmd)
	cmd.Flags().StringVar(&install, "install-namespace", deploy.DefaultNamespace, "namespace to install into")
	cmd.Flags().StringSliceVarP(&namespaces, "namespace", "n", nil, "capture only pods of these namespaces (default: all)")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		o, err := inst.options(cmd, install)
		if err != nil {
			return err
		}
		if len(args) == 1 {
			o.Pods = args[0]
		}
		o.Namespaces = namespaces
		objs, err := deploy.Render(o)
		if err != nil {
			return err
		}
		return deploy.YAML(cmd.OutOrStdout(), objs)
	}
	return cmd
}
