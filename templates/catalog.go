// Package templates owns the embedded template tree of a rendered homelab
// and the catalog: every component hl can render, what it needs, and every
// pinned upstream version (charts, images, k3s, OS netboot images). Nothing
// in it imports other hl packages; it is data plus the code to read it.
package templates

import (
	"bytes"
	"embed"
	"fmt"
	"io/fs"
	"regexp"
	"sort"
	"sync"
	"time"

	"gopkg.in/yaml.v3"
)

// FS holds the template tree and catalog.yaml.
//
//go:embed catalog.yaml roadmap.yaml all:tree
var FS embed.FS

// Tree returns the template tree: paths as they appear in a rendered repo,
// ".tmpl" files executed with text/template.
func Tree() fs.FS {
	sub, err := fs.Sub(FS, "tree")
	if err != nil {
		panic(err) // the embed pattern guarantees the folder
	}
	return sub
}

// Catalog is catalog.yaml.
type Catalog struct {
	// K3s is the pinned k3s release.
	K3s string `yaml:"k3s"`
	// Kubernetes records the upstream end of life of the Kubernetes
	// minors k3s may be pinned at; the pinned one must be listed.
	Kubernetes []KubernetesMinor `yaml:"kubernetes"`
	// OS lists installable operating systems with pinned netboot images.
	OS []OSImage `yaml:"os"`
	// Metal pins what the metal/ templates use besides the OS images.
	Metal MetalPins `yaml:"metal"`
	// BackupTargets are the restic targets of the backups component, in
	// the order their copies are made.
	BackupTargets []BackupTarget `yaml:"backupTargets"`
	Components    []Component    `yaml:"components"`
}

// KubernetesMinor is one Kubernetes minor release series and the day
// upstream stops patching it.
type KubernetesMinor struct {
	// Minor is "1.36".
	Minor string `yaml:"minor"`
	// EndOfLife is the upstream end-of-life date, YYYY-MM-DD (UTC).
	EndOfLife string `yaml:"endOfLife"`
}

// EndOfLifeDate is EndOfLife parsed; ParseCatalog proved it parses.
func (k KubernetesMinor) EndOfLifeDate() time.Time {
	t, _ := time.Parse(time.DateOnly, k.EndOfLife)
	return t
}

// MetalPins are the metal/ template pins: the kube-vip image and the k3s
// install script URL ("{version}" is replaced by the k3s version).
type MetalPins struct {
	KubeVIP          Image  `yaml:"kubeVip"`
	K3sInstallScript string `yaml:"k3sInstallScript"`
}

// OSImage is a netboot kernel and initrd (or Fedora's PXE images) pinned
// by URL and sha256.
type OSImage struct {
	Name    string   `yaml:"name"`
	Version string   `yaml:"version"`
	Kernel  Artifact `yaml:"kernel"`
	Initrd  Artifact `yaml:"initrd"`
	// Repo is the package mirror the installer uses.
	Repo string `yaml:"repo,omitempty"`
}

// Artifact is a downloadable file pinned by checksum.
type Artifact struct {
	URL    string `yaml:"url"`
	SHA256 string `yaml:"sha256"`
}

// Component is one catalog entry: an Argo CD app under system/, platform/
// or apps/.
type Component struct {
	Name        string `yaml:"name"`
	Layer       string `yaml:"layer"`
	Title       string `yaml:"title"`
	Description string `yaml:"description"`
	Namespace   string `yaml:"namespace"`
	// Default is whether the component is on when hl.yaml says nothing.
	Default bool `yaml:"default"`
	// Required components cannot be disabled.
	Required bool `yaml:"required,omitempty"`
	// Requires lists components this one needs.
	Requires []Requirement    `yaml:"requires,omitempty"`
	Chart    *Chart           `yaml:"chart,omitempty"`
	Images   map[string]Image `yaml:"images,omitempty"`
	// Host is the first label of the component's hostname, if it has a UI.
	Host string `yaml:"host,omitempty"`
	// Volumes are every PersistentVolumeClaim the component's workloads
	// create, each backed up or skipped with a reason (see Volume). The
	// backups component renders its ReplicationSources from them and a
	// test (backup/coverage_test.go) holds them equal to what renders.
	Volumes []Volume `yaml:"volumes,omitempty"`
}

