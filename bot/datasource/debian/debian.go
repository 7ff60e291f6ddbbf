// Package debian is the datasource of Debian netboot installer images: it
// lists the installer builds in a mirror's dists/<suite>/main/installer-
// <arch>/ folder (any HTTP server's directory index) and, for the chosen
// build, reads images/SHA256SUMS beside the images for the new checksums.
// Trees pinned on snapshot.debian.org are looked up at today's snapshot
// (the archive redirects any time to the snapshot before it), and the new
// snapshot stamp is one of the pins.
package debian

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"

	"hl.dev/hl/bot"
	"hl.dev/hl/bot/datasource/internal/dirindex"
	"hl.dev/hl/internal/httpx"
)

// Name of the datasource.
const Name = "debian-netboot"

// Datasource reads installer trees.
type Datasource struct {
	hc  *http.Client
	now func() time.Time
}

// New returns the datasource; now defaults to time.Now.
func New(hc *http.Client, now func() time.Time) *Datasource {
	if now == nil {
		now = time.Now
	}
	return &Datasource{hc: hc, now: now}
}

// Name returns "debian-netboot".
func (*Datasource) Name() string { return Name }

var stampRe = regexp.MustCompile(`(/archive/[^/]+/)(\d{8}T\d{6}Z)(/|$)`)

// base returns where to look: the pinned tree, or for a snapshot pin the
// same tree at today's snapshot; stamp is that snapshot ("" if none).
func (d *Datasource) base(registry string) (base, stamp string) {
	base = strings.TrimSuffix(registry, "/")
	if m := stampRe.FindStringSubmatchIndex(base); m != nil {
		stamp = d.now().UTC().Format("20060102") + "T000000Z"
		base = base[:m[4]] + stamp + base[m[5]:]
	}
	return base, stamp
}

// Releases lists the installer builds in the tree.
func (d *Datasource) Releases(ctx context.Context, dep bot.Dependency) ([]bot.Release, error) {
	if dep.RegistryURL == "" {
		return nil, fmt.Errorf("no installer URL")
	}
	base, _ := d.base(dep.RegistryURL)
	body, _, err := httpx.Get(ctx, d.hc, base+"/", nil)
	if err != nil {
		return nil, err
	}
	var out []bot.Release
	for _, f := range dirindex.Folders(body) {
		out = append(out, bot.Release{Version: f.Name, SourceURL: base + "/" + f.Name + "/", ReleasedAt: f.Modified})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s/: no installer builds listed", httpx.Redact(base))
	}
	return out, nil
}

// Pins returns the new checksums ("sha256:<path below images/>") from the
// build's images/SHA256SUMS and, for snapshot pins, the new snapshot stamp
// ("snapshot@…" roles).
func (d *Datasource) Pins(ctx context.Context, dep bot.Dependency, version string) (map[string]string, error) {
	base, stamp := d.base(dep.RegistryURL)
	out := map[string]string{}
	var sums map[string]string
	for role := range dep.Related {
		switch {
		case strings.HasPrefix(role, "snapshot@"):
			if stamp == "" {
				return nil, fmt.Errorf("role %s: %s is not a snapshot URL", role, dep.RegistryURL)
			}
			out[role] = stamp
		case strings.HasPrefix(role, "sha256:"):
			if sums == nil {
				var err error
				if sums, err = d.sums(ctx, base+"/"+version+"/images/SHA256SUMS"); err != nil {
					return nil, err
				}
			}
			p := strings.TrimPrefix(role, "sha256:")
			sum, ok := sums[p]
			if !ok {
				return nil, fmt.Errorf("%s is not in %s/%s/images/SHA256SUMS", p, httpx.Redact(base), version)
			}
			out[role] = sum
		}
	}
	return out, nil
}

var sumLine = regexp.MustCompile(`^([0-9a-f]{64})\s+\*?(?:\./)?(\S+)$`)

func (d *Datasource) sums(ctx context.Context, u string) (map[string]string, error) {
	body, _, err := httpx.Get(ctx, d.hc, u, nil)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, line := range strings.Split(string(body), "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		m := sumLine.FindStringSubmatch(line)
		if m == nil {
			return nil, fmt.Errorf("%s: malformed line %q", httpx.Redact(u), line)
		}
		out[m[2]] = m[1]
	}
	return out, nil
}
