package metal

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a goroutine-safe access log for tests.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type testServer struct {
	*httptest.Server
	srv   *Server
	dir   string
	state string
	log   *syncBuffer
	sec   *Secrets
}

func newTestServer(t *testing.T, dir, state string) *testServer {
	t.Helper()
	log := &syncBuffer{}
	srv, err := NewServer(ServeOptions{Dir: dir, StateFile: state, CacheDir: filepath.Join(filepath.Dir(state), "cache"), Identities: testIdentities(t), AccessLog: log})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	sec, err := LoadSecrets(dir, testIdentities(t))
	if err != nil {
		t.Fatal(err)
	}
	return &testServer{Server: hs, srv: srv, dir: dir, state: state, log: log, sec: sec}
}

func (ts *testServer) do(t *testing.T, method, path, token string, body url.Values) (int, string) {
	t.Helper()
	var r io.Reader
	if body != nil {
		r = strings.NewReader(body.Encode())
	}
	req, err := http.NewRequest(method, ts.URL+path, r)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (ts *testServer) get(t *testing.T, path string) (int, string) {
	return ts.do(t, http.MethodGet, path, "", nil)
}

const (
	node1MAC  = "52:54:00:e2:e0:01"
	node1Path = "/ipxe/52-54-00-E2-E0-01" // iPXE's ${netX/mac:hexhyp}; case does not matter
	hostKey   = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBrrNnO6ES1fjcsZpjIeu89t/Ks17zrxqWfKRjw/Wcxc"
)

// TestInstallOnce: a node marked for install gets its installer until the
// callback, then the local-boot script (also after a restart), and
// reprovision flips it back.
func TestInstallOnce(t *testing.T) {
	dir := renderedRepo(t, "metal/e2e-full")
	state := filepath.Join(t.TempDir(), "state.json")
	ts := newTestServer(t, dir, state)
	token := ts.sec.NodeToken(node1MAC)

	code, body := ts.get(t, "/boot.ipxe")
	if code != 200 || !strings.Contains(body, "/ipxe/${netX/mac:hexhyp}") {
		t.Fatalf("boot.ipxe: %d\n%s", code, body)
	}
	code, body = ts.get(t, node1Path)
	if code != 200 || !strings.Contains(body, "kernel http://10.99.0.2:8080/os/debian/12/kernel") || !strings.Contains(body, "/nodes/node1/preseed.cfg") {
		t.Fatalf("install script: %d\n%s", code, body)
	}
	code, body = ts.get(t, "/ipxe/52:54:00:00:00:99")
	if code != 200 || !strings.HasPrefix(body, "#!ipxe\n") || !strings.Contains(body, "not a node") || strings.Contains(body, "kernel") {
		t.Fatalf("unknown MAC: %d\n%s", code, body)
	}
	if _, body = ts.get(t, "/ipxe/not-a-mac"); strings.Contains(body, "kernel") {
		t.Fatalf("bad MAC: %s", body)
	}

	// The install config carries the node's token; the k3s config needs it.
	code, body = ts.get(t, "/nodes/node1/preseed.cfg")
	if code != 200 || !strings.Contains(body, "Bearer "+token) || strings.Contains(body, "@@HL_") {
		t.Fatalf("preseed: %d\n%s", code, body)
	}
	if code, _ = ts.get(t, "/nodes/node1/k3s-config.yaml"); code != http.StatusUnauthorized {
		t.Fatalf("k3s config without token: %d", code)
	}
	if code, _ = ts.do(t, http.MethodGet, "/nodes/node1/k3s-config.yaml", ts.sec.NodeToken("52:54:00:e2:e0:02"), nil); code != http.StatusUnauthorized {
		t.Fatalf("k3s config with node2's token: %d", code)
	}
	code, body = ts.do(t, http.MethodGet, "/nodes/node1/k3s-config.yaml", token, nil)
	if code != 200 || !strings.Contains(body, `token: "`+ts.sec.K3sToken+`"`) || !strings.Contains(body, "cluster-init: true") {
		t.Fatalf("k3s config: %d\n%s", code, body)
	}
	code, body = ts.do(t, http.MethodGet, "/nodes/node1/post-install.sh", token, nil)
	if code != 200 || !strings.Contains(body, "TOKEN='"+token+"'") {
		t.Fatalf("post-install: %d", code)
	}
	if code, _ = ts.get(t, "/nodes/node1/..%2fnodes.yaml"); code == 200 {
		t.Fatal("path traversal served")
	}

	// Callback: wrong token refused, right token switches to local boot.
	if code, _ = ts.do(t, http.MethodPost, "/callback/"+node1MAC, "nope", url.Values{"hostKey": {hostKey}}); code != http.StatusUnauthorized {
		t.Fatalf("callback with a wrong token: %d", code)
	}
	if code, body = ts.do(t, http.MethodPost, "/callback/"+node1MAC, token, url.Values{"hostKey": {hostKey}}); code != 200 {
		t.Fatalf("callback: %d %s", code, body)
	}
	code, body = ts.get(t, node1Path)
	if code != 200 || !strings.Contains(body, "sanboot") || strings.Contains(body, "kernel") {
		t.Fatalf("after callback: %d\n%s", code, body)
	}
	if code, _ = ts.get(t, "/nodes/node1/preseed.cfg"); code != http.StatusGone {
		t.Fatalf("install config after the install: %d", code)
	}

	// A restart keeps the state.
	ts2 := newTestServer(t, dir, state)
	if _, body = ts2.get(t, node1Path); !strings.Contains(body, "sanboot") {
		t.Fatalf("after restart:\n%s", body)
	}
	st, err := StateFile{Path: state}.Load()
	if err != nil {
		t.Fatal(err)
	}
	if n := st.Nodes[node1MAC]; n == nil || n.HostKey != hostKey || n.Installs != 1 || n.InstalledAt.IsZero() {
		t.Fatalf("state %+v", n)
	}

	// reprovision on this host (the CLI path) flips it back.
	lp := &LocalProvisioner{Dir: dir, State: StateFile{Path: state}}
	if err := lp.Reprovision(context.Background(), "node1", false); err != nil {
		t.Fatal(err)
	}
	if _, body = ts2.get(t, node1Path); !strings.Contains(body, "kernel ") {
		t.Fatalf("after reprovision:\n%s", body)
	}
	if err := lp.Reprovision(context.Background(), "nodeX", false); err == nil {
		t.Fatal("unknown node accepted")
	}

	// The access log has every request and no token.
	log := ts.log.String() + ts2.log.String()
	for _, want := range []string{`"GET /ipxe/52-54-00-E2-E0-01" 200`, "action=install", "action=unknown", "action=local-boot", `"POST /callback/52:54:00:e2:e0:01" 401`, "action=installed"} {
		if !strings.Contains(log, want) {
			t.Errorf("access log lacks %q:\n%s", want, log)
		}
	}
	for _, secret := range []string{token, ts.sec.K3sToken, ts.sec.APIToken} {
		if strings.Contains(log, secret) {
			t.Error("a token is in the access log")
		}
	}
}

func TestAPIReprovisionAndRejoin(t *testing.T) {
	dir := renderedRepo(t, "valid/ha")
	state := filepath.Join(t.TempDir(), "state.json")
	ts := newTestServer(t, dir, state)
	ctx := context.Background()
	cp1 := "52:54:00:10:00:01"
	if code, _ := ts.do(t, http.MethodPost, "/callback/"+cp1, ts.sec.NodeToken(cp1), url.Values{}); code != 200 {
		t.Fatal("callback failed")
	}
	bad := &APIClient{BaseURL: ts.URL, Token: "wrong"}
	if err := bad.Reprovision(ctx, "cp1", true); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("wrong API token: %v", err)
	}
	c := &APIClient{BaseURL: ts.URL, Token: ts.sec.APIToken}
	sts, err := c.Nodes(ctx)
	if err != nil || len(sts) != 5 || sts[0].Name != "cp1" || sts[0].Status != StatusInstalled || sts[1].Status != StatusInstall {
		t.Fatalf("nodes: %+v %v", sts, err)
	}
	if err := c.Reprovision(ctx, "cp1", true); err != nil {
		t.Fatal(err)
	}
	if _, body := ts.get(t, "/ipxe/"+cp1); !strings.Contains(body, "kernel ") {
		t.Fatalf("cp1 not reinstalling:\n%s", body)
	}
	// The first server rejoins the running cluster instead of cluster-init.
	code, body := ts.do(t, http.MethodGet, "/nodes/cp1/k3s-config.yaml", ts.sec.NodeToken(cp1), nil)
	if code != 200 || strings.Contains(body, "cluster-init") || !strings.Contains(body, "server: https://172.16.10.100:6443") {
		t.Fatalf("rejoin config: %d\n%s", code, body)
	}
	if err := c.Reprovision(ctx, "nope", false); err == nil {
		t.Fatal("unknown node accepted")
	}
}

func TestServeImages(t *testing.T) {
	dir := renderedRepo(t, "metal/e2e-full")
	state := filepath.Join(t.TempDir(), "state.json")
	ts := newTestServer(t, dir, state)
	if code, body := ts.get(t, "/os/debian/12/kernel"); code != http.StatusServiceUnavailable || !strings.Contains(body, "hl metal images pull") {
		t.Fatalf("uncached kernel: %d %s", code, body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := Pull(ctx, PullOptions{Dir: dir, CacheDir: filepath.Join(filepath.Dir(state), "cache"), Mirrors: []Mirror{debianMirror(t, dir)}}); err != nil {
		t.Fatal(err)
	}
	code, body := ts.get(t, "/os/debian/12/kernel")
	want := readFile(t, filepath.Join(debianNetbootDir, "linux"))
	if code != 200 || body != want {
		t.Fatalf("kernel: %d, %d bytes (want %d)", code, len(body), len(want))
	}
	if code, _ := ts.get(t, "/os/fedora/42/kernel"); code != http.StatusNotFound {
		t.Fatalf("unpinned OS: %d", code)
	}
}
