package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/sondehq/sonde/apiserver"
	"github.com/sondehq/sonde/cmd/internal/browse"
	"github.com/sondehq/sonde/deploy"
)

func newProxyCmd() *cobra.Command {
	var (
		port      int
		noBrowser bool
		through   string
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
	cmd.Flags().StringVar(&through, "through-namespace", "", "reach a hub run with --kubernetes-access through the Kubernetes API, under your kubeconfig's credentials, coming through this namespace (you need get on traffic.sonde.dev/proxy there); you see the namespaces RBAC lets you get traffic in")
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
		if through != "" {
			return proxyThroughAPI(ctx, k, through, port, noBrowser, out)
		}
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

// proxyThroughAPI serves the hub on localhost through the Kubernetes API
// under the user's own credentials, until ctx ends. The address it prints
// carries the session's token: the credentials are the user's, and no
// other local user or web page may borrow them.
func proxyThroughAPI(ctx context.Context, k *kube, namespace string, port int, noBrowser bool, out io.Writer) error {
	token, err := apiserver.NewSessionToken()
	if err != nil {
		return err
	}
	h, err := apiserver.NewUserProxy(k.rest, namespace, deploy.HubName, &apiserver.Session{Token: token})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", net.JoinHostPort("localhost", strconv.Itoa(port)))
	if err != nil {
		return fmt.Errorf("listening on localhost:%d: %w", port, err)
	}
	url := apiserver.SessionURL("http://"+browse.Addr(ln.Addr()), token)
	fmt.Fprintf(out, "serving Sonde on %s through the Kubernetes API at %s, as you (Ctrl-C to stop)\n", url, k.host)
	if !noBrowser {
		browse.Open(url, out)
	}
	hs := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		hs.Close()
	}()
	if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
