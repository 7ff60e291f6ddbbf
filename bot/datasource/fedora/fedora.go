// Package fedora is the datasource of Fedora netboot images: it lists the
// releases in a mirror's fedora/linux/releases/ folder (any HTTP server's
// directory index) and, for the chosen release, reads the checksums of
// the images from the .treeinfo at the root of the variant's install
// tree (<release>/<variant>/<arch>/os/.treeinfo, section [checksums]).
package fedora

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strings"

	"hl.dev/hl/bot"
	"hl.dev/hl/bot/datasource/internal/dirindex"
	"hl.dev/hl/internal/httpx"
)

// Name of the datasource.
const Name = "fedora-netboot"

// Datasource reads Fedora release trees.
type Datasource struct{ hc *http.Client }

// New returns the datasource.
func New(hc *http.Client) *Datasource { return &Datasource{hc: hc} }

// Name returns "fedora-netboot".
func (*Datasource) Name() string { return Name }

// tree splits the package fedora/<variant>/<arch>.
func tree(dep bot.Dependency) (variant, arch string, err error) {
	parts := strings.Split(dep.Package, "/")
	if len(parts) != 3 || parts[0] != "fedora" || parts[1] == "" || parts[2] == "" {
		return "", "", fmt.Errorf("package %q is not fedora/<variant>/<arch>", dep.Package)
	}
	return parts[1], parts[2], nil
}

// Releases lists the releases (numbered folders) of the releases folder.
func (d *Datasource) Releases(ctx context.Context, dep bot.Dependency) ([]bot.Release, error) {
	if dep.RegistryURL == "" {
		return nil, fmt.Errorf("no releases URL")
	}
	variant, arch, err := tree(dep)
	if err != nil {
		return nil, err
	}
	base := strings.TrimSuffix(dep.RegistryURL, "/")
	body, _, err := httpx.Get(ctx, d.hc, base+"/", nil)
	if err != nil {
		return nil, err
	}
	var out []bot.Release
	for _, f := range dirindex.Folders(body) {
		if strings.Trim(f.Name, "0123456789") != "" {
			continue // 42_Beta and the like are not releases
		}
		out = append(out, bot.Release{Version: f.Name, ReleasedAt: f.Modified,
			SourceURL: base + "/" + f.Name + "/" + variant + "/" + arch + "/os/"})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s/: no releases listed", httpx.Redact(base))
	}
	return out, nil
}

// Pins returns the new checksums ("sha256:<path below os/>") from the
// release's .treeinfo. A release whose tree for this variant and
// architecture is not there (yet) fails, so the update is skipped.
func (d *Datasource) Pins(ctx context.Context, dep bot.Dependency, version string) (map[string]string, error) {
	variant, arch, err := tree(dep)
	if err != nil {
		return nil, err
	}
	u := strings.TrimSuffix(dep.RegistryURL, "/") + "/" + version + "/" + variant + "/" + arch + "/os/.treeinfo"
	var sums map[string]string
	out := map[string]string{}
	for role := range dep.Related {
		p, ok := strings.CutPrefix(role, "sha256:")
		if !ok {
			continue
		}
		if sums == nil {
			if sums, err = d.checksums(ctx, u); err != nil {
				return nil, err
			}
		}
		sum, ok := sums[p]
		if !ok {
			return nil, fmt.Errorf("%s has no sha256 of %s", httpx.Redact(u), p)
		}
		out[role] = sum
	}
	return out, nil
}

// checksums reads the sha256 checksums of the [checksums] section of a
// .treeinfo (path = sha256:hex).
func (d *Datasource) checksums(ctx context.Context, u string) (map[string]string, error) {
	body, _, err := httpx.Get(ctx, d.hc, u, nil)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	section := ""
	sc := bufio.NewScanner(bytes.NewReader(body))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case line[0] == '[' && strings.HasSuffix(line, "]"):
			section = line[1 : len(line)-1]
		case section == "checksums":
			k, v, ok := strings.Cut(line, "=")
			algo, sum, ok2 := strings.Cut(strings.TrimSpace(v), ":")
			if !ok || !ok2 {
				return nil, fmt.Errorf("%s:%d: malformed checksum line %q", httpx.Redact(u), n, line)
			}
			if algo == "sha256" && len(sum) == 64 {
				out[strings.TrimSpace(k)] = strings.ToLower(sum)
			}
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no sha256 checksums", httpx.Redact(u))
	}
	return out, nil
}
