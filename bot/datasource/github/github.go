// Package github is the datasource of GitHub releases (k3s, upstream
// projects), through go-github. Requests go through the run's conditional
// cache, so an unchanged release list costs a 304, which GitHub does not
// count against the rate limit.
package github

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	gh "github.com/google/go-github/v60/github"

	"hl.dev/hl/bot"
)

// Name of the datasource.
const Name = "github-releases"

// DefaultAPIURL is github.com's API.
const DefaultAPIURL = "https://api.github.com/"

// Datasource lists GitHub releases.
type Datasource struct {
	client *gh.Client
	// MaxPages bounds pagination (default 3); PerPage is the page size
	// (default 100, GitHub's maximum).
	MaxPages, PerPage int
}

// New returns the datasource; apiURL is for GitHub Enterprise and tests.
func New(hc *http.Client, apiURL, token string) *Datasource {
	c := gh.NewClient(hc)
	if token != "" {
		c = c.WithAuthToken(token)
	}
	if apiURL == "" {
		apiURL = DefaultAPIURL
	}
	if !strings.HasSuffix(apiURL, "/") {
		apiURL += "/"
	}
	if u, err := url.Parse(apiURL); err == nil {
		c.BaseURL = u
	}
	return &Datasource{client: c, MaxPages: 3, PerPage: 100}
}

// Name returns "github-releases".
func (*Datasource) Name() string { return Name }

// Releases lists owner/repo's published releases, newest first.
func (d *Datasource) Releases(ctx context.Context, dep bot.Dependency) ([]bot.Release, error) {
	owner, repo, ok := strings.Cut(dep.Package, "/")
	if !ok || owner == "" || repo == "" || strings.Contains(repo, "/") {
		return nil, fmt.Errorf("package %q is not owner/repo", dep.Package)
	}
	var out []bot.Release
	opts := &gh.ListOptions{PerPage: d.PerPage}
	for page := 0; page < d.MaxPages; page++ {
		rels, resp, err := d.client.Repositories.ListReleases(ctx, owner, repo, opts)
		if err != nil {
			return nil, err
		}
		for _, r := range rels {
			if r.GetDraft() || r.GetTagName() == "" {
				continue
			}
			rel := bot.Release{
				Version:         r.GetTagName(),
				ReleaseNotesURL: r.GetHTMLURL(),
				SourceURL:       "https://github.com/" + owner + "/" + repo,
				Prerelease:      r.GetPrerelease(),
			}
			if t := r.GetPublishedAt(); !t.IsZero() {
				rel.ReleasedAt = t.Time
			} else {
				rel.ReleasedAt = r.GetCreatedAt().Time
			}
			out = append(out, rel)
		}
		if resp.NextPage == 0 {
			break
		}
		opts.Page = resp.NextPage
	}
	return out, nil
}

// ReleaseTime is when owner/repo published the release tagged tag: zero
// when there is no such release (or it is a draft), so a minimum release
// age holds it.
func (d *Datasource) ReleaseTime(ctx context.Context, owner, repo, tag string) (time.Time, error) {
	r, resp, err := d.client.Repositories.GetReleaseByTag(ctx, owner, repo, tag)
	if resp != nil && resp.StatusCode == http.StatusNotFound {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, err
	}
	if r.GetDraft() {
		return time.Time{}, nil
	}
	if t := r.GetPublishedAt(); !t.IsZero() {
		return t.UTC(), nil
	}
	return r.GetCreatedAt().UTC(), nil
}
