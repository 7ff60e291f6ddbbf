package testcharts

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// certManager is the real cert-manager chart from the cert-manager module:
// deploy/charts/cert-manager, whose Chart.yaml is written at release time
// from Chart.template.yaml (version and appVersion v0.0.0, the prerelease
// flag a placeholder).
func certManager(t testing.TB, c *Chart, dir string) (Kind, string) {
	t.Helper()
	const module, version = "github.com/cert-manager/cert-manager", "v1.19.1"
	requireVersion(t, c, version)
	src := filepath.Join(moduleDir(t, module, version), "deploy", "charts", "cert-manager")
	copyTree(t, src, dir)
	tpl := filepath.Join(dir, "Chart.template.yaml")
	b, err := os.ReadFile(tpl)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "Chart.yaml"), strings.NewReplacer("v0.0.0", version, "{{IS_PRERELEASE}}", "false").Replace(string(b)))
	if err := os.Remove(tpl); err != nil {
		t.Fatal(err)
	}
	return Real, module + "@" + version + " deploy/charts/cert-manager (Chart.template.yaml filled in)"
}

// moduleChart is a real chart that a Go module ships as is in folder:
// chart chartVersion in module@version.
func moduleChart(module, version, folder, chartVersion string) builder {
	return func(t testing.TB, c *Chart, dir string) (Kind, string) {
		t.Helper()
		requireVersion(t, c, chartVersion)
		copyTree(t, filepath.Join(moduleDir(t, module, version), filepath.FromSlash(folder)), dir)
		return Real, module + "@" + version + " " + folder
	}
}

// copyTree copies a folder of regular files (the module cache is
// read-only, so files are written anew, writable).
func copyTree(t testing.TB, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		return writeCopy(p, target)
	})
	if err != nil {
		t.Fatalf("copy %s: %v", src, err)
	}
}

// copyFile copies one regular file, as copyTree does.
func copyFile(t testing.TB, src, dst string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := writeCopy(src, dst); err != nil {
		t.Fatalf("copy %s: %v", src, err)
	}
}

func writeCopy(src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, b, 0o644)
}
