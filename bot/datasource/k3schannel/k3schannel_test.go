package k3schannel_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"hl.dev/hl/bot"
	"hl.dev/hl/bot/datasource/datasourcetest"
	"hl.dev/hl/bot/datasource/k3schannel"
	"hl.dev/hl/bot/lookup"
	"hl.dev/hl/internal/httpx"
)

func TestReleases(t *testing.T) {
	url, hits := datasourcetest.NewK3sChannels(t)
	ds := k3schannel.New(httpx.Client(httpx.Options{}), url)
	rels, err := ds.Releases(context.Background(), bot.Dependency{Package: "k3s"})
	if err != nil {
		t.Fatal(err)
	}
	var vs []string
	for _, r := range rels {
		vs = append(vs, r.Version)
		if !strings.Contains(r.ReleaseNotesURL, "/releases/tag/v1.") {
			t.Errorf("notes %s", r.ReleaseNotesURL)
		}
	}
	sort.Strings(vs)
	want := "v1.29.6+k3s1 v1.30.6+k3s1 v1.31.6+k3s1 v1.32.6+k3s1 v1.33.6+k3s1 v1.34.1+k3s1 v1.35.0-rc1+k3s1"
	if strings.Join(vs, " ") != want {
		t.Errorf("versions = %v\nwant %s", vs, want)
	}
	if hits.Load() != 1 {
		t.Errorf("%d requests", hits.Load())
	}
}

func TestMalformed(t *testing.T) {
	for name, body := range map[string]string{"html": "<html>oops</html>", "empty": `{"data":[]}`} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(body)) }))
		defer srv.Close()
		if _, err := k3schannel.New(httpx.Client(httpx.Options{}), srv.URL).Releases(context.Background(), bot.Dependency{}); err == nil {
			t.Errorf("%s: want an error", name)
		}
	}
}

// Under a minimum release age, k3s updates are judged by when k3s-io/k3s
// published the GitHub release of the version (the channel list has no
// dates): long after v1.31.6+k3s1 it is proposed, one day after it the
// update is held until three days have passed and the newest aged version
// of the current minor is proposed instead. Against the channel fixture
// and the recorded GitHub API (release by tag).
func TestMinimumReleaseAgeFromGitHub(t *testing.T) {
	chURL, _ := datasourcetest.NewK3sChannels(t)
	gh := datasourcetest.NewGitHub(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "plans.yaml"), []byte("apiVersion: upgrade.cattle.io/v1\nkind: Plan\nmetadata: {name: server}\nspec:\n  upgrade: {image: rancher/k3s-upgrade}\n  version: v1.30.4+k3s1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	released := time.Date(2024, 4, 25, 20, 0, 0, 0, time.UTC) // v1.31.6+k3s1 in the recording
	for _, tt := range []struct {
		name     string
		now      time.Time
		want     string
		wantHeld string
	}{
		{"long after", time.Date(2026, 9, 15, 0, 0, 0, 0, time.UTC), "v1.31.6+k3s1", ""},
		{"a day after", released.Add(24 * time.Hour), "v1.30.6+k3s1", "update to v1.31.6+k3s1 held until 2024-04-28 20:00 UTC"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := gh.Tags.Load()
			cfg := lookup.Config{MinimumReleaseAge: 72 * time.Hour, Now: func() time.Time { return tt.now },
				K3sChannelURL: chURL, GitHubAPIURL: gh.URL, GitHubToken: "gh-token"}
			ups, warns, err := lookup.FindUpdates(context.Background(), dir, cfg)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, u := range ups {
				got = append(got, u.NewValue)
			}
			if strings.Join(got, " ") != tt.want {
				t.Errorf("updates %v, want %s (warnings %v)", got, tt.want, warns)
			}
			held := ""
			for _, w := range warns {
				if w.Held != "" {
					held = w.Message
				}
			}
			if !strings.HasPrefix(held, tt.wantHeld) || (tt.wantHeld == "") != (held == "") {
				t.Errorf("held: %q, want %q", held, tt.wantHeld)
			}
			if gh.Tags.Load() == before {
				t.Error("no release was asked for by tag")
			}
		})
	}
}
