package metal

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/crypto/ssh"
)

// k3sConfigFile is the node file holding the k3s join token.
const k3sConfigFile = "k3s-config.yaml"

// refusal is an answer decided inside a state update that still commits:
// a window found expired is recorded closed even though the request fails.
type refusal struct {
	code int
	err  error
}

// index loads metal/nodes.yaml for a request; when it cannot, it answers
// the request itself.
func (s *Server) index(w http.ResponseWriter, r *http.Request) (*Index, bool) {
	idx, err := LoadIndex(s.opts.Dir)
	if err != nil {
		s.fail(w, r, http.StatusInternalServerError, err)
		return nil, false
	}
	return idx, true
}

// inWindow runs fn on n's open install window under the state lock, so a
// token is checked and burnt in one step. When n has no open window (one
// that ran out is recorded closed), fn refuses or the update fails, it
// answers the request itself and reports false; fn's refusals still
// commit, its errors do not.
func (s *Server) inWindow(w http.ResponseWriter, r *http.Request, n Node, fn func(*NodeState) (*refusal, error)) bool {
	var no *refusal
	err := s.state.Update(func(st *State) error {
		ns, ok := st.Nodes[n.MAC]
		switch {
		case !ok || ns == nil || ns.Status != StatusInstall || ns.Window == nil:
			no = &refusal{http.StatusGone, fmt.Errorf("%s has no open install window", n.Name)}
			return nil
		case ns.expire(s.opts.Now()):
			no = &refusal{http.StatusGone, fmt.Errorf("the install window of %s has closed: hl metal reprovision %s opens a new one", n.Name, n.Name)}
			return nil
		}
		var err error
		no, err = fn(ns)
		return err
	})
	if err != nil {
		s.fail(w, r, http.StatusInternalServerError, err)
		return false
	}
	if no != nil {
		s.fail(w, r, no.code, no.err)
		return false
	}
	return true
}

