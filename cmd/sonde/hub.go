package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"

	"github.com/spf13/cobra"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/sondehq/sonde/apiserver"
	"github.com/sondehq/sonde/apiserver/enrich"
	hubkube "github.com/sondehq/sonde/apiserver/kube"
	"github.com/sondehq/sonde/cmd/internal/browse"
	"github.com/sondehq/sonde/protocols/wire"
	"github.com/sondehq/sonde/web"
)

type hubFlags struct {
	kubernetes   bool
	access       bool
	tlsCert      string
	tlsKey       string
	tlsSecret    string
	namespace    string
	kubeconfig   string
	listen       string
	dataDir      string
	storageLimit string
	tokenFile    string
	namesFile    string
	names        []string
	origins      []string
}

func (f *hubFlags) register(cmd *cobra.Command, listen string) {
	fl := cmd.Flags()
	fl.StringVar(&f.listen, "listen", listen, "address to serve the UI and API on")
	fl.StringVar(&f.storageLimit, "storage-limit", "1GiB", "most bytes the store may hold; the oldest entries go first")
	fl.StringVar(&f.namesFile, "names", "", "file of 'ADDRESS pod=NAME namespace=NS service=SVC workload=W node=N' lines naming addresses")
	fl.StringSliceVar(&f.names, "name", nil, `name one address: "10.0.0.7 pod=web-1 namespace=shop" (repeatable)`)
	fl.StringSliceVar(&f.origins, "allow-origin", nil, "other browser origins allowed to open websockets")
}

// hubConfig turns the flags into the hub's configuration.
func (f *hubFlags) hubConfig(log *slog.Logger) (apiserver.Config, error) {
	limit, err := apiserver.ParseSize(f.storageLimit)
	if err != nil {
		return apiserver.Config{}, fmt.Errorf("--storage-limit: %w", err)
	}
	cfg := apiserver.Config{DataDir: f.dataDir, StorageLimit: limit, Logger: log, Version: version,
		UI: web.Handler(), AllowedOrigins: f.origins}
	if f.namesFile != "" || len(f.names) > 0 {
		names, err := enrich.LoadStatic(f.namesFile, f.names)
		if err != nil {
			return cfg, err
		}
		cfg.Resolver = names
	}
	if f.tokenFile != "" {
		if cfg.Token, err = wire.ReadTokenFile(f.tokenFile); err != nil {
			return cfg, err
		}
	}
	return cfg, nil
}

func newHubCmd() *cobra.Command {
	var f hubFlags
	cmd := &cobra.Command{
		Use:   "hub",
		Short: "Run the hub: receive entries from agents, store them, serve the UI and API",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if f.dataDir == "" {
				return errors.New("--data DIR is required: the hub keeps its store there across restarts")
			}
			if f.tokenFile == "" {
				return errors.New("--token-file is required: agents prove themselves with that token")
			}
			if f.access && !f.kubernetes {
				return errors.New("--kubernetes-access needs --kubernetes: the cluster decides who reads what")
			}
			if f.access && f.tlsSecret == "" && (f.tlsCert == "" || f.tlsKey == "") {
				return errors.New("--kubernetes-access needs --tls-secret, or --tls-cert-file and --tls-key-file: the API server reaches the hub over TLS, under the certificate its APIService names")
			}
			log := slog.New(slog.NewJSONHandler(cmd.ErrOrStderr(), nil))
			cfg, err := f.hubConfig(log)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			if f.kubernetes {
				r, err := clusterResolver(f.kubeconfig, log)
				if err != nil {
					return err
				}
				// The store and API serve at once; names fill in as the
				// informers sync.
				go func() {
					if err := r.Run(ctx); err != nil && ctx.Err() == nil {
						log.Error("watching pods and services stopped", "err", err)
					}
				}()
				cfg.Resolver = r
			}
			switch {
			case f.access:
				if cfg.Access, cfg.TLS, err = kubernetesAccess(ctx, &f, log); err != nil {
					return err
				}
			case !loopback(f.listen):
				log.Warn("reads are not authenticated: anyone who reaches this address reads every entry; in a cluster, run with --kubernetes-access", "listen", f.listen)
			}
			return serveHub(ctx, cfg, f.listen, nil, cmd.ErrOrStderr())
		},
	}
	f.register(cmd, "0.0.0.0:8898")
	cmd.Flags().StringVar(&f.dataDir, "data", "", "directory of the store")
	cmd.Flags().StringVar(&f.tokenFile, "token-file", "", "file holding the token agents must present")
	cmd.Flags().BoolVar(&f.kubernetes, "kubernetes", false, "name addresses after the cluster's pods and services (in-cluster credentials, or --kubeconfig)")
	cmd.Flags().BoolVar(&f.access, "kubernetes-access", false, "with --kubernetes: serve readers only through the Kubernetes API (APIService v1alpha1.sonde.dev), each seeing the namespaces RBAC lets them get traffic.sonde.dev in")
	cmd.Flags().StringVar(&f.tlsCert, "tls-cert-file", "", "with --kubernetes-access: the hub's serving certificate (PEM)")
	cmd.Flags().StringVar(&f.tlsKey, "tls-key-file", "", "with --kubernetes-access: its private key (PEM)")
	cmd.Flags().StringVar(&f.tlsSecret, "tls-secret", "", "with --kubernetes-access: keep the serving certificate in this Secret, made on first start, and publish its CA to the APIService and the agents' ConfigMap")
	cmd.Flags().StringVar(&f.namespace, "namespace", "", "with --tls-secret: the hub's namespace (default: its pod's)")
	cmd.Flags().StringVar(&f.kubeconfig, "kubeconfig", "", "with --kubernetes: a kubeconfig file to use instead of the in-cluster credentials")
	return cmd
}

