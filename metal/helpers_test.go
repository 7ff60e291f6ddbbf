package metal

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"filippo.io/age"

	"hl.dev/hl/generator"
	"hl.dev/hl/internal/config"
	"hl.dev/hl/internal/testharness"
	"hl.dev/hl/secrets"
)

var repoRoot = func() string {
	abs, err := filepath.Abs("..")
	if err != nil {
		panic(err)
	}
	return abs
}()

func testIdentities(t testing.TB) []age.Identity {
	t.Helper()
	ids, err := secrets.LoadIdentities(filepath.Join(repoRoot, "testdata", "age", "test-key.txt"))
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

// configPath names a config under testdata: "valid/ha" or "metal/e2e-full".
func configPath(name string) string {
	if filepath.Dir(name) == "valid" {
		return filepath.Join(repoRoot, "testdata", "config", name+".yaml")
	}
	return filepath.Join(repoRoot, "testdata", name+".yaml")
}

var (
	renderMu    sync.Mutex
	renderCache = map[string]string{}
)

// TestMain removes the shared renders and the shared hl binary.
func TestMain(m *testing.M) { testharness.Main(m) }

// renderedRepo renders a testdata config once per test binary and returns
// a private copy of the result the test may change.
func renderedRepo(t testing.TB, name string) string {
	t.Helper()
	return renderConfigFile(t, name, configPath(name))
}

func renderConfigFile(t testing.TB, key, cfg string) string {
	t.Helper()
	root := testharness.Shared(t, "metal renders", func() (string, func() error, error) {
		d, err := os.MkdirTemp("", "hl-metal-render-*")
		if err != nil {
			return "", nil, err
		}
		return d, func() error { return os.RemoveAll(d) }, nil
	}, func(t testing.TB, err error) { t.Fatal(err) })
	renderMu.Lock()
	src, ok := renderCache[key]
	if !ok {
		src = filepath.Join(root, filepath.Base(key)+"-"+filepath.Base(filepath.Dir(key)))
		_, err := generator.Render(context.Background(), generator.Options{ConfigPath: cfg, OutDir: src, Identities: testIdentities(t)})
		if err != nil {
			renderMu.Unlock()
			t.Fatalf("render %s: %v", cfg, err)
		}
		renderCache[key] = src
	}
	renderMu.Unlock()
	dst := t.TempDir()
	copyTree(t, src, dst)
	return dst
}

func copyTree(t testing.TB, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if e.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		info, _ := e.Info()
		return os.WriteFile(target, b, info.Mode().Perm())
	})
	if err != nil {
		t.Fatal(err)
	}
}

func readFile(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// debianDefault is the Debian release a render installs when hl.yaml
// names none.
const debianDefault = config.DefaultDebianVersion

// debianNetbootDir holds the netboot files of the Debian package
// debian-installer-<version>-netboot-amd64, the same the catalog pins for
// that version.
func debianNetbootDir(version string) string {
	return "/usr/lib/debian-installer/images/" + version + "/amd64/text/debian-installer/amd64"
}

// debianNetbootPackage names the Debian package of a version's netboot files.
func debianNetbootPackage(version string) string {
	return "debian-installer-" + version + "-netboot-amd64"
}

// debianMirror maps the pinned snapshot URLs onto the installed package
// of the rendered repo's Debian version.
func debianMirror(t testing.TB, dir string) Mirror {
	t.Helper()
	pin, err := LoadOSPin(dir)
	if err != nil {
		t.Fatal(err)
	}
	src := debianNetbootDir(pin.Version)
	if _, err := os.Stat(filepath.Join(src, "linux")); err != nil {
		t.Fatalf("%v: install the Debian package %s", err, debianNetbootPackage(pin.Version))
	}
	return Mirror{From: pin.Kernel.URL[:strings.LastIndex(pin.Kernel.URL, "/")], To: "file://" + src}
}
