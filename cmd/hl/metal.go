package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/crypto/ssh"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"hl.dev/hl/internal/iostreams"
	"hl.dev/hl/internal/metal"
	"hl.dev/hl/internal/secrets"
)

// Environment variables of the metal commands (the rollout pipeline sets
// them from Woodpecker secrets).
const (
	envMetalAPIToken = "HL_METAL_API_TOKEN"
	envMetalSSHKey   = "HL_METAL_SSH_KEY"
	envKubeconfig    = "HL_KUBECONFIG"
)

func newMetalCmd(ios *iostreams.IOStreams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "metal",
		Short: "Install and reinstall the nodes over PXE",
		Long: `The PXE controller and node lifecycle for the rendered metal/ folder:
serve it to booting machines, cache the pinned netboot images, mark nodes
for reinstall and roll a merged metal change out one node at a time.`,
	}
	cmd.AddCommand(newMetalServeCmd(ios), newMetalImagesCmd(ios), newMetalReprovisionCmd(ios),
		newMetalStatusCmd(ios), newMetalRolloutCmd(ios))
	return cmd
}

// stateFlags are shared by the commands that read the install state.
type stateFlags struct {
	Dir   string
	State string
}

func (s *stateFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&s.Dir, "dir", ".", "root of the rendered repo (holds metal/)")
	cmd.Flags().StringVar(&s.State, "state", "", "install state file (default: "+filepath.Join(metal.DefaultStateDir(), "state.json")+")")
}

func (s *stateFlags) stateFile() metal.StateFile {
	if s.State == "" {
		return metal.StateFile{Path: filepath.Join(metal.DefaultStateDir(), "state.json")}
	}
	return metal.StateFile{Path: s.State}
}

type metalServeOptions struct {
	stateFlags
	Listen    string
	Cache     string
	AgeKey    string
	DHCP      string
	Dnsmasq   string
	IPXEDir   string
	Interface string
	AccessLog string
}

