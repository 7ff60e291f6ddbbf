// Package osimage extracts pinned Debian netboot images: YAML mappings
// whose url points into a debian-installer tree
// (…/dists/<suite>/main/installer-<arch>/<version>/images/<path>) with a
// sibling sha256. All such URLs of one installer version in a file form one
// dependency: the first URL's version segment is the range; the other
// URLs' version segments, every checksum and every snapshot.debian.org
// timestamp of that tree are related ranges, so a bump rewrites them
// together.
package osimage

import (
	"fmt"
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"

	"hl.dev/hl/bot"
	"hl.dev/hl/bot/extract/internal/yamlpos"
)

// Datasource and versioning of netboot images.
const (
	Datasource = "debian-netboot"
	Versioning = "loose"
)

// Extractor reads OS image pins.
type Extractor struct{}

// Name is the manager name.
func (Extractor) Name() string { return "os-image" }

// Match selects YAML files.
func (Extractor) Match(p string) bool { return yamlpos.IsYAML(p) }

// installerURL captures base (up to installer-<arch>), suite, arch,
// version and the path below images/.
var (
	installerURL = regexp.MustCompile(`^(https?://.+/dists/([^/]+)/main/installer-([^/]+))/([^/]+)/images/(.+)$`)
	snapshotTS   = regexp.MustCompile(`/archive/[^/]+/(\d{8}T\d{6}Z)(?:/|$)`)
)

type pin struct {
	url     *yaml.Node
	m       []int
	sum     *yaml.Node
	sumFrom int
}

// Extract returns one dependency per installer tree pinned in the file.
func (e Extractor) Extract(p string, content []byte) ([]bot.Dependency, error) {
	if !yamlpos.HasAny(content, "/installer-") {
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
			var url, sum *yaml.Node
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i].Value, n.Content[i+1]
				switch {
				case v.Kind != yaml.ScalarNode:
					walk(v)
				case k == "sha256" || k == "checksum" || k == "sha256sum":
					sum = v
				case installerURL.MatchString(v.Value):
					url = v
				default:
					allScalars = append(allScalars, v)
				}
			}
			if url == nil {
				return
			}
			m := installerURL.FindStringSubmatchIndex(url.Value)
			pn := pin{url: url, m: m, sum: sum}
			if sum != nil && strings.HasPrefix(sum.Value, "sha256:") {
				pn.sumFrom = len("sha256:")
			}
			key := url.Value[m[2]:m[3]] + "|" + url.Value[m[8]:m[9]]
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
		u := first.url.Value
		base, suite, arch, version := u[first.m[2]:first.m[3]], u[first.m[4]:first.m[5]], u[first.m[6]:first.m[7]], u[first.m[8]:first.m[9]]
		rng, ok := f.SubRange(first.url, first.m[8], first.m[9])
		if !ok {
			continue
		}
		d := bot.Dependency{
			File: p, Manager: e.Name(), Datasource: Datasource, Versioning: Versioning,
			Package: "debian-installer/" + suite + "/" + arch, RegistryURL: base,
			Current: version, Range: rng, Related: map[string]bot.Range{},
		}
		ts := ""
		if sm := snapshotTS.FindStringSubmatch(base); sm != nil {
			ts = sm[1]
		}
		for i, pn := range pins {
			pu := pn.url.Value
			if i > 0 {
				if r, ok := f.SubRange(pn.url, pn.m[8], pn.m[9]); ok {
					d.Related[fmt.Sprintf("version@%d", r.Start)] = r
				}
			}
			if pn.sum != nil && pn.sum.Value != "" {
				if r, ok := f.SubRange(pn.sum, pn.sumFrom, len(pn.sum.Value)); ok {
					d.Related["sha256:"+pu[pn.m[10]:pn.m[11]]] = r
				}
			}
			if ts != "" {
				addSnapshot(f, d.Related, pn.url, ts)
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

func addSnapshot(f *yamlpos.File, rel map[string]bot.Range, n *yaml.Node, ts string) {
	i := strings.Index(n.Value, "/"+ts)
	if i < 0 {
		return
	}
	if r, ok := f.SubRange(n, i+1, i+1+len(ts)); ok {
		rel[fmt.Sprintf("snapshot@%d", r.Start)] = r
	}
}
