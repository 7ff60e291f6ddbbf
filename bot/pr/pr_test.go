package pr

import (
	"strings"
	"testing"

	"hl.dev/hl/bot"
	"hl.dev/hl/internal/config"
)

// dep finds value in content (after anchor) and returns a dependency
// whose range covers it, as an extractor would.
func dep(t *testing.T, file, content, anchor, value, pkg string) bot.Dependency {
	t.Helper()
	i := strings.Index(content, anchor)
	j := strings.Index(content[i:], value)
	if i < 0 || j < 0 {
		t.Fatalf("%q not after %q", value, anchor)
	}
	s := i + j
	return bot.Dependency{File: file, Package: pkg, Current: value, Range: bot.Range{Start: s, End: s + len(value)}}
}

const chartYAML = `apiVersion: v2
name: gitea
version: 1.0.0
dependencies:
  - name: gitea   # the forge
    version: 12.4.0
    repository: https://dl.gitea.com/charts
`

func TestApplyChangesOnlyTheVersionBytes(t *testing.T) {
	d := dep(t, "platform/gitea/Chart.yaml", chartYAML, "- name: gitea", "12.4.0", "gitea")
	edits, err := EditsFor([]bot.Update{{Dependency: d, NewValue: "12.5.1", Type: bot.UpdateMinor}}, d.File)
	if err != nil {
		t.Fatal(err)
	}
	out, err := Apply([]byte(chartYAML), edits)
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Replace(chartYAML, "version: 12.4.0", "version: 12.5.1", 1)
	if string(out) != want {
		t.Fatalf("got\n%s", out)
	}
	// A file that changed since the scan is refused, not corrupted.
	stale := strings.Replace(chartYAML, "12.4.0", "12.4.1", 1)
	if _, err := Apply([]byte(stale), edits); err == nil || !strings.Contains(err.Error(), "changed since the scan") {
		t.Fatalf("stale file: %v", err)
	}
	// Overlapping different edits are an error; identical ones merge.
	if _, err := Apply([]byte(chartYAML), append(edits, Edit{Range: edits[0].Range, New: "9.9.9"})); err == nil {
		t.Error("overlapping edits accepted")
	}
	if _, err := Apply([]byte(chartYAML), append(edits, edits[0])); err != nil {
		t.Errorf("duplicate identical edit: %v", err)
	}
}

func TestRelatedRangesChangeTogether(t *testing.T) {
	osYAML := "url: http://x/installer-amd64/20230607+deb12u15/linux\nsha256: aaaa\n"
	d := dep(t, "metal/os.yaml", osYAML, "url:", "20230607+deb12u15", "debian")
	s := strings.Index(osYAML, "aaaa")
	d.Related = map[string]bot.Range{"sha256:linux": {Start: s, End: s + 4}}
	u := bot.Update{Dependency: d, NewValue: "20230607+deb12u16", Related: map[string]string{"sha256:linux": "bbbb"}}
	edits, err := EditsFor([]bot.Update{u}, d.File)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := Apply([]byte(osYAML), edits)
	if string(out) != "url: http://x/installer-amd64/20230607+deb12u16/linux\nsha256: bbbb\n" {
		t.Fatalf("got %q", out)
	}
	u.Related = nil
	if _, err := EditsFor([]bot.Update{u}, d.File); err == nil {
		t.Error("missing related value accepted")
	}
}

func TestPlanBranchesGroupsAndAutomerge(t *testing.T) {
	mk := func(pkg, file, cur, next, typ string, start int) bot.Update {
		return bot.Update{Dependency: bot.Dependency{Package: pkg, File: file, Current: cur, Range: bot.Range{Start: start, End: start + len(cur)}}, NewValue: next, Type: typ}
	}
	updates := []bot.Update{
		mk("docker.io/grafana/loki", "system/logging/values.yaml", "3.4.0", "4.0.0", bot.UpdateMajor, 10),
		mk("docker.io/grafana/loki", "system/logging/values.yaml", "3.4.0", "3.4.2", bot.UpdatePatch, 10),
		mk("gitea", "platform/gitea/Chart.yaml", "12.4.0", "12.4.1", bot.UpdatePatch, 5),
		mk("ghcr.io/x/y", "apps/y/deployment.yaml", "v1.2.3", "v1.3.0", bot.UpdateMinor, 7),
	}
	cfg := config.Bot{Automerge: []string{bot.UpdatePatch}, Groups: []config.Group{{Name: "patches", UpdateTypes: []string{bot.UpdatePatch}}}}
	branches := Plan(updates, cfg)
	names := []string{}
	for _, b := range branches {
		names = append(names, b.Name)
	}
	want := []string{"hl-bot/grafana-loki-4.x", "hl-bot/group-patches", "hl-bot/x-y-1.x"}
	if strings.Join(names, ",") != strings.Join(want, ",") {
		t.Fatalf("branches %v, want %v", names, want)
	}
	if !branches[1].Automerge || len(branches[1].Updates) != 2 || branches[1].Type != bot.UpdatePatch {
		t.Errorf("patch group: %+v", branches[1])
	}
	if branches[0].Automerge || branches[0].Type != bot.UpdateMajor {
		t.Errorf("major branch automerges or has type %s", branches[0].Type)
	}
	// Deterministic: the same input plans the same branches.
	again := Plan(updates, cfg)
	for i := range again {
		if again[i].Name != branches[i].Name || again[i].Title() != branches[i].Title() {
			t.Errorf("plan not deterministic at %d", i)
		}
	}
}

