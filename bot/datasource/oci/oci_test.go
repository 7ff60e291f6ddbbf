package oci_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"

	"hl.dev/hl/bot"
	"hl.dev/hl/bot/datasource/datasourcetest"
	"hl.dev/hl/bot/datasource/oci"
	"hl.dev/hl/internal/httpx"
)

// keychain hands out fixed credentials for one registry host.
type keychain struct{ host, user, pass string }

func (k keychain) Resolve(r authn.Resource) (authn.Authenticator, error) {
	if r.RegistryStr() != k.host {
		return authn.Anonymous, nil
	}
	return authn.FromConfig(authn.AuthConfig{Username: k.user, Password: k.pass}), nil
}

func versions(rels []bot.Release) []string {
	var vs []string
	for _, r := range rels {
		vs = append(vs, r.Version)
	}
	sort.Strings(vs)
	return vs
}

func TestImagesPaginatedWithBearerAuth(t *testing.T) {
	reg := datasourcetest.NewRegistry(t, "bot", "hunter2")
	var tags []string
	for i := 0; i < 130; i++ {
		tags = append(tags, fmt.Sprintf("1.%d.0", i))
	}
	tags = append(tags, "latest", "1.129.0-alpine")
	reg.PushImage(t, "library/app", tags...)

	l := &oci.Lister{Transport: httpx.Transport(httpx.Options{}), Keychain: keychain{reg.Host, "bot", "hunter2"}, PageSize: 25}
	rels, err := oci.Images{Lister: l}.Releases(context.Background(), bot.Dependency{Datasource: "docker", Package: reg.Host + "/library/app"})
	if err != nil {
		t.Fatal(err)
	}
	if len(rels) != len(tags) {
		t.Fatalf("%d tags, want %d", len(rels), len(tags))
	}
	if p := reg.TagPages.Load(); p < 6 {
		t.Errorf("%d tags/list pages, want pagination (132 tags / 25)", p)
	}
	if reg.TokenGets.Load() == 0 {
		t.Error("no bearer token was requested")
	}

	// Wrong credentials: an error, not a hang or an empty list.
	bad := &oci.Lister{Transport: httpx.Transport(httpx.Options{}), Keychain: keychain{reg.Host, "bot", "wrong"}}
	if _, err := (oci.Images{Lister: bad}).Releases(context.Background(), bot.Dependency{Package: reg.Host + "/library/app"}); err == nil {
		t.Error("bad credentials: want an error")
	}
}

func TestPaginationIsBounded(t *testing.T) {
	reg := datasourcetest.NewRegistry(t, "", "")
	var tags []string
	for i := 0; i < 30; i++ {
		tags = append(tags, fmt.Sprintf("0.0.%d", i))
	}
	reg.PushImage(t, "big/repo", tags...)
	l := &oci.Lister{Transport: httpx.Transport(httpx.Options{}), PageSize: 5, MaxPages: 3}
	_, err := l.Tags(context.Background(), reg.Host+"/big/repo")
	if err == nil || !strings.Contains(err.Error(), "more than 3 pages") {
		t.Errorf("err = %v", err)
	}
}

func TestChartsPlusUnderscore(t *testing.T) {
	reg := datasourcetest.NewRegistry(t, "bot", "pw")
	reg.PushChart(t, "charts", "podinfo", "6.5.0", "6.5.4", "6.6.0+build.7")
	l := &oci.Lister{Transport: httpx.Transport(httpx.Options{}), Keychain: keychain{reg.Host, "bot", "pw"}}
	dep := bot.Dependency{Datasource: "oci", RegistryURL: "oci://" + reg.Host + "/charts", Package: "podinfo"}
	rels, err := oci.Charts{Lister: l}.Releases(context.Background(), dep)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(versions(rels), " "); got != "6.5.0 6.5.4 6.6.0+build.7" {
		t.Errorf("versions = %s", got)
	}
	if oci.VersionToTag("1.0.0+k3s1") != "1.0.0_k3s1" || oci.TagToVersion("1.0.0_k3s1") != "1.0.0+k3s1" {
		t.Error("tag encoding")
	}
}

func TestDigestPin(t *testing.T) {
	reg := datasourcetest.NewRegistry(t, "", "")
	reg.PushImage(t, "x/app", "1.0.0", "1.1.0")
	l := &oci.Lister{Transport: httpx.Transport(httpx.Options{})}
	dep := bot.Dependency{Datasource: "docker", Package: reg.Host + "/x/app", Related: map[string]bot.Range{"digest": {Start: 1, End: 2}}}
	pins, err := oci.Images{Lister: l}.Pins(context.Background(), dep, "1.1.0")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(pins["digest"], "sha256:") {
		t.Errorf("pins = %v", pins)
	}
}

