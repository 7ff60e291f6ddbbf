package testcharts

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"

	"hl.dev/hl/templates"
)

// Kind says how much of an upstream chart a Chart is.
type Kind string

// Kinds of chart in a Set.
const (
	// Real is the upstream chart itself, from a Go module that ships it.
	Real Kind = "real"
	// ContentStandIn is a chart written here under the catalog's name and
	// version that renders real objects (argo-cd, gitea): a seam.
	ContentStandIn Kind = "content stand-in"
	// EmptyStandIn has the catalog's name and version and no templates:
	// only the wrapper chart's own manifests and values render.
	EmptyStandIn Kind = "empty stand-in"
)

// Chart is one chart of the catalog as a chart folder.
type Chart struct {
	// Component is the catalog component the chart belongs to.
	Component string
	// Repository, Name and Version are the catalog's pin.
	Repository, Name, Version string
	Kind                      Kind
	// Source says where the chart's content comes from, for test logs and
	// notes ("sigs.k8s.io/external-dns@v0.20.0 charts/external-dns").
	Source string
	// Dir is the chart folder (Chart.yaml at its root).
	Dir string

	once sync.Once
	tgz  []byte
	err  error
}

// OCI reports whether the chart comes from an oci:// repository.
func (c *Chart) OCI() bool { return strings.HasPrefix(c.Repository, "oci://") }

// Package returns the chart packaged by the helm SDK (chartutil.Save), the
// bytes `helm package` would write. It is packaged once per Set.
func (c *Chart) Package(t testing.TB) []byte {
	t.Helper()
	c.once.Do(func() {
		ch, err := loader.LoadDir(c.Dir)
		if err != nil {
			c.err = fmt.Errorf("load %s: %w", c.Dir, err)
			return
		}
		if ch.Name() != c.Name || ch.Metadata.Version != c.Version {
			c.err = fmt.Errorf("%s holds %s %s, want %s %s", c.Dir, ch.Name(), ch.Metadata.Version, c.Name, c.Version)
			return
		}
		dir, err := os.MkdirTemp("", "hl-testcharts-")
		if err != nil {
			c.err = err
			return
		}
		defer os.RemoveAll(dir)
		p, err := chartutil.Save(ch, dir)
		if err != nil {
			c.err = fmt.Errorf("package %s: %w", c.Name, err)
			return
		}
		c.tgz, c.err = os.ReadFile(p)
	})
	if c.err != nil {
		t.Fatal(c.err)
	}
	return c.tgz
}

// Set is every chart of templates/catalog.yaml, one per component with a
// chart, in catalog order.
type Set struct {
	Charts []*Chart
}

// Get returns the chart named name (the chart's name, not the component's).
func (s *Set) Get(name string) (*Chart, bool) {
	for _, c := range s.Charts {
		if c.Name == name {
			return c, true
		}
	}
	return nil, false
}