// Volume is one PersistentVolumeClaim a component creates, in the
// component's namespace, and what backups does with it.
type Volume struct {
	// Name is the claim's name as it exists in the cluster: for a
	// StatefulSet's volumeClaimTemplate, <template>-<statefulset>-<ordinal>.
	Name string `yaml:"name"`
	// RunAs is the user (and group) the volume's files belong to: the
	// restic mover runs as it, since the namespaces enforce Pod Security
	// and it cannot run as root. 0 means 1000.
	RunAs int `yaml:"runAs,omitempty"`
	// Skip, when set, is why the volume is not backed up: what is lost
	// with it and why that is acceptable.
	Skip string `yaml:"skip,omitempty"`
	// Declared is set for a claim the tests cannot render offline: the
	// upstream chart is an empty stand-in there (internal/testcharts), or
	// an operator creates the claim from a custom resource. It records
	// where the name was read and at which chart version, so a chart bump
	// fails the coverage test until someone checks the name again.
	Declared *Declared `yaml:"declared,omitempty"`
}

// Declared says where an upstream chart creates a claim.
type Declared struct {
	// Chart is the version of the component's chart the name was read
	// off.
	Chart string `yaml:"chart"`
	// From names the object that creates the claim and how the name is
	// derived.
	From string `yaml:"from"`
}

// User is the uid the restic mover runs as for this volume.
func (v Volume) User() int {
	if v.RunAs == 0 {
		return 1000
	}
	return v.RunAs
}

// BackedUp lists the component's volumes that are backed up (not
// skipped), in catalog order.
func (c Component) BackedUp() []Volume {
	var out []Volume
	for _, v := range c.Volumes {
		if v.Skip == "" {
			out = append(out, v)
		}
	}
	return out
}

// Requirement is a dependency on another component, optionally only when
// the forge is of a given type.
type Requirement struct {
	Component string `yaml:"component"`
	// WhenForge limits the requirement to a forge type (gitea, github).
	WhenForge string `yaml:"whenForge,omitempty"`
	Why       string `yaml:"why"`
}

// Chart is a pinned upstream Helm chart.
type Chart struct {
	// Repository is an HTTP chart repo URL or oci://registry/path.
	Repository string `yaml:"repository"`
	Name       string `yaml:"name"`
	Version    string `yaml:"version"`
}

// Image is a pinned container image.
type Image struct {
	Repository string `yaml:"repository"`
	Tag        string `yaml:"tag"`
}

var (
	catalogOnce sync.Once
	catalog     *Catalog
	catalogErr  error
)

// LoadCatalog returns the parsed, checked catalog. The catalog is embedded
// data, so an error here is a build defect and tests catch it.
func LoadCatalog() (*Catalog, error) {
	catalogOnce.Do(func() {
		data, err := FS.ReadFile("catalog.yaml")
		if err != nil {
			catalogErr = err
			return
		}
		catalog, catalogErr = ParseCatalog(data)
	})
	return catalog, catalogErr
}

// MustCatalog is LoadCatalog for callers that run after tests proved the
// embedded catalog sound.
func MustCatalog() *Catalog {
	c, err := LoadCatalog()
	if err != nil {
		panic(err)
	}
	return c
}

// ParseCatalog decodes and checks catalog data strictly.
func ParseCatalog(data []byte) (*Catalog, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	c := &Catalog{}
	if err := dec.Decode(c); err != nil {
		return nil, fmt.Errorf("catalog: %w", err)
	}
	if err := checkKubernetes(c); err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for _, comp := range c.Components {
		if seen[comp.Name] {
			return nil, fmt.Errorf("catalog: component %q listed twice", comp.Name)
		}
		seen[comp.Name] = true
		switch comp.Layer {
		case "system", "platform", "apps":
		default:
			return nil, fmt.Errorf("catalog: component %q: layer %q is not system, platform or apps", comp.Name, comp.Layer)
		}
		if err := checkVolumes(comp); err != nil {
			return nil, err
		}
	}
	for _, comp := range c.Components {
		for _, r := range comp.Requires {
			if !seen[r.Component] {
				return nil, fmt.Errorf("catalog: component %q requires unknown %q", comp.Name, r.Component)
			}
		}
	}
	return c, nil
}

