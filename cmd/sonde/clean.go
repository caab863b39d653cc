package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/sondehq/sonde/deploy"
)

func newCleanCmd() *cobra.Command {
	var (
		wait    bool
		timeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "clean",
		Short: "Remove Sonde from the cluster",
		Long: `clean deletes every object Sonde installs (whether 'sonde tap --keep' or
'kubectl apply -k deploy/' installed it) and waits for its namespace to be gone.`,
		Args: cobra.NoArgs,
	}
	kf := addKubeFlags(cmd, false)
	cmd.Flags().BoolVar(&wait, "wait", true, "wait until the namespace is gone")
	cmd.Flags().DurationVar(&timeout, "timeout", 2*time.Minute, "how long to wait")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		ctx := cmd.Context()
		k, err := kf.connect(ctx)
		if err != nil {
			return err
		}
		objs, err := installed(ctx, k, kf.install)
		if err != nil {
			return err
		}
		p := newProgress(cmd.OutOrStdout())
		n, err := k.remove(ctx, objs)
		if err != nil {
			p.fail("removed %d objects: %v", n, err)
			return &exitError{err}
		}
		if n == 0 {
			p.done("Sonde is not installed in namespace %s", kf.install)
			return nil
		}
		p.done("removed %d objects", n)
		if wait {
			return waitGone(ctx, k, kf.install, p, timeout)
		}
		return nil
	}
	return cmd
}

// installed lists what an install into ns may hold, whichever options made
// it: rendered with the claim of --storage=pvc and the cluster-filled
// token, whose ServiceAccount the other token lacks.
func installed(ctx context.Context, k *kube, ns string) ([]*unstructured.Unstructured, error) {
	objs, err := deploy.Render(deploy.Options{Namespace: ns, Storage: deploy.StoragePVC})
	if err != nil {
		return nil, err
	}
	return k.withoutForeignNamespace(ctx, objs)
}

// waitGone waits, with a watch, for namespace ns to be deleted.
func waitGone(ctx context.Context, k *kube, ns string, p *progress, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	sel := metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("metadata.name", ns).String()}
	list, err := k.cs.CoreV1().Namespaces().List(ctx, sel)
	if err != nil {
		return fmt.Errorf("waiting for namespace %s: %w", ns, err)
	}
	if len(list.Items) == 0 {
		return nil
	}
	sel.ResourceVersion = list.ResourceVersion
	w, err := k.cs.CoreV1().Namespaces().Watch(ctx, sel)
	if err != nil {
		return fmt.Errorf("waiting for namespace %s: %w", ns, err)
	}
	defer w.Stop()
	tick := time.NewTicker(spinPeriod)
	defer tick.Stop()
	p.status("namespace "+ns, "terminating")
	for {
		select {
		case ev, ok := <-w.ResultChan():
			if !ok {
				return waitGone(ctx, k, ns, p, timeout)
			}
			if ev.Type == watch.Deleted {
				p.done("namespace %s is gone", ns)
				return nil
			}
		case <-tick.C:
			p.tick()
		case <-ctx.Done():
			if ctx.Err() == context.DeadlineExceeded {
				err := fmt.Errorf("namespace %s is still terminating after %v", ns, timeout)
				p.fail("%v", err)
				return &exitError{err}
			}
			return nil
		}
	}
}
