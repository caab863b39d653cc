package main

import (
	"fmt"
	"net"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/sondehq/sonde/cmd/internal/browse"
)

func newProxyCmd() *cobra.Command {
	var (
		port      int
		noBrowser bool
	)
	cmd := &cobra.Command{
		Use:   "proxy",
		Short: "Forward an installed Sonde's hub to localhost:8899 and open the browser",
		Long: `proxy reconnects to a Sonde that 'sonde tap --keep' or 'kubectl apply -k deploy/'
installed: it forwards the hub to localhost (reconnecting when the connection drops)
until Ctrl-C, and leaves the install as it is.`,
		Args: cobra.NoArgs,
	}
	kf := addKubeFlags(cmd, false)
	cmd.Flags().IntVar(&port, "port", DefaultLocalPort, "local port to serve the hub on")
	cmd.Flags().BoolVar(&noBrowser, "no-browser", false, "do not open the browser")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if port <= 0 || port > 65535 {
			return fmt.Errorf("--port %d is not a TCP port", port)
		}
		ctx := cmd.Context()
		k, err := kf.connect(ctx)
		if err != nil {
			return err
		}
		out := cmd.OutOrStdout()
		p := newProgress(out)
		local := net.JoinHostPort("localhost", strconv.Itoa(port))
		url := "http://" + local
		first := true
		fw := &forwarder{k: k, ns: kf.install, local: local,
			status: func(format string, args ...any) { p.status("hub", fmt.Sprintf(format, args...)) },
			onReady: func(pod string) {
				p.done("forwarding %s to %s/%s (Ctrl-C to stop)", url, kf.install, pod)
				if first && !noBrowser {
					browse.Open(url, out)
				}
				first = false
			}}
		return fw.run(ctx)
	}
	return cmd
}
