package metal

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"hl.dev/hl/internal/testharness"
)

// The server tests run hl metal serve's real handler over real HTTP on
// loopback. The rendered e2e-full repo is moved onto loopback addresses
// (node1 at 127.0.0.11, node2 at 127.0.0.12): Linux routes all of
// 127.0.0.0/8 to lo, so a client bound to 127.0.0.11 is, to the server,
// node1's address, and one bound to 127.0.0.99 is a stranger on the LAN.

const (
	node1MAC  = "52:54:00:e2:e0:01"
	node2MAC  = "52:54:00:e2:e0:02"
	node1Path = "/ipxe/52-54-00-E2-E0-01" // iPXE's ${netX/mac:hexhyp}; case does not matter
	node2Path = "/ipxe/52-54-00-e2-e0-02"
	node1Addr = "127.0.0.11"
	node2Addr = "127.0.0.12"
	stranger  = "127.0.0.99"
	hostKey   = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBrrNnO6ES1fjcsZpjIeu89t/Ks17zrxqWfKRjw/Wcxc"
	evilKey   = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIC6jbetxbp3eof0Aj31M3uJxtuN+4ZA34QwawtArMBUq"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type testServer struct {
	*httptest.Server
	srv   *Server
	dir   string
	state string
	log   *testharness.SyncBuffer
	sec   *Secrets
	clock *clock
}

// loopbackRepo renders e2e-full and moves its nodes onto loopback.
func loopbackRepo(t *testing.T) string {
	t.Helper()
	dir := renderedRepo(t, "metal/e2e-full")
	p := filepath.Join(dir, IndexFile)
	idx := readFile(t, p)
	idx = strings.ReplaceAll(idx, `"10.99.0.11"`, `"`+node1Addr+`"`)
	idx = strings.ReplaceAll(idx, `"10.99.0.12"`, `"`+node2Addr+`"`)
	if !strings.Contains(idx, node1Addr) || !strings.Contains(idx, node2Addr) {
		t.Fatalf("node addresses not found in %s:\n%s", IndexFile, idx)
	}
	writeFile(t, p, idx)
	return dir
}

func newTestServer(t *testing.T, dir, state string, mod ...func(*ServeOptions)) *testServer {
	t.Helper()
	log := &testharness.SyncBuffer{}
	c := &clock{t: time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)}
	opts := ServeOptions{Dir: dir, StateFile: state, CacheDir: filepath.Join(filepath.Dir(state), "cache"), Identities: testIdentities(t), AccessLog: log, Now: c.Now}
	for _, m := range mod {
		m(&opts)
	}
	srv, err := NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	srv.bind.leaseWait = 0
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	sec, err := LoadSecrets(dir, testIdentities(t))
	if err != nil {
		t.Fatal(err)
	}
	return &testServer{Server: hs, srv: srv, dir: dir, state: state, log: log, sec: sec, clock: c}
}

// secrets are every decrypted value the server holds.
func (ts *testServer) secrets() []string {
	return []string{ts.sec.K3sToken, ts.sec.K3sAgentToken, ts.sec.APIToken}
}

var clients sync.Map

// from is an HTTP client whose connections come from addr.
func from(addr string) *http.Client {
	if c, ok := clients.Load(addr); ok {
		return c.(*http.Client)
	}
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(addr)}}
	c := &http.Client{Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}}
	clients.Store(addr, c)
	return c
}

// nodeRequest is a request as the node's scripts send it: an optional
// bearer token and form.
func nodeRequest(t *testing.T, method, u, token string, form url.Values) *http.Request {
	t.Helper()
	var r io.Reader
	if form != nil {
		r = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, u, r)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return req
}

// do sends a request from addr with an optional bearer token and form.
func (ts *testServer) do(t *testing.T, addr, method, path, token string, form url.Values) (int, string) {
	t.Helper()
	resp, err := from(addr).Do(nodeRequest(t, method, ts.URL+path, token, form))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (ts *testServer) get(t *testing.T, addr, path string) (int, string) {
	t.Helper()
	return ts.do(t, addr, http.MethodGet, path, "", nil)
}

// chain is what an installer collects walking its install window.
type chain struct {
	boot, preseed, post, k3s string
	// tokens by the resource they release
	tokens map[string]string
}

var (
	bootTokenRE     = regexp.MustCompile(`/t/([0-9a-f]{64})/nodes/[a-z0-9-]+/preseed\.cfg`)
	preseedTokenRE  = regexp.MustCompile(`Bearer ([0-9a-f]{64})" -o /root/hl-post-install\.sh`)
	k3sTokenRE      = regexp.MustCompile(`fetch '([0-9a-f]{64})' k3s-config\.yaml`)
	callbackTokenRE = regexp.MustCompile(`Bearer ([0-9a-f]{64})' --data-urlencode`)
	anyTokenRE      = regexp.MustCompile(`[0-9a-f]{64}`)
)

func match(t *testing.T, re *regexp.Regexp, what, body string) string {
	t.Helper()
	m := re.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no %s token in:\n%s", what, body)
	}
	return m[1]
}