func TestMarkerRoundTrip(t *testing.T) {
	b := Branch{Name: "hl-bot/gitea-12.x", Updates: []bot.Update{{Dependency: bot.Dependency{Package: "gitea", Current: "12.4.0", File: "platform/gitea/Chart.yaml"}, NewValue: "12.5.0", Type: bot.UpdateMinor}}}
	body := WithMarker("Some text", MarkerOf(b))
	m, ok := ParseMarker(body)
	if !ok || !m.SameVersions(MarkerOf(b)) {
		t.Fatalf("marker did not round-trip: %q", body)
	}
	b.Updates[0].NewValue = "12.6.0"
	if m.SameVersions(MarkerOf(b)) {
		t.Error("a newer version compares equal")
	}
	if _, ok := ParseMarker("no marker here"); ok {
		t.Error("marker found in plain text")
	}
}

func TestSlug(t *testing.T) {
	for in, want := range map[string]string{
		"argo-cd":                              "argo-cd",
		"ghcr.io/stefanprodan/podinfo":         "stefanprodan-podinfo",
		"localhost/app":                        "app",
		"library/Redis":                        "library-redis",
		"https://github.com/actions/checkout":  "actions-checkout",
		"http://127.0.0.1:3000/ops/media.git":  "ops-media",
		"registry.example:5000/linuxserver/jf": "linuxserver-jf",
	} {
		if got := Slug(in); got != want {
			t.Errorf("Slug(%s) = %s, want %s", in, got, want)
		}
	}
}

// TestPlanSeparatesMinorAndPatch: when either may automerge, a patch and
// a minor of one package never share a branch; with no automerge they do
// (one branch per major, as Renovate's default).
func TestPlanSeparatesMinorAndPatch(t *testing.T) {
	d := bot.Dependency{Package: "ghcr.io/x/app", File: "values.yaml", Current: "v1.2.3", Range: bot.Range{Start: 3, End: 9}}
	updates := []bot.Update{
		{Dependency: d, NewValue: "v1.4.0", Type: bot.UpdateMinor},
		{Dependency: d, NewValue: "v1.2.5", Type: bot.UpdatePatch},
	}
	for _, tt := range []struct {
		automerge []string
		want      string
	}{
		{[]string{bot.UpdatePatch}, "hl-bot/x-app-1.2.x:v1.2.5 hl-bot/x-app-1.x:v1.4.0"},
		{[]string{bot.UpdateMinor}, "hl-bot/x-app-1.2.x:v1.2.5 hl-bot/x-app-1.x:v1.4.0"},
		{nil, "hl-bot/x-app-1.x:v1.4.0"},
	} {
		var got []string
		for _, b := range Plan(updates, config.Bot{Automerge: tt.automerge}) {
			got = append(got, b.Name+":"+b.Updates[0].NewValue)
		}
		if strings.Join(got, " ") != tt.want {
			t.Errorf("automerge %v: %v, want %s", tt.automerge, got, tt.want)
		}
	}
	for v, want := range map[string]string{"v1.2.3": "1.2", "10.8.13-ls220": "10.8", "4": "4", "v5.": "5", "^2.31.0": "2.31"} {
		if got := MajorMinor(v); got != want {
			t.Errorf("MajorMinor(%s) = %s, want %s", v, got, want)
		}
	}
}

func TestCompareURL(t *testing.T) {
	for _, tt := range []struct {
		ds, src, cur, next, want string
	}{
		{"github-releases", "https://github.com/rancher/system-upgrade-controller", "v0.13.4", "v0.16.0", "https://github.com/rancher/system-upgrade-controller/compare/v0.13.4...v0.16.0"},
		{"git-tags", "https://git.example.org/ops/media/", "v1.4.2", "v1.5.0", "https://git.example.org/ops/media/compare/v1.4.2...v1.5.0"},
		{"docker", "https://github.com/grafana/grafana", "10.2.2", "10.3.0", ""}, // image tags are no git tags
		{"git-tags", "", "v1", "v2", ""},
		{"gitea-releases", "javascript:alert(1)", "v1", "v2", ""},
	} {
		u := bot.Update{Dependency: bot.Dependency{Datasource: tt.ds, Current: tt.cur}, NewValue: tt.next, New: bot.Release{SourceURL: tt.src}}
		if got := CompareURL(u); got != tt.want {
			t.Errorf("CompareURL(%s %s) = %q, want %q", tt.ds, tt.src, got, tt.want)
		}
	}
	b := Branch{Name: "hl-bot/x-1.x", Updates: []bot.Update{{Dependency: bot.Dependency{Datasource: "git-tags", Package: "https://git.example.org/ops/media", Current: "v1.4.2", File: "app.yaml"},
		NewValue: "v1.5.0", Type: bot.UpdateMinor, New: bot.Release{Version: "v1.5.0", SourceURL: "https://git.example.org/ops/media"}}}}
	if body := Body(b, nil, nil); !strings.Contains(body, "[compare `v1.4.2...v1.5.0`](https://git.example.org/ops/media/compare/v1.4.2...v1.5.0)") {
		t.Errorf("body lacks the compare link:\n%s", body)
	}
}
