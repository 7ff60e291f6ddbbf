package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"filippo.io/age"
	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/api/resource"

	"hl.dev/hl/internal/iostreams"
	"hl.dev/hl/metal"
)

// envMetalAPIToken holds the token of hl metal serve's API (the rollout
// pipeline gets it from the Secret metal-api-token of its namespace).
const envMetalAPIToken = "HL_METAL_API_TOKEN"

func newMetalCmd(s *shared) *cobra.Command {
	ios := s.ios
	cmd := &cobra.Command{
		Use:   "metal",
		Short: "Install and reinstall the nodes over PXE",
		Long: `The PXE controller and node lifecycle for the rendered metal/ folder:
serve it to booting machines, cache the pinned netboot images, mark nodes
for reinstall and roll a merged metal change out one node at a time.`,
	}
	cmd.AddCommand(newMetalServeCmd(s), newMetalImagesCmd(ios), newMetalReprovisionCmd(s),
		newMetalStatusCmd(s), newMetalRolloutCmd(s), newMetalKubeconfigCmd(s))
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
	Window    time.Duration
}

func newMetalServeCmd(s *shared) *cobra.Command {
	opts := &metalServeOptions{}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the PXE controller: dnsmasq (DHCP+TFTP) and the HTTP boot server",
		Long: `Serve metal/ of the repo at --dir to machines booting from the network.

dnsmasq runs with the rendered metal/dnsmasq.conf (proxy or full DHCP, TFTP
for the iPXE binaries of --ipxe-dir) and points them at /boot.ipxe, which
chains /ipxe/<mac>: a node to install gets its installer, an installed node
boots its disk, an unknown machine is told so. The installer calls back
when done, which switches its MAC to local boot; the state lives in --state
and survives restarts. Kernel and initrd come from the image cache (hl
metal images pull).

The k3s tokens (decrypted from metal/secrets with the age identity, never
written anywhere) go out only inside a node's install window, once, to the
node's address: the dnsmasq lease of its MAC in full DHCP mode, its
metal/nodes.yaml address otherwise (in proxy mode, reserve it on the
router). A window opens on hl metal reprovision, or when a node never
installed first PXE-boots; it closes on the installer's callback or after
--install-timeout. Every request and dnsmasq's DHCP log go to the access
log (without tokens).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runMetalServe(cmd.Context(), s, opts)
		},
	}
	opts.add(cmd)
	return cmd
}

// add registers hl metal serve's flags; hl up, which runs the server,
// takes the same.
func (o *metalServeOptions) add(cmd *cobra.Command) {
	o.stateFlags.add(cmd)
	f := cmd.Flags()
	f.StringVar(&o.Listen, "listen", "", "HTTP listen address (default: :<port> of metal/nodes.yaml's server URL)")
	f.StringVar(&o.Cache, "cache", metal.DefaultCacheDir(), "image cache of hl metal images pull")
	f.StringVar(&o.AgeKey, "age-key", "", "age identity file to decrypt metal/secrets (default: $SOPS_AGE_KEY_FILE, $SOPS_AGE_KEY)")
	f.StringVar(&o.DHCP, "dhcp", "dnsmasq", "dnsmasq: run dnsmasq with metal/dnsmasq.conf; off: HTTP only (another server does PXE DHCP)")
	f.StringVar(&o.Dnsmasq, "dnsmasq", "dnsmasq", "dnsmasq binary")
	f.StringVar(&o.IPXEDir, "ipxe-dir", metal.DefaultIPXEDir, "folder with undionly.kpxe and ipxe.efi for TFTP (Debian package ipxe)")
	f.StringVar(&o.Interface, "interface", "", "network interface dnsmasq answers on (default: all)")
	f.StringVar(&o.AccessLog, "access-log", "", "append the access log to this file (default: stderr)")
	f.DurationVar(&o.Window, "install-timeout", metal.DefaultInstallWindow, "how long an install window stays open without the installer's callback")
}

// serveOptions are the server's options from the flags: the listen
// address from metal/nodes.yaml unless given, dnsmasq or HTTP only.
func (o *metalServeOptions) serveOptions(ids []age.Identity, accessLog io.Writer) (metal.ServeOptions, error) {
	listen := o.Listen
	if listen == "" {
		var err error
		if listen, err = metal.ListenAddr(o.Dir); err != nil {
			return metal.ServeOptions{}, &exitError{code: 1, msg: err.Error()}
		}
	}
	so := metal.ServeOptions{Dir: o.Dir, Listen: listen, StateFile: o.stateFile().Path, CacheDir: o.Cache, Identities: ids, AccessLog: accessLog, InstallWindow: o.Window}
	switch o.DHCP {
	case "dnsmasq":
		so.Dnsmasq = &metal.DnsmasqOptions{Path: o.Dnsmasq, IPXEDir: o.IPXEDir, Interface: o.Interface}
	case "off":
	default:
		return so, &exitError{code: 2, msg: fmt.Sprintf("--dhcp must be dnsmasq or off, got %q", o.DHCP)}
	}
	return so, nil
}

func runMetalServe(ctx context.Context, s *shared, opts *metalServeOptions) error {
	ios := s.ios
	ids, err := s.identities(opts.AgeKey, true)
	if err != nil {
		return err
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
	sopts, err := opts.serveOptions(ids, logw)
	if err != nil {
		return err
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
	Timeout time.Duration
	MaxSize resource.QuantityValue
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
refused; a mismatch, a file over --max-size or a pull past --timeout fails
and leaves nothing of that file in the cache. --mirror FROM=TO rewrites URL
prefixes (http, https or file URLs).`,
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
			res, err := metal.Pull(cmd.Context(), metal.PullOptions{Dir: opts.Dir, CacheDir: opts.Cache, Mirrors: mirrors,
				Timeout: opts.Timeout, MaxSize: opts.MaxSize.Value()})
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
	pull.Flags().DurationVar(&opts.Timeout, "timeout", metal.DefaultPullTimeout, "give up on the whole pull after this long")
	opts.MaxSize.Quantity = *resource.NewQuantity(metal.DefaultPullMaxSize, resource.BinarySI)
	pull.Flags().Var(&opts.MaxSize, "max-size", "refuse a file bigger than this (bytes, or with a suffix: 512Mi, 2Gi)")
	cmd.AddCommand(pull)
	return cmd
}
