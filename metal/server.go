package metal

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"filippo.io/age"
)

// ServeOptions configure hl metal serve.
type ServeOptions struct {
	// Dir is the root of the rendered repo (holds metal/).
	Dir string
	// Listen is the HTTP address, e.g. ":8080".
	Listen string
	// StateFile is the install state (state.json).
	StateFile string
	// CacheDir is the image cache of hl metal images pull.
	CacheDir string
	// Identities decrypt metal/secrets.
	Identities []age.Identity
	// AccessLog receives one line per HTTP request and dnsmasq's log.
	AccessLog io.Writer
	// Dnsmasq, when set, runs dnsmasq with metal/dnsmasq.conf.
	Dnsmasq *DnsmasqOptions
	// LeaseFile is dnsmasq's lease file: in full DHCP mode a node's
	// install requests must come from the address leased to its MAC.
	// Set from Dnsmasq when empty; with neither, requests must come from
	// the node's address in metal/nodes.yaml.
	LeaseFile string
	// InstallWindow is how long an install window stays open
	// (DefaultInstallWindow when zero).
	InstallWindow time.Duration
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// Server is the PXE controller.
type Server struct {
	opts    ServeOptions
	secrets *Secrets
	state   StateFile
	bind    binder
	log     *AccessLog
	mux     *http.ServeMux
	// run tells this process's token redemptions from an earlier
	// process's (Window.redeem).
	run string

	mu       sync.Mutex
	listener net.Listener
	http     *http.Server
	dnsmasq  *dnsmasqProc
	errc     chan error
}

// NewServer checks the repo and decrypts its metal secrets.
func NewServer(opts ServeOptions) (*Server, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.AccessLog == nil {
		opts.AccessLog = io.Discard
	}
	if opts.InstallWindow <= 0 {
		opts.InstallWindow = DefaultInstallWindow
	}
	if opts.Dnsmasq != nil {
		if opts.Dnsmasq.WorkDir == "" {
			opts.Dnsmasq.WorkDir = filepath.Dir(opts.StateFile)
		}
		if opts.LeaseFile == "" {
			opts.LeaseFile = leaseFilePath(opts.Dnsmasq.WorkDir)
		}
	}
	if _, err := LoadIndex(opts.Dir); err != nil {
		return nil, err
	}
	if _, err := LoadOSPin(opts.Dir); err != nil {
		return nil, err
	}
	sec, err := LoadSecrets(opts.Dir, opts.Identities)
	if err != nil {
		return nil, err
	}
	s := &Server{opts: opts, secrets: sec, state: StateFile{Path: opts.StateFile}, log: NewAccessLog(opts.AccessLog, opts.Now),
		bind: binder{leaseFile: opts.LeaseFile, now: opts.Now, leaseWait: 2 * time.Second}, run: newToken()[:16]}
	s.routes()
	return s, nil
}

// Handler is the HTTP handler (with the access log).
func (s *Server) Handler() http.Handler { return s.log.Wrap(s.mux) }

// Start listens, starts dnsmasq when configured and serves in the
// background. Wait returns when either stops.
func (s *Server) Start(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.opts.Listen)
	if err != nil {
		return fmt.Errorf("listen %s: %w", s.opts.Listen, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.listener = ln
	s.http = &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
	s.errc = make(chan error, 2)
	if s.opts.Dnsmasq != nil {
		p, err := startDnsmasq(ctx, s.opts.Dir, s.opts.StateFile, *s.opts.Dnsmasq, s.log)
		if err != nil {
			ln.Close()
			return err
		}
		s.dnsmasq = p
		go func() {
			err := p.wait()
			if ctx.Err() == nil {
				s.errc <- fmt.Errorf("dnsmasq stopped: %w", err)
			}
		}()
	}
	go func() {
		err := s.http.Serve(ln)
		if !errors.Is(err, http.ErrServerClosed) {
			s.errc <- err
		}
	}()
	return nil
}

// Addr is the address the server listens on (after Start).
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.listener == nil {
		return ""
	}
	return s.listener.Addr().String()
}

// Wait blocks until ctx is done or the HTTP server or dnsmasq fails, then
// shuts both down.
func (s *Server) Wait(ctx context.Context) error {
	var err error
	select {
	case <-ctx.Done():
	case err = <-s.errc:
	}
	s.Close()
	return err
}

// Close stops the HTTP server and dnsmasq.
func (s *Server) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.http != nil {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = s.http.Shutdown(sctx)
		cancel()
	}
	if s.dnsmasq != nil {
		s.dnsmasq.stop()
		s.dnsmasq = nil
	}
}

