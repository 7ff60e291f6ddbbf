// Package gittags is the datasource of tags in any git repository served
// over smart HTTP (Gitea, Forgejo, GitHub, a plain git-http-backend): the
// ref advertisement git ls-remote reads. Argo CD git sources pinned to a
// tag and Gitea/Forgejo Actions pinned to an action's tag follow it.
//
// Tags carry no dates in a ref advertisement. Under a minimum release age
// a tag's time is its release's on GitHub (repositories on github.com) or
// on the homelab's forge (repositories there); a tag without a release,
// or on any other host, has none and the lookup holds it.
package gittags

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing/protocol/packp"

	"hl.dev/hl/bot"
	"hl.dev/hl/internal/httpx"
)

// Name of the datasource.
const Name = "git-tags"

// Datasource lists a repository's tags.
type Datasource struct {
	hc *http.Client
	// tokenHost gets token as HTTP basic password (the homelab's forge,
	// for private repositories); no other host ever sees it.
	tokenHost, token string
	// GitHub and Forge tell when a release was published, for
	// repositories on github.com and on the homelab's forge (nil: never).
	GitHub, Forge ReleaseTimer
}

// ReleaseTimer tells when a repository published a release.
type ReleaseTimer interface {
	ReleaseTime(ctx context.Context, owner, repo, tag string) (time.Time, error)
}

// New returns the datasource; token is sent only to forgeURL's host.
func New(hc *http.Client, forgeURL, token string) *Datasource {
	d := &Datasource{hc: hc, token: token}
	if u, err := url.Parse(forgeURL); err == nil {
		d.tokenHost = strings.ToLower(u.Host)
	}
	return d
}

// Name returns "git-tags".
func (*Datasource) Name() string { return Name }

// Releases lists the tags of the repository dep.Package (an http(s) clone
// URL; dep.RegistryURL, when set, replaces it after mirrors).
func (d *Datasource) Releases(ctx context.Context, dep bot.Dependency) ([]bot.Release, error) {
	repo := dep.Package
	if dep.RegistryURL != "" {
		repo = dep.RegistryURL
	}
	u, err := url.Parse(repo)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("%s is not an http(s) git URL", httpx.Redact(repo))
	}
	refsURL := strings.TrimSuffix(repo, "/") + "/info/refs?service=git-upload-pack"
	header := http.Header{}
	if d.token != "" && strings.EqualFold(u.Host, d.tokenHost) {
		header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte("hl-bot:"+d.token)))
	}
	body, _, err := httpx.Get(ctx, d.hc, refsURL, header)
	if err != nil {
		return nil, err
	}
	return Parse(body, strings.TrimSuffix(strings.TrimSuffix(repo, "/"), ".git"))
}

// ReleasedAt is when the release of tag version was published, asked of
// the forge that hosts dep's repository (zero when neither is known).
func (d *Datasource) ReleasedAt(ctx context.Context, dep bot.Dependency, version string) (time.Time, error) {
	repo := dep.Package
	if dep.RegistryURL != "" {
		repo = dep.RegistryURL
	}
	u, err := url.Parse(repo)
	if err != nil {
		return time.Time{}, nil
	}
	parts := strings.Split(strings.Trim(strings.TrimSuffix(strings.TrimSuffix(u.Path, "/"), ".git"), "/"), "/")
	if len(parts) < 2 {
		return time.Time{}, nil
	}
	owner, name := parts[len(parts)-2], parts[len(parts)-1]
	var t ReleaseTimer
	switch host := strings.ToLower(u.Host); {
	case host == "github.com" && len(parts) == 2:
		t = d.GitHub
	case host == d.tokenHost && host != "":
		t = d.Forge
	}
	if t == nil {
		return time.Time{}, nil
	}
	return t.ReleaseTime(ctx, owner, name, version)
}

// Parse reads a smart-HTTP ref advertisement and returns one release per
// tag, its source the repository's web address.
func Parse(body []byte, source string) ([]bot.Release, error) {
	ar := packp.NewAdvRefs()
	if err := ar.Decode(bytes.NewReader(body)); err != nil {
		return nil, fmt.Errorf("malformed ref advertisement: %w", err)
	}
	var out []bot.Release
	for ref := range ar.References {
		tag, ok := strings.CutPrefix(ref, "refs/tags/")
		if !ok || strings.HasSuffix(tag, "^{}") {
			continue
		}
		out = append(out, bot.Release{Version: tag, SourceURL: source})
	}
	slices.SortFunc(out, func(a, b bot.Release) int { return strings.Compare(a.Version, b.Version) })
	return out, nil
}
