package generator

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"io/fs"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"filippo.io/age"
	"golang.org/x/crypto/bcrypt"
	"gopkg.in/yaml.v3"

	"hl.dev/hl/internal/config"
	"hl.dev/hl/secrets"
	"hl.dev/hl/templates"
)

var update = flag.Bool("update", false, "rewrite golden renders")

const repoRoot = "../"

func testIdentities(t testing.TB) []age.Identity {
	t.Helper()
	ids, err := secrets.LoadIdentities(filepath.Join(repoRoot, "testdata", "age", "test-key.txt"))
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

// seeded returns a deterministic entropy source: tests only.
func seeded(seed byte) io.Reader {
	var s [32]byte
	s[0] = seed
	return rand.NewChaCha8(s)
}

func fixedNow() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) }

func fixture(name string) string {
	return filepath.Join(repoRoot, "testdata", "config", "valid", name+".yaml")
}

// render renders cfg into dir with the test key and a fixed seed.
func render(t testing.TB, cfg, dir string, mod func(*Options)) (*Result, error) {
	t.Helper()
	opts := Options{ConfigPath: cfg, OutDir: dir, Identities: testIdentities(t), Rand: seeded(1), Now: fixedNow}
	if mod != nil {
		mod(&opts)
	}
	return Render(context.Background(), opts)
}

func mustRender(t testing.TB, cfg, dir string, mod func(*Options)) *Result {
	t.Helper()
	res, err := render(t, cfg, dir, mod)
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	return res
}

// snapshot reads every file under dir.
func snapshot(t testing.TB, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		out[filepath.ToSlash(rel)] = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func diffSnapshots(t *testing.T, before, after map[string][]byte) {
	t.Helper()
	for p, b := range before {
		a, ok := after[p]
		if !ok {
			t.Errorf("%s removed", p)
		} else if !bytes.Equal(a, b) {
			t.Errorf("%s changed", p)
		}
	}
	for p := range after {
		if _, ok := before[p]; !ok {
			t.Errorf("%s added", p)
		}
	}
}

func TestGoldenRenders(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(repoRoot, "testdata", "config", "valid", "*.yaml"))
	for _, cfg := range files {
		name := strings.TrimSuffix(filepath.Base(cfg), ".yaml")
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			mustRender(t, cfg, dir, nil)
			got := map[string][]byte{}
			for p, b := range snapshot(t, dir) {
				switch {
				case strings.HasPrefix(p, ".hl/"):
					continue // state: covered by the re-render tests
				case isSecretPath(p):
					// Ciphertext is randomised by design; the golden copy
					// holds what it decrypts to (seeded test values).
					plain, err := secrets.Decrypt(b, testIdentities(t)...)
					if err != nil {
						t.Fatalf("%s: %v", p, err)
					}
					got[p+".decrypted"] = plain
				default:
					got[p] = b
				}
			}
			goldenDir := filepath.Join(repoRoot, "testdata", "golden", name)
			if *update {
				os.RemoveAll(goldenDir)
				for p, b := range got {
					dst := filepath.Join(goldenDir, filepath.FromSlash(p))
					if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
						t.Fatal(err)
					}
					if err := os.WriteFile(dst, b, 0o644); err != nil {
						t.Fatal(err)
					}
				}
				return
			}
			want := snapshot(t, goldenDir)
			if len(want) == 0 {
				t.Fatalf("no golden render in %s: run go test ./generator -update", goldenDir)
			}
			for p, w := range want {
				if g, ok := got[p]; !ok {
					t.Errorf("golden file %s not rendered", p)
				} else if !bytes.Equal(g, w) {
					t.Errorf("%s differs from golden (run go test ./generator -update and review the diff)", p)
				}
			}
			for p := range got {
				if _, ok := want[p]; !ok {
					t.Errorf("%s rendered but not in golden", p)
				}
			}
		})
	}
}

func TestRenderTwiceChangesNothing(t *testing.T) {
	dir := t.TempDir()
	first := mustRender(t, fixture("full"), dir, nil)
	if first.SecretsGenerated == 0 {
		t.Fatal("no secrets generated")
	}
	before := snapshot(t, dir)
	// A different seed proves nothing was regenerated.
	res := mustRender(t, fixture("full"), dir, func(o *Options) { o.Rand = seeded(99) })
	if res.Changed() {
		for _, f := range res.Files {
			if f.Action != ActionUnchanged {
				t.Errorf("%s: %s %s", f.Path, f.Action, f.Note)
			}
		}
	}
	if res.SecretsKept != first.SecretsGenerated || res.SecretsGenerated != 0 {
		t.Errorf("second render: kept %d, generated %d; want kept %d", res.SecretsKept, res.SecretsGenerated, first.SecretsGenerated)
	}
	diffSnapshots(t, before, snapshot(t, dir))
}