func (s *Server) routes() {
	m := http.NewServeMux()
	m.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
	m.HandleFunc("GET /boot.ipxe", s.bootScript)
	m.HandleFunc("GET /ipxe/{mac}", s.macScript)
	m.HandleFunc("GET /os/{name}/{version}/{file}", s.osImage)
	m.HandleFunc("GET /nodes/{name}/{file}", func(w http.ResponseWriter, r *http.Request) { s.nodeFile(w, r, bearer(r)) })
	// The installer's kernel command line cannot send a header: its
	// token travels in the path (and is kept out of the access log).
	m.HandleFunc("GET /t/{token}/nodes/{name}/{file}", func(w http.ResponseWriter, r *http.Request) { s.nodeFile(w, r, r.PathValue("token")) })
	m.HandleFunc("POST /callback/{mac}", s.callback)
	m.HandleFunc("GET /api/v1/nodes", s.apiNodes)
	m.HandleFunc("POST /api/v1/nodes/{name}/reprovision", s.apiReprovision)
	s.mux = m
}

func ipxe(w http.ResponseWriter, lines ...string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	io.WriteString(w, "#!ipxe\n"+strings.Join(lines, "\n")+"\n")
}

func (s *Server) bootScript(w http.ResponseWriter, r *http.Request) {
	b, err := repoFile(s.opts.Dir, BootScript)
	if err != nil {
		s.fail(w, r, http.StatusInternalServerError, err)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write(b)
}

// osImage serves the pinned kernel or initrd from the image cache.
func (s *Server) osImage(w http.ResponseWriter, r *http.Request) {
	pin, err := LoadOSPin(s.opts.Dir)
	if err != nil {
		s.fail(w, r, http.StatusInternalServerError, err)
		return
	}
	if r.PathValue("name") != pin.Name || r.PathValue("version") != pin.Version {
		s.fail(w, r, http.StatusNotFound, fmt.Errorf("%s/%s is not the pinned OS (%s)", r.PathValue("name"), r.PathValue("version"), pin.Ref()))
		return
	}
	var a Artifact
	switch r.PathValue("file") {
	case "kernel":
		a = pin.Kernel
	case "initrd":
		a = pin.Initrd
	default:
		s.fail(w, r, http.StatusNotFound, fmt.Errorf("no such image file"))
		return
	}
	if a.SHA256 == "" {
		s.fail(w, r, http.StatusNotFound, fmt.Errorf("%s has no sha256 pinned for %s", OSFile, a.URL))
		return
	}
	p, err := CachePath(s.opts.CacheDir, a.SHA256)
	if err != nil {
		s.fail(w, r, http.StatusInternalServerError, err)
		return
	}
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		s.fail(w, r, http.StatusServiceUnavailable, fmt.Errorf("%s is not in the image cache: run hl metal images pull", a.URL))
		return
	}
	if err != nil {
		s.fail(w, r, http.StatusInternalServerError, err)
		return
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		s.fail(w, r, http.StatusInternalServerError, err)
		return
	}
	Note(r, "sha256", a.SHA256[:12])
	w.Header().Set("Content-Type", "application/octet-stream")
	http.ServeContent(w, r, r.PathValue("file"), info.ModTime(), f)
}

