package main

import (
	"time"

	"github.com/spf13/cobra"
	"hl.dev/hl/metal"
)

type metalReprovisionOptions struct {
	stateFlags
	Server string
	Rejoin bool
	Window time.Duration
}

// provisioner is the API of a running serve (server) or the state file
// (opening install windows of the given length).
func (s *shared) provisioner(dir, server string, sf metal.StateFile, window time.Duration) (metal.Provisioner, error) {
	tok := ""
	if server != "" {
		var err error
		if tok, err = s.token(tokenSource{What: "hl metal serve API token (metal/secrets/metal-api-token.sops.yaml)", Env: []string{envMetalAPIToken}}); err != nil {
			return nil, err
		}
	}
	return metal.NewProvisioner(dir, server, tok, sf, window)
}

func newMetalReprovisionCmd(s *shared) *cobra.Command {
	ios := s.ios
	opts := &metalReprovisionOptions{}
	cmd := &cobra.Command{
		Use:   "reprovision NODE",
		Short: "Mark a node for reinstall and open its install window",
		Long: `Mark NODE for reinstall and open its install window: if it PXE-boots
within --install-timeout (with --server: the server's), it gets the
installer again and its k3s config once. Without --server it edits the
state file of hl metal serve on this host; with --server it asks a running
hl metal serve (token in $HL_METAL_API_TOKEN). It does not reboot the node
(hl metal rollout does, after draining it).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := s.provisioner(opts.Dir, opts.Server, opts.stateFile(), opts.Window)
			if err != nil {
				return err
			}
			if err := p.Reprovision(cmd.Context(), args[0], opts.Rejoin); err != nil {
				return &exitError{code: 1, msg: err.Error()}
			}
			if ios.JSON() {
				return ios.WriteJSON(map[string]any{"node": args[0], "status": metal.StatusInstall, "rejoin": opts.Rejoin})
			}
			ios.Printf("%s: install window open; it reinstalls when it PXE-boots\n", args[0])
			return nil
		},
	}
	opts.add(cmd)
	cmd.Flags().StringVar(&opts.Server, "server", "", "URL of a running hl metal serve (default: edit the local state file)")
	cmd.Flags().BoolVar(&opts.Rejoin, "rejoin", false, "first server only: join the running cluster instead of cluster-init")
	cmd.Flags().DurationVar(&opts.Window, "install-timeout", metal.DefaultInstallWindow, "without --server: how long the install window stays open")
	return cmd
}

func newMetalStatusCmd(s *shared) *cobra.Command {
	ios := s.ios
	opts := &metalReprovisionOptions{}
	cmd := &cobra.Command{
		Use:   "status",
		Short: "List the nodes and their install state",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := s.provisioner(opts.Dir, opts.Server, opts.stateFile(), 0)
			if err != nil {
				return err
			}
			sts, err := p.Nodes(cmd.Context())
			if err != nil {
				return &exitError{code: 1, msg: err.Error()}
			}
			if ios.JSON() {
				return ios.WriteJSON(sts)
			}
			for _, s := range sts {
				when := ""
				if !s.InstalledAt.IsZero() {
					when = " (installed " + s.InstalledAt.Format(time.RFC3339) + ")"
				}
				ios.Printf("%-12s %-6s %s %-15s %s%s\n", s.Name, s.Role, s.MAC, s.IP, s.Status, when)
			}
			return nil
		},
	}
	opts.add(cmd)
	cmd.Flags().StringVar(&opts.Server, "server", "", "URL of a running hl metal serve (default: read the local state file)")
	return cmd
}