func TestSameInputsSameBytes(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	mustRender(t, fixture("ha"), a, nil)
	mustRender(t, fixture("ha"), b, nil)
	sa, sb := snapshot(t, a), snapshot(t, b)
	for p, x := range sa {
		if isSecretPath(p) || p == stateFile {
			continue // ciphertext (and its hash) is randomised by design
		}
		if !bytes.Equal(x, sb[p]) {
			t.Errorf("%s differs between two renders of the same config", p)
		}
	}
	if len(sa) != len(sb) {
		t.Errorf("%d vs %d files", len(sa), len(sb))
	}
}

// secretValues decrypts every SOPS file and returns path → key → value.
func secretValues(t *testing.T, dir string) map[string]map[string]string {
	t.Helper()
	out := map[string]map[string]string{}
	for p, b := range snapshot(t, dir) {
		if !isSecretPath(p) || strings.HasPrefix(p, ".hl/") {
			continue
		}
		plain, err := secrets.Decrypt(b, testIdentities(t)...)
		if err != nil {
			t.Fatalf("%s does not decrypt with the test identity: %v", p, err)
		}
		ex, err := secrets.ReadSecret(plain)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		// Literal keys (a username, a repository URL) are declared
		// non-secret; only generated values must never show in plaintext.
		var gens map[string]secrets.Generator
		if err := json.Unmarshal([]byte(ex.Annotations[secrets.AnnotationGenerator]), &gens); err != nil {
			t.Fatalf("%s: generator annotation: %v", p, err)
		}
		for k, g := range gens {
			if g.Kind == secrets.KindLiteral {
				delete(ex.Values, k)
			}
		}
		out[p] = ex.Values
	}
	return out
}

func TestSecretsDecryptWithDeclaredShapeAndNoPlaintextLeaks(t *testing.T) {
	dir := t.TempDir()
	mustRender(t, fixture("full"), dir, func(o *Options) { o.Rand = nil }) // crypto/rand, as in production
	vals := secretValues(t, dir)
	if len(vals) < 2 {
		t.Fatalf("only %d secrets rendered", len(vals))
	}
	hexRe := regexp.MustCompile(`^[0-9a-f]{64}$`)
	token := vals["metal/secrets/k3s-token.sops.yaml"]["token"]
	if !hexRe.MatchString(token) {
		t.Errorf("k3s token %d chars, not 32 hex bytes", len(token))
	}
	dex := vals["platform/sso/secrets/dex-admin.sops.yaml"]
	if len(dex["password"]) != 32 || bcrypt.CompareHashAndPassword([]byte(dex["password-hash"]), []byte(dex["password"])) != nil {
		t.Errorf("dex admin password/hash not of the declared shape: %d chars, hash prefix %.3q", len(dex["password"]), dex["password-hash"])
	}
	// Copies carry the source's values into another namespace.
	clients := vals["platform/sso/secrets/dex-clients.sops.yaml"]
	argo := vals["system/argocd/secrets/argocd-oidc.sops.yaml"]
	if clients["ARGOCD_CLIENT_SECRET"] == "" || argo["client-secret"] != clients["ARGOCD_CLIENT_SECRET"] {
		t.Errorf("argocd-oidc does not carry dex-clients' ARGOCD_CLIENT_SECRET")
	}
	tree := snapshot(t, dir)
	for sp, kv := range vals {
		for k, v := range kv {
			if len(v) < 8 {
				continue
			}
			for p, b := range tree {
				if bytes.Contains(b, []byte(v)) {
					t.Errorf("value of %s key %s appears in plaintext in %s", sp, k, p)
				}
			}
		}
	}
}

