package metal

import (
	"bytes"
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
	"golang.org/x/crypto/ssh"
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
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// Server is the PXE controller.
type Server struct {
	opts    ServeOptions
	secrets *Secrets
	state   StateFile
	log     *AccessLog
	mux     *http.ServeMux

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
	s := &Server{opts: opts, secrets: sec, state: StateFile{Path: opts.StateFile}, log: NewAccessLog(opts.AccessLog, opts.Now)}
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
	m.HandleFunc("GET /nodes/{name}/{file}", s.nodeFile)
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

// macScript answers /ipxe/<mac>: install, local boot or refusal.
func (s *Server) macScript(w http.ResponseWriter, r *http.Request) {
	raw := r.PathValue("mac")
	mac, err := NormaliseMAC(raw)
	if err != nil {
		Note(r, "action", "refused")
		ipxe(w, fmt.Sprintf("echo hl: %q is not a MAC address; not installing anything", raw), "exit")
		return
	}
	Note(r, "mac", mac)
	idx, err := LoadIndex(s.opts.Dir)
	if err != nil {
		s.fail(w, r, http.StatusInternalServerError, err)
		return
	}
	n, ok := idx.ByMAC(mac)
	if !ok {
		Note(r, "action", "unknown")
		ipxe(w,
			"echo hl: this machine ("+mac+") is not a node in metal/nodes.yaml: nothing will be installed on it.",
			"echo hl: to install it, add it to spec.metal.nodes in hl.yaml, render and merge.",
			"echo hl: booting the next device.",
			"exit")
		return
	}
	Note(r, "node", n.Name)
	st, err := s.state.Load()
	if err != nil {
		s.fail(w, r, http.StatusInternalServerError, err)
		return
	}
	if ns := st.Node(mac, n.Name); ns.Status == StatusInstalled {
		Note(r, "action", "local-boot")
		ipxe(w,
			"echo hl: "+n.Name+" is installed: booting the local disk",
			"sanboot --no-describe --drive 0x80 || exit")
		return
	}
	b, err := repoFile(s.opts.Dir, NodesDir+"/"+n.Name+"/"+nodeBootFile)
	if err != nil {
		s.fail(w, r, http.StatusInternalServerError, err)
		return
	}
	Note(r, "action", "install")
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

// nodeFile serves a node's rendered file with its placeholders filled,
// only while the node is marked for install.
func (s *Server) nodeFile(w http.ResponseWriter, r *http.Request) {
	name, file := r.PathValue("name"), r.PathValue("file")
	idx, err := LoadIndex(s.opts.Dir)
	if err != nil {
		s.fail(w, r, http.StatusInternalServerError, err)
		return
	}
	n, ok := idx.ByName(name)
	if !ok || file == "." || file == ".." || strings.ContainsAny(file, `/\`) {
		s.fail(w, r, http.StatusNotFound, fmt.Errorf("no such node file"))
		return
	}
	Note(r, "node", n.Name)
	st, err := s.state.Load()
	if err != nil {
		s.fail(w, r, http.StatusInternalServerError, err)
		return
	}
	ns := st.Node(n.MAC, n.Name)
	if ns.Status != StatusInstall {
		s.fail(w, r, http.StatusGone, fmt.Errorf("%s is installed; its install files are served only after hl metal reprovision", n.Name))
		return
	}
	open := file == n.InstallConfig || file == nodeBootFile
	token := s.secrets.NodeToken(n.MAC)
	if !open && !tokenEqual(bearer(r), token) {
		s.fail(w, r, http.StatusUnauthorized, fmt.Errorf("%s needs the node's install token", file))
		return
	}
	b, err := repoFile(s.opts.Dir, NodesDir+"/"+n.Name+"/"+file)
	if errors.Is(err, fs.ErrNotExist) {
		s.fail(w, r, http.StatusNotFound, fmt.Errorf("no such node file"))
		return
	}
	if err != nil {
		s.fail(w, r, http.StatusInternalServerError, err)
		return
	}
	b = bytes.ReplaceAll(b, []byte(PlaceholderCallbackToken), []byte(token))
	if !open {
		// Only to a request that proved it is the installing node.
		b = bytes.ReplaceAll(b, []byte(PlaceholderK3sToken), []byte(s.secrets.K3sToken))
	}
	if file == "k3s-config.yaml" && ns.Rejoin && n.Rejoin != "" {
		b = rejoinConfig(b, n.Rejoin)
		Note(r, "rejoin", "true")
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write(b)
}

// rejoinConfig swaps cluster-init for a join URL in a k3s config.
func rejoinConfig(b []byte, url string) []byte {
	lines := strings.Split(string(b), "\n")
	for i, l := range lines {
		if strings.TrimSpace(l) == "cluster-init: true" {
			lines[i] = "server: " + url
		}
	}
	return []byte(strings.Join(lines, "\n"))
}

// callback records a finished install: the MAC boots locally from now on.
func (s *Server) callback(w http.ResponseWriter, r *http.Request) {
	mac, err := NormaliseMAC(r.PathValue("mac"))
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, err)
		return
	}
	Note(r, "mac", mac)
	idx, err := LoadIndex(s.opts.Dir)
	if err != nil {
		s.fail(w, r, http.StatusInternalServerError, err)
		return
	}
	n, ok := idx.ByMAC(mac)
	if !ok {
		s.fail(w, r, http.StatusNotFound, fmt.Errorf("%s is not a node", mac))
		return
	}
	Note(r, "node", n.Name)
	if !tokenEqual(bearer(r), s.secrets.NodeToken(mac)) {
		s.fail(w, r, http.StatusUnauthorized, fmt.Errorf("wrong or missing install token"))
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	hostKey := strings.TrimSpace(r.FormValue("hostKey"))
	if hostKey != "" {
		if _, _, _, _, err := ssh.ParseAuthorizedKey([]byte(hostKey)); err != nil {
			hostKey = "" // keep the install, drop a garbled key
			Note(r, "hostKey", "invalid")
		}
	}
	if err := s.state.MarkInstalled(mac, n.Name, hostKey, s.opts.Now()); err != nil {
		s.fail(w, r, http.StatusInternalServerError, err)
		return
	}
	Note(r, "action", "installed")
	io.WriteString(w, "ok: "+n.Name+" boots its local disk from now on\n")
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
}

// Statuses joins the index with the state, in index order.
func Statuses(idx *Index, st *State) []NodeStatus {
	out := make([]NodeStatus, 0, len(idx.Nodes))
	for _, n := range idx.Nodes {
		ns := st.Node(n.MAC, n.Name)
		out = append(out, NodeStatus{Name: n.Name, MAC: n.MAC, Role: n.Role, IP: n.IP, Status: ns.Status, Rejoin: ns.Rejoin,
			HostKey: ns.HostKey, InstalledAt: ns.InstalledAt, Installs: ns.Installs})
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
	idx, err := LoadIndex(s.opts.Dir)
	if err != nil {
		s.fail(w, r, http.StatusInternalServerError, err)
		return
	}
	st, err := s.state.Load()
	if err != nil {
		s.fail(w, r, http.StatusInternalServerError, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(Statuses(idx, st))
}

func (s *Server) apiReprovision(w http.ResponseWriter, r *http.Request) {
	if !s.apiAuth(w, r) {
		return
	}
	idx, err := LoadIndex(s.opts.Dir)
	if err != nil {
		s.fail(w, r, http.StatusInternalServerError, err)
		return
	}
	n, ok := idx.ByName(r.PathValue("name"))
	if !ok {
		s.fail(w, r, http.StatusNotFound, fmt.Errorf("no node %q", r.PathValue("name")))
		return
	}
	Note(r, "node", n.Name)
	rejoin := r.URL.Query().Get("rejoin") == "true"
	if err := s.state.MarkReprovision(n.MAC, n.Name, rejoin, s.opts.Now()); err != nil {
		s.fail(w, r, http.StatusInternalServerError, err)
		return
	}
	Note(r, "action", "reprovision")
	io.WriteString(w, "ok: "+n.Name+" reinstalls on its next PXE boot\n")
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
