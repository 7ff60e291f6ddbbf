package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"hl.dev/hl/bootstrap"
	"hl.dev/hl/internal/config"
	"hl.dev/hl/metal"
	"hl.dev/hl/up"
	"hl.dev/hl/validate"
)

// upOptions are hl metal serve's (hl up runs the server) and the rest.
type upOptions struct {
	metalServeOptions
	Kubeconfig    string
	SSHUser       string
	SSHKey        string
	SSHPort       int
	SSHKnownHosts string
	TokenFile     string
	ChartCache    string
	Offline       bool
	Timeout       time.Duration
}

func newUpCmd(s *shared) *cobra.Command {
	opts := &upOptions{}
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Day one in one command: PXE-install every node, bootstrap the cluster, wait for Argo CD",
		Long: `Bring the homelab of the rendered repo (--dir) up from empty disks, on the
PXE host, step by step:

  images      hl metal images pull: the pinned kernel and initrd, sha256-checked
  nodes       hl metal serve until every node of hl.yaml has installed and
              called back (power them on with network boot first); the
              server keeps running until hl up ends
  kubeconfig  hl metal kubeconfig: from the first server over SSH, trusting
              the host key it reported at install; written 0600 to --kubeconfig
  forge       hl bootstrap gitea, for a forge outside the cluster
  cluster     hl bootstrap cluster (the in-cluster Gitea seeded there)
  sync        wait until Argo CD reports every Application Synced and Healthy

Then it prints the URLs and the files that hold the sign-in credentials
(never a value). Each finished step is recorded in .hl-up.json in --dir
(ignored by git); a re-run checks that each recorded step still holds
and goes on from there, so after an interruption run hl up again.
On a terminal each step is one line that its result replaces; otherwise
one line per event.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runUp(cmd.Context(), s, opts)
		},
	}
	opts.metalServeOptions.add(cmd)
	f := cmd.Flags()
	f.Lookup("access-log").Usage = "append the PXE access log to this file (default: access.log beside the install state)"
	f.Lookup("age-key").Usage = "age identity file (default: $SOPS_AGE_KEY_FILE, $SOPS_AGE_KEY, then hl's own)"
	f.StringVar(&opts.Kubeconfig, "kubeconfig", "", "kubeconfig file to write and use (default ~/.kube/<homelab name>.yaml)")
	f.StringVar(&opts.SSHUser, "ssh-user", "hl", "SSH user on the nodes")
	f.StringVar(&opts.SSHKey, "ssh-key", "", "SSH private key file (default: $HL_METAL_SSH_KEY content, then ~/.ssh/id_ed25519)")
	f.IntVar(&opts.SSHPort, "ssh-port", 22, "SSH port of the nodes")
	f.StringVar(&opts.SSHKnownHosts, "ssh-known-hosts", "", "known_hosts file (default: pin the host key the server reported at install)")
	f.StringVar(&opts.TokenFile, "token-file", "", "Gitea token file for a forge outside the cluster (default $"+envGiteaToken+")")
	f.StringVar(&opts.ChartCache, "chart-cache", "", "chart cache (default $HL_CHART_CACHE or ~/.cache/hl/charts)")
	f.BoolVar(&opts.Offline, "offline", false, "render from the chart cache only")
	f.DurationVar(&opts.Timeout, "timeout", 30*time.Minute, "bound on waiting for Argo CD")
	return cmd
}

func runUp(ctx context.Context, s *shared, opts *upOptions) error {
	ios := s.ios
	h, err := s.homelab(filepath.Join(opts.Dir, config.FileName))
	if err != nil {
		return err
	}
	ids, err := s.identities(opts.AgeKey, true)
	if err != nil {
		return err
	}
	home, _ := os.UserHomeDir()
	kubeconfig := opts.Kubeconfig
	if kubeconfig == "" {
		if home == "" {
			return &exitError{code: 2, msg: "no home folder: pass --kubeconfig"}
		}
		kubeconfig = filepath.Join(home, ".kube", h.Metadata.Name+".yaml")
	}
	keyFile := opts.SSHKey
	if def := filepath.Join(home, ".ssh", "id_ed25519"); keyFile == "" && os.Getenv(envSSHKey) == "" && home != "" {
		keyFile = def
	}
	signer, err := s.sshSigner(keyFile)
	if err != nil {
		return err
	}
	var token string
	if in, _ := h.InClusterForge(); !in {
		if token, err = s.token(tokenSource{What: "Gitea token", File: opts.TokenFile, Env: []string{envGiteaToken},
			Prompt: "Gitea access token (site administrator)"}); err != nil {
			return err
		}
	}
	state := opts.stateFile()
	accessLog := opts.AccessLog
	if accessLog == "" {
		accessLog = filepath.Join(filepath.Dir(state.Path), "access.log")
	}
	if err := os.MkdirAll(filepath.Dir(accessLog), 0o755); err != nil {
		return &exitError{code: 1, msg: err.Error()}
	}
	logf, err := os.OpenFile(accessLog, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o640)
	if err != nil {
		return &exitError{code: 1, msg: err.Error()}
	}
	defer logf.Close()
	serve, err := opts.serveOptions(ids, logf)
	if err != nil {
		return err
	}
	log, err := s.logger()
	if err != nil {
		return err
	}
	p := newUpPrinter(ios.Out, ios.IsStdoutTTY())
	inner := func(r bootstrap.StepResult) {
		if r.Status != bootstrap.StatusRunning {
			p.logf("%s %s %s %s", stepMarks[r.Status], r.Name, r.Status, r.Detail+r.Error)
		}
	}
	d, err := up.NewDayOne(up.Options{
		Dir: opts.Dir, Homelab: h, Kubeconfig: kubeconfig, SyncTimeout: opts.Timeout, Log: p,
		Pull:  metal.PullOptions{CacheDir: opts.Cache},
		Serve: serve,
		FetchKubeconfig: func(ctx context.Context) ([]byte, error) {
			ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
			defer cancel()
			return metal.Kubeconfig(ctx, metal.KubeconfigOptions{Dir: opts.Dir, State: state, Name: h.Metadata.Name,
				SSH: metal.SSH{User: opts.SSHUser, Port: opts.SSHPort, Signer: signer, KnownHosts: opts.SSHKnownHosts}})
		},
		Forge: bootstrap.Options{Token: token, Identities: ids, Progress: inner, Logger: log},
		Cluster: bootstrap.ClusterOptions{Identities: ids, Progress: inner, Seed: bootstrap.Options{Logger: log},
			Render: validate.Options{CacheDir: opts.ChartCache, Offline: opts.Offline, Log: p}},
	})
	if err != nil {
		return &exitError{code: 1, msg: err.Error()}
	}
	defer d.Close()
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := up.Run(ctx, opts.Dir, d.Steps(), p.event); err != nil {
		msg := "hl up: " + err.Error() + "; run hl up again to go on from here"
		if errors.Is(err, context.Canceled) {
			msg = "hl up: stopped; run hl up again to go on from here"
		}
		return &exitError{code: 1, msg: msg}
	}
	sum, err := up.Summary(opts.Dir, h, kubeconfig)
	if err != nil {
		return &exitError{code: 1, msg: err.Error()}
	}
	fmt.Fprint(ios.Out, "\n"+sum)
	return nil
}
