package main

import (
	"context"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"hl.dev/hl/internal/iostreams"
	"hl.dev/hl/metal"
	"k8s.io/client-go/kubernetes"
)

type metalRolloutOptions struct {
	stateFlags
	Base          string
	BaseDir       string
	DryRun        bool
	Server        string
	Kubeconfig    string
	SSHUser       string
	SSHKey        string
	SSHPort       int
	SSHKnownHosts string
	SSHInsecure   bool
	RebootCommand string
	WoLAddr       string
	DrainTimeout  time.Duration
	ReadyTimeout  time.Duration
}

func newMetalRolloutCmd(s *shared) *cobra.Command {
	opts := &metalRolloutOptions{}
	cmd := &cobra.Command{
		Use:   "rollout",
		Short: "Reinstall the nodes a metal change affects, one at a time",
		Long: `Compare metal/ of the repo at --dir with the --base revision (or
--base-dir) and reinstall every node whose OS image, install files or
index entry changed: servers first, then agents. Per node: check the
others are Ready, cordon, drain through the eviction API (PodDisruption-
Budgets respected, --drain-timeout), remove its k3s password (servers:
its Node object, so k3s drops its etcd member), mark it for reinstall,
reboot it over SSH (Wake-on-LAN when it is not Ready), wait until it
called back installed and is Ready at the pinned k3s and OS
(--ready-timeout), uncordon. The first failure stops the rollout; the
nodes after it are not touched. A k3s-only bump is left to the
system-upgrade-controller Plans. --dry-run prints the plan only.

Credentials: $HL_METAL_API_TOKEN (hl metal serve API), $HL_METAL_SSH_KEY
or --ssh-key, $HL_KUBECONFIG (kubeconfig content) or --kubeconfig
(default: in-cluster, then $KUBECONFIG / ~/.kube/config).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runMetalRollout(cmd.Context(), s, opts)
		},
	}
	opts.add(cmd)
	f := cmd.Flags()
	f.StringVar(&opts.Base, "base", "HEAD~1", "git revision the change is compared with")
	f.StringVar(&opts.BaseDir, "base-dir", "", "compare with the repo checked out in this folder instead of --base")
	f.BoolVar(&opts.DryRun, "dry-run", false, "print the plan and change nothing")
	f.StringVar(&opts.Server, "server", "", "URL of hl metal serve (default: metal/nodes.yaml's server; --state uses the local state file)")
	f.StringVar(&opts.Kubeconfig, "kubeconfig", "", "kubeconfig file")
	f.StringVar(&opts.SSHUser, "ssh-user", "hl", "SSH user on the nodes")
	f.StringVar(&opts.SSHKey, "ssh-key", "", "SSH private key file (default: $HL_METAL_SSH_KEY content)")
	f.IntVar(&opts.SSHPort, "ssh-port", 22, "SSH port of the nodes")
	f.StringVar(&opts.SSHKnownHosts, "ssh-known-hosts", "", "known_hosts file (default: pin the host key each node reported at install)")
	f.BoolVar(&opts.SSHInsecure, "ssh-insecure", false, "do not check SSH host keys")
	f.StringVar(&opts.RebootCommand, "reboot-command", metal.DefaultRebootCommand, "command that reboots a node")
	f.StringVar(&opts.WoLAddr, "wol-addr", "", "Wake-on-LAN destination (default: broadcast address of the node CIDR, port 9)")
	f.DurationVar(&opts.DrainTimeout, "drain-timeout", 10*time.Minute, "bound on draining one node")
	f.DurationVar(&opts.ReadyTimeout, "ready-timeout", 45*time.Minute, "bound on one node's reinstall until Ready")
	return cmd
}

func runMetalRollout(ctx context.Context, s *shared, opts *metalRolloutOptions) error {
	ios := s.ios
	p, err := metal.PrepareRollout(metal.RolloutInput{Dir: opts.Dir, Base: opts.Base, BaseDir: opts.BaseDir})
	if err != nil {
		return &exitError{code: 1, msg: err.Error()}
	}
	if ios.JSON() && opts.DryRun {
		return ios.WriteJSON(p.Plan)
	}
	printPlan(ios, p.Plan, p.BaseName)
	if opts.DryRun || len(p.Plan.Nodes) == 0 {
		return nil
	}
	prov, err := s.provisioner(opts.Dir, p.Server(opts.Server, opts.State != ""), opts.stateFile(), 0)
	if err != nil {
		return err
	}
	cfg, err := s.kube(opts.Kubeconfig)
	if err != nil {
		return err
	}
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	signer, err := s.sshSigner(opts.SSHKey)
	if err != nil {
		return err
	}
	wol, err := p.WakeAddr(opts.WoLAddr)
	if err != nil {
		return &exitError{code: 2, msg: err.Error()}
	}
	done, err := metal.Rollout(ctx, metal.RolloutOptions{
		Plan: p.Plan, Kube: kube, Provisioner: prov,
		Rebooter: &metal.SSHRebooter{SSH: metal.SSH{User: opts.SSHUser, Port: opts.SSHPort, Signer: signer,
			KnownHosts: opts.SSHKnownHosts, Insecure: opts.SSHInsecure}, Command: opts.RebootCommand},
		Wake:         func(n metal.Node) error { return metal.SendWakeOnLAN(n.MAC, wol) },
		DrainTimeout: opts.DrainTimeout, ReadyTimeout: opts.ReadyTimeout,
		Out: ios.ErrOut,
	})
	if err != nil {
		return &exitError{code: 1, msg: "rollout stopped: " + err.Error()}
	}
	ios.Errorf("rollout done: %s reinstalled\n", strings.Join(done, ", "))
	return nil
}

func printPlan(ios *iostreams.IOStreams, p *metal.RolloutPlan, base string) {
	ios.Printf("metal rollout: %s → working tree\n", base)
	if p.OldOS != p.OS {
		ios.Printf("OS: %s → %s\n", p.OldOS, p.OS)
	} else {
		ios.Printf("OS: %s\n", p.OS)
	}
	if p.OldK3s != "" && p.OldK3s != p.K3s {
		ios.Printf("k3s: %s → %s\n", p.OldK3s, p.K3s)
	} else {
		ios.Printf("k3s: %s\n", p.K3s)
	}
	if len(p.Nodes) == 0 {
		ios.Printf("no node needs a reinstall\n")
	} else {
		ios.Printf("reinstall, one node at a time (cordon, drain, reinstall, reboot, wait Ready, uncordon):\n")
		for i, n := range p.Nodes {
			ios.Printf("  %d. %s (%s, %s): %s\n", i+1, n.Name, n.Role, n.MAC, strings.Join(n.Reasons, "; "))
		}
	}
	for _, note := range p.Notes {
		ios.Printf("note: %s\n", note)
	}
}
