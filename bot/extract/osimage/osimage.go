// Package osimage extracts pinned netboot images: YAML mappings whose url
// points into a Debian installer tree
// (…/dists/<suite>/main/installer-<arch>/<version>/images/<path>) or a
// Fedora release tree (…/fedora/linux/releases/<N>/<variant>/<arch>/os/
// images/<path>), with a sibling sha256. All such URLs of one tree and
// version in a file form one dependency: the first URL's version segment
// is the range; the other URLs' version segments, every checksum and
// every snapshot.debian.org timestamp of that tree are related ranges, so
// a bump rewrites them together.
package osimage

import (
	"fmt"
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"

	"hl.dev/hl/bot"
	"hl.dev/hl/bot/extract/internal/yamlpos"
)

// Datasources and versioning of netboot images.
const (
	Datasource       = "debian-netboot"
	FedoraDatasource = "fedora-netboot"
	Versioning       = "loose"
)

// Extractor reads OS image pins.
type Extractor struct{}

// Name is the manager name.
func (Extractor) Name() string { return "os-image" }

// Match selects YAML files.
func (Extractor) Match(p string) bool { return yamlpos.IsYAML(p) }

// tree is a kind of netboot tree. Its URL pattern names the groups base
// (the dependency's registry URL), version (the range), path (the
// checksum's role: where the checksum list names the file) and the
// package's parts.
type tree struct {
	url        *regexp.Regexp
	datasource string
	pkg        func(group func(string) string) string
}

var (
	trees = []tree{
		{
			// base is up to installer-<arch>; SHA256SUMS lives in images/.
			url:        regexp.MustCompile(`^(?P<base>https?://.+/dists/(?P<suite>[^/]+)/main/installer-(?P<arch>[^/]+))/(?P<version>[^/]+)/images/(?P<path>.+)$`),
			datasource: Datasource,
			pkg:        func(g func(string) string) string { return "debian-installer/" + g("suite") + "/" + g("arch") },
		},
		{
			// base is the releases folder; .treeinfo in os/ lists the
			// checksums by path below os/.
			url:        regexp.MustCompile(`^(?P<base>https?://.+/fedora/linux/releases)/(?P<version>\d+)/(?P<variant>[^/]+)/(?P<arch>[^/]+)/os/(?P<path>images/.+)$`),
			datasource: FedoraDatasource,
			pkg:        func(g func(string) string) string { return "fedora/" + g("variant") + "/" + g("arch") },
		},
	}
	snapshotTS = regexp.MustCompile(`/archive/[^/]+/(\d{8}T\d{6}Z)(?:/|$)`)
)

// match finds the tree u points into.
func match(u string) (*tree, []int) {
	for i := range trees {
		if m := trees[i].url.FindStringSubmatchIndex(u); m != nil {
			return &trees[i], m
		}
	}
	return nil, nil
}

// span is where group name of t's pattern matched in m.
func (t *tree) span(m []int, name string) (int, int) {
	i := t.url.SubexpIndex(name)
	return m[2*i], m[2*i+1]
}

type pin struct {
	tree    *tree
	url     *yaml.Node
	m       []int
	sum     *yaml.Node
	sumFrom int
}

// group is the text of group name in the pin's URL.
func (p pin) group(name string) string {
	from, to := p.tree.span(p.m, name)
	return p.url.Value[from:to]
}