func newMetalServeCmd(ios *iostreams.IOStreams) *cobra.Command {
	opts := &metalServeOptions{}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the PXE controller: dnsmasq (DHCP+TFTP) and the HTTP boot server",
		Long: `Serve metal/ of the repo at --dir to machines booting from the network.

dnsmasq runs with the rendered metal/dnsmasq.conf (proxy or full DHCP, TFTP
for the iPXE binaries of --ipxe-dir) and points them at /boot.ipxe, which
chains /ipxe/<mac>: a node marked for install gets its installer, an
installed node boots its disk, an unknown machine is told so. The installer
calls back when done, which switches its MAC to local boot; the state lives
in --state and survives restarts. Kernel and initrd come from the image
cache (hl metal images pull). Node tokens are decrypted from metal/secrets
with the age identity and never written anywhere. Every request and
dnsmasq's DHCP log go to the access log.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runMetalServe(cmd.Context(), ios, opts)
		},
	}
	opts.add(cmd)
	f := cmd.Flags()
	f.StringVar(&opts.Listen, "listen", "", "HTTP listen address (default: :<port> of metal/nodes.yaml's server URL)")
	f.StringVar(&opts.Cache, "cache", metal.DefaultCacheDir(), "image cache of hl metal images pull")
	f.StringVar(&opts.AgeKey, "age-key", "", "age identity file to decrypt metal/secrets (default: $SOPS_AGE_KEY_FILE, $SOPS_AGE_KEY)")
	f.StringVar(&opts.DHCP, "dhcp", "dnsmasq", "dnsmasq: run dnsmasq with metal/dnsmasq.conf; off: HTTP only (another server does PXE DHCP)")
	f.StringVar(&opts.Dnsmasq, "dnsmasq", "dnsmasq", "dnsmasq binary")
	f.StringVar(&opts.IPXEDir, "ipxe-dir", metal.DefaultIPXEDir, "folder with undionly.kpxe and ipxe.efi for TFTP (Debian package ipxe)")
	f.StringVar(&opts.Interface, "interface", "", "network interface dnsmasq answers on (default: all)")
	f.StringVar(&opts.AccessLog, "access-log", "", "append the access log to this file (default: stderr)")
	return cmd
}

func runMetalServe(ctx context.Context, ios *iostreams.IOStreams, opts *metalServeOptions) error {
	if ctx == nil {
		ctx = context.Background()
	}
	ids, err := secrets.LoadIdentities(opts.AgeKey)
	if err != nil {
		return &exitError{code: 1, msg: err.Error()}
	}
	listen := opts.Listen
	if listen == "" {
		idx, err := metal.LoadIndex(opts.Dir)
		if err != nil {
			return &exitError{code: 1, msg: err.Error()}
		}
		u, err := url.Parse(idx.Server)
		if err != nil || u.Port() == "" {
			return &exitError{code: 1, msg: fmt.Sprintf("%s: server %q has no port; pass --listen", metal.IndexFile, idx.Server)}
		}
		listen = ":" + u.Port()
	}
	logw := ios.ErrOut
	if opts.AccessLog != "" {
		f, err := os.OpenFile(opts.AccessLog, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o640)
		if err != nil {
			return &exitError{code: 1, msg: err.Error()}
		}
		defer f.Close()
		logw = f
	}
	sopts := metal.ServeOptions{Dir: opts.Dir, Listen: listen, StateFile: opts.stateFile().Path, CacheDir: opts.Cache, Identities: ids, AccessLog: logw}
	switch opts.DHCP {
	case "dnsmasq":
		sopts.Dnsmasq = &metal.DnsmasqOptions{Path: opts.Dnsmasq, IPXEDir: opts.IPXEDir, Interface: opts.Interface}
	case "off":
	default:
		return &exitError{code: 2, msg: fmt.Sprintf("--dhcp must be dnsmasq or off, got %q", opts.DHCP)}
	}
	srv, err := metal.NewServer(sopts)
	if err != nil {
		return &exitError{code: 1, msg: err.Error()}
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := srv.Start(ctx); err != nil {
		return &exitError{code: 1, msg: err.Error()}
	}
	ios.Errorf("hl metal serve: http on %s, state %s, images %s, dhcp %s\n", srv.Addr(), sopts.StateFile, opts.Cache, opts.DHCP)
	if err := srv.Wait(ctx); err != nil {
		return &exitError{code: 1, msg: err.Error()}
	}
	return nil
}

type metalImagesOptions struct {
	Dir     string
	Cache   string
	Mirrors []string
}

func newMetalImagesCmd(ios *iostreams.IOStreams) *cobra.Command {
	cmd := &cobra.Command{Use: "images", Short: "Manage the netboot image cache"}
	opts := &metalImagesOptions{}
	pull := &cobra.Command{
		Use:   "pull",
		Short: "Download the pinned netboot kernel and initrd, verified by sha256",
		Long: `Download the kernel and initrd pinned in metal/images.yaml into the
content-addressed cache (<cache>/sha256/<sum>), checking each against its
pinned sha256 while it streams. An image without a pinned checksum is
refused; a mismatch fails and leaves nothing in the cache. --mirror
FROM=TO rewrites URL prefixes (http, https or file URLs).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var mirrors []metal.Mirror
			for _, m := range opts.Mirrors {
				mm, err := metal.ParseMirror(m)
				if err != nil {
					return &exitError{code: 2, msg: err.Error()}
				}
				mirrors = append(mirrors, mm)
			}
			res, err := metal.Pull(cmd.Context(), metal.PullOptions{Dir: opts.Dir, CacheDir: opts.Cache, Mirrors: mirrors})
			if ios.JSON() {
				if res == nil {
					res = []metal.PullResult{}
				}
				if werr := ios.WriteJSON(res); werr != nil {
					return werr
				}
			} else {
				for _, r := range res {
					state := "downloaded"
					if r.Cached {
						state = "cached"
					}
					ios.Printf("%-6s %s %s (%d bytes) %s\n", r.Name, r.SHA256[:12], state, r.Size, r.From)
				}
			}
			if err != nil {
				return &exitError{code: 1, msg: err.Error()}
			}
			return nil
		},
	}
	pull.Flags().StringVar(&opts.Dir, "dir", ".", "root of the rendered repo (holds metal/images.yaml)")
	pull.Flags().StringVar(&opts.Cache, "cache", metal.DefaultCacheDir(), "image cache folder")
	pull.Flags().StringArrayVar(&opts.Mirrors, "mirror", nil, "FROM=TO URL prefix rewrite (repeatable)")
	cmd.AddCommand(pull)
	return cmd
}

type metalReprovisionOptions struct {
	stateFlags
	Server string
	Rejoin bool
}

// provisioner is the API of a running serve (--server) or the state file.
func provisioner(dir, server string, sf metal.StateFile) (metal.Provisioner, error) {
	if server == "" {
		return &metal.LocalProvisioner{Dir: dir, State: sf}, nil
	}
	tok := strings.TrimSpace(os.Getenv(envMetalAPIToken))
	if tok == "" {
		return nil, fmt.Errorf("--server needs the API token in $%s (metal/secrets/metal-api-token.sops.yaml)", envMetalAPIToken)
	}
	return &metal.APIClient{BaseURL: server, Token: tok}, nil
}

