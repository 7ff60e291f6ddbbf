// Package gitea is the datasource of Gitea (and Forgejo) releases, through
// the Gitea SDK: the homelab's own forge hosts forks and internal tools
// whose releases the bot follows.
package gitea

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	sdk "code.gitea.io/sdk/gitea"

	"hl.dev/hl/bot"
)

// Name of the datasource.
const Name = "gitea-releases"

// Datasource lists Gitea releases.
type Datasource struct {
	hc      *http.Client
	baseURL string
	token   string
	// MaxPages bounds pagination (50 releases a page; default 4).
	MaxPages int
}

// New returns the datasource; baseURL is used for dependencies that name
// no registry (the forge in hl.yaml).
func New(hc *http.Client, baseURL, token string) *Datasource {
	return &Datasource{hc: hc, baseURL: baseURL, token: token, MaxPages: 4}
}

// Name returns "gitea-releases".
func (*Datasource) Name() string { return Name }

// Releases lists owner/repo's published releases.
func (d *Datasource) Releases(ctx context.Context, dep bot.Dependency) ([]bot.Release, error) {
	owner, repo, ok := strings.Cut(dep.Package, "/")
	if !ok || owner == "" || repo == "" {
		return nil, fmt.Errorf("package %q is not owner/repo", dep.Package)
	}
	base := dep.RegistryURL
	if base == "" {
		base = d.baseURL
	}
	if base == "" {
		return nil, fmt.Errorf("no Gitea URL for %s", dep.Package)
	}
	opts := []sdk.ClientOption{sdk.SetHTTPClient(d.hc), sdk.SetContext(ctx), sdk.SetGiteaVersion("")}
	// Only the forge hl.yaml names gets the token: a release URL in some
	// file must not make the bot send its credentials elsewhere.
	if d.token != "" && sameHost(base, d.baseURL) {
		opts = append(opts, sdk.SetToken(d.token))
	}
	c, err := sdk.NewClient(base, opts...)
	if err != nil {
		return nil, err
	}
	var out []bot.Release
	for page := 1; page <= d.MaxPages; page++ {
		rels, _, err := c.ListReleases(owner, repo, sdk.ListReleasesOptions{ListOptions: sdk.ListOptions{Page: page, PageSize: 50}})
		if err != nil {
			return nil, err
		}
		for _, r := range rels {
			if r.IsDraft || r.TagName == "" {
				continue
			}
			rel := bot.Release{Version: r.TagName, ReleaseNotesURL: r.HTMLURL, Prerelease: r.IsPrerelease,
				SourceURL: strings.TrimSuffix(base, "/") + "/" + owner + "/" + repo}
			if !r.PublishedAt.IsZero() {
				rel.ReleasedAt = r.PublishedAt
			} else {
				rel.ReleasedAt = r.CreatedAt
			}
			out = append(out, rel)
		}
		if len(rels) < 50 {
			break
		}
	}
	return out, nil
}

// ReleaseTime is when owner/repo on the forge hl.yaml names published
// the release tagged tag: zero when there is no such release (a bare
// tag) or it is a draft, so a minimum release age holds it.
func (d *Datasource) ReleaseTime(ctx context.Context, owner, repo, tag string) (time.Time, error) {
	if d.baseURL == "" {
		return time.Time{}, nil
	}
	opts := []sdk.ClientOption{sdk.SetHTTPClient(d.hc), sdk.SetContext(ctx), sdk.SetGiteaVersion("")}
	if d.token != "" {
		opts = append(opts, sdk.SetToken(d.token))
	}
	c, err := sdk.NewClient(d.baseURL, opts...)
	if err != nil {
		return time.Time{}, err
	}
	r, resp, err := c.GetReleaseByTag(owner, repo, tag)
	if resp != nil && resp.StatusCode == http.StatusNotFound {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, err
	}
	if r.IsDraft {
		return time.Time{}, nil
	}
	if !r.PublishedAt.IsZero() {
		return r.PublishedAt.UTC(), nil
	}
	return r.CreatedAt.UTC(), nil
}

func sameHost(a, b string) bool {
	trim := func(s string) string {
		s = strings.TrimPrefix(strings.TrimPrefix(s, "https://"), "http://")
		h, _, _ := strings.Cut(s, "/")
		return strings.ToLower(h)
	}
	return b != "" && trim(a) == trim(b)
}