// Extract returns one dependency per installer tree pinned in the file.
func (e Extractor) Extract(p string, content []byte) ([]bot.Dependency, error) {
	if !yamlpos.HasAny(content, "/installer-", "/fedora/linux/releases/") {
		return nil, nil
	}
	f, err := yamlpos.Parse(content)
	if err != nil {
		return nil, err
	}
	groups := map[string][]pin{}
	var order []string
	var allScalars []*yaml.Node
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		switch n.Kind {
		case yaml.MappingNode:
			var pn pin
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i].Value, n.Content[i+1]
				if v.Kind != yaml.ScalarNode {
					walk(v)
					continue
				}
				if k == "sha256" || k == "checksum" || k == "sha256sum" {
					pn.sum = v
				} else if t, m := match(v.Value); t != nil {
					pn.tree, pn.url, pn.m = t, v, m
				} else {
					allScalars = append(allScalars, v)
				}
			}
			if pn.url == nil {
				return
			}
			if pn.sum != nil && strings.HasPrefix(pn.sum.Value, "sha256:") {
				pn.sumFrom = len("sha256:")
			}
			key := pn.tree.datasource + "|" + pn.group("base") + "|" + pn.pkg() + "|" + pn.group("version")
			if _, ok := groups[key]; !ok {
				order = append(order, key)
			}
			groups[key] = append(groups[key], pn)
		case yaml.SequenceNode:
			for _, c := range n.Content {
				walk(c)
			}
		}
	}
	for _, doc := range f.Docs {
		walk(doc)
	}
	var out []bot.Dependency
	for _, key := range order {
		pins := groups[key]
		first := pins[0]
		base := first.group("base")
		from, to := first.version()
		rng, ok := f.SubRange(first.url, from, to)
		if !ok {
			continue
		}
		d := bot.Dependency{
			File: p, Manager: e.Name(), Datasource: first.tree.datasource, Versioning: Versioning,
			Package: first.pkg(), RegistryURL: base,
			Current: first.group("version"), Range: rng, Related: map[string]bot.Range{},
		}
		ts := ""
		if sm := snapshotTS.FindStringSubmatch(base); sm != nil {
			ts = sm[1]
		}
		for i, pn := range pins {
			if from, to := pn.version(); i > 0 {
				if r, ok := f.SubRange(pn.url, from, to); ok {
					d.Related[fmt.Sprintf("version@%d", r.Start)] = r
				}
			}
			if pn.sum != nil && pn.sum.Value != "" {
				if r, ok := f.SubRange(pn.sum, pn.sumFrom, len(pn.sum.Value)); ok {
					d.Related["sha256:"+pn.group("path")] = r
				}
			}
			if ts != "" {
				addSnapshot(f, d.Related, pn.url, ts)
			}
		}
		// Other values naming the same tree at the same version (a kernel
		// command line's inst.repo=…/os/) move with it.
		pathFrom, _ := first.tree.span(first.m, "path")
		root := strings.TrimSuffix(first.url.Value[:pathFrom], "/")
		vFrom, vTo := first.version()
		for _, s := range allScalars {
			for off := 0; ; {
				i := strings.Index(s.Value[off:], root)
				if i < 0 {
					break
				}
				if r, ok := f.SubRange(s, off+i+vFrom, off+i+vTo); ok {
					d.Related[fmt.Sprintf("version@%d", r.Start)] = r
				}
				off += i + len(root)
			}
		}
		if ts != "" {
			// The archive URL beside the images (repo:) is of the same snapshot.
			for _, s := range allScalars {
				if strings.Contains(s.Value, "/"+ts) && strings.HasPrefix(s.Value, "http") {
					addSnapshot(f, d.Related, s, ts)
				}
			}
		}
		if len(d.Related) == 0 {
			d.Related = nil
		}
		out = append(out, d)
	}
	return out, nil
}

// pkg is the package of the pin's tree.
func (p pin) pkg() string { return p.tree.pkg(p.group) }

// version is where the pin's URL names the version.
func (p pin) version() (int, int) { return p.tree.span(p.m, "version") }

func addSnapshot(f *yamlpos.File, rel map[string]bot.Range, n *yaml.Node, ts string) {
	i := strings.Index(n.Value, "/"+ts)
	if i < 0 {
		return
	}
	if r, ok := f.SubRange(n, i+1, i+1+len(ts)); ok {
		rel[fmt.Sprintf("snapshot@%d", r.Start)] = r
	}
}