// install walks the chain as the installer does, from addr, up to (not
// including) the callback.
func (ts *testServer) install(t *testing.T, addr, name, macPath string) chain {
	t.Helper()
	c := chain{tokens: map[string]string{}}
	code, body := ts.get(t, addr, macPath)
	if code != 200 || !strings.Contains(body, "kernel ") {
		t.Fatalf("%s: boot script: %d\n%s", name, code, body)
	}
	c.boot = body
	c.tokens["preseed.cfg"] = match(t, bootTokenRE, "install config", body)
	code, body = ts.get(t, addr, "/t/"+c.tokens["preseed.cfg"]+"/nodes/"+name+"/preseed.cfg")
	if code != 200 {
		t.Fatalf("%s: preseed: %d %s", name, code, body)
	}
	c.preseed = body
	c.tokens["post-install.sh"] = match(t, preseedTokenRE, "post-install", body)
	code, body = ts.do(t, addr, http.MethodGet, "/nodes/"+name+"/post-install.sh", c.tokens["post-install.sh"], nil)
	if code != 200 {
		t.Fatalf("%s: post-install: %d %s", name, code, body)
	}
	c.post = body
	c.tokens[k3sConfigFile] = match(t, k3sTokenRE, "k3s config", body)
	c.tokens[ResourceCallback] = match(t, callbackTokenRE, "callback", body)
	code, body = ts.do(t, addr, http.MethodGet, "/nodes/"+name+"/"+k3sConfigFile, c.tokens[k3sConfigFile], nil)
	if code != 200 {
		t.Fatalf("%s: k3s config: %d %s", name, code, body)
	}
	c.k3s = body
	return c
}

func (ts *testServer) callback(t *testing.T, addr, mac, token, key string) (int, string) {
	t.Helper()
	return ts.do(t, addr, http.MethodPost, "/callback/"+mac, token, url.Values{"hostKey": {key}})
}

// endpoints lists every request a LAN client can make of the server,
// with the given tokens tried wherever a token goes.
func (ts *testServer) endpoints(t *testing.T, tokens []string) [][3]string {
	t.Helper()
	tries := append([]string{"", strings.Repeat("0", 64)}, tokens...)
	var out [][3]string // method, path, token
	add := func(m, p, tok string) { out = append(out, [3]string{m, p, tok}) }
	for _, p := range []string{"/healthz", "/boot.ipxe", node1Path, node2Path, "/ipxe/52:54:00:00:00:99", "/os/debian/" + debianDefault + "/kernel", "/os/debian/" + debianDefault + "/initrd", "/api/v1/nodes"} {
		add(http.MethodGet, p, "")
	}
	for _, name := range []string{"node1", "node2"} {
		entries, err := os.ReadDir(filepath.Join(ts.dir, NodesDir, name))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			for _, tok := range tries {
				add(http.MethodGet, "/nodes/"+name+"/"+e.Name(), tok)
				if tok != "" {
					add(http.MethodGet, "/t/"+tok+"/nodes/"+name+"/"+e.Name(), "")
				}
			}
		}
	}
	for _, mac := range []string{node1MAC, node2MAC} {
		for _, tok := range tries {
			add(http.MethodPost, "/callback/"+mac, tok)
		}
		add(http.MethodPost, "/api/v1/nodes/node1/reprovision", "")
	}
	return out
}

// sweep sends every endpoint from every address and fails when a response
// holds a decrypted secret, or when a response is a success that must not
// be (a node file, a callback). It returns the number of requests sent.
func (ts *testServer) sweep(t *testing.T, when string, addrs []string, tokens []string) int {
	t.Helper()
	secrets := ts.secrets()
	n := 0
	for _, addr := range addrs {
		for _, e := range ts.endpoints(t, tokens) {
			var form url.Values
			if e[0] == http.MethodPost {
				form = url.Values{"hostKey": {evilKey}}
			}
			code, body := ts.do(t, addr, e[0], e[1], e[2], form)
			n++
			for _, s := range secrets {
				if strings.Contains(body, s) {
					t.Errorf("%s: %s %s from %s returned a decrypted secret", when, e[0], e[1], addr)
				}
			}
			if code == 200 && (strings.HasPrefix(e[1], "/nodes/") || strings.HasPrefix(e[1], "/t/") || strings.HasPrefix(e[1], "/callback/")) {
				t.Errorf("%s: %s %s from %s (token %t) succeeded: %s", when, e[0], e[1], addr, e[2] != "", body)
			}
		}
	}
	return n
}