// Summary is one line per chart: name, version and kind, sorted by name,
// for test logs and notes.
func (s *Set) Summary() string {
	lines := make([]string, 0, len(s.Charts))
	for _, c := range s.Charts {
		lines = append(lines, fmt.Sprintf("%s %s: %s (%s)", c.Name, c.Version, c.Kind, c.Source))
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// Catalog builds every chart of the embedded catalog into folders under
// t.TempDir(): real charts from their Go modules where a module ships
// them, content stand-ins for argo-cd, gitea, traefik and
// kube-prometheus-stack's CRDs, empty stand-ins for the rest. A module that cannot be downloaded fails the test.
func Catalog(t testing.TB) *Set {
	t.Helper()
	cat, err := templates.LoadCatalog()
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	s := &Set{}
	for _, comp := range cat.Components {
		if comp.Chart == nil {
			continue
		}
		c := &Chart{Component: comp.Name, Repository: comp.Chart.Repository, Name: comp.Chart.Name, Version: comp.Chart.Version}
		dir := filepath.Join(root, comp.Name, c.Name)
		b, ok := builders[c.Name]
		if !ok {
			b = emptyStandIn
		}
		c.Kind, c.Source = b(t, c, dir)
		c.Dir = dir
		s.Charts = append(s.Charts, c)
	}
	if len(s.Charts) == 0 {
		t.Fatal("the catalog names no chart")
	}
	return s
}

// builder writes the chart c into dir and says what it is.
type builder func(t testing.TB, c *Chart, dir string) (Kind, string)

// builders are the charts that are more than an empty stand-in, by chart
// name. A builder checks that the catalog pins the version it can build.
var builders = map[string]builder{
	"cert-manager": certManager,
	// Chart 1.19.0, the catalog's pin, ships in module v0.20.0.
	"external-dns": moduleChart("sigs.k8s.io/external-dns", "v0.20.0", "charts/external-dns", "1.19.0"),
	// With its crds subchart and the frr-k8s archive it vendors.
	"metallb": moduleChart("go.universe.tf/metallb", "v0.16.2", "charts/metallb", "0.16.2"),
	"volsync": moduleChart("github.com/backube/volsync", "v0.14.0", "helm/volsync", "0.14.0"),
	"argo-cd": argoCD,
	"gitea":   gitea,
	"traefik": traefik,
	// The Prometheus Operator's CRDs, which kube-prometheus-stack 79.5.0
	// installs (operator v0.86.x), so ServiceMonitors, PrometheusRules and
	// Probes apply and sync.
	"kube-prometheus-stack": crdStandIn("github.com/prometheus-operator/prometheus-operator", "v0.86.1", "example/prometheus-operator-crd", "79.5.0"),
}

// crdStandIn is an empty stand-in that carries the CRDs the upstream chart
// installs, copied from a module that ships them (kind ContentStandIn).
func crdStandIn(module, version, crdDir, chartVersion string) builder {
	return func(t testing.TB, c *Chart, dir string) (Kind, string) {
		t.Helper()
		requireVersion(t, c, chartVersion)
		emptyStandIn(t, c, dir)
		src := filepath.Join(moduleDir(t, module, version), crdDir)
		copyTree(t, src, filepath.Join(dir, "crds"))
		return ContentStandIn, fmt.Sprintf("no templates; crds/ from %s@%s %s", module, version, crdDir)
	}
}

func emptyStandIn(t testing.TB, c *Chart, dir string) (Kind, string) {
	t.Helper()
	writeFile(t, filepath.Join(dir, "Chart.yaml"), fmt.Sprintf("apiVersion: v2\nname: %s\nversion: %s\ndescription: stand-in for %s %s from %s (no templates)\n", c.Name, c.Version, c.Name, c.Version, c.Repository))
	return EmptyStandIn, "catalog name and version, no templates"
}

// moduleDir downloads module@version through the module proxy (a no-op
// when it is in the module cache) and returns its read-only source folder.
func moduleDir(t testing.TB, module, version string) string {
	t.Helper()
	cmd := exec.Command("go", "mod", "download", "-json", module+"@"+version)
	// Outside any module, so the main module's go.mod and -mod flags play
	// no part; GOTOOLCHAIN=local so no toolchain is fetched.
	cmd.Dir = os.TempDir()
	cmd.Env = append(os.Environ(), "GOFLAGS=", "GOTOOLCHAIN=local")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var m struct{ Dir, Error string }
	_ = json.Unmarshal(out, &m)
	if err != nil || m.Dir == "" {
		t.Fatalf("go mod download -json %s@%s: %v %s %s", module, version, err, m.Error, strings.TrimSpace(stderr.String()))
	}
	if _, err := os.Stat(m.Dir); err != nil {
		t.Fatalf("module %s@%s: %v", module, version, err)
	}
	return m.Dir
}

// requireVersion fails the test when the catalog pins another version
// than the one a builder knows how to provide.
func requireVersion(t testing.TB, c *Chart, want string) {
	t.Helper()
	if c.Version != want {
		t.Fatalf("testcharts provides %s %s, the catalog pins %s: update internal/testcharts", c.Name, want, c.Version)
	}
}

func writeFile(t testing.TB, path, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}