// TestReleasedAt reads build times from a real registry: the config's
// created field, the org.opencontainers.image.created label, the
// annotation helm push writes on a chart's manifest, and nothing (an
// epoch-stamped reproducible build) as unknown.
func TestReleasedAt(t *testing.T) {
	reg := datasourcetest.NewRegistry(t, "", "")
	when := time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC)
	reg.PushImageAt(t, "app/config", when, datasourcetest.StampConfig, "1.0.0")
	reg.PushImageAt(t, "app/label", when.Add(time.Hour), datasourcetest.StampLabel, "1.0.0")
	reg.PushImageAt(t, "app/none", when, datasourcetest.StampNone, "1.0.0")
	before := time.Now().Add(-time.Minute)
	reg.PushChart(t, "charts", "podinfo", "6.5.0+build.1")
	l := &oci.Lister{Insecure: []string{reg.Host}}
	for _, tt := range []struct {
		ds interface {
			ReleasedAt(context.Context, bot.Dependency, string) (time.Time, error)
		}
		dep  bot.Dependency
		want func(time.Time) bool
	}{
		{oci.Images{Lister: l}, bot.Dependency{Package: reg.Host + "/app/config"}, func(t time.Time) bool { return t.Equal(when) }},
		{oci.Images{Lister: l}, bot.Dependency{Package: reg.Host + "/app/label"}, func(t time.Time) bool { return t.Equal(when.Add(time.Hour)) }},
		{oci.Images{Lister: l}, bot.Dependency{Package: reg.Host + "/app/none"}, time.Time.IsZero},
		{oci.Charts{Lister: l}, bot.Dependency{Package: "podinfo", RegistryURL: "oci://" + reg.Host + "/charts"}, func(t time.Time) bool { return t.After(before) && t.Before(time.Now().Add(time.Minute)) }},
	} {
		v := "1.0.0"
		if tt.dep.RegistryURL != "" {
			v = "6.5.0+build.1"
		}
		got, err := tt.ds.ReleasedAt(context.Background(), tt.dep, v)
		if err != nil {
			t.Fatalf("%s: %v", tt.dep.Package, err)
		}
		if !tt.want(got) {
			t.Errorf("%s: released at %v", tt.dep.Package, got)
		}
	}
}

// TestSource reads an image's source repository from a real registry:
// the config's label (".git" and the trailing slash dropped), an index's
// annotation, and nothing for a label that is not a web URL or an image
// without one. What a digest held is kept: a second lister on the same
// Known directory asks only the HEAD, and a tag moved to a new image is
// read again.
func TestSource(t *testing.T) {
	reg := datasourcetest.NewRegistry(t, "", "")
	reg.PushImageSource(t, "app/label", "https://github.com/acme/label.git", false, "1.0.0")
	reg.PushImageSource(t, "app/index", "https://gitea.home.example/acme/index/", true, "1.0.0")
	reg.PushImageSource(t, "app/ssh", "git@github.com:acme/ssh.git", false, "1.0.0")
	reg.PushImageSource(t, "app/library", "https://github.com/docker-library/hello-world.git#6930d60e:amd64/hello-world", false, "1.0.0")
	reg.PushImage(t, "app/none", "1.0.0")
	dir := t.TempDir()
	want := map[string]string{
		"app/label":   "https://github.com/acme/label",
		"app/index":   "https://gitea.home.example/acme/index",
		"app/ssh":     "",
		"app/none":    "",
		"app/library": "https://github.com/docker-library/hello-world",
	}
	read := func(l *oci.Lister) {
		t.Helper()
		for repo, w := range want {
			got, err := l.Source(context.Background(), reg.Host+"/"+repo, "1.0.0")
			if err != nil {
				t.Fatalf("%s: %v", repo, err)
			}
			if got != w {
				t.Errorf("%s: source %q, want %q", repo, got, w)
			}
		}
	}
	read(&oci.Lister{Insecure: []string{reg.Host}, Known: &oci.Known{Dir: dir}})
	if fi, err := os.Stat(filepath.Join(dir, "known.json")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("the kept answers: %v %v, want a 0600 file", fi, err)
	}
	first := reg.DigestGets.Load()
	if first < 5 {
		t.Fatalf("%d GETs by digest for 5 images", first)
	}
	read(&oci.Lister{Insecure: []string{reg.Host}, Known: &oci.Known{Dir: dir}})
	if n := reg.DigestGets.Load() - first; n != 0 {
		t.Errorf("a second process on the same cache made %d GETs by digest, want 0 (HEADs only)", n)
	}
	reg.PushImageSource(t, "app/label", "https://github.com/acme/moved", false, "1.0.0")
	want = map[string]string{"app/label": "https://github.com/acme/moved"}
	read(&oci.Lister{Insecure: []string{reg.Host}, Known: &oci.Known{Dir: dir}})
}