func (ts *testServer) nodeState(t *testing.T, mac string) NodeState {
	t.Helper()
	st, err := StateFile{Path: ts.state}.Load()
	if err != nil {
		t.Fatal(err)
	}
	return st.Node(mac, "")
}

// TestInstallWindowChain (issue 15, findings 1 and 2): the installer's
// whole walk through its install window, each token working once, the
// callback closing the window, and nothing served after it. On the old
// code the boot script carried no token and the install config was open.
func TestInstallWindowChain(t *testing.T) {
	dir := loopbackRepo(t)
	state := filepath.Join(t.TempDir(), "state", "state.json")
	ts := newTestServer(t, dir, state)

	code, body := ts.get(t, stranger, "/boot.ipxe")
	if code != 200 || !strings.Contains(body, "/ipxe/${netX/mac:hexhyp}") {
		t.Fatalf("boot.ipxe: %d\n%s", code, body)
	}
	code, body = ts.get(t, stranger, "/ipxe/52:54:00:00:00:99")
	if code != 200 || !strings.HasPrefix(body, "#!ipxe\n") || !strings.Contains(body, "not a node") || strings.Contains(body, "kernel") {
		t.Fatalf("unknown MAC: %d\n%s", code, body)
	}
	if _, body = ts.get(t, stranger, "/ipxe/not-a-mac"); strings.Contains(body, "kernel") {
		t.Fatalf("bad MAC: %s", body)
	}

	c := ts.install(t, node1Addr, "node1", node1Path)
	if !strings.Contains(c.boot, "kernel http://10.99.0.2:8080/os/debian/"+debianDefault+"/kernel") {
		t.Errorf("boot script:\n%s", c.boot)
	}
	ns := ts.nodeState(t, node1MAC)
	if ns.Window == nil || ns.Window.Opened != OpenedFirstBoot || !ns.Window.ExpiresAt.Equal(ts.clock.Now().Add(DefaultInstallWindow)) {
		t.Fatalf("window %+v", ns.Window)
	}
	// What the installer holds before the k3s config carries no secret,
	// and no placeholder is left anywhere.
	for what, b := range map[string]string{"boot": c.boot, "preseed": c.preseed, "post-install": c.post} {
		for _, s := range ts.secrets() {
			if strings.Contains(b, s) {
				t.Errorf("%s holds a decrypted secret", what)
			}
		}
	}
	for what, b := range map[string]string{"boot": c.boot, "preseed": c.preseed, "post-install": c.post, "k3s": c.k3s} {
		if strings.Contains(b, "@@HL_") {
			t.Errorf("%s has a placeholder left:\n%s", what, b)
		}
	}
	// The metal pipeline's key reaches the node: the public half of the
	// private key Woodpecker hands the rollout step, able only to run the
	// reboot command the rollout sends.
	priv, err := readSecretKey(filepath.Join(ts.dir, filepath.FromSlash(RolloutKeyFile)), "ssh-key", testIdentities(t))
	if err != nil {
		t.Fatal(err)
	}
	rollout, err := ssh.ParsePrivateKey([]byte(priv + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	wantLine := `restrict,command="` + DefaultRebootCommand + `" ` + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(rollout.PublicKey())))
	if !strings.Contains(c.post, "'"+wantLine+"' >> /home/hl/.ssh/authorized_keys") {
		t.Errorf("post-install.sh does not authorize the rollout key as %s:\n%s", wantLine, c.post)
	}
	if key, _, opts, _, err := ssh.ParseAuthorizedKey([]byte(wantLine)); err != nil || string(key.Marshal()) != string(rollout.PublicKey().Marshal()) ||
		!slices.Equal(opts, []string{"restrict", `command="` + DefaultRebootCommand + `"`}) {
		t.Errorf("authorized_keys line %q: options %q, %v", wantLine, opts, err)
	}
	if !strings.Contains(c.k3s, `token: "`+ts.sec.K3sToken+`"`) || !strings.Contains(c.k3s, `agent-token: "`+ts.sec.K3sAgentToken+`"`) || !strings.Contains(c.k3s, "cluster-init: true") {
		t.Fatalf("server k3s config:\n%s", c.k3s)
	}
	// Every token worked once.
	replays := []struct{ path, token string }{
		{"/t/" + c.tokens["preseed.cfg"] + "/nodes/node1/preseed.cfg", ""},
		{"/nodes/node1/post-install.sh", c.tokens["post-install.sh"]},
		{"/nodes/node1/" + k3sConfigFile, c.tokens[k3sConfigFile]},
	}
	for _, r := range replays {
		if code, body := ts.do(t, node1Addr, http.MethodGet, r.path, r.token, nil); code == 200 {
			t.Errorf("replay of %s served: %s", r.path, body)
		}
	}
	// The callback: a wrong token is refused, the right one pins the key.
	if code, _ := ts.callback(t, node1Addr, node1MAC, strings.Repeat("a", 64), hostKey); code != http.StatusUnauthorized {
		t.Fatalf("callback with a wrong token: %d", code)
	}
	if code, body := ts.callback(t, node1Addr, node1MAC, c.tokens[ResourceCallback], hostKey); code != 200 {
		t.Fatalf("callback: %d %s", code, body)
	}
	ns = ts.nodeState(t, node1MAC)
	if ns.Status != StatusInstalled || ns.HostKey != hostKey || ns.Installs != 1 || ns.Window != nil {
		t.Fatalf("state after callback %+v", ns)
	}
	// After the callback nothing of the window works, from anywhere.
	for _, tok := range c.tokens {
		if code, _ := ts.callback(t, node1Addr, node1MAC, tok, evilKey); code == 200 {
			t.Error("a second callback was accepted")
		}
	}
	if ns := ts.nodeState(t, node1MAC); ns.HostKey != hostKey {
		t.Fatalf("host key changed after the callback: %q", ns.HostKey)
	}
	code, body = ts.get(t, node1Addr, node1Path)
	if code != 200 || !strings.Contains(body, "sanboot") || strings.Contains(body, "kernel") {
		t.Fatalf("after callback: %d\n%s", code, body)
	}
	ts.sweep(t, "after the callback", []string{node1Addr, node2Addr, stranger}, values(c.tokens))

	// A restart keeps the state.
	ts2 := newTestServer(t, dir, state)
	if _, body = ts2.get(t, node1Addr, node1Path); !strings.Contains(body, "sanboot") {
		t.Fatalf("after restart:\n%s", body)
	}

	// The state file is 0600 and holds no token, only hashes.
	info, err := os.Stat(state)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Errorf("state file mode %v", info.Mode().Perm())
	}
	// The access log has every step and no token.
	log := ts.log.String()
	for _, want := range []string{`"GET /ipxe/52-54-00-E2-E0-01" 200`, "action=install", "window=opened", `"GET /t/-/nodes/node1/preseed.cfg" 200`, "action=unknown", "action=local-boot", `"POST /callback/52:54:00:e2:e0:01" 401`, "action=installed"} {
		if !strings.Contains(log, want) {
			t.Errorf("access log lacks %q:\n%s", want, log)
		}
	}
	for _, tok := range append(values(c.tokens), ts.secrets()...) {
		if strings.Contains(log, tok) {
			t.Error("a token is in the access log")
		}
		if strings.Contains(readFile(t, state), tok) {
			t.Error("a token is in the state file")
		}
	}
}

