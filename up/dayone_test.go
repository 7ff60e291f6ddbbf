package up

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"filippo.io/age"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
	sigyaml "sigs.k8s.io/yaml"

	"hl.dev/hl/bootstrap"
	"hl.dev/hl/generator"
	"hl.dev/hl/internal/config"
	giteats "hl.dev/hl/internal/gitea/testserver"
	kubets "hl.dev/hl/internal/kube/testserver"
	"hl.dev/hl/internal/testcharts"
	"hl.dev/hl/internal/testharness"
	"hl.dev/hl/metal"
	"hl.dev/hl/secrets"
	"hl.dev/hl/validate"
)

// The seams of these tests, where a real homelab has machines and pods:
//
//   - Nodes: no machine PXE-boots. Each node's installer is played by an
//     HTTP client bound to the node's address (the rendered repo's nodes
//     moved onto loopback, 127.0.0.11 and .12, which Linux routes to lo):
//     it walks its install window on the real hl metal serve handler as
//     the rendered boot script, install config and post-install script
//     tell it to (boot script, install config, post-install, callback with
//     an SSH host key), as metal's own server tests do.
//   - Kubeconfig: FetchKubeconfig returns the control-plane harness's
//     admin kubeconfig instead of running metal.Kubeconfig over SSH
//     (tested against a real sshd in metal/kubeconfig_test.go).
//   - Argo CD: no application controller runs, so the test writes what
//     it would: each Application the root ApplicationSets make, with
//     status.sync.status and status.health.status, into the real API
//     server; the sync step reads only those fields.
//   - The in-cluster Gitea is the Gitea harness reached at its own URL,
//     its pods' readiness is not waited for, and the charts come from
//     internal/testcharts (as in bootstrap's cluster tests).
//
// Real: the metal server and its state file, the API server (etcd and
// kube-apiserver from their modules) with the CRDs and objects
// bootstrap.Cluster applies, server-side dry runs, Gitea's API and git
// push, and the .hl-up.json state across runs.

func TestMain(m *testing.M) { kubets.Main(m) }

const testKey = "../testdata/age/test-key.txt"

var testNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func identities(t testing.TB) []age.Identity {
	t.Helper()
	ids, err := secrets.LoadIdentities(testKey)
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

// render renders a config into a fresh folder and loads its hl.yaml.
func render(t *testing.T, path string, data []byte) (string, *config.Homelab) {
	t.Helper()
	dir := t.TempDir()
	if _, err := generator.Render(t.Context(), generator.Options{
		ConfigPath: path, ConfigData: data, OutDir: dir, Identities: identities(t),
		Rand: rand.NewChaCha8([32]byte{7}), Now: func() time.Time { return testNow },
	}); err != nil {
		t.Fatal(err)
	}
	doc, _, err := config.Load(filepath.Join(dir, config.FileName))
	if err != nil {
		t.Fatal(err)
	}
	return dir, doc.Homelab
}

// only picks steps by name, in their order.
func only(list []Step, names ...string) []Step {
	var out []Step
	for _, s := range list {
		if slices.Contains(names, s.Name) {
			out = append(out, s)
		}
	}
	return out
}

type eventLog struct {
	t    *testing.T
	mu   sync.Mutex
	list []Event
}

func (l *eventLog) add(e Event) {
	if e.Redo {
		l.t.Logf("%s no longer holds: %s", e.Step, e.Detail)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.list = append(l.list, e)
}

// final is each step's last status, "step:status".
func (l *eventLog) final() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, e := range l.list {
		if e.Status != StatusRunning {
			out = append(out, e.Step+":"+string(e.Status))
		}
	}
	return out
}

const (
	node1Addr = "127.0.0.11"
	node2Addr = "127.0.0.12"
	hostKey   = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBrrNnO6ES1fjcsZpjIeu89t/Ks17zrxqWfKRjw/Wcxc"
)

var (
	bootTokenRE     = regexp.MustCompile(`/t/([0-9a-f]{64})/nodes/[a-z0-9-]+/preseed\.cfg`)
	preseedTokenRE  = regexp.MustCompile(`Bearer ([0-9a-f]{64})" -o /root/hl-post-install\.sh`)
	callbackTokenRE = regexp.MustCompile(`Bearer ([0-9a-f]{64})' --data-urlencode`)
)

// installer plays one node's installer from its address.
type installer struct {
	t      *testing.T
	base   string
	client *http.Client
}

func newInstaller(t *testing.T, base, addr string) *installer {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(addr)}}
	return &installer{t: t, base: base, client: &http.Client{Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}}}
}

