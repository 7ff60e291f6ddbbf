package fedora_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"hl.dev/hl/bot"
	"hl.dev/hl/bot/datasource/datasourcetest"
	"hl.dev/hl/bot/datasource/fedora"
	"hl.dev/hl/bot/extract"
	"hl.dev/hl/bot/lookup"
	"hl.dev/hl/bot/pr"
	"hl.dev/hl/internal/httpx"
)

// The releases come from the directory index of Go's file server; only
// numbered folders are releases. The checksums come from the release's
// .treeinfo and are those of the files served; a release without the
// pinned variant's tree, and a path the .treeinfo does not list, fail.
func TestReleasesAndChecksums(t *testing.T) {
	m := datasourcetest.NewFedora(t, []string{"40", "41", "42"}, "Everything/x86_64")
	m.AddTree(t, "42", "Server/x86_64")
	for _, d := range []string{"43_Beta", "test"} {
		if err := os.MkdirAll(filepath.Join(m.Dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	ds := fedora.New(httpx.Client(httpx.Options{}))
	dep := bot.Dependency{Datasource: fedora.Name, RegistryURL: m.Base(), Package: "fedora/Everything/x86_64",
		Related: map[string]bot.Range{"sha256:images/pxeboot/vmlinuz": {}, "sha256:images/pxeboot/initrd.img": {}, "version@10": {}}}
	rels, err := ds.Releases(context.Background(), dep)
	if err != nil {
		t.Fatal(err)
	}
	var vs []string
	for _, r := range rels {
		vs = append(vs, r.Version)
	}
	slices.Sort(vs)
	if strings.Join(vs, " ") != "40 41 42" {
		t.Errorf("releases %v, want 40 41 42", vs)
	}
	pins, err := ds.Pins(context.Background(), dep, "42")
	if err != nil {
		t.Fatal(err)
	}
	if len(pins) != 2 {
		t.Errorf("pins %v, want the two images'", pins)
	}
	for role, sum := range pins {
		if got := served(t, m.Base()+"/42/Everything/x86_64/os/"+strings.TrimPrefix(role, "sha256:")); got != sum {
			t.Errorf("%s: pinned %s, the served file's is %s", role, sum, got)
		}
	}
	dep.Package = "fedora/Server/x86_64"
	if _, err := ds.Pins(context.Background(), dep, "41"); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("a release without the Server tree: %v, want a 404", err)
	}
	dep.Related["sha256:images/pxeboot/missing"] = bot.Range{}
	if _, err := ds.Pins(context.Background(), dep, "42"); err == nil || !strings.Contains(err.Error(), "images/pxeboot/missing") {
		t.Errorf("a path the .treeinfo lacks: %v", err)
	}
}

// A repository pinning Fedora 40's pxeboot images (kernel and initrd
// with their checksums, the install tree on the kernel command line) is
// updated to 42 as the bot does it: extracted, looked up against the
// mirror, edited. Every URL of the new file is served and every checksum
// is the served file's.
func TestNetbootPinsUpdated(t *testing.T) {
	m := datasourcetest.NewFedora(t, []string{"40", "41", "42"}, "Everything/x86_64")
	tree := m.Base() + "/40/Everything/x86_64/os"
	old := fmt.Sprintf(`fedora:
  kernel:
    url: %[1]s/images/pxeboot/vmlinuz
    sha256: %[2]s
  initrd:
    url: %[1]s/images/pxeboot/initrd.img
    sha256: "sha256:%[3]s"
  cmdline: inst.repo=%[1]s/ inst.text
`, tree, served(t, tree+"/images/pxeboot/vmlinuz"), served(t, tree+"/images/pxeboot/initrd.img"))
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "metal"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "metal/fedora.yaml"), []byte(old), 0o644); err != nil {
		t.Fatal(err)
	}
	deps, problems, err := extract.Scan(context.Background(), dir, extract.Options{})
	if err != nil || len(problems) > 0 {
		t.Fatalf("scan: %v %v", err, problems)
	}
	updates, warnings, err := lookup.FindUpdates(context.Background(), dir, lookup.LookupConfig{})
	if err != nil || len(warnings) > 0 {
		t.Fatalf("lookup: %v %v", err, warnings)
	}
	if len(deps) != 1 || len(updates) != 1 || updates[0].NewValue != "42" {
		t.Fatalf("dependencies %+v, updates %+v: want one, 40 → 42", deps, updates)
	}
	edits, err := pr.EditsFor(updates, "metal/fedora.yaml")
	if err != nil {
		t.Fatal(err)
	}
	got, err := pr.Apply([]byte(old), edits)
	if err != nil {
		t.Fatal(err)
	}
	want := strings.NewReplacer("/40/", "/42/",
		served(t, tree+"/images/pxeboot/vmlinuz"), served(t, m.Base()+"/42/Everything/x86_64/os/images/pxeboot/vmlinuz"),
		served(t, tree+"/images/pxeboot/initrd.img"), served(t, m.Base()+"/42/Everything/x86_64/os/images/pxeboot/initrd.img")).Replace(old)
	if string(got) != want {
		t.Errorf("updated file:\n%s\nwant:\n%s", got, want)
	}
	if strings.Contains(string(got), "/40/") {
		t.Errorf("a URL still names release 40:\n%s", got)
	}
}

// served is the sha256 of what u serves.
func served(t *testing.T, u string) string {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", u, resp.Status)
	}
	h := sha256.New()
	if _, err := io.Copy(h, resp.Body); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}
