package metal

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// Paths of the rendered metal tree, relative to the repo root.
const (
	IndexFile    = "metal/nodes.yaml"
	OSFile       = "metal/images.yaml"
	BootScript   = "metal/boot.ipxe"
	DnsmasqConf  = "metal/dnsmasq.conf"
	NodesDir     = "metal/nodes"
	SecretsDir   = "metal/secrets"
	metalDir     = "metal"
	nodeBootFile = "boot.ipxe"
)

// Roles of a node.
const (
	RoleServer = "server"
	RoleAgent  = "agent"
)

// NormaliseMAC returns mac in lower case with colons, accepting colons,
// hyphens or dots as separators.
func NormaliseMAC(mac string) (string, error) {
	hw, err := net.ParseMAC(strings.TrimSpace(mac))
	if err != nil || len(hw) != 6 {
		return "", fmt.Errorf("%q is not a MAC address", mac)
	}
	return hw.String(), nil
}

// Index is metal/nodes.yaml: the machines hl installs, by MAC.
type Index struct {
	// Server is the base URL of hl metal serve (http://address:port).
	Server          string `yaml:"server"`
	DHCPMode        string `yaml:"dhcpMode"`
	OS              OSRef  `yaml:"os"`
	K3s             string `yaml:"k3s"`
	NodeCIDR        string `yaml:"nodeCIDR"`
	ControlPlaneVIP string `yaml:"controlPlaneVIP"`
	// Nodes in file order (spec.metal.nodes order).
	Nodes []Node `yaml:"-"`
}

// OSRef names an OS release.
type OSRef struct {
	Name    string `yaml:"name"`
	Version string `yaml:"version"`
}

func (o OSRef) String() string { return o.Name + " " + o.Version }

// Node is one entry of the index.
type Node struct {
	MAC         string `yaml:"-"`
	Name        string `yaml:"name"`
	Role        string `yaml:"role"`
	IP          string `yaml:"ip"`
	FirstServer bool   `yaml:"firstServer,omitempty"`
	// Rejoin is the join URL that replaces cluster-init when the first
	// server is reinstalled into a cluster that lives on.
	Rejoin        string `yaml:"rejoin,omitempty"`
	InstallConfig string `yaml:"installConfig"`
}

// ParseIndex decodes metal/nodes.yaml, keeping the node order.
func ParseIndex(data []byte) (*Index, error) {
	var raw struct {
		Index `yaml:",inline"`
		Nodes yaml.Node `yaml:"nodes"`
	}
	if err := yaml.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("%s: %w", IndexFile, err)
	}
	idx := raw.Index
	if raw.Nodes.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s: nodes must be a map of MAC to node", IndexFile)
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(raw.Nodes.Content); i += 2 {
		mac, err := NormaliseMAC(raw.Nodes.Content[i].Value)
		if err != nil {
			return nil, fmt.Errorf("%s: line %d: %w", IndexFile, raw.Nodes.Content[i].Line, err)
		}
		var n Node
		if err := raw.Nodes.Content[i+1].Decode(&n); err != nil {
			return nil, fmt.Errorf("%s: %s: %w", IndexFile, mac, err)
		}
		if n.Name == "" || strings.ContainsAny(n.Name, "/\\") || n.Name == "." || n.Name == ".." {
			return nil, fmt.Errorf("%s: %s: invalid node name %q", IndexFile, mac, n.Name)
		}
		if seen[mac] || seen["name:"+n.Name] {
			return nil, fmt.Errorf("%s: %s (%s) listed twice", IndexFile, mac, n.Name)
		}
		seen[mac], seen["name:"+n.Name] = true, true
		n.MAC = mac
		idx.Nodes = append(idx.Nodes, n)
	}
	return &idx, nil
}

// ByMAC returns the node with the given (normalised) MAC.
func (x *Index) ByMAC(mac string) (Node, bool) {
	for _, n := range x.Nodes {
		if n.MAC == mac {
			return n, true
		}
	}
	return Node{}, false
}

// ByName returns the named node.
func (x *Index) ByName(name string) (Node, bool) {
	for _, n := range x.Nodes {
		if n.Name == name {
			return n, true
		}
	}
	return Node{}, false
}

// Names lists the node names in index order.
func (x *Index) Names() []string {
	out := make([]string, len(x.Nodes))
	for i, n := range x.Nodes {
		out[i] = n.Name
	}
	return out
}

// OSPin is metal/images.yaml: the pinned netboot image.
type OSPin struct {
	Name    string   `yaml:"name"`
	Version string   `yaml:"version"`
	Repo    string   `yaml:"repo"`
	Kernel  Artifact `yaml:"kernel"`
	Initrd  Artifact `yaml:"initrd"`
}

// Artifact is a file pinned by URL and sha256.
type Artifact struct {
	URL    string `yaml:"url"`
	SHA256 string `yaml:"sha256"`
}

// Ref names the pinned OS.
func (p OSPin) Ref() OSRef { return OSRef{p.Name, p.Version} }

// ParseOSPin decodes metal/images.yaml.
func ParseOSPin(data []byte) (*OSPin, error) {
	var p OSPin
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("%s: %w", OSFile, err)
	}
	if p.Name == "" || p.Version == "" {
		return nil, fmt.Errorf("%s: name and version are required", OSFile)
	}
	return &p, nil
}

// Tree is a snapshot of a repo's metal/ files by slash path relative to the
// repo root (a working tree or a git revision).
type Tree map[string][]byte

// ReadTree reads every file under metal/ of the repo at dir.
func ReadTree(dir string) (Tree, error) {
	t := Tree{}
	root := filepath.Join(dir, metalDir)
	err := filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.IsDir() || !e.Type().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		t[filepath.ToSlash(rel)] = b
		return nil
	})
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s has no metal/ folder: is it a rendered hl repo?", dir)
	}
	return t, err
}

// Index parses the tree's metal/nodes.yaml.
func (t Tree) Index() (*Index, error) {
	b, ok := t[IndexFile]
	if !ok {
		return nil, fmt.Errorf("%s is missing", IndexFile)
	}
	return ParseIndex(b)
}

// OS parses the tree's metal/images.yaml.
func (t Tree) OS() (*OSPin, error) {
	b, ok := t[OSFile]
	if !ok {
		return nil, fmt.Errorf("%s is missing", OSFile)
	}
	return ParseOSPin(b)
}

// NodeFiles returns the node's files (name relative to its folder → bytes).
func (t Tree) NodeFiles(name string) map[string][]byte {
	prefix := NodesDir + "/" + name + "/"
	out := map[string][]byte{}
	for p, b := range t {
		if strings.HasPrefix(p, prefix) {
			out[strings.TrimPrefix(p, prefix)] = b
		}
	}
	return out
}

// repoFile reads a file of the repo at dir by slash path, refusing paths
// that leave metal/.
func repoFile(dir, rel string) ([]byte, error) {
	clean := path.Clean(rel)
	if !strings.HasPrefix(clean, metalDir+"/") {
		return nil, fmt.Errorf("%s is outside metal/", rel)
	}
	return os.ReadFile(filepath.Join(dir, filepath.FromSlash(clean)))
}

// LoadIndex reads metal/nodes.yaml of the repo at dir.
func LoadIndex(dir string) (*Index, error) {
	b, err := repoFile(dir, IndexFile)
	if err != nil {
		return nil, err
	}
	return ParseIndex(b)
}

// LoadOSPin reads metal/images.yaml of the repo at dir.
func LoadOSPin(dir string) (*OSPin, error) {
	b, err := repoFile(dir, OSFile)
	if err != nil {
		return nil, err
	}
	return ParseOSPin(b)
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
