package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"hl.dev/hl/internal/config"
	"hl.dev/hl/internal/fsutil"
	"hl.dev/hl/metal"
)

type metalKubeconfigOptions struct {
	stateFlags
	Out           string
	Force         bool
	SSHUser       string
	SSHKey        string
	SSHPort       int
	SSHKnownHosts string
	SSHInsecure   bool
}

func newMetalKubeconfigCmd(s *shared) *cobra.Command {
	opts := &metalKubeconfigOptions{}
	cmd := &cobra.Command{
		Use:   "kubeconfig",
		Short: "Fetch the cluster's admin kubeconfig from the first server",
		Long: `Fetch the admin kubeconfig k3s wrote on the first server, over SSH as the
nodes' admin user with the SSH key hl installed (--ssh-key or
$HL_METAL_SSH_KEY), trusting only the host key that server reported when it
installed (hl metal serve's state). The server address becomes the control
plane's: the VIP with several servers, else the server's IP; cluster, user
and context are named after the homelab. Written 0600 to --out (default
~/.kube/<name>.yaml); an existing different file is kept unless --force.
Then: hl bootstrap cluster --kubeconfig <that file>.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runMetalKubeconfig(cmd.Context(), s, opts)
		},
	}
	opts.add(cmd)
	f := cmd.Flags()
	f.StringVar(&opts.Out, "out", "", "kubeconfig file to write (default ~/.kube/<homelab name>.yaml)")
	f.BoolVar(&opts.Force, "force", false, "replace an existing, different kubeconfig file")
	f.StringVar(&opts.SSHUser, "ssh-user", "hl", "SSH user on the nodes")
	f.StringVar(&opts.SSHKey, "ssh-key", "", "SSH private key file (default: $HL_METAL_SSH_KEY content)")
	f.IntVar(&opts.SSHPort, "ssh-port", 22, "SSH port of the nodes")
	f.StringVar(&opts.SSHKnownHosts, "ssh-known-hosts", "", "known_hosts file (default: pin the host key the server reported at install)")
	f.BoolVar(&opts.SSHInsecure, "ssh-insecure", false, "do not check the SSH host key")
	return cmd
}

func runMetalKubeconfig(ctx context.Context, s *shared, opts *metalKubeconfigOptions) error {
	h, err := s.homelab(filepath.Join(opts.Dir, config.FileName))
	if err != nil {
		return err
	}
	signer, err := s.sshSigner(opts.SSHKey)
	if err != nil {
		return err
	}
	out := opts.Out
	if out == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return &exitError{code: 2, msg: "no home folder: pass --out"}
		}
		out = filepath.Join(home, ".kube", h.Metadata.Name+".yaml")
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	data, err := metal.Kubeconfig(ctx, metal.KubeconfigOptions{
		Dir: opts.Dir, State: opts.stateFile(), Name: h.Metadata.Name,
		SSH: metal.SSH{User: opts.SSHUser, Port: opts.SSHPort, Signer: signer, KnownHosts: opts.SSHKnownHosts, Insecure: opts.SSHInsecure},
	})
	if err != nil {
		return &exitError{code: 1, msg: err.Error()}
	}
	if old, err := os.ReadFile(out); err == nil && !bytes.Equal(old, data) && !opts.Force {
		return &exitError{code: 1, msg: fmt.Sprintf("%s exists and differs: pass --force to replace it, or --out elsewhere", out)}
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return &exitError{code: 1, msg: err.Error()}
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o700); err != nil {
		return &exitError{code: 1, msg: err.Error()}
	}
	if err := fsutil.WriteFileAtomic(out, data, 0o600); err != nil {
		return &exitError{code: 1, msg: err.Error()}
	}
	s.ios.Errorf("wrote %s (0600): hl bootstrap cluster --kubeconfig %s\n", out, out)
	return nil
}
