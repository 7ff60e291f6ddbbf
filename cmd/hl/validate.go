package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"hl.dev/hl/internal/iostreams"
	"hl.dev/hl/validate"
)

type validateOptions struct {
	Dir        string
	Offline    bool
	Cache      string
	Kube       string
	Policies   []string
	Server     bool
	Kubeconfig string
	Scratch    bool
}

func newValidateCmd(s *shared) *cobra.Command {
	opts := &validateOptions{}
	var ids []string
	for _, p := range validate.Policies {
		ids = append(ids, p.ID)
	}
	cmd := &cobra.Command{
		Use:   "validate [DIR]",
		Short: "Prove the rendered repo is deployable: kustomize + helm in-process, schemas, policies",
		Long: `Render every kustomization (kustomize api) and Helm wrapper chart (helm SDK, charts
from the local cache) in-process, check every manifest against its schema
(k8s.io/api strict decoding, CRD schemas in schemas/crds) and enforce the
policies. Exits 1 on any error. Downgrade a policy for good in hl.yaml
(spec.validation.policies: {ID: warning|off}); --policy ID=warning does it for one run.

Policies: ` + strings.Join(ids, ", "),
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Dir = "."
			if len(args) == 1 {
				opts.Dir = args[0]
			}
			return runValidate(cmd.Context(), s, opts)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&opts.Offline, "offline", false, "use only the chart cache; name what is missing")
	f.StringVar(&opts.Cache, "chart-cache", "", "chart cache folder (default $HL_CHART_CACHE or ~/.cache/hl/charts)")
	f.StringVar(&opts.Kube, "kube-version", "", "Kubernetes version to render for (default: hl.yaml's k3s version)")
	f.StringArrayVar(&opts.Policies, "policy", nil, "ID=error|warning|off for this run (record lasting choices in hl.yaml)")
	f.BoolVar(&opts.Server, "server", false, "also dry-run apply everything against an API server (--kubeconfig): CEL rules, value ranges, admission")
	f.StringVar(&opts.Kubeconfig, "kubeconfig", "", "with --server: the API server's kubeconfig (default $HL_KUBECONFIG, $KUBECONFIG, ~/.kube/config)")
	f.BoolVar(&opts.Scratch, "scratch", false, "with --server: a throw-away server; create the repo's CRDs and namespaces on it for real so every object is checked")
	return cmd
}

func policyFlags(flags []string) (map[string]string, error) {
	out := map[string]string{}
	for _, p := range flags {
		id, sev, ok := strings.Cut(p, "=")
		if !ok {
			return nil, fmt.Errorf("--policy %q: want ID=error|warning|off", p)
		}
		out[id] = sev
	}
	return out, nil
}

func runValidate(ctx context.Context, s *shared, opts *validateOptions) error {
	ios := s.ios
	pol, err := policyFlags(opts.Policies)
	if err != nil {
		return &exitError{code: 2, msg: err.Error()}
	}
	vo := validate.Options{Dir: opts.Dir, CacheDir: opts.Cache, Offline: opts.Offline, KubeVersion: opts.Kube, Policies: pol, Log: ios.ErrOut, Scratch: opts.Scratch}
	if opts.Server {
		if vo.Server, err = s.kube(opts.Kubeconfig); err != nil {
			return err
		}
	}
	rep, err := validate.Run(ctx, vo)
	if err != nil {
		return &exitError{code: 2, msg: err.Error()}
	}
	if ios.JSON() {
		err = rep.WriteJSON(ios.Out)
	} else {
		err = rep.WriteText(ios.Out)
	}
	if err != nil {
		return err
	}
	if rep.HasErrors() {
		return &exitError{code: 1}
	}
	return nil
}

type chartsPullOptions struct {
	Dir   string
	Cache string
}

func newChartsCmd(ios *iostreams.IOStreams) *cobra.Command {
	cmd := &cobra.Command{Use: "charts", Short: "Manage the local chart cache hl validate renders from"}
	opts := &chartsPullOptions{}
	pull := &cobra.Command{
		Use:   "pull [DIR]",
		Short: "Fill the chart cache from every Chart.yaml dependency (HTTP and OCI), honouring spec.mirrors",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Dir = "."
			if len(args) == 1 {
				opts.Dir = args[0]
			}
			pulled, err := validate.PullCharts(cmd.Context(), validate.Options{Dir: opts.Dir, CacheDir: opts.Cache, Log: ios.ErrOut})
			if ios.JSON() {
				if jerr := ios.WriteJSON(pulled); jerr != nil {
					return jerr
				}
			} else {
				for _, p := range pulled {
					ios.Printf("%s %s %s -> %s\n", p.Repository, p.Name, p.Version, p.File)
				}
			}
			if err != nil {
				return &exitError{code: 1, msg: err.Error()}
			}
			return nil
		},
	}
	pull.Flags().StringVar(&opts.Cache, "chart-cache", "", "chart cache folder (default $HL_CHART_CACHE or ~/.cache/hl/charts)")
	cmd.AddCommand(pull)
	return cmd
}