// clusterConfig is the connection to the cluster of hub --kubernetes and
// agent --kubernetes: the pod's ServiceAccount, or a kubeconfig file when
// they run outside the cluster.
func clusterConfig(kubeconfig, userAgent string) (*rest.Config, error) {
	var rc *rest.Config
	var err error
	if kubeconfig != "" {
		rc, err = clientcmd.BuildConfigFromFlags("", kubeconfig)
		if err != nil {
			return nil, fmt.Errorf("--kubeconfig %s: %w", kubeconfig, err)
		}
	} else if rc, err = rest.InClusterConfig(); err != nil {
		return nil, fmt.Errorf("--kubernetes needs to run inside a cluster, or --kubeconfig: %w", err)
	}
	rc.UserAgent = userAgent
	return rc, nil
}

// clusterResolver watches the cluster, to name entries' addresses.
func clusterResolver(kubeconfig string, log *slog.Logger) (*hubkube.Resolver, error) {
	rc, err := clusterConfig(kubeconfig, "sonde-hub/"+version)
	if err != nil {
		return nil, err
	}
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("connecting to the cluster: %w", err)
	}
	return hubkube.New(cs, hubkube.Config{Logger: log})
}

// serveHub runs a hub on listen until ctx ends; load, when set, fills it
// first (sonde read --serve).
func serveHub(ctx context.Context, cfg apiserver.Config, listen string, load func(*apiserver.Server) error, msg io.Writer) error {
	srv, err := apiserver.New(cfg)
	if err != nil {
		return err
	}
	defer srv.Close()
	if load != nil {
		if err := load(srv); err != nil {
			return err
		}
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", listen, err)
	}
	scheme := "http://"
	if cfg.TLS != nil {
		scheme = "https://"
	}
	url := scheme + browse.Addr(ln.Addr())
	if cfg.Session != nil {
		url = apiserver.SessionURL(url, cfg.Session.Token)
	}
	fmt.Fprintf(msg, "serving Sonde on %s (Ctrl-C to stop)\n", url)
	// A store that failed for good ends the hub with its error, so that the
	// process exits non-zero and is restarted, rather than go on serving
	// while it takes nothing.
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	go func() {
		select {
		case <-srv.Failed():
			stop()
		case <-ctx.Done():
		}
	}()
	err = srv.Serve(ctx, ln)
	if ferr := srv.Err(); ferr != nil {
		return fmt.Errorf("the hub stopped: %w", ferr)
	}
	return err
}