func values(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

// TestFreshServerReleasesNothing (issue 15, finding 1): a server started
// on an empty state exposes no node's join token to anyone, whatever is
// asked from wherever, until a node's own first boot opens its window. On
// the old code the preseed handed out the token that released the k3s
// config of every node the state had never seen.
func TestFreshServerReleasesNothing(t *testing.T) {
	dir := loopbackRepo(t)
	ts := newTestServer(t, dir, filepath.Join(t.TempDir(), "state.json"))
	// The old attack, verbatim: no token in the install config path.
	code, body := ts.get(t, stranger, "/nodes/node1/preseed.cfg")
	if code == 200 || anyTokenRE.MatchString(body) {
		t.Fatalf("preseed without a token: %d\n%s", code, body)
	}
	n := ts.sweep(t, "fresh server", []string{node1Addr, node2Addr, stranger}, nil)
	t.Logf("%d requests, none released a secret", n)
	// The sweep asked /ipxe/<mac> from each node's address, which opens
	// its first window (that is the rule); from elsewhere it does not.
	for _, mac := range []string{node1MAC, node2MAC} {
		if ns := ts.nodeState(t, mac); ns.Window == nil || ns.Window.Opened != OpenedFirstBoot {
			t.Errorf("%s: window %+v", mac, ns.Window)
		}
	}
	ts2 := newTestServer(t, dir, filepath.Join(t.TempDir(), "state.json"))
	ts2.sweep(t, "fresh server, strangers only", []string{stranger}, nil)
	if st, err := (StateFile{Path: ts2.state}).Load(); err != nil || len(st.Nodes) != 0 {
		t.Fatalf("a stranger opened a window: %+v %v", st, err)
	}
}

// TestReplayFromAnotherAddress (issue 15, finding 1): every token of a
// window is refused from any address but the node's (and is not burnt by
// the attempt), and /ipxe/<mac> hands a stranger no token.
func TestReplayFromAnotherAddress(t *testing.T) {
	dir := loopbackRepo(t)
	ts := newTestServer(t, dir, filepath.Join(t.TempDir(), "state.json"))
	code, body := ts.get(t, stranger, node1Path)
	if code != 200 || strings.Contains(body, "kernel") || anyTokenRE.MatchString(body) || !strings.Contains(body, "not installing node1") {
		t.Fatalf("boot script for a stranger: %d\n%s", code, body)
	}
	if ns := ts.nodeState(t, node1MAC); ns.Window != nil {
		t.Fatal("a stranger's request opened node1's window")
	}
	_, body = ts.get(t, node1Addr, node1Path)
	tok := match(t, bootTokenRE, "install config", body)
	for _, addr := range []string{stranger, node2Addr} {
		if code, body := ts.get(t, addr, "/t/"+tok+"/nodes/node1/preseed.cfg"); code != http.StatusForbidden || anyTokenRE.MatchString(body) {
			t.Fatalf("preseed token replayed from %s: %d\n%s", addr, code, body)
		}
	}
	code, body = ts.get(t, node1Addr, "/t/"+tok+"/nodes/node1/preseed.cfg")
	if code != 200 {
		t.Fatalf("the node's own fetch after the refused replays: %d %s", code, body)
	}
	post := match(t, preseedTokenRE, "post-install", body)
	if code, _ := ts.do(t, stranger, http.MethodGet, "/nodes/node1/post-install.sh", post, nil); code != http.StatusForbidden {
		t.Fatalf("post-install from a stranger: %d", code)
	}
	code, body = ts.do(t, node1Addr, http.MethodGet, "/nodes/node1/post-install.sh", post, nil)
	if code != 200 {
		t.Fatalf("post-install: %d %s", code, body)
	}
	k3s := match(t, k3sTokenRE, "k3s config", body)
	if code, body := ts.do(t, stranger, http.MethodGet, "/nodes/node1/"+k3sConfigFile, k3s, nil); code != http.StatusForbidden || strings.Contains(body, ts.sec.K3sToken) {
		t.Fatalf("k3s config from a stranger: %d", code)
	}
	// A token is bound to its node too: node1's token fetches nothing of
	// node2's, even from node2's address.
	if code, _ := ts.do(t, node2Addr, http.MethodGet, "/nodes/node2/"+k3sConfigFile, k3s, nil); code == 200 {
		t.Fatal("node1's token fetched node2's k3s config")
	}
	ts.sweep(t, "open window, strangers", []string{stranger}, []string{tok, post, k3s})
}

// TestForgedCallback (issue 15, finding 2): a callback with the right
// token from another address is refused and pins nothing; the node's own
// callback then pins its key, and a later one (any address, any token)
// changes nothing. On the old code the HMAC token read from the preseed
// let anyone pin their key and mark the node installed.
func TestForgedCallback(t *testing.T) {
	dir := loopbackRepo(t)
	ts := newTestServer(t, dir, filepath.Join(t.TempDir(), "state.json"))
	c := ts.install(t, node1Addr, "node1", node1Path)
	for _, addr := range []string{stranger, node2Addr} {
		if code, _ := ts.callback(t, addr, node1MAC, c.tokens[ResourceCallback], evilKey); code != http.StatusForbidden {
			t.Fatalf("forged callback from %s: %d", addr, code)
		}
	}
	if ns := ts.nodeState(t, node1MAC); ns.Status != StatusInstall || ns.HostKey != "" || ns.Window == nil {
		t.Fatalf("forged callback changed the state: %+v", ns)
	}
	// Other tokens of the window are not the callback token.
	for _, res := range []string{"preseed.cfg", "post-install.sh", k3sConfigFile} {
		if code, _ := ts.callback(t, node1Addr, node1MAC, c.tokens[res], evilKey); code != http.StatusUnauthorized {
			t.Fatalf("callback with the %s token: %d", res, code)
		}
	}
	if code, _ := ts.callback(t, node1Addr, node1MAC, c.tokens[ResourceCallback], hostKey); code != 200 {
		t.Fatal("the node's callback was refused")
	}
	for _, addr := range []string{node1Addr, stranger} {
		if code, _ := ts.callback(t, addr, node1MAC, c.tokens[ResourceCallback], evilKey); code == 200 {
			t.Fatalf("second callback from %s accepted", addr)
		}
	}
	if ns := ts.nodeState(t, node1MAC); ns.HostKey != hostKey || ns.Installs != 1 {
		t.Fatalf("state %+v", ns)
	}
}

// TestAgentGetsAgentToken (issue 15, finding 3): an agent's k3s config
// holds the agent token and never the server token; servers get both. A
// hand-edited agent config asking for the server token is refused. On the
// old code every node got the one k3s token.
func TestAgentGetsAgentToken(t *testing.T) {
	dir := loopbackRepo(t)
	ts := newTestServer(t, dir, filepath.Join(t.TempDir(), "state.json"))
	c := ts.install(t, node2Addr, "node2", node2Path)
	if !strings.Contains(c.k3s, `token: "`+ts.sec.K3sAgentToken+`"`) || strings.Contains(c.k3s, ts.sec.K3sToken) || strings.Contains(c.k3s, "\nagent-token:") {
		t.Fatalf("agent k3s config:\n%s", c.k3s)
	}
	if !strings.Contains(c.k3s, `server: "https://`+"10.99.0.11"+`:6443"`) {
		t.Errorf("agent joins the server:\n%s", c.k3s)
	}
	if ts.sec.K3sToken == ts.sec.K3sAgentToken {
		t.Fatal("agent and server tokens are the same")
	}

	// An agent file edited to ask for the server token.
	p := filepath.Join(dir, NodesDir, "node2", k3sConfigFile)
	writeFile(t, p, strings.Replace(readFile(t, p), PlaceholderK3sAgentToken, PlaceholderK3sToken, 1))
	if code, _ := ts.callback(t, node2Addr, node2MAC, c.tokens[ResourceCallback], hostKey); code != 200 {
		t.Fatal("callback")
	}
	lp := &LocalProvisioner{Dir: dir, State: StateFile{Path: ts.state}, Now: ts.clock.Now}
	if err := lp.Reprovision(context.Background(), "node2", false); err != nil {
		t.Fatal(err)
	}
	_, body := ts.get(t, node2Addr, node2Path)
	tok := match(t, bootTokenRE, "install config", body)
	_, body = ts.get(t, node2Addr, "/t/"+tok+"/nodes/node2/preseed.cfg")
	_, body = ts.do(t, node2Addr, http.MethodGet, "/nodes/node2/post-install.sh", match(t, preseedTokenRE, "post-install", body), nil)
	code, body := ts.do(t, node2Addr, http.MethodGet, "/nodes/node2/"+k3sConfigFile, match(t, k3sTokenRE, "k3s", body), nil)
	if code != http.StatusInternalServerError || strings.Contains(body, ts.sec.K3sToken) {
		t.Fatalf("agent config asking for the server token: %d\n%s", code, body)
	}
}

// TestWindowTimeoutAndReboot (issue 15, finding 1): a second boot inside
// the window starts the chain over (the first boot's tokens die) until the
// k3s config is out; after that, and after the timeout, the node gets
// local boot and no token until hl metal reprovision opens a new window.
func TestWindowTimeoutAndReboot(t *testing.T) {
	dir := loopbackRepo(t)
	ts := newTestServer(t, dir, filepath.Join(t.TempDir(), "state.json"), func(o *ServeOptions) { o.InstallWindow = 20 * time.Minute })
	_, body := ts.get(t, node1Addr, node1Path)
	first := match(t, bootTokenRE, "install config", body)
	_, body = ts.get(t, node1Addr, node1Path)
	second := match(t, bootTokenRE, "install config", body)
	if first == second {
		t.Fatal("a reboot got the same token")
	}
	if code, _ := ts.get(t, node1Addr, "/t/"+first+"/nodes/node1/preseed.cfg"); code != http.StatusUnauthorized {
		t.Fatalf("the first boot's token after a reboot: %d", code)
	}
	c := ts.install(t, node1Addr, "node1", node1Path)
	code, body := ts.get(t, node1Addr, node1Path)
	if code != 200 || !strings.Contains(body, "already handed out") || anyTokenRE.MatchString(body) || !strings.Contains(body, "sanboot") {
		t.Fatalf("boot after the k3s config went out: %d\n%s", code, body)
	}

	// The window runs out: the callback token dies with it.
	ts.clock.Add(20 * time.Minute)
	if code, _ := ts.callback(t, node1Addr, node1MAC, c.tokens[ResourceCallback], hostKey); code != http.StatusGone {
		t.Fatalf("callback after the timeout: %d", code)
	}
	if ns := ts.nodeState(t, node1MAC); ns.Status != StatusExpired || ns.Window != nil || ns.HostKey != "" {
		t.Fatalf("state after the timeout %+v", ns)
	}
	code, body = ts.get(t, node1Addr, node1Path)
	if code != 200 || !strings.Contains(body, "closed without") || anyTokenRE.MatchString(body) {
		t.Fatalf("boot after the timeout: %d\n%s", code, body)
	}
	ts.sweep(t, "after the timeout", []string{node1Addr, node2Addr, stranger}, values(c.tokens))
	if ns := ts.nodeState(t, node1MAC); ns.Status != StatusExpired {
		t.Fatalf("the first-boot rule reopened an expired window: %+v", ns)
	}

	// Reprovision opens a new window at once, for its own length.
	c2 := &APIClient{BaseURL: ts.URL, Token: ts.sec.APIToken}
	if err := c2.Reprovision(context.Background(), "node1", false); err != nil {
		t.Fatal(err)
	}
	ns := ts.nodeState(t, node1MAC)
	if ns.Status != StatusInstall || ns.Window == nil || ns.Window.Opened != OpenedReprovision || !ns.Window.ExpiresAt.Equal(ts.clock.Now().Add(20*time.Minute)) {
		t.Fatalf("after reprovision %+v", ns.Window)
	}
	c3 := ts.install(t, node1Addr, "node1", node1Path)
	if code, _ := ts.callback(t, node1Addr, node1MAC, c3.tokens[ResourceCallback], hostKey); code != 200 {
		t.Fatal("callback in the reprovision window")
	}
}

// TestFullModeLeaseBinding (issue 15, finding 1): in full DHCP mode the
// address that counts is the one dnsmasq leased to the node's MAC (its
// lease file, in dnsmasq's own format), not whoever claims the configured
// one; no lease, or an expired one, installs nothing.
func TestFullModeLeaseBinding(t *testing.T) {
	dir := loopbackRepo(t)
	leases := filepath.Join(t.TempDir(), "dnsmasq.leases")
	ts := newTestServer(t, dir, filepath.Join(t.TempDir(), "state.json"), func(o *ServeOptions) { o.LeaseFile = leases })
	now := ts.clock.Now().Unix()
	if code, body := ts.get(t, node1Addr, node1Path); code != 200 || strings.Contains(body, "kernel") || !strings.Contains(body, "no DHCP lease") {
		t.Fatalf("without a lease: %d\n%s", code, body)
	}
	// dnsmasq leased node1 127.0.0.21 (a hand-edited config, say): that is
	// the address that counts, not metal/nodes.yaml's.
	writeFile(t, leases, "duid 00:01:00:01:2c:aa:bb:cc:52:54:00:00:00:01\n"+
		strconv.FormatInt(now+3600, 10)+" 52:54:00:e2:e0:01 127.0.0.21 node1 01:52:54:00:e2:e0:01\n"+
		strconv.FormatInt(now-10, 10)+" 52:54:00:e2:e0:02 127.0.0.12 node2 *\n")
	if code, body := ts.get(t, node1Addr, node1Path); code != 200 || strings.Contains(body, "kernel") {
		t.Fatalf("from the configured address, lease elsewhere: %d\n%s", code, body)
	}
	if code, body := ts.get(t, "127.0.0.21", node1Path); code != 200 || !strings.Contains(body, "kernel") {
		t.Fatalf("from the leased address: %d\n%s", code, body)
	}
	if code, body := ts.get(t, node2Addr, node2Path); code != 200 || strings.Contains(body, "kernel") {
		t.Fatalf("expired lease: %d\n%s", code, body)
	}
}

func TestAPIReprovisionAndRejoin(t *testing.T) {
	dir := renderedRepo(t, "valid/ha")
	// The ha fixture's cp1 on loopback, so the test can be it.
	p := filepath.Join(dir, IndexFile)
	writeFile(t, p, strings.ReplaceAll(readFile(t, p), `"172.16.10.11"`, `"127.0.0.31"`))
	state := filepath.Join(t.TempDir(), "state.json")
	ts := newTestServer(t, dir, state)
	ctx := context.Background()
	cp1 := "52:54:00:10:00:01"
	bad := &APIClient{BaseURL: ts.URL, Token: "wrong"}
	if err := bad.Reprovision(ctx, "cp1", true); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("wrong API token: %v", err)
	}
	c := &APIClient{BaseURL: ts.URL, Token: ts.sec.APIToken}
	if err := c.Reprovision(ctx, "cp1", true); err != nil {
		t.Fatal(err)
	}
	sts, err := c.Nodes(ctx)
	if err != nil || len(sts) != 5 || sts[0].Name != "cp1" || sts[0].Status != StatusInstall || sts[0].WindowExpiresAt.IsZero() || !sts[1].WindowExpiresAt.IsZero() {
		t.Fatalf("nodes: %+v %v", sts, err)
	}
	// The first server rejoins the running cluster instead of cluster-init.
	_, body := ts.get(t, "127.0.0.31", "/ipxe/"+cp1)
	_, body = ts.get(t, "127.0.0.31", "/t/"+match(t, bootTokenRE, "install config", body)+"/nodes/cp1/preseed.cfg")
	_, body = ts.do(t, "127.0.0.31", http.MethodGet, "/nodes/cp1/post-install.sh", match(t, preseedTokenRE, "post-install", body), nil)
	if !strings.Contains(body, "kube-vip.yaml") {
		t.Fatalf("cp1 post-install places no kube-vip:\n%s", body)
	}
	code, body := ts.do(t, "127.0.0.31", http.MethodGet, "/nodes/cp1/"+k3sConfigFile, match(t, k3sTokenRE, "k3s", body), nil)
	if code != 200 || strings.Contains(body, "cluster-init") || !strings.Contains(body, `server: "https://172.16.10.100:6443"`) {
		t.Fatalf("rejoin config: %d\n%s", code, body)
	}
	if err := c.Reprovision(ctx, "nope", false); err == nil {
		t.Fatal("unknown node accepted")
	}
	lp := &LocalProvisioner{Dir: dir, State: StateFile{Path: state}}
	if err := lp.Reprovision(ctx, "nodeX", false); err == nil {
		t.Fatal("unknown node accepted")
	}
}

