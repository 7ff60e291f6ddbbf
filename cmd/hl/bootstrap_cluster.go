package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"hl.dev/hl/bootstrap"
	"hl.dev/hl/validate"
)

type bootstrapClusterOptions struct {
	Dir        string
	Kubeconfig string
	AgeKey     string
	ChartCache string
	Offline    bool
	Wait       bool
	Healthy    bool
	Timeout    time.Duration
	DryRun     bool
}

func newBootstrapClusterCmd(s *shared) *cobra.Command {
	opts := &bootstrapClusterOptions{}
	cmd := &cobra.Command{
		Use:   "cluster",
		Short: "Install Argo CD, seed the in-cluster Gitea and hand the cluster to Argo CD",
		Long: `Bootstrap a cluster from the rendered repository (--dir), step by step:

  namespaces      argocd, and those that read the age key
  sops-age        the age identity as Secret sops-age where secrets are decrypted
  crds            Argo CD's CRDs, waited for until Established
  argocd          Argo CD (bootstrap/, rendered in-process like hl validate)
  forge           the in-cluster Gitea: installed, waited for, reached through a
                  port-forward and seeded (hl bootstrap gitea) with the
                  administrator credentials hl generated
  argocd-secrets  Argo CD's own secrets, its repository credentials included
  root            the AppProjects and the root ApplicationSets
  sync            with --wait: every Application synced (and healthy with --healthy)

Everything is applied server-side (field manager hl): a second run changes
nothing, and a run stopped anywhere completes when run again. --dry-run asks
the API server to check every object and creates nothing. The kubeconfig is
--kubeconfig, $HL_KUBECONFIG, $KUBECONFIG or ~/.kube/config (hl metal
kubeconfig writes one).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runBootstrapCluster(cmd.Context(), s, opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Dir, "dir", ".", "the rendered repository (holds hl.yaml)")
	f.StringVar(&opts.Kubeconfig, "kubeconfig", "", "kubeconfig of the cluster")
	f.StringVar(&opts.AgeKey, "age-key", "", "age identity file (default: $SOPS_AGE_KEY_FILE, $SOPS_AGE_KEY, then hl's own)")
	f.StringVar(&opts.ChartCache, "chart-cache", "", "chart cache (default $HL_CHART_CACHE or ~/.cache/hl/charts)")
	f.BoolVar(&opts.Offline, "offline", false, "render from the chart cache only")
	f.BoolVar(&opts.Wait, "wait", false, "wait until Argo CD reports every Application synced")
	f.BoolVar(&opts.Healthy, "healthy", false, "with --wait: also healthy")
	f.DurationVar(&opts.Timeout, "timeout", 30*time.Minute, "bound on --wait")
	f.BoolVar(&opts.DryRun, "dry-run", false, "server-side dry run: check everything, create nothing")
	return cmd
}

func runBootstrapCluster(ctx context.Context, s *shared, opts *bootstrapClusterOptions) error {
	ios := s.ios
	ids, err := s.identities(opts.AgeKey, true)
	if err != nil {
		return err
	}
	kube, err := s.kube(opts.Kubeconfig)
	if err != nil {
		return err
	}
	log, err := s.logger()
	if err != nil {
		return err
	}
	co := bootstrap.ClusterOptions{
		Dir: opts.Dir, Kube: kube, Identities: ids, Seed: bootstrap.Options{Logger: log},
		Render: validate.Options{CacheDir: opts.ChartCache, Offline: opts.Offline, Log: ios.ErrOut},
		Wait:   opts.Wait, Healthy: opts.Healthy, Timeout: opts.Timeout, DryRun: opts.DryRun,
	}
	if !ios.JSON() {
		p := &stepPrinter{ios: ios, tty: ios.IsStdoutTTY()}
		co.Progress = p.print
	}
	res, err := bootstrap.Cluster(ctx, co)
	if res != nil {
		if ios.JSON() {
			out := struct {
				*bootstrap.ClusterResult
				Error string `json:"error,omitempty"`
			}{ClusterResult: res}
			if err != nil {
				out.Error = err.Error()
			}
			if werr := ios.WriteJSON(out); werr != nil {
				return werr
			}
		} else {
			for _, w := range res.Warnings {
				s.warn(w)
			}
			for _, n := range res.NotReady {
				fmt.Fprintln(ios.ErrOut, "not ready:", n)
			}
		}
	}
	if err != nil {
		return &exitError{code: 1, msg: "hl bootstrap cluster: " + err.Error()}
	}
	if !ios.JSON() {
		verb := "bootstrapped"
		if opts.DryRun {
			verb = "dry run: nothing created;"
		}
		fmt.Fprintf(ios.ErrOut, "%s the cluster: Argo CD syncs %s from here on\n", verb, opts.Dir)
	}
	return nil
}