// validFileName accepts a plain file name of a node folder.
func validFileName(f string) bool {
	return f != "" && f != "." && f != ".." && !strings.ContainsAny(f, `/\`)
}

// nodeResource says which resources a file served to n may carry tokens
// for: its callback and the files of its folder except boot.ipxe (which
// only /ipxe/<mac> serves).
func (s *Server) nodeResource(n Node) func(string) bool {
	return func(res string) bool {
		if res == ResourceCallback {
			return true
		}
		if res == nodeBootFile || !validFileName(res) {
			return false
		}
		info, err := os.Stat(filepath.Join(s.opts.Dir, filepath.FromSlash(NodesDir), n.Name, res))
		return err == nil && info.Mode().IsRegular()
	}
}

// macScript answers /ipxe/<mac>: local boot for an installed node; for a
// node to install, asked from its address, its boot.ipxe with a fresh
// token for its install config (opening its first install window if it
// has none yet); a refusal script otherwise.
func (s *Server) macScript(w http.ResponseWriter, r *http.Request) {
	raw := r.PathValue("mac")
	mac, err := NormaliseMAC(raw)
	if err != nil {
		Note(r, "action", "refused")
		ipxe(w, fmt.Sprintf("echo hl: %q is not a MAC address; not installing anything", raw), "exit")
		return
	}
	Note(r, "mac", mac)
	idx, ok := s.index(w, r)
	if !ok {
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
	localBoot := func(why string) {
		Note(r, "action", "local-boot")
		ipxe(w, "echo hl: "+why+": booting the local disk", "sanboot --no-describe --drive 0x80 || exit")
	}
	st, err := s.state.Load()
	if err != nil {
		s.fail(w, r, http.StatusInternalServerError, err)
		return
	}
	if st.Node(mac, n.Name).Status == StatusInstalled {
		localBoot(n.Name + " is installed")
		return
	}
	if err := s.bind.check(r, idx, n); err != nil {
		Note(r, "action", "refused")
		Note(r, "why", err.Error())
		ipxe(w, "echo hl: not installing "+n.Name+": "+err.Error(),
			"echo hl: in proxy DHCP mode the router must hand this MAC its metal/nodes.yaml address.",
			"exit")
		return
	}
	boot, err := repoFile(s.opts.Dir, NodesDir+"/"+n.Name+"/"+nodeBootFile)
	if err != nil {
		s.fail(w, r, http.StatusInternalServerError, err)
		return
	}
	if holdsSecret(boot) {
		s.fail(w, r, http.StatusInternalServerError, fmt.Errorf("%s/%s/%s holds a secret placeholder: it is served on the address alone", NodesDir, n.Name, nodeBootFile))
		return
	}
	var body []byte
	action := ""
	err = s.state.Update(func(st *State) error {
		ns := st.ensure(mac, n.Name)
		now := s.opts.Now()
		ns.expire(now)
		switch {
		case ns.Status == StatusInstalled:
			action = "installed"
			return nil
		case ns.Status == StatusExpired:
			action = "expired"
			return nil
		case ns.Window == nil:
			ns.Status = StatusInstall
			ns.Window = openWindow(OpenedFirstBoot, now, s.opts.InstallWindow)
			Note(r, "window", "opened")
		case len(ns.Window.Released) > 0:
			action = "released"
			return nil
		}
		// A new boot starts the chain over: tokens of an earlier boot die.
		ns.Window.Tokens = nil
		b, err := ns.Window.mint(boot, s.nodeResource(n))
		if err != nil {
			return fmt.Errorf("%s/%s/%s: %w", NodesDir, n.Name, nodeBootFile, err)
		}
		body, action = b, "install"
		return nil
	})
	if err != nil {
		s.fail(w, r, http.StatusInternalServerError, err)
		return
	}
	switch action {
	case "installed":
		localBoot(n.Name + " is installed")
	case "expired":
		localBoot(n.Name + "'s install window closed without the installer's callback; hl metal reprovision " + n.Name + " opens a new one")
	case "released":
		localBoot(n.Name + "'s install window already handed out its k3s config; hl metal reprovision " + n.Name + " starts over")
	default:
		Note(r, "action", "install")
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write(body)
	}
}

// nodeFile serves a file of a node's folder to the node's address, with
// the live token for that file, inside the node's install window. The
// token is burnt; tokens for the next steps are minted into the body, and
// a file holding secrets is served once per window.
func (s *Server) nodeFile(w http.ResponseWriter, r *http.Request, token string) {
	name, file := r.PathValue("name"), r.PathValue("file")
	idx, ok := s.index(w, r)
	if !ok {
		return
	}
	n, ok := idx.ByName(name)
	if !ok || !validFileName(file) || file == nodeBootFile {
		s.fail(w, r, http.StatusNotFound, fmt.Errorf("no such node file"))
		return
	}
	Note(r, "node", n.Name)
	if err := s.bind.check(r, idx, n); err != nil {
		s.fail(w, r, http.StatusForbidden, err)
		return
	}
	if token == "" {
		s.fail(w, r, http.StatusUnauthorized, fmt.Errorf("%s needs a token of %s's install window", file, n.Name))
		return
	}
	raw, err := repoFile(s.opts.Dir, NodesDir+"/"+n.Name+"/"+file)
	if errors.Is(err, fs.ErrNotExist) {
		s.fail(w, r, http.StatusNotFound, fmt.Errorf("no such node file"))
		return
	}
	if err != nil {
		s.fail(w, r, http.StatusInternalServerError, err)
		return
	}
	var body []byte
	if !s.inWindow(w, r, n, func(ns *NodeState) (*refusal, error) {
		ok, replay := ns.Window.redeem(file, token, s.run, s.opts.Now())
		if !ok {
			return &refusal{http.StatusUnauthorized, fmt.Errorf("not a live token for %s of %s", file, n.Name)}, nil
		}
		if replay {
			// The run that burnt this token died; its answer may never
			// have left it. Serve the file again, with fresh tokens for
			// the next steps (the lost ones are replaced).
			Note(r, "replay", "true")
		}
		secret := holdsSecret(raw)
		if secret && !replay {
			if ns.Window.released(file) {
				return &refusal{http.StatusGone, fmt.Errorf("%s of %s was already served in this install window", file, n.Name)}, nil
			}
			ns.Window.Released = append(ns.Window.Released, file)
		}
		b, err := ns.Window.mint(raw, s.nodeResource(n))
		if err != nil {
			return nil, fmt.Errorf("%s/%s/%s: %w", NodesDir, n.Name, file, err)
		}
		if secret {
			if b, err = s.secrets.fill(b, n.Role); err != nil {
				return nil, fmt.Errorf("%s/%s/%s: %w", NodesDir, n.Name, file, err)
			}
		}
		if b, err = s.secrets.fillPublic(b); err != nil {
			return nil, fmt.Errorf("%s/%s/%s: %w", NodesDir, n.Name, file, err)
		}
		if file == k3sConfigFile && ns.Rejoin && n.Rejoin != "" {
			b = rejoinConfig(b, n.Rejoin)
			Note(r, "rejoin", "true")
		}
		body = b
		return nil, nil
	}) {
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write(body)
}

// rejoinConfig swaps cluster-init for a join URL in a k3s config.
func rejoinConfig(b []byte, url string) []byte {
	lines := strings.Split(string(b), "\n")
	for i, l := range lines {
		if strings.TrimSpace(l) == "cluster-init: true" {
			lines[i] = "server: " + strconv.Quote(url)
		}
	}
	return []byte(strings.Join(lines, "\n"))
}

// callback records a finished install, once per window, from the node's
// address with the window's callback token: the MAC boots locally from
// now on, the window closes and the reported SSH host key is pinned.
func (s *Server) callback(w http.ResponseWriter, r *http.Request) {
	mac, err := NormaliseMAC(r.PathValue("mac"))
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, err)
		return
	}
	Note(r, "mac", mac)
	idx, ok := s.index(w, r)
	if !ok {
		return
	}
	n, ok := idx.ByMAC(mac)
	if !ok {
		s.fail(w, r, http.StatusNotFound, fmt.Errorf("%s is not a node", mac))
		return
	}
	Note(r, "node", n.Name)
	if err := s.bind.check(r, idx, n); err != nil {
		s.fail(w, r, http.StatusForbidden, err)
		return
	}
	token := bearer(r)
	if token == "" {
		s.fail(w, r, http.StatusUnauthorized, fmt.Errorf("the callback needs the token of %s's install window", n.Name))
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
	// The callback's answer lost with an earlier run of the server (killed
	// after it recorded the install): the node's retry with the same
	// token, within ReplayGrace, hears that the install is recorded, once
	// per run, and nothing changes (the host key it sends is not taken).
	replayed := false
	if err := s.state.Update(func(st *State) error {
		ns, ok := st.Nodes[n.MAC]
		if !ok || ns == nil || ns.Window != nil || ns.Status != StatusInstalled || ns.Callback == nil {
			return nil
		}
		c := ns.Callback
		if c.Run == s.run || s.opts.Now().Sub(c.At) > ReplayGrace ||
			subtle.ConstantTimeCompare([]byte(tokenHash(token)), []byte(c.Hash)) != 1 {
			return nil
		}
		c.Run, replayed = s.run, true
		return nil
	}); err != nil {
		s.fail(w, r, http.StatusInternalServerError, err)
		return
	}
	if replayed {
		Note(r, "action", "already-installed")
		io.WriteString(w, "ok: "+n.Name+" boots its local disk from now on (recorded before)\n")
		return
	}
	if !s.inWindow(w, r, n, func(ns *NodeState) (*refusal, error) {
		if ok, _ := ns.Window.redeem(ResourceCallback, token, s.run, s.opts.Now()); !ok {
			return &refusal{http.StatusUnauthorized, fmt.Errorf("not the callback token of %s's install window", n.Name)}, nil
		}
		now := s.opts.Now().UTC()
		ns.Callback = &Spent{Hash: tokenHash(token), At: now, Run: s.run}
		ns.Status, ns.Rejoin, ns.InstalledAt, ns.Window = StatusInstalled, false, now, nil
		ns.Installs++
		if hostKey != "" {
			ns.HostKey = hostKey
		}
		return nil, nil
	}) {
		return
	}
	Note(r, "action", "installed")
	io.WriteString(w, "ok: "+n.Name+" boots its local disk from now on\n")
}