func TestServeImages(t *testing.T) {
	dir := renderedRepo(t, "metal/e2e-full")
	state := filepath.Join(t.TempDir(), "state.json")
	ts := newTestServer(t, dir, state)
	if code, body := ts.get(t, stranger, "/os/debian/"+debianDefault+"/kernel"); code != http.StatusServiceUnavailable || !strings.Contains(body, "hl metal images pull") {
		t.Fatalf("uncached kernel: %d %s", code, body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := Pull(ctx, PullOptions{Dir: dir, CacheDir: filepath.Join(filepath.Dir(state), "cache"), Mirrors: []Mirror{debianMirror(t, dir)}}); err != nil {
		t.Fatal(err)
	}
	code, body := ts.get(t, stranger, "/os/debian/"+debianDefault+"/kernel")
	want := readFile(t, filepath.Join(debianNetbootDir(debianDefault), "linux"))
	if code != 200 || body != want {
		t.Fatalf("kernel: %d, %d bytes (want %d)", code, len(body), len(want))
	}
	if code, _ := ts.get(t, stranger, "/os/fedora/42/kernel"); code != http.StatusNotFound {
		t.Fatalf("unpinned OS: %d", code)
	}
}

// hl metal serve restarted in the middle of an install (a crash, a reboot
// of the PXE host, an upgrade): the install window and the tokens already
// handed out live in the state file (hashes, written under an flock as
// each step is served), so a new server on the same state continues the
// chain where the installer is — at every step of it — and the callback
// closes the window once; nothing the old server served can be fetched
// again from the new one.
func TestServerRestartedMidInstall(t *testing.T) {
	for restartBefore := 1; restartBefore <= 4; restartBefore++ {
		t.Run(fmt.Sprint("before step ", restartBefore), func(t *testing.T) {
			dir := loopbackRepo(t)
			state := filepath.Join(t.TempDir(), "state", "state.json")
			ts := newTestServer(t, dir, state)
			restart := func(step int) {
				if step == restartBefore {
					ts.Close() // the old process is gone; its state file stays
					ts = newTestServer(t, dir, state)
				}
			}
			c := chain{tokens: map[string]string{}}
			code, body := ts.get(t, node1Addr, node1Path)
			if code != 200 {
				t.Fatalf("boot script: %d %s", code, body)
			}
			c.tokens["preseed.cfg"] = match(t, bootTokenRE, "install config", body)
			restart(1)
			code, body = ts.get(t, node1Addr, "/t/"+c.tokens["preseed.cfg"]+"/nodes/node1/preseed.cfg")
			if code != 200 {
				t.Fatalf("preseed after the restart point %d: %d %s", restartBefore, code, body)
			}
			c.tokens["post-install.sh"] = match(t, preseedTokenRE, "post-install", body)
			restart(2)
			code, body = ts.do(t, node1Addr, http.MethodGet, "/nodes/node1/post-install.sh", c.tokens["post-install.sh"], nil)
			if code != 200 {
				t.Fatalf("post-install: %d %s", code, body)
			}
			c.tokens[k3sConfigFile] = match(t, k3sTokenRE, "k3s config", body)
			c.tokens[ResourceCallback] = match(t, callbackTokenRE, "callback", body)
			restart(3)
			code, body = ts.do(t, node1Addr, http.MethodGet, "/nodes/node1/"+k3sConfigFile, c.tokens[k3sConfigFile], nil)
			if code != 200 || !strings.Contains(body, ts.sec.K3sToken) {
				t.Fatalf("k3s config: %d", code)
			}
			restart(4)
			if code, body := ts.callback(t, node1Addr, node1MAC, c.tokens[ResourceCallback], hostKey); code != 200 {
				t.Fatalf("callback: %d %s", code, body)
			}
			if ns := ts.nodeState(t, node1MAC); ns.Window != nil || ns.Status != StatusInstalled {
				t.Errorf("after the callback: window %+v, status %s", ns.Window, ns.Status)
			}
			// Served once, in one window: nothing of the chain again.
			if code, _ := ts.do(t, node1Addr, http.MethodGet, "/nodes/node1/"+k3sConfigFile, c.tokens[k3sConfigFile], nil); code == 200 {
				t.Error("the k3s config was served again after the install")
			}
			if code, _ := ts.callback(t, node1Addr, node1MAC, c.tokens[ResourceCallback], hostKey); code == 200 {
				t.Error("a second callback was accepted")
			}
		})
	}
}