func newMetalReprovisionCmd(ios *iostreams.IOStreams) *cobra.Command {
	opts := &metalReprovisionOptions{}
	cmd := &cobra.Command{
		Use:   "reprovision NODE",
		Short: "Mark a node for reinstall on its next PXE boot",
		Long: `Mark NODE for reinstall: its next PXE boot gets the installer again.
Without --server it edits the state file of hl metal serve on this host;
with --server it asks a running hl metal serve (token in $HL_METAL_API_TOKEN).
It does not reboot the node (hl metal rollout does, after draining it).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := provisioner(opts.Dir, opts.Server, opts.stateFile())
			if err != nil {
				return &exitError{code: 2, msg: err.Error()}
			}
			if err := p.Reprovision(cmd.Context(), args[0], opts.Rejoin); err != nil {
				return &exitError{code: 1, msg: err.Error()}
			}
			if ios.JSON() {
				return ios.WriteJSON(map[string]any{"node": args[0], "status": metal.StatusInstall, "rejoin": opts.Rejoin})
			}
			ios.Printf("%s reinstalls on its next PXE boot\n", args[0])
			return nil
		},
	}
	opts.add(cmd)
	cmd.Flags().StringVar(&opts.Server, "server", "", "URL of a running hl metal serve (default: edit the local state file)")
	cmd.Flags().BoolVar(&opts.Rejoin, "rejoin", false, "first server only: join the running cluster instead of cluster-init")
	return cmd
}

func newMetalStatusCmd(ios *iostreams.IOStreams) *cobra.Command {
	opts := &metalReprovisionOptions{}
	cmd := &cobra.Command{
		Use:   "status",
		Short: "List the nodes and their install state",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := provisioner(opts.Dir, opts.Server, opts.stateFile())
			if err != nil {
				return &exitError{code: 2, msg: err.Error()}
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

func newMetalRolloutCmd(ios *iostreams.IOStreams) *cobra.Command {
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
			return runMetalRollout(cmd.Context(), ios, opts)
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

func runMetalRollout(ctx context.Context, ios *iostreams.IOStreams, opts *metalRolloutOptions) error {
	if ctx == nil {
		ctx = context.Background()
	}
	head, err := metal.ReadTree(opts.Dir)
	if err != nil {
		return &exitError{code: 1, msg: err.Error()}
	}
	var base metal.Tree
	baseName := opts.Base
	if opts.BaseDir != "" {
		baseName = opts.BaseDir
		base, err = metal.ReadTree(opts.BaseDir)
	} else {
		base, err = metal.ReadTreeAt(opts.Dir, opts.Base)
	}
	if err != nil {
		return &exitError{code: 1, msg: err.Error()}
	}
	plan, err := metal.PlanRollout(base, head)
	if err != nil {
		return &exitError{code: 1, msg: err.Error()}
	}
	if ios.JSON() && opts.DryRun {
		return ios.WriteJSON(plan)
	}
	printPlan(ios, plan, baseName)
	if opts.DryRun || len(plan.Nodes) == 0 {
		return nil
	}
	idx, err := head.Index()
	if err != nil {
		return &exitError{code: 1, msg: err.Error()}
	}
	server := opts.Server
	if server == "" && opts.State == "" {
		server = idx.Server
	}
	prov, err := provisioner(opts.Dir, server, opts.stateFile())
	if err != nil {
		return &exitError{code: 2, msg: err.Error()}
	}
	kube, err := kubeClient(opts.Kubeconfig)
	if err != nil {
		return &exitError{code: 2, msg: err.Error()}
	}
	signer, err := sshSigner(opts.SSHKey)
	if err != nil {
		return &exitError{code: 2, msg: err.Error()}
	}
	wol := opts.WoLAddr
	if wol == "" {
		if wol, err = metal.BroadcastAddr(idx.NodeCIDR); err != nil {
			return &exitError{code: 2, msg: err.Error()}
		}
	}
	done, err := metal.Rollout(ctx, metal.RolloutOptions{
		Plan: plan, Kube: kube, Provisioner: prov,
		Rebooter: &metal.SSHRebooter{User: opts.SSHUser, Port: opts.SSHPort, Signer: signer, Command: opts.RebootCommand,
			KnownHosts: opts.SSHKnownHosts, Insecure: opts.SSHInsecure},
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

func kubeClient(path string) (kubernetes.Interface, error) {
	var cfg *rest.Config
	var err error
	switch {
	case os.Getenv(envKubeconfig) != "":
		cfg, err = clientcmd.RESTConfigFromKubeConfig([]byte(os.Getenv(envKubeconfig)))
	case path != "":
		cfg, err = clientcmd.BuildConfigFromFlags("", path)
	default:
		cfg, err = rest.InClusterConfig()
		if errors.Is(err, rest.ErrNotInCluster) {
			rules := clientcmd.NewDefaultClientConfigLoadingRules()
			cfg, err = clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, nil).ClientConfig()
		}
	}
	if err != nil {
		return nil, fmt.Errorf("kubeconfig: %w", err)
	}
	return kubernetes.NewForConfig(cfg)
}

func sshSigner(path string) (ssh.Signer, error) {
	var key []byte
	switch {
	case path != "":
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		key = b
	case os.Getenv(envMetalSSHKey) != "":
		key = []byte(os.Getenv(envMetalSSHKey))
	default:
		return nil, fmt.Errorf("no SSH key: pass --ssh-key or set $%s", envMetalSSHKey)
	}
	s, err := ssh.ParsePrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("SSH key: %w", err)
	}
	return s, nil
}
