package lookup_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"

	"hl.dev/hl/bot"
	"hl.dev/hl/bot/datasource"
	"hl.dev/hl/bot/datasource/datasourcetest"
	"hl.dev/hl/bot/lookup"
	"hl.dev/hl/internal/config"
)

type keychain struct{ host, user, pass string }

func (k keychain) Resolve(r authn.Resource) (authn.Authenticator, error) {
	if r.RegistryStr() != k.host {
		return authn.Anonymous, nil
	}
	return authn.FromConfig(authn.AuthConfig{Username: k.user, Password: k.pass}), nil
}

func write(t *testing.T, dir, p, s string) {
	t.Helper()
	p = filepath.Join(dir, filepath.FromSlash(p))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

const (
	kernel = "netboot/debian-installer/amd64/linux"
	initrd = "netboot/debian-installer/amd64/initrd.gz"
)

// TestFindUpdatesAgainstLocalServers runs the whole lookup on a repo whose
// files point at real local servers of every kind, through mirrors, with
// a broken Helm repository among them.
func TestFindUpdatesAgainstLocalServers(t *testing.T) {
	helmRepo := datasourcetest.NewHelmRepo(t, map[string][]string{
		"argo-cd": {"5.46.7", "5.46.8", "5.51.0", "6.0.0", "6.1.0-rc.1"},
		"loki":    {"5.41.0", "5.41.4", "5.43.0"},
	})
	broken := datasourcetest.NewHelmRepo(t, map[string][]string{"x": {"1.0.0"}})
	broken.SetIndex([]byte("apiVersion: v1\nentries:\n  x:\n  - version: \"1.0.1\n"))
	reg := datasourcetest.NewRegistry(t, "bot", "registry-pass-123")
	reg.PushImage(t, "library/app", "1.25.3-alpine", "1.25.4-alpine", "1.26.0-alpine", "2.0.0-alpine", "1.27.0", "latest", "sha-abc1234", "2.1.0-rc.1-alpine")
	reg.PushChart(t, "charts", "podinfo", "6.5.0", "6.5.4", "6.6.0+build.7")
	gh := datasourcetest.NewGitHub(t)
	k3sURL, _ := datasourcetest.NewK3sChannels(t)
	deb := datasourcetest.NewDebian(t, "bookworm", "amd64", map[string]datasourcetest.DebianBuild{
		"20230607+deb12u4":  {Date: time.Date(2024, 2, 1, 0, 0, 0, 0, time.UTC), Files: map[string]string{kernel: strings.Repeat("1", 64), initrd: strings.Repeat("2", 64)}},
		"20230607+deb12u15": {Date: time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC), Files: map[string]string{kernel: strings.Repeat("c", 64), initrd: strings.Repeat("d", 64)}},
	})

	dir := t.TempDir()
	write(t, dir, "system/argocd/Chart.yaml", "apiVersion: v2\nname: argocd\nversion: 0.0.0\ndependencies:\n  - name: argo-cd\n    version: 5.46.7\n    repository: https://charts.upstream.example/argo\n")
	write(t, dir, "system/logging/Chart.yaml", "apiVersion: v2\nname: logging\nversion: 0.0.0\ndependencies:\n  - name: loki\n    version: ~5.41.0\n    repository: "+helmRepo.URL+"\n  - name: x\n    version: 1.0.0\n    repository: "+broken.URL+"\n")
	write(t, dir, "apps/app/values.yaml", "app:\n  image:\n    repository: upstream.example/library/app\n    tag: 1.25.3-alpine\n")
	write(t, dir, "apps/podinfo/Chart.yaml", "apiVersion: v2\nname: p\nversion: 0.0.0\ndependencies:\n  - name: podinfo\n    version: 6.5.0\n    repository: oci://"+reg.Host+"/charts\n")
	write(t, dir, "system/system-upgrade/plans.yaml", "apiVersion: upgrade.cattle.io/v1\nkind: Plan\nmetadata: {name: server}\nspec:\n  upgrade: {image: rancher/k3s-upgrade}\n  version: v1.30.4+k3s1\n")
	write(t, dir, "system/system-upgrade/kustomization.yaml", "resources:\n  - https://github.com/rancher/system-upgrade-controller/releases/download/v0.13.4/crd.yaml\n")
	osYAML := fmt.Sprintf("repo: %[1]s/archive/debian/20240301T000000Z\nkernel:\n  url: %[2]s/20230607+deb12u4/images/%[3]s\n  sha256: %[5]s\ninitrd:\n  url: %[2]s/20230607+deb12u4/images/%[4]s\n  sha256: %[6]s\n",
		deb.URL, deb.SnapshotBase("20240301T000000Z"), kernel, initrd, strings.Repeat("1", 64), strings.Repeat("2", 64))
	write(t, dir, "metal/os.yaml", osYAML)
	write(t, dir, "metal/post-install.sh", "#!/bin/sh\n# k3s v1.30.4+k3s1\nINSTALL_K3S_VERSION=v1.30.4+k3s1 sh install.sh\n")

	var logs bytes.Buffer
	const ghToken = "ghp_0123456789abcdefSECRET"
	cfg := lookup.LookupConfig{
		Mirrors: config.Mirrors{
			Charts:     []config.Mirror{{From: "https://charts.upstream.example/argo", To: helmRepo.URL}},
			Registries: []config.Mirror{{From: "upstream.example", To: reg.Host}},
		},
		GitHubAPIURL: gh.URL, GitHubToken: ghToken,
		K3sChannelURL: k3sURL,
		Keychain:      keychain{reg.Host, "bot", "registry-pass-123"},
		Backoff:       time.Millisecond,
		Now:           func() time.Time { return time.Date(2026, 9, 15, 12, 0, 0, 0, time.UTC) },
		Logger:        slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Concurrency:   4,
	}
	updates, warnings, err := lookup.FindUpdates(context.Background(), dir, cfg)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bot.Update{}
	var lines []string
	for _, u := range updates {
		key := u.Dependency.File + " " + u.Dependency.Package + " " + u.Type
		got[key] = u
		lines = append(lines, fmt.Sprintf("%s %s → %s (%s)", u.Dependency.File, u.Dependency.Current, u.NewValue, u.Type))
	}
	sort.Strings(lines)
	want := []string{
		"apps/app/values.yaml 1.25.3-alpine → 1.26.0-alpine (minor)",
		"apps/app/values.yaml 1.25.3-alpine → 2.0.0-alpine (major)",
		"apps/podinfo/Chart.yaml 6.5.0 → 6.6.0+build.7 (minor)",
		"metal/os.yaml 20230607+deb12u4 → 20230607+deb12u15 (patch)",
		"metal/post-install.sh v1.30.4+k3s1 → v1.31.6+k3s1 (minor)",
		"system/argocd/Chart.yaml 5.46.7 → 5.51.0 (minor)",
		"system/argocd/Chart.yaml 5.46.7 → 6.0.0 (major)",
		"system/logging/Chart.yaml ~5.41.0 → ~5.43.0 (minor)",
		"system/system-upgrade/kustomization.yaml v0.13.4 → v0.16.0 (minor)",
		"system/system-upgrade/plans.yaml v1.30.4+k3s1 → v1.31.6+k3s1 (minor)",
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("updates:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
	// The major update comes first for a dependency, then the one within
	// the current major.
	if u := updates[0]; u.Type != bot.UpdateMajor && u.Dependency.File == "apps/app/values.yaml" {
		t.Errorf("first update of a dependency should be the newest: %+v", u)
	}

	osu := got["metal/os.yaml debian-installer/bookworm/amd64 patch"]
	stamp := "20260915T000000Z"
	for role, v := range osu.Related {
		var wantV string
		switch {
		case role == "sha256:"+kernel:
			wantV = strings.Repeat("c", 64)
		case role == "sha256:"+initrd:
			wantV = strings.Repeat("d", 64)
		case strings.HasPrefix(role, "snapshot@"):
			wantV = stamp
		case strings.HasPrefix(role, "version@"):
			wantV = "20230607+deb12u15"
		}
		if v != wantV {
			t.Errorf("os.yaml %s = %q, want %q", role, v, wantV)
		}
	}
	if len(osu.Related) != 6 || osu.New.Checksum == "" {
		t.Errorf("os.yaml related = %v", osu.Related)
	}
	if applied := apply(osYAML, osu); strings.Contains(applied, "deb12u4") || strings.Contains(applied, "20240301T000000Z") || strings.Contains(applied, strings.Repeat("1", 64)) {
		t.Errorf("applying the OS update left old pins:\n%s", applied)
	}
	k3sScript := got["metal/post-install.sh k3s minor"]
	if len(k3sScript.Related) != 1 {
		t.Errorf("script related = %v", k3sScript.Related)
	}

	if len(warnings) != 1 || !strings.Contains(warnings[0].Message, "malformed index.yaml") || warnings[0].Package != "x" {
		t.Errorf("warnings = %v", warnings)
	}
	all := logs.String() + fmt.Sprint(warnings)
	for _, secret := range []string{ghToken, "registry-pass-123", reg.Token()} {
		if strings.Contains(all, secret) {
			t.Errorf("secret %q in logs or warnings", secret)
		}
	}
}

// TestRulesAndAliases: spec.bot.rules pick a regex versioning that moves
// linuxserver-style tags the docker scheme leaves stuck, and a Chart.yaml
// repository named by alias is looked up at the URL
// spec.bot.helmRepositories gives it (an unknown alias is a warning that
// names the setting to add), against a real Helm repository and registry.
func TestRulesAndAliases(t *testing.T) {
	helmRepo := datasourcetest.NewHelmRepo(t, map[string][]string{"redis": {"18.6.1", "18.7.0", "19.0.0"}})
	reg := datasourcetest.NewRegistry(t, "", "")
	reg.PushImage(t, "linuxserver/jellyfin", "10.8.13-ls219", "10.8.13-ls220", "10.9.0-ls1", "latest", "version-10.9.0")
	dir := t.TempDir()
	write(t, dir, "apps/media/Chart.yaml", "apiVersion: v2\nname: media\nversion: 0.0.0\ndependencies:\n  - name: redis\n    version: 18.6.1\n    repository: \"@bitnami\"\n  - name: redis\n    alias: cache\n    version: 18.6.1\n    repository: alias:other\n")
	write(t, dir, "apps/media/values.yaml", "jellyfin:\n  image:\n    repository: "+reg.Host+"/linuxserver/jellyfin\n    tag: 10.8.13-ls219\n")
	run := func(rules []config.Rule) []string {
		t.Helper()
		cfg := lookup.ConfigFromHomelab(&config.Homelab{Spec: config.Spec{Bot: config.Bot{
			Rules:            rules,
			HelmRepositories: map[string]string{"bitnami": helmRepo.URL + "/"},
		}}}, lookup.Config{})
		ups, ws, err := lookup.FindUpdates(context.Background(), dir, cfg)
		if err != nil {
			t.Fatal(err)
		}
		var lines []string
		for _, u := range ups {
			lines = append(lines, fmt.Sprintf("%s %s %s → %s (%s)", u.Dependency.File, u.Dependency.Package, u.Dependency.Current, u.NewValue, u.Type))
		}
		for _, w := range ws {
			lines = append(lines, "warning: "+w.String())
		}
		sort.Strings(lines)
		return lines
	}
	const ls = `regex:^(?<major>\d+)\.(?<minor>\d+)\.(?<patch>\d+)-ls(?<build>\d+)$`
	for _, tt := range []struct {
		name  string
		rules []config.Rule
		want  []string
	}{
		{"no rule: the docker scheme leaves the tag stuck", nil, []string{
			"apps/media/Chart.yaml redis 18.6.1 → 18.7.0 (minor)",
			"apps/media/Chart.yaml redis 18.6.1 → 19.0.0 (major)",
			`warning: apps/media/Chart.yaml: redis: skipped: chart repository "alias:other" is an alias: add its URL as spec.bot.helmRepositories.other`,
		}},
		{"regex rule", []config.Rule{{Packages: []string{"*/linuxserver/*"}, Versioning: ls}}, []string{
			"apps/media/Chart.yaml redis 18.6.1 → 18.7.0 (minor)",
			"apps/media/Chart.yaml redis 18.6.1 → 19.0.0 (major)",
			"apps/media/values.yaml " + reg.Host + "/linuxserver/jellyfin 10.8.13-ls219 → 10.9.0-ls1 (minor)",
			`warning: apps/media/Chart.yaml: redis: skipped: chart repository "alias:other" is an alias: add its URL as spec.bot.helmRepositories.other`,
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := run(tt.rules); strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

// apply writes an update's new values into content (what the PR side does).
func apply(content string, u bot.Update) string {
	type edit struct {
		r bot.Range
		s string
	}
	edits := []edit{{u.Dependency.Range, u.NewValue}}
	for role, r := range u.Dependency.Related {
		edits = append(edits, edit{r, u.Related[role]})
	}
	sort.Slice(edits, func(i, j int) bool { return edits[i].r.Start > edits[j].r.Start })
	for _, e := range edits {
		content = content[:e.r.Start] + e.s + content[e.r.End:]
	}
	return content
}

func TestChoosePolicy(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	rels := []bot.Release{
		{Version: "1.2.4", ReleasedAt: now.Add(-30 * day)},
		{Version: "1.3.0", ReleasedAt: now.Add(-20 * day)},
		{Version: "1.4.0", ReleasedAt: now.Add(-1 * day)}, // too fresh with a 3d minimum age
		{Version: "2.0.0", ReleasedAt: now.Add(-10 * day)},
		{Version: "2.1.0-rc.1", ReleasedAt: now.Add(-5 * day)},
		{Version: "3.0.0", ReleasedAt: now.Add(-5 * day), Prerelease: true}, // flagged by the source
		{Version: "latest"},
	}
	dep := bot.Dependency{Datasource: "helm", Package: "argo-cd", Current: "1.2.3"}
	run := func(cfg lookup.Config, d bot.Dependency) string {
		t.Helper()
		cfg.Now = func() time.Time { return now }
		ups, err := lookup.Choose(d, rels, lookup.NewPolicy(cfg))
		if err != nil {
			t.Fatal(err)
		}
		var s []string
		for _, u := range ups {
			s = append(s, u.NewValue+"/"+u.Type)
		}
		return strings.Join(s, " ")
	}
	for _, tt := range []struct {
		name string
		cfg  lookup.Config
		dep  bot.Dependency
		want string
	}{
		{"newest and newest in major", lookup.Config{}, dep, "2.0.0/major 1.4.0/minor"},
		{"minimum release age", lookup.Config{MinimumReleaseAge: 3 * day}, dep, "2.0.0/major 1.3.0/minor"},
		{"separate minor and patch", lookup.Config{SeparateMinorPatch: true}, dep, "2.0.0/major 1.4.0/minor 1.2.4/patch"},
		{"separate, no minor", lookup.Config{SeparateMinorPatch: true, Ignore: []config.Ignore{{Package: "*", UpdateTypes: []string{"minor", "major"}}}}, dep, "1.2.4/patch"},
		{"ignore majors", lookup.Config{Ignore: []config.Ignore{{Package: "argo-*", UpdateTypes: []string{"major"}}}}, dep, "1.4.0/minor"},
		{"ignore versions", lookup.Config{Ignore: []config.Ignore{{Package: "*", Versions: ">=1.4.0"}}}, dep, "1.3.0/minor"},
		{"ignore package", lookup.Config{Ignore: []config.Ignore{{Package: "argo-cd"}}}, dep, ""},
		{"prerelease current sees prereleases", lookup.Config{}, bot.Dependency{Datasource: "helm", Package: "x", Current: "2.1.0-rc.0"}, "3.0.0/major 2.1.0-rc.1/patch"},
		{"already newest", lookup.Config{}, bot.Dependency{Datasource: "helm", Package: "x", Current: "2.0.0"}, ""},
		{"range still satisfied", lookup.Config{}, bot.Dependency{Datasource: "helm", Package: "x", Current: ">=1.0.0"}, ""},
		{"caret range moves", lookup.Config{}, bot.Dependency{Datasource: "helm", Package: "x", Current: "^1.2.3"}, "^2.0.0/major"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := run(tt.cfg, tt.dep); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// TestMinimumReleaseAgeFromRegistry: image tags carry no dates, so the
// lookup asks a real registry for the build time of the candidates it
// must check. A version whose time is unknown is held, not waved
// through, and the warning says so; a fresh one is held until its date.
func TestMinimumReleaseAgeFromRegistry(t *testing.T) {
	now := time.Date(2026, 9, 15, 12, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	reg := datasourcetest.NewRegistry(t, "", "")
	reg.PushImageAt(t, "app/web", now.Add(-40*day), datasourcetest.StampConfig, "1.0.0")
	reg.PushImageAt(t, "app/web", now.Add(-10*day), datasourcetest.StampConfig, "1.0.1")
	reg.PushImageAt(t, "app/web", now.Add(-1*day), datasourcetest.StampLabel, "1.1.0")
	reg.PushImageAt(t, "app/web", time.Time{}, datasourcetest.StampNone, "2.0.0")
	reg.PushImageAt(t, "app/api", now.Add(-1*day), datasourcetest.StampLabel, "3.1.0")
	reg.PushImageAt(t, "app/api", now.Add(-20*day), datasourcetest.StampLabel, "3.0.0")
	dir := t.TempDir()
	write(t, dir, "values.yaml", "web:\n  image: "+reg.Host+"/app/web:1.0.0\napi:\n  image: "+reg.Host+"/app/api:3.0.0\n")
	for _, tt := range []struct {
		name   string
		minAge time.Duration
		want   []string
	}{
		{"no minimum age: no registry dates needed", 0, []string{
			reg.Host + "/app/api 3.0.0 → 3.1.0 (minor)",
			reg.Host + "/app/web 1.0.0 → 1.1.0 (minor)",
			reg.Host + "/app/web 1.0.0 → 2.0.0 (major)",
		}},
		{"3 days", 3 * day, []string{
			reg.Host + "/app/web 1.0.0 → 1.0.1 (patch)",
			"held " + reg.Host + "/app/api 3.1.0: update to 3.1.0 held until 2026-09-17 12:00 UTC (minimum release age 3d)",
			"held " + reg.Host + "/app/web 2.0.0: update to 2.0.0 held: its release time is unknown, so the minimum release age (3d) cannot be shown to have passed",
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := lookup.Config{MinimumReleaseAge: tt.minAge, Now: func() time.Time { return now }, InsecureRegistries: []string{reg.Host}}
			ups, ws, err := lookup.FindUpdates(context.Background(), dir, cfg)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, u := range ups {
				got = append(got, fmt.Sprintf("%s %s → %s (%s)", u.Dependency.Package, u.Dependency.Current, u.NewValue, u.Type))
			}
			for _, w := range ws {
				got = append(got, fmt.Sprintf("held %s %s: %s", w.Package, w.Held, w.Message))
			}
			sort.Strings(got)
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestConfigFromHomelab(t *testing.T) {
	h := &config.Homelab{Spec: config.Spec{
		Mirrors: config.Mirrors{Registries: []config.Mirror{{From: "docker.io", To: "r.example/hub"}}},
		Bot:     config.Bot{MinimumReleaseAge: "3d", Ignore: []config.Ignore{{Package: "x"}}},
		Forge:   config.Forge{Type: config.ForgeGitea, URL: "https://git.example.org"},
	}}
	cfg := lookup.ConfigFromHomelab(h, lookup.Config{Concurrency: 2})
	if cfg.MinimumReleaseAge != 72*time.Hour || len(cfg.Ignore) != 1 || cfg.GiteaURL != "https://git.example.org" || cfg.Concurrency != 2 || len(cfg.Mirrors.Registries) != 1 {
		t.Errorf("cfg = %+v", cfg)
	}
}

// TestCacheAcrossRuns: a second FindUpdates with the same cache sends
// conditional requests and gets the same answer.
func TestCacheAcrossRuns(t *testing.T) {
	helmRepo := datasourcetest.NewHelmRepo(t, map[string][]string{"a": {"1.0.0", "1.1.0"}, "b": {"2.0.0", "2.0.1"}})
	gh := datasourcetest.NewGitHub(t)
	dir := t.TempDir()
	write(t, dir, "Chart.yaml", "apiVersion: v2\nname: x\nversion: 0.0.0\ndependencies:\n  - {name: a, version: 1.0.0, repository: "+helmRepo.URL+"}\n  - {name: b, version: 2.0.0, repository: "+helmRepo.URL+"}\n")
	write(t, dir, "kustomization.yaml", "resources:\n  - https://github.com/rancher/system-upgrade-controller/releases/download/v0.15.0/crd.yaml\n")
	cfg := lookup.Config{Cache: datasource.NewCache(), GitHubAPIURL: gh.URL}
	var counts []int
	for run := 0; run < 2; run++ {
		ups, ws, err := lookup.FindUpdates(context.Background(), dir, cfg)
		if err != nil || len(ws) != 0 {
			t.Fatal(err, ws)
		}
		counts = append(counts, len(ups))
	}
	if counts[0] != 3 || counts[1] != 3 {
		t.Errorf("updates per run = %v", counts)
	}
	if helmRepo.IndexGets.Load() != 2 || helmRepo.NotModified.Load() != 1 || gh.NotModified.Load() != 1 || cfg.Cache.Revalidated() != 2 {
		t.Errorf("index gets=%d helm 304=%d github 304=%d revalidated=%d", helmRepo.IndexGets.Load(), helmRepo.NotModified.Load(), gh.NotModified.Load(), cfg.Cache.Revalidated())
	}
}

// TestCacheDirAcrossProcesses: with the cache kept in a directory, each
// run starts from a fresh process's memory (a new Cache on the same
// folder, as a CronJob or a restarted bot), and the idle second run
// downloads no index in full: every request is conditional and answered
// 304, counted by the real Helm repository and the GitHub fixture.
func TestCacheDirAcrossProcesses(t *testing.T) {
	helmRepo := datasourcetest.NewHelmRepo(t, map[string][]string{"a": {"1.0.0", "1.1.0"}, "b": {"2.0.0", "2.0.1"}})
	other := datasourcetest.NewHelmRepo(t, map[string][]string{"c": {"3.0.0", "3.1.0"}})
	gh := datasourcetest.NewGitHub(t)
	dir := t.TempDir()
	write(t, dir, "Chart.yaml", "apiVersion: v2\nname: x\nversion: 0.0.0\ndependencies:\n  - {name: a, version: 1.0.0, repository: "+helmRepo.URL+"}\n  - {name: b, version: 2.0.0, repository: "+helmRepo.URL+"}\n  - {name: c, version: 3.0.0, repository: "+other.URL+"}\n")
	write(t, dir, "kustomization.yaml", "resources:\n  - https://github.com/rancher/system-upgrade-controller/releases/download/v0.15.0/crd.yaml\n")
	cacheDir := filepath.Join(t.TempDir(), "cache")
	full := func() int32 {
		return helmRepo.IndexGets.Load() - helmRepo.NotModified.Load() + other.IndexGets.Load() - other.NotModified.Load()
	}
	var ups []int
	for run := 0; run < 2; run++ {
		cfg := lookup.Config{Cache: datasource.NewCacheDir(cacheDir), GitHubAPIURL: gh.URL}
		u, ws, err := lookup.FindUpdates(context.Background(), dir, cfg)
		if err != nil || len(ws) != 0 {
			t.Fatal(err, ws)
		}
		ups = append(ups, len(u))
		if run == 0 && full() != 2 {
			t.Fatalf("first run: %d full index downloads, want 2", full())
		}
	}
	if ups[0] != 4 || ups[1] != 4 {
		t.Errorf("updates per run = %v", ups)
	}
	if full() != 2 || helmRepo.NotModified.Load() != 1 || other.NotModified.Load() != 1 || gh.NotModified.Load() != 1 {
		t.Errorf("second run: full index downloads %d (want still 2), helm 304s %d+%d, github 304s %d",
			full(), helmRepo.NotModified.Load(), other.NotModified.Load(), gh.NotModified.Load())
	}
	// Bodies of private answers may be cached: only the bot may read them.
	err := filepath.WalkDir(cacheDir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, _ := d.Info()
		if want := os.FileMode(0o600); d.IsDir() {
			want = 0o700 | os.ModeDir
			if info.Mode() != want {
				t.Errorf("%s: mode %v", p, info.Mode())
			}
		} else if info.Mode() != want {
			t.Errorf("%s: mode %v", p, info.Mode())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