func (in *installer) do(method, path, token string, form url.Values) string {
	in.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, in.base+path, body)
	if err != nil {
		in.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := in.client.Do(req)
	if err != nil {
		in.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		in.t.Fatalf("%s %s: %s\n%s", method, path, resp.Status, b)
	}
	return string(b)
}

func match(t *testing.T, re *regexp.Regexp, body string) string {
	t.Helper()
	m := re.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no %s in:\n%s", re, body)
	}
	return m[1]
}

// install walks node's install window to its callback.
func (in *installer) install(n metal.Node) {
	in.t.Helper()
	boot := in.do(http.MethodGet, "/ipxe/"+strings.ReplaceAll(n.MAC, ":", "-"), "", nil)
	preseed := in.do(http.MethodGet, "/t/"+match(in.t, bootTokenRE, boot)+"/nodes/"+n.Name+"/preseed.cfg", "", nil)
	post := in.do(http.MethodGet, "/nodes/"+n.Name+"/post-install.sh", match(in.t, preseedTokenRE, preseed), nil)
	in.do(http.MethodPost, "/callback/"+n.MAC, match(in.t, callbackTokenRE, post), url.Values{"hostKey": {hostKey}})
}

// The nodes step runs the real hl metal serve until every node of the
// repo has called back: one callback is not enough; both end the step;
// a re-run finds every node installed in the state file and starts no
// server.
func TestNodesStepWaitsForEveryNode(t *testing.T) {
	dir, h := render(t, "../testdata/metal/e2e-full.yaml", nil)
	p := filepath.Join(dir, metal.IndexFile)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	idx := strings.NewReplacer(`"10.99.0.11"`, `"`+node1Addr+`"`, `"10.99.0.12"`, `"`+node2Addr+`"`).Replace(string(b))
	if !strings.Contains(idx, node1Addr) || !strings.Contains(idx, node2Addr) {
		t.Fatalf("node addresses not found in %s:\n%s", metal.IndexFile, b)
	}
	if err := os.WriteFile(p, []byte(idx), 0o644); err != nil {
		t.Fatal(err)
	}
	nodes, err := metal.LoadIndex(dir)
	if err != nil || len(nodes.Nodes) != 2 {
		t.Fatalf("index: %v %+v", err, nodes)
	}
	state := filepath.Join(t.TempDir(), "state.json")
	log := &testharness.SyncBuffer{}
	newDayOne := func() *DayOne {
		d, err := NewDayOne(Options{Dir: dir, Homelab: h, Kubeconfig: filepath.Join(t.TempDir(), "kubeconfig"), Poll: 20 * time.Millisecond, Log: log,
			Serve: metal.ServeOptions{Listen: "127.0.0.1:0", StateFile: state, CacheDir: t.TempDir(), Identities: identities(t), AccessLog: log}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(d.Close)
		return d
	}
	d := newDayOne()
	events := &eventLog{t: t}
	done := make(chan error, 1)
	go func() { done <- Run(t.Context(), dir, only(d.Steps(), "nodes"), events.add) }()

	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for !cond() {
			select {
			case err := <-done:
				t.Fatalf("the step ended (%v) while waiting for %s; log:\n%s", err, what, log.String())
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	waitFor("the server", func() bool { return d.ServerAddr() != "" })
	base := "http://" + d.ServerAddr()
	newInstaller(t, base, node1Addr).install(nodes.Nodes[0])
	waitFor("node1 to count as installed", func() bool { return strings.Contains(log.String(), "(1 of 2 installed)") })
	if got := events.final(); len(got) != 0 {
		t.Fatalf("the step finished with one node of two: %v", got)
	}
	newInstaller(t, base, node2Addr).install(nodes.Nodes[1])
	if err := <-done; err != nil {
		t.Fatalf("nodes step: %v\n%s", err, log.String())
	}
	if got := events.final(); !slices.Equal(got, []string{"nodes:done"}) {
		t.Errorf("events %v", got)
	}
	st, err := metal.StateFile{Path: state}.Load()
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes.Nodes {
		if ns := st.Node(n.MAC, n.Name); ns.Status != metal.StatusInstalled || ns.HostKey != hostKey {
			t.Errorf("%s: %+v", n.Name, ns)
		}
	}

	// Re-run: recorded and still true; no server is started.
	d2 := newDayOne()
	events = &eventLog{t: t}
	if err := Run(t.Context(), dir, only(d2.Steps(), "nodes"), events.add); err != nil {
		t.Fatal(err)
	}
	if got := events.final(); !slices.Equal(got, []string{"nodes:holds"}) || d2.ServerAddr() != "" {
		t.Errorf("re-run: events %v, server %q", got, d2.ServerAddr())
	}
}

type fixedForge string

func (f fixedForge) Open(context.Context) (string, func(), error) { return string(f), func() {}, nil }

// Day one's cluster half against the real API server and Gitea: the
// first run bootstraps the cluster and stops in the sync step (no
// Application is Synced and Healthy); once they are, the second run
// checks the kubeconfig and the cluster (a server-side dry run changes
// nothing) instead of running them and finishes; a third run finds an
// Application Degraded, so the sync step no longer holds and runs again.
// The summary names URLs and credential files, never a value.
func TestDayOneClusterResumes(t *testing.T) {
	gitea := giteats.ForTest(t)
	kube := kubets.New(t, kubets.Options{})
	dir, h := render(t, "example.yaml", config.Example())
	cache := t.TempDir()
	testcharts.Catalog(t).Cache(t, cache, h.Spec.Mirrors.Charts...)
	var buf bytes.Buffer
	if err := secrets.Manifests(filepath.Join(dir, "platform", "gitea", "secrets"), identities(t), &buf); err != nil {
		t.Fatal(err)
	}
	var admin map[string]string
	for _, doc := range strings.Split(buf.String(), "\n---\n") {
		var obj struct {
			Metadata   metav1.ObjectMeta `json:"metadata"`
			StringData map[string]string `json:"stringData"`
		}
		if err := sigyaml.Unmarshal([]byte(doc), &obj); err != nil {
			t.Fatal(err)
		}
		if obj.Metadata.Name == "gitea-admin" {
			admin = obj.StringData
		}
	}
	password := admin["password"]
	if password == "" {
		t.Fatal("no gitea-admin password rendered")
	}
	if err := gitea.CreateSiteAdmin(t.Context(), admin["username"], password); err != nil && !strings.Contains(err.Error(), "already exists") {
		t.Fatal(err)
	}
	harnessKubeconfig := filepath.Join(t.TempDir(), "harness.yaml")
	if err := kube.WriteKubeconfig(harnessKubeconfig, kube.Token); err != nil {
		t.Fatal(err)
	}
	kubeconfig := filepath.Join(t.TempDir(), "kube", h.Metadata.Name+".yaml")
	log := &testharness.SyncBuffer{}
	owner, bot := gitea.UniqueName("lab"), gitea.UniqueName("bot")
	newDayOne := func() *DayOne {
		d, err := NewDayOne(Options{
			Dir: dir, Homelab: h, Kubeconfig: kubeconfig, Log: log,
			SyncTimeout: 2 * time.Second, Poll: 100 * time.Millisecond,
			FetchKubeconfig: func(context.Context) ([]byte, error) { return os.ReadFile(harnessKubeconfig) },
			Cluster: bootstrap.ClusterOptions{
				Identities: identities(t),
				Render:     validate.Options{CacheDir: cache, Offline: true},
				Forge:      fixedForge(gitea.URL),
				Ready:      func(context.Context, string) error { return nil },
				Seed:       bootstrap.Options{Owner: owner, BotUser: bot, Now: func() time.Time { return testNow }},
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	stepsOf := func(d *DayOne) []Step { return only(d.Steps(), "kubeconfig", "forge", "cluster", "sync") }

	events := &eventLog{t: t}
	err := Run(t.Context(), dir, stepsOf(newDayOne()), events.add)
	if err == nil || !strings.HasPrefix(err.Error(), "sync: ") || !strings.Contains(err.Error(), "no Application yet") {
		t.Fatalf("first run: %v\n%s", err, log.String())
	}
	if got := events.final(); !slices.Equal(got, []string{"kubeconfig:done", "forge:skipped", "cluster:done", "sync:failed"}) {
		t.Errorf("first run: %v", got)
	}
	if info, err := os.Stat(kubeconfig); err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("kubeconfig written: %v %v", info, err)
	}
	st, _ := LoadState(dir)
	if !slices.Equal(st.Done, []string{"kubeconfig", "cluster"}) {
		t.Fatalf("recorded %v", st.Done)
	}

	// Argo CD's seam: every Application the root ApplicationSets make,
	// Synced and Healthy, as its controller would report them.
	w, err := NewAppWait(kube.RESTConfig(), dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(w.Want) < 10 || !slices.Contains(w.Want, "argocd") || !slices.Contains(w.Want, "gitea-secrets") {
		t.Fatalf("expected Applications %v", w.Want)
	}
	dyn := dynamic.NewForConfigOrDie(kube.RESTConfig())
	writeApp := func(name, sync, health string) {
		t.Helper()
		app := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
			"metadata": map[string]any{"name": name, "namespace": w.Namespace},
			"spec": map[string]any{"project": "default", "destination": map[string]any{"server": "https://kubernetes.default.svc", "namespace": name},
				"source": map[string]any{"repoURL": h.ClusterRepoURL(), "path": name}},
			"status": map[string]any{"sync": map[string]any{"status": sync}, "health": map[string]any{"status": health}},
		}}
		if _, err := dyn.Resource(ApplicationGVR).Namespace(w.Namespace).Apply(t.Context(), name, app, metav1.ApplyOptions{FieldManager: "argocd-controller-seam", Force: true}); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range w.Want {
		writeApp(name, "Synced", "Healthy")
	}
	events = &eventLog{t: t}
	if err := Run(t.Context(), dir, stepsOf(newDayOne()), events.add); err != nil {
		t.Fatalf("second run: %v\n%s", err, log.String())
	}
	if got := events.final(); !slices.Equal(got, []string{"kubeconfig:holds", "forge:skipped", "cluster:holds", "sync:done"}) {
		t.Errorf("second run: %v", got)
	}

	writeApp(w.Want[0], "Synced", "Degraded")
	events = &eventLog{t: t}
	err = Run(t.Context(), dir, stepsOf(newDayOne()), events.add)
	if err == nil || !strings.Contains(err.Error(), w.Want[0]+" (Synced, Degraded)") {
		t.Fatalf("third run: %v", err)
	}
	if got := events.final(); !slices.Equal(got, []string{"kubeconfig:holds", "forge:skipped", "cluster:holds", "sync:failed"}) {
		t.Errorf("third run: %v", got)
	}
	if st, _ := LoadState(dir); slices.Contains(st.Done, "sync") {
		t.Errorf("sync still recorded after it no longer held: %v", st.Done)
	}

	sum, err := Summary(dir, h, kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"https://argocd." + h.Spec.Domain, "platform/gitea/secrets/gitea-admin.sops.yaml", argocdAdmin, kubeconfig, "docs/day-two.md"} {
		if !strings.Contains(sum, want) {
			t.Errorf("summary lacks %q:\n%s", want, sum)
		}
	}
	for _, secret := range []string{password, kube.Token} {
		if strings.Contains(sum, secret) || strings.Contains(log.String(), secret) {
			t.Errorf("a secret value was printed")
		}
	}
}

// The images step is hl metal images pull over real HTTP: done, then
// held on a re-run by hashing the cache again without a download; a
// cached file that rots no longer holds, and the re-run replaces it.
func TestImagesStep(t *testing.T) {
	kernel, initrd := []byte("kernel "+strings.Repeat("k", 4096)), []byte("initrd "+strings.Repeat("i", 1024))
	var mu sync.Mutex
	hits := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hits++
		mu.Unlock()
		switch r.URL.Path {
		case "/d-i/linux":
			w.Write(kernel)
		case "/d-i/initrd.gz":
			w.Write(initrd)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	sum := func(b []byte) string { h := sha256.Sum256(b); return hex.EncodeToString(h[:]) }
	dir, cache := t.TempDir(), filepath.Join(t.TempDir(), "cache")
	pin := "name: debian\nversion: \"12\"\nrepo: http://deb.example/debian\nkernel:\n  url: " + srv.URL + "/d-i/linux\n  sha256: \"" + sum(kernel) +
		"\"\ninitrd:\n  url: " + srv.URL + "/d-i/initrd.gz\n  sha256: \"" + sum(initrd) + "\"\n"
	if err := os.MkdirAll(filepath.Join(dir, "metal"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, metal.OSFile), []byte(pin), 0o644); err != nil {
		t.Fatal(err)
	}
	doc, _ := config.Parse("example.yaml", config.Example())
	d, err := NewDayOne(Options{Dir: dir, Homelab: doc.Homelab, Kubeconfig: "unused", Pull: metal.PullOptions{CacheDir: cache}})
	if err != nil {
		t.Fatal(err)
	}
	run := func() []string {
		t.Helper()
		events := &eventLog{t: t}
		if err := Run(t.Context(), dir, only(d.Steps(), "images"), events.add); err != nil {
			t.Fatal(err)
		}
		return events.final()
	}
	requests := func() int { mu.Lock(); defer mu.Unlock(); return hits }
	if got := run(); !slices.Equal(got, []string{"images:done"}) || requests() != 2 {
		t.Fatalf("first run: %v, %d requests", got, requests())
	}
	if got := run(); !slices.Equal(got, []string{"images:holds"}) || requests() != 2 {
		t.Fatalf("second run: %v, %d requests", got, requests())
	}
	p, _ := metal.CachePath(cache, sum(initrd))
	if err := os.WriteFile(p, []byte("rotten"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := run(); !slices.Equal(got, []string{"images:done"}) || requests() != 3 {
		t.Fatalf("after the cache rotted: %v, %d requests", got, requests())
	}
	if b, _ := os.ReadFile(p); !bytes.Equal(b, initrd) {
		t.Errorf("the rotten initrd was kept: %q", b)
	}
}

// For a forge outside the cluster the forge step is hl bootstrap gitea
// against the real Gitea; a re-run's check is a dry run of it, which
// finds nothing to do, so it is not run again.
func TestForgeStep(t *testing.T) {
	gitea := giteats.ForTest(t)
	small, err := os.ReadFile("../testdata/bootstrap/small.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// The same homelab with its repository on a forge elsewhere.
	data := bytes.Replace(small, []byte("url: https://git.home.example.com"), []byte("url: https://forge.example.org"), 1)
	dir, h := render(t, "small.yaml", data)
	if in, _ := h.InClusterForge(); in {
		t.Fatal("the forge is still the cluster's own: the step would be skipped")
	}
	forge := bootstrap.Options{URL: gitea.URL, Owner: gitea.UniqueName("lab"), Repo: "cluster", Token: gitea.AdminToken,
		BotUser: gitea.UniqueName("bot"), Identities: identities(t), Now: func() time.Time { return testNow }}
	d, err := NewDayOne(Options{Dir: dir, Homelab: h, Kubeconfig: "unused", Forge: forge})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"forge:done", "forge:holds"} {
		events := &eventLog{t: t}
		if err := Run(t.Context(), dir, only(d.Steps(), "forge"), events.add); err != nil {
			t.Fatal(err)
		}
		if got := events.final(); !slices.Equal(got, []string{want}) {
			t.Errorf("events %v, want %s", got, want)
		}
	}
	if err := gitea.WaitPushed(t.Context(), forge.Owner, "cluster"); err != nil {
		t.Errorf("the repo was not pushed: %v", err)
	}
}
