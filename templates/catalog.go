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
	"sort"
	"sync"

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
	// OS lists installable operating systems with pinned netboot images.
	OS []OSImage `yaml:"os"`
	// Metal pins what the metal/ templates use besides the OS images.
	Metal      MetalPins   `yaml:"metal"`
	Components []Component `yaml:"components"`
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
	// Volumes are the PVCs the component creates that backups copies.
	Volumes []string `yaml:"volumes,omitempty"`
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