// NodeStatus is one node as the API reports it.
type NodeStatus struct {
	Name        string    `json:"name"`
	MAC         string    `json:"mac"`
	Role        string    `json:"role"`
	IP          string    `json:"ip"`
	Status      string    `json:"status"`
	Rejoin      bool      `json:"rejoin,omitempty"`
	HostKey     string    `json:"hostKey,omitempty"`
	InstalledAt time.Time `json:"installedAt,omitzero"`
	Installs    int       `json:"installs"`
	// WindowExpiresAt is when the open install window closes (zero when
	// none is open).
	WindowExpiresAt time.Time `json:"windowExpiresAt,omitzero"`
}

// Statuses joins the index with the state at now, in index order.
func Statuses(idx *Index, st *State, now time.Time) []NodeStatus {
	out := make([]NodeStatus, 0, len(idx.Nodes))
	for _, n := range idx.Nodes {
		ns := st.Node(n.MAC, n.Name)
		s := NodeStatus{Name: n.Name, MAC: n.MAC, Role: n.Role, IP: n.IP, Status: ns.Effective(now), Rejoin: ns.Rejoin,
			HostKey: ns.HostKey, InstalledAt: ns.InstalledAt, Installs: ns.Installs}
		if ns.Window != nil && s.Status == StatusInstall {
			s.WindowExpiresAt = ns.Window.ExpiresAt
		}
		out = append(out, s)
	}
	return out
}

func (s *Server) apiAuth(w http.ResponseWriter, r *http.Request) bool {
	if !tokenEqual(bearer(r), s.secrets.APIToken) {
		s.fail(w, r, http.StatusUnauthorized, fmt.Errorf("wrong or missing API token (metal/secrets/metal-api-token)"))
		return false
	}
	return true
}

func (s *Server) apiNodes(w http.ResponseWriter, r *http.Request) {
	if !s.apiAuth(w, r) {
		return
	}
	idx, ok := s.index(w, r)
	if !ok {
		return
	}
	st, err := s.state.Load()
	if err != nil {
		s.fail(w, r, http.StatusInternalServerError, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(Statuses(idx, st, s.opts.Now()))
}

func (s *Server) apiReprovision(w http.ResponseWriter, r *http.Request) {
	if !s.apiAuth(w, r) {
		return
	}
	idx, ok := s.index(w, r)
	if !ok {
		return
	}
	n, ok := idx.ByName(r.PathValue("name"))
	if !ok {
		s.fail(w, r, http.StatusNotFound, fmt.Errorf("no node %q", r.PathValue("name")))
		return
	}
	Note(r, "node", n.Name)
	rejoin := r.URL.Query().Get("rejoin") == "true"
	if err := s.state.MarkReprovision(n.MAC, n.Name, rejoin, s.opts.Now(), s.opts.InstallWindow); err != nil {
		s.fail(w, r, http.StatusInternalServerError, err)
		return
	}
	Note(r, "action", "reprovision")
	fmt.Fprintf(w, "ok: %s reinstalls if it PXE-boots within %s\n", n.Name, s.opts.InstallWindow)
}

func (s *Server) fail(w http.ResponseWriter, r *http.Request, code int, err error) {
	Note(r, "error", err.Error())
	http.Error(w, "hl metal serve: "+err.Error(), code)
}

func bearer(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if t, ok := strings.CutPrefix(h, "Bearer "); ok {
		return strings.TrimSpace(t)
	}
	return ""
}

// DefaultStateDir is where serve keeps state when not told: /var/lib/hl/metal
// as root, else the user's state folder.
func DefaultStateDir() string {
	if os.Geteuid() == 0 {
		return "/var/lib/hl/metal"
	}
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "hl", "metal")
	}
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, ".local", "state", "hl", "metal")
	}
	return "hl-metal"
}

// DefaultCacheDir is the image cache when not told: /var/cache/hl/metal as
// root, else the user's cache folder.
func DefaultCacheDir() string {
	if os.Geteuid() == 0 {
		return "/var/cache/hl/metal"
	}
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "hl", "metal")
	}
	return "hl-metal-cache"
}