func TestReRenderKeepsUserEditBotBumpAndAppliesTemplateChange(t *testing.T) {
	dir := t.TempDir()
	mustRender(t, fixture("full"), dir, nil)
	edit := func(p, old, new string) {
		t.Helper()
		full := filepath.Join(dir, p)
		b, err := os.ReadFile(full)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(b, []byte(old)) {
			t.Fatalf("%s lacks %q", p, old)
		}
		if err := os.WriteFile(full, bytes.Replace(b, []byte(old), []byte(new), 1), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// The user tunes a values file; the bot bumps a chart version.
	edit("system/argocd/values.yaml", "memory: 512Mi", "memory: 1Gi")
	cat := templates.MustCatalog()
	argo, _ := cat.Component("argocd")
	edit("system/argocd/Chart.yaml", "version: "+argo.Chart.Version, "version: 99.0.0")
	// A new hl release changes a template elsewhere in the same file.
	tree := overlay(t, map[string]func(string) string{
		"system/argocd/values.yaml.tmpl": func(s string) string {
			return strings.Replace(s, "server.insecure: true", "server.insecure: true\n      timeout.reconciliation: 300s", 1)
		},
	})
	res := mustRender(t, fixture("full"), dir, func(o *Options) { o.Templates = tree })
	values, _ := os.ReadFile(filepath.Join(dir, "system/argocd/values.yaml"))
	chart, _ := os.ReadFile(filepath.Join(dir, "system/argocd/Chart.yaml"))
	if !bytes.Contains(values, []byte("memory: 1Gi")) {
		t.Error("user edit lost")
	}
	if !bytes.Contains(values, []byte("timeout.reconciliation: 300s")) {
		t.Error("template change not applied")
	}
	if !bytes.Contains(chart, []byte("version: 99.0.0")) {
		t.Error("bot bump lost")
	}
	if len(res.Conflicts()) != 0 {
		t.Errorf("unexpected conflicts: %+v", res.Conflicts())
	}

	// Now the template changes the very line the user edited: conflict,
	// and nothing at all is written.
	before := snapshot(t, dir)
	clash := overlay(t, map[string]func(string) string{
		"system/argocd/values.yaml.tmpl": func(s string) string {
			return strings.Replace(strings.Replace(s, "server.insecure: true", "server.insecure: true\n      timeout.reconciliation: 300s", 1), "memory: 512Mi", "memory: 768Mi", 1)
		},
		"apps/homepage/kustomization.yaml": func(s string) string { return s + "# changed\n" },
	})
	res, err := render(t, fixture("full"), dir, func(o *Options) { o.Templates = clash })
	if !errors.Is(err, ErrConflict) {
		t.Fatalf("want ErrConflict, got %v", err)
	}
	c := res.Conflicts()
	if len(c) != 1 || c[0].Path != "system/argocd/values.yaml" || len(c[0].Conflicts) != 1 || !strings.Contains(c[0].Conflicts[0], "768Mi") {
		t.Fatalf("conflicts: %+v", c)
	}
	diffSnapshots(t, before, snapshot(t, dir))

	// With --allow-conflicts the markers are written.
	mustRender(t, fixture("full"), dir, func(o *Options) { o.Templates = clash; o.AllowConflicts = true })
	values, _ = os.ReadFile(filepath.Join(dir, "system/argocd/values.yaml"))
	if !bytes.Contains(values, []byte("<<<<<<< ")) || !bytes.Contains(values, []byte(">>>>>>> ")) {
		t.Error("conflict markers missing")
	}
}

func TestUserDeletionStaysDeletedUnlessTemplateChanges(t *testing.T) {
	dir := t.TempDir()
	mustRender(t, fixture("minimal"), dir, nil)
	target := filepath.Join(dir, "apps/homepage/networkpolicy.yaml")
	if err := os.Remove(target); err != nil {
		t.Fatal(err)
	}
	mustRender(t, fixture("minimal"), dir, nil)
	if _, err := os.Stat(target); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("deleted file came back although the template did not change")
	}
	tree := overlay(t, map[string]func(string) string{
		"apps/homepage/networkpolicy.yaml": func(s string) string { return s + "# tightened\n" },
	})
	res := mustRender(t, fixture("minimal"), dir, func(o *Options) { o.Templates = tree })
	if _, err := os.Stat(target); err != nil {
		t.Fatalf("changed template did not restore the deleted file: %v (%+v)", err, res.Files)
	}
}

func TestFailingTemplateLeavesTreeUntouched(t *testing.T) {
	dir := t.TempDir()
	mustRender(t, fixture("full"), dir, nil)
	before := snapshot(t, dir)
	broken := overlay(t, map[string]func(string) string{
		"zz/late.yaml.tmpl": func(string) string { return "{{ .Spec.NoSuchField }}" },
		"README.md.tmpl":    func(s string) string { return s + "\nchanged\n" },
	})
	_, err := render(t, fixture("full"), dir, func(o *Options) { o.Templates = broken })
	if err == nil || !strings.Contains(err.Error(), "zz/late.yaml.tmpl") {
		t.Fatalf("want a template error naming the file, got %v", err)
	}
	diffSnapshots(t, before, snapshot(t, dir))
}

func TestWithoutIdentityKeepsSecretsAndAddsMissing(t *testing.T) {
	dir := t.TempDir()
	mustRender(t, fixture("minimal"), dir, nil)
	before := snapshot(t, dir)
	victim := "metal/secrets/k3s-token.sops.yaml"
	if err := os.Remove(filepath.Join(dir, victim)); err != nil {
		t.Fatal(err)
	}
	res := mustRender(t, fixture("minimal"), dir, func(o *Options) { o.Identities = nil })
	if res.SecretsUnchecked == 0 || res.SecretsGenerated != 1 {
		t.Fatalf("unchecked %d, generated %d", res.SecretsUnchecked, res.SecretsGenerated)
	}
	after := snapshot(t, dir)
	for p, b := range before {
		if isSecretPath(p) && p != victim && !bytes.Equal(b, after[p]) {
			t.Errorf("%s changed without an identity", p)
		}
	}
	if _, ok := after[victim]; !ok {
		t.Error("missing secret not regenerated")
	}
}

func TestDisabledComponentIsAbsent(t *testing.T) {
	dir := t.TempDir()
	mustRender(t, fixture("minimal"), dir, nil)
	tree := snapshot(t, dir)
	has := func(prefix string) bool {
		for p := range tree {
			if strings.HasPrefix(p, prefix) {
				return true
			}
		}
		return false
	}
	if !has("apps/homepage/") || !has("system/argocd/") {
		t.Error("default components missing")
	}
	for _, p := range sortedKeys(tree) {
		if strings.HasPrefix(p, "apps/jellyfin/") {
			t.Errorf("disabled jellyfin rendered: %s", p)
		}
	}
	var st state
	if err := yaml.Unmarshal(tree[stateFile], &st); err != nil || len(st.Files) == 0 {
		t.Fatalf("state: %v", err)
	}
	if !sort.SliceIsSorted(st.Files, func(i, j int) bool { return st.Files[i].Path < st.Files[j].Path }) {
		t.Error("state not sorted")
	}
}

// overlay copies the embedded tree and applies edits (a missing file is
// created from the edit of "").
func overlay(t testing.TB, edits map[string]func(string) string) fs.FS {
	t.Helper()
	m := fstest.MapFS{}
	err := fs.WalkDir(templates.Tree(), ".", func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		b, err := fs.ReadFile(templates.Tree(), p)
		m[p] = &fstest.MapFile{Data: b, Mode: 0o644}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for p, fn := range edits {
		old := ""
		if f, ok := m[p]; ok {
			old = string(f.Data)
		}
		m[p] = &fstest.MapFile{Data: []byte(fn(old)), Mode: 0o644}
	}
	return m
}

// BenchmarkFirstRenderFull renders the full fixture into a new folder.
// Each iteration's output is removed untimed, so an iteration does not pay
// for the write-back of the ones before it (one render at a time is what a
// user runs).
func BenchmarkFirstRenderFull(b *testing.B) {
	ids := testIdentities(b)
	root := b.TempDir()
	for b.Loop() {
		dir := filepath.Join(root, "homelab")
		_, err := Render(context.Background(), Options{ConfigPath: fixture("full"), OutDir: dir, Identities: ids, Now: fixedNow})
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if err := os.RemoveAll(dir); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}

func BenchmarkNoopRerenderFull(b *testing.B) {
	ids := testIdentities(b)
	dir := b.TempDir()
	opts := Options{ConfigPath: fixture("full"), OutDir: dir, Identities: ids, Now: fixedNow}
	if _, err := Render(context.Background(), opts); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		res, err := Render(context.Background(), opts)
		if err != nil || res.Changed() {
			b.Fatal(err, "re-render changed files")
		}
	}
}

func TestRoadmapCoveredByFullFixture(t *testing.T) {
	res := mustRender(t, fixture("full"), t.TempDir(), nil)
	if len(res.Roadmap) < 30 {
		t.Fatalf("roadmap has %d items", len(res.Roadmap))
	}
	for _, it := range res.Roadmap {
		if len(it.Files) == 0 && it.NotApplicable == "" {
			t.Errorf("roadmap item %s (%s) has no file in the full render", it.ID, it.Title)
		}
		if it.ID == "metal-kickstart" && it.NotApplicable == "" {
			t.Errorf("kickstart should not apply to a Debian homelab")
		}
	}
}

func TestAppValuesMergedIntoWrapperChart(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "hl.yaml")
	src, err := os.ReadFile(fixture("minimal"))
	if err != nil {
		t.Fatal(err)
	}
	src = append(src, []byte("  apps:\n    gitea:\n      values:\n        replicaCount: 2\n        gitea:\n          config:\n            server: {LANDING_PAGE: explore}\n")...)
	if err := os.WriteFile(cfg, src, 0o644); err != nil {
		t.Fatal(err)
	}
	mustRender(t, cfg, dir, nil)
	b, err := os.ReadFile(filepath.Join(dir, "platform/gitea/values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]map[string]any
	if err := yaml.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	g := v["gitea"]
	if g["replicaCount"] != 2 {
		t.Errorf("override not merged: replicaCount=%v", g["replicaCount"])
	}
	cfgMap, _ := g["gitea"].(map[string]any)["config"].(map[string]any)
	if cfgMap["server"].(map[string]any)["LANDING_PAGE"] != "explore" || len(cfgMap) < 2 {
		t.Errorf("deep merge lost template values or override: %v", cfgMap)
	}
}

// TestComponentsPresentExactlyWhenEnabled: for every fixture and every
// catalog component, its folder (with the app.yaml the root ApplicationSet
// reads) exists if and only if hl.yaml enables it.
func TestComponentsPresentExactlyWhenEnabled(t *testing.T) {
	for _, fx := range []string{"minimal", "single-node", "ha", "full"} {
		t.Run(fx, func(t *testing.T) {
			dir := t.TempDir()
			mustRender(t, fixture(fx), dir, nil)
			doc, _, err := config.Load(fixture(fx))
			if err != nil {
				t.Fatal(err)
			}
			tree := snapshot(t, dir)
			on, off := 0, 0
			for _, c := range templates.MustCatalog().Components {
				folder := c.Layer + "/" + c.Name + "/"
				_, hasApp := tree[folder+"app.yaml"]
				files := 0
				for p := range tree {
					if strings.HasPrefix(p, folder) {
						files++
					}
				}
				if doc.Homelab.Enabled(c.Name) {
					on++
					if !hasApp {
						t.Errorf("%s is enabled but %sapp.yaml is missing", c.Name, folder)
					}
				} else {
					off++
					if files > 0 {
						t.Errorf("%s is disabled but %d files are rendered under %s", c.Name, files, folder)
					}
				}
			}
			t.Logf("%d enabled, %d disabled", on, off)
			if fx == "full" && off != 0 {
				t.Errorf("the full fixture disables %d components", off)
			}
		})
	}
}

// Adding a person to spec.people gives them a password and keeps everyone
// else's (Dex's hashes too); removing one drops their key only.
func TestPeopleKeepTheirPasswords(t *testing.T) {
	dir := t.TempDir()
	src, err := os.ReadFile(fixture("full"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "hl.yaml") // re-renders read the repo's own
	write := func(people string) {
		t.Helper()
		data := bytes.Replace(src, []byte("    - {name: bob-smith, email: bob@example.org}\n"), []byte(people), 1)
		if err := os.WriteFile(cfg, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	values := func() map[string]string {
		t.Helper()
		data, err := os.ReadFile(filepath.Join(dir, "platform/sso/secrets/dex-people.sops.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		plain, err := secrets.Decrypt(data, testIdentities(t)...)
		if err != nil {
			t.Fatal(err)
		}
		ex, err := secrets.ReadSecret(plain)
		if err != nil {
			t.Fatal(err)
		}
		return ex.Values
	}
	write("    - {name: bob-smith, email: bob@example.org}\n")
	mustRender(t, cfg, dir, nil)
	first := values()
	write("    - {name: bob-smith, email: bob@example.org}\n    - {name: carol, email: carol@example.org}\n")
	mustRender(t, cfg, dir, nil)
	second := values()
	for _, k := range []string{"alice", "alice-hash", "bob-smith", "bob-smith-hash"} {
		if first[k] == "" || second[k] != first[k] {
			t.Errorf("%s changed when carol was added", k)
		}
	}
	if len(second["carol"]) != 24 || !strings.HasPrefix(second["carol-hash"], "$2") {
		t.Errorf("carol got no password: %q %q", second["carol"], second["carol-hash"])
	}
	write("    - {name: carol, email: carol@example.org}\n") // bob-smith leaves
	mustRender(t, cfg, dir, nil)
	third := values()
	if _, ok := third["bob-smith"]; ok || third["alice"] != first["alice"] || third["carol"] != second["carol"] {
		t.Errorf("removing bob-smith: keys %v", slices.Sorted(maps.Keys(third)))
	}
}