// k3sMinor takes the Kubernetes minor out of a k3s release
// (v1.36.5+k3s1 → 1.36).
var k3sMinor = regexp.MustCompile(`^v(\d+\.\d+)\.\d+(?:-rc\d+)?\+k3s\d+$`)

// checkKubernetes holds the k3s pin to a listed minor with a real date.
func checkKubernetes(c *Catalog) error {
	m := k3sMinor.FindStringSubmatch(c.K3s)
	if m == nil {
		return fmt.Errorf("catalog: k3s %q is not a k3s release (vX.Y.Z+k3sN)", c.K3s)
	}
	seen := map[string]bool{}
	for i, k := range c.Kubernetes {
		at := fmt.Sprintf("catalog: kubernetes[%d] (%s)", i, k.Minor)
		if seen[k.Minor] {
			return fmt.Errorf("%s: listed twice", at)
		}
		seen[k.Minor] = true
		if _, err := time.Parse(time.DateOnly, k.EndOfLife); err != nil {
			return fmt.Errorf("%s: endOfLife %q is not a date (YYYY-MM-DD)", at, k.EndOfLife)
		}
	}
	if !seen[m[1]] {
		return fmt.Errorf("catalog: k3s %s: Kubernetes %s has no end-of-life date under kubernetes", c.K3s, m[1])
	}
	return nil
}

// PinnedKubernetes is the Kubernetes minor of the k3s pin and its end of
// life.
func (c *Catalog) PinnedKubernetes() KubernetesMinor {
	m := k3sMinor.FindStringSubmatch(c.K3s)
	for _, k := range c.Kubernetes {
		if m != nil && k.Minor == m[1] {
			return k
		}
	}
	return KubernetesMinor{}
}

// Supported returns an error when the pinned Kubernetes minor is past its
// upstream end of life on the given day.
func (c *Catalog) Supported(now time.Time) error {
	k := c.PinnedKubernetes()
	if k.Minor == "" {
		return fmt.Errorf("catalog: k3s %s: no end-of-life date recorded for its Kubernetes minor", c.K3s)
	}
	if eol := k.EndOfLifeDate(); !now.UTC().Before(eol.AddDate(0, 0, 1)) {
		return fmt.Errorf("catalog: k3s %s is Kubernetes %s, past its upstream end of life on %s: pin a supported minor the k3s stable channel offers", c.K3s, k.Minor, k.EndOfLife)
	}
	return nil
}

// checkVolumes rejects volume entries backups could not act on.
func checkVolumes(comp Component) error {
	seen := map[string]bool{}
	for i, v := range comp.Volumes {
		at := fmt.Sprintf("catalog: component %q: volumes[%d]", comp.Name, i)
		switch {
		case v.Name == "":
			return fmt.Errorf("%s: no name", at)
		case seen[v.Name]:
			return fmt.Errorf("%s: %s listed twice", at, v.Name)
		case v.RunAs < 0:
			return fmt.Errorf("%s (%s): runAs %d is not a user id", at, v.Name, v.RunAs)
		case v.Declared != nil && (v.Declared.Chart == "" || v.Declared.From == ""):
			return fmt.Errorf("%s (%s): declared needs chart (the version checked) and from (what creates it)", at, v.Name)
		case v.Declared != nil && comp.Chart == nil:
			return fmt.Errorf("%s (%s): declared, but the component has no chart", at, v.Name)
		}
		seen[v.Name] = true
	}
	return nil
}

// Component returns the named component.
func (c *Catalog) Component(name string) (Component, bool) {
	for _, comp := range c.Components {
		if comp.Name == name {
			return comp, true
		}
	}
	return Component{}, false
}

// Names returns every component name, sorted.
func (c *Catalog) Names() []string {
	out := make([]string, 0, len(c.Components))
	for _, comp := range c.Components {
		out = append(out, comp.Name)
	}
	sort.Strings(out)
	return out
}

// OSImage returns the pinned netboot image for an OS name and version.
func (c *Catalog) OSImage(name, version string) (OSImage, bool) {
	for _, o := range c.OS {
		if o.Name == name && o.Version == version {
			return o, true
		}
	}
	return OSImage{}, false
}

// OSVersions lists the pinned versions of an OS.
func (c *Catalog) OSVersions(name string) []string {
	var out []string
	for _, o := range c.OS {
		if o.Name == name {
			out = append(out, o.Version)
		}
	}
	return out
}
