// Package k3schannel is the datasource of k3s versions from the k3s
// release channel server (the JSON system-upgrade-controller Plans with
// `channel:` follow): every channel's latest version is a release, so the
// bot proposes only versions the k3s team has promoted to a channel. The
// channel list carries no dates; a version's release time, for the
// minimum release age, is when k3s-io/k3s published its GitHub release.
package k3schannel

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"hl.dev/hl/bot"
	"hl.dev/hl/internal/httpx"
)

// Name of the datasource.
const Name = "k3s-channel"

// DefaultURL is the public channel server.
const DefaultURL = "https://update.k3s.io/v1-release/channels"

// Datasource reads the channel list.
type Datasource struct {
	hc  *http.Client
	url string
	// Times tells when a k3s version was released (nil: never known, so
	// a minimum release age holds every k3s update).
	Times ReleaseTimer
}

// ReleaseTimer tells when a GitHub repository published a release.
type ReleaseTimer interface {
	ReleaseTime(ctx context.Context, owner, repo, tag string) (time.Time, error)
}

// New returns the datasource; url defaults to DefaultURL.
func New(hc *http.Client, url string) *Datasource {
	if url == "" {
		url = DefaultURL
	}
	return &Datasource{hc: hc, url: url}
}

// Name returns "k3s-channel".
func (*Datasource) Name() string { return Name }

// Channel is one entry of the channel list.
type Channel struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	Latest string `json:"latest"`
}

// Channels fetches the channel list.
func (d *Datasource) Channels(ctx context.Context) ([]Channel, error) {
	body, _, err := httpx.Get(ctx, d.hc, d.url, http.Header{"Accept": {"application/json"}})
	if err != nil {
		return nil, err
	}
	var doc struct {
		Data []Channel `json:"data"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("%s: malformed channel list: %w", httpx.Redact(d.url), err)
	}
	if len(doc.Data) == 0 {
		return nil, fmt.Errorf("%s: no channels", httpx.Redact(d.url))
	}
	return doc.Data, nil
}

// ReleasedAt is when k3s-io/k3s published version's GitHub release
// (zero when Times is nil or there is no such release).
func (d *Datasource) ReleasedAt(ctx context.Context, _ bot.Dependency, version string) (time.Time, error) {
	if d.Times == nil {
		return time.Time{}, nil
	}
	return d.Times.ReleaseTime(ctx, "k3s-io", "k3s", version)
}

// Releases returns each channel's latest version once.
func (d *Datasource) Releases(ctx context.Context, _ bot.Dependency) ([]bot.Release, error) {
	chs, err := d.Channels(ctx)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var out []bot.Release
	for _, c := range chs {
		if c.Latest == "" || seen[c.Latest] {
			continue
		}
		seen[c.Latest] = true
		out = append(out, bot.Release{
			Version:         c.Latest,
			SourceURL:       "https://github.com/k3s-io/k3s",
			ReleaseNotesURL: "https://github.com/k3s-io/k3s/releases/tag/" + url.PathEscape(c.Latest),
		})
	}
	return out, nil
}
