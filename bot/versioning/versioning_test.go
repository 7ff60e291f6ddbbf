package versioning_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"hl.dev/hl/bot"
	"hl.dev/hl/bot/versioning"
	"hl.dev/hl/bot/versioning/k3s"
	"hl.dev/hl/bot/versioning/regex"
	"hl.dev/hl/internal/config"
	"hl.dev/hl/templates"
)

type order struct{ scheme, a, b string }

// TestCompare: every pair a < b.
func TestCompare(t *testing.T) {
	for _, tt := range []order{
		{"semver", "1.2.3", "1.2.4"},
		{"semver", "v1.2.3", "v1.10.0"},
		{"semver", "1.2.3-rc.1", "1.2.3"},
		{"semver", "1.2.3-rc.2", "1.2.3-rc.10"},
		{"semver", "9.1.3", "10.0.0"},
		{"docker", "1.25.3-alpine", "1.25.4-alpine"},
		{"docker", "1.9", "1.10"},
		{"docker", "v1.2.3", "v1.2.10"},
		{"docker", "2024.10.1", "2024.11.0"},
		{"docker", "1.0.0rc1", "1.0.0"},
		{"docker", "v1.0.0-rc.2", "v1.0.0-rc.10"},
		{"docker", "v1.0.0-beta.1", "v1.0.0"},
		{"k3s", "v1.33.5+k3s1", "v1.33.5+k3s2"},
		{"k3s", "v1.33.5+k3s2", "v1.34.0+k3s1"},
		{"k3s", "v1.34.0-rc1+k3s1", "v1.34.0+k3s1"},
		{"k3s", "v1.9.0+k3s1", "v1.10.0+k3s1"},
		{"loose", "20230607+deb12u4", "20230607+deb12u15"},
		{"loose", "20230607+deb12u15", "20250803+deb13u1"},
	} {
		s, ok := versioning.Get(tt.scheme)
		if !ok {
			t.Fatalf("no scheme %s", tt.scheme)
		}
		if c := s.Compare(tt.a, tt.b); c != -1 {
			t.Errorf("%s: Compare(%s, %s) = %d, want -1", tt.scheme, tt.a, tt.b, c)
		}
		if c := s.Compare(tt.b, tt.a); c != 1 {
			t.Errorf("%s: Compare(%s, %s) = %d, want 1", tt.scheme, tt.b, tt.a, c)
		}
	}
}

func TestValid(t *testing.T) {
	for _, tt := range []struct {
		scheme, v string
		valid     bool
	}{
		{"semver", "1.2.3", true}, {"semver", "v1.2.3", true}, {"semver", "1.2", true},
		{"semver", "latest", false}, {"semver", "~1.2.0", false}, {"semver", "release-1.2", false},
		{"docker", "1.25.3-alpine", true}, {"docker", "v1.2.3", true}, {"docker", "2024.10.1", true}, {"docker", "16", true},
		{"docker", "20241001", true},
		{"docker", "latest", false}, {"docker", "stable-alpine", false},
		{"docker", "sha-1a2b3c4", false}, {"docker", "1a2b3c4d5e6f", false},
		{"docker", "0123abc4567def8901234567890abcdef0123456", false},
		{"docker", "sha256-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef.sig", false},
		{"docker", "1.2.3-9f8e7d6c", false},
		{"k3s", "v1.33.5+k3s1", true}, {"k3s", "v1.34.0-rc1+k3s1", true},
		{"k3s", "v1.33.5", false}, {"k3s", "v1.33.5-k3s1", false}, {"k3s", "1.33.5+k3s1", false},
		{"loose", "20230607+deb12u15", true}, {"loose", "current", false},
	} {
		s, _ := versioning.Get(tt.scheme)
		if got := s.Valid(tt.v); got != tt.valid {
			t.Errorf("%s: Valid(%q) = %v, want %v", tt.scheme, tt.v, got, tt.valid)
		}
	}
}

func TestUpdateType(t *testing.T) {
	for _, tt := range []struct{ scheme, a, b, want string }{
		{"semver", "1.2.3", "2.0.0", bot.UpdateMajor},
		{"semver", "1.2.3", "1.3.0", bot.UpdateMinor},
		{"semver", "1.2.3", "1.2.4", bot.UpdatePatch},
		{"semver", "v1.19.1", "v1.19.2", bot.UpdatePatch},
		{"docker", "1.25.3-alpine", "1.26.0-alpine", bot.UpdateMinor},
		{"docker", "2024.10.1", "2025.1.0", bot.UpdateMajor},
		{"docker", "v1.2.3", "v1.2.4", bot.UpdatePatch},
		{"k3s", "v1.33.5+k3s1", "v1.33.5+k3s2", bot.UpdatePatch},
		{"k3s", "v1.33.5+k3s1", "v1.33.6+k3s1", bot.UpdatePatch},
		{"k3s", "v1.33.5+k3s1", "v1.34.0+k3s1", bot.UpdateMinor},
		{"loose", "20230607+deb12u4", "20230607+deb12u15", bot.UpdatePatch},
		{"loose", "20230607+deb12u15", "20250803+deb13u1", bot.UpdateMajor},
	} {
		s, _ := versioning.Get(tt.scheme)
		if got := s.UpdateType(tt.a, tt.b); got != tt.want {
			t.Errorf("%s: UpdateType(%s, %s) = %s, want %s", tt.scheme, tt.a, tt.b, got, tt.want)
		}
	}
}

func TestCompatibleDocker(t *testing.T) {
	s, _ := versioning.Get("docker")
	for _, tt := range []struct {
		a, b string
		want bool
	}{
		{"1.25.3-alpine", "1.26.0-alpine", true},
		{"1.25.3-alpine", "1.26.0", false}, // suffix differs
		{"1.25.3-alpine", "1.26.0-bookworm", false},
		{"1.25.3", "1.26", false},  // number of parts
		{"v1.2.3", "1.2.4", false}, // v prefix
		{"v1.2.3", "v1.2.4", true},
		{"1.25.3", "1.26.0-rc.1", true}, // a pre-release is not a flavour
		{"1.25.3", "latest", false},
	} {
		if got := s.Compatible(tt.a, tt.b); got != tt.want {
			t.Errorf("Compatible(%s, %s) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestPrerelease(t *testing.T) {
	for _, tt := range []struct {
		scheme, v string
		want      bool
	}{
		{"semver", "1.2.3-rc.1", true}, {"semver", "1.2.3", false},
		{"docker", "1.0.0rc1", true}, {"docker", "v2.0.0-beta.3", true}, {"docker", "1.25.3-alpine", false},
		{"k3s", "v1.34.0-rc1+k3s1", true}, {"k3s", "v1.34.0+k3s1", false},
	} {
		s, _ := versioning.Get(tt.scheme)
		if got := s.IsPrerelease(tt.v); got != tt.want {
			t.Errorf("%s: IsPrerelease(%s) = %v", tt.scheme, tt.v, got)
		}
	}
}

func TestSemverRanges(t *testing.T) {
	s, _ := versioning.Get("semver")
	r := s.(versioning.Ranges)
	for _, tt := range []struct {
		rng, floor, newV, replaced string
		matchesNew                 bool
	}{
		{"~5.41.0", "5.41.0", "5.43.2", "~5.43.2", false},
		{"^1.2.0", "1.2.0", "2.3.1", "^2.3.1", false},
		{"^1.2.0", "1.2.0", "1.9.0", "^1.9.0", true},
		{"1.2.x", "1.2.0", "2.3.1", "2.3.x", false},
		{"7.x.x", "7.0.0", "8.1.0", "8.x.x", false},
		{">=1.0.0", "1.0.0", "3.0.0", ">=3.0.0", true},
		{"^v1.2", "1.2.0", "2.0.0", "^v2.0", false},
	} {
		if !r.IsRange(tt.rng) {
			t.Errorf("IsRange(%s) = false", tt.rng)
			continue
		}
		if f, ok := r.Floor(tt.rng); !ok || f != tt.floor {
			t.Errorf("Floor(%s) = %s, %v; want %s", tt.rng, f, ok, tt.floor)
		}
		if got := r.Matches(tt.newV, tt.rng); got != tt.matchesNew {
			t.Errorf("Matches(%s, %s) = %v", tt.newV, tt.rng, got)
		}
		if got, err := r.Replace(tt.rng, tt.newV); err != nil || got != tt.replaced {
			t.Errorf("Replace(%s, %s) = %s, %v; want %s", tt.rng, tt.newV, got, err, tt.replaced)
		}
	}
	if r.IsRange("1.2.3") {
		t.Error("a version is not a range")
	}
	if _, err := r.Replace(">=1.0.0 <2.0.0", "2.1.0"); err == nil {
		t.Error("compound ranges are not rewritten")
	}
}

func TestFor(t *testing.T) {
	for _, tt := range []struct{ versioning, datasource, want string }{
		{"", "docker", "docker"}, {"", "k3s-channel", "k3s"}, {"", "helm", "semver"}, {"", "unknown", "semver"},
		{"k3s", "github-releases", "k3s"}, {"", "debian-netboot", "loose"}, {"", "fedora-netboot", "loose"},
	} {
		if got := versioning.For(tt.versioning, tt.datasource).Name(); got != tt.want {
			t.Errorf("For(%q, %q) = %s, want %s", tt.versioning, tt.datasource, got, tt.want)
		}
	}
}

const (
	linuxserver = `regex:^(?<major>\d+)\.(?<minor>\d+)\.(?<patch>\d+)-ls(?<build>\d+)$`
	bitnami     = `regex:^(?<major>\d+)\.(?<minor>\d+)\.(?<patch>\d+)-(?<compatibility>.+)-r(?<build>\d+)$`
	withPre     = `regex:^v(?<major>\d+)\.(?<minor>\d+)(?:-(?<prerelease>rc\d+))?$`
)

// TestRegexScheme: the tags the docker scheme leaves stuck (its suffix
// must be equal, and -ls219 never equals -ls220) order by their groups.
func TestRegexScheme(t *testing.T) {
	for _, tt := range []order{
		{linuxserver, "10.8.13-ls219", "10.8.13-ls220"},
		{linuxserver, "10.8.13-ls220", "10.9.0-ls1"},
		{linuxserver, "9.0.0-ls300", "10.0.0-ls1"},
		{bitnami, "1.25.3-debian-12-r5", "1.25.3-debian-12-r12"},
		{bitnami, "1.25.3-debian-12-r12", "1.26.0-debian-12-r0"},
		{withPre, "v1.2-rc1", "v1.2"},
		{withPre, "v1.2", "v1.3-rc1"},
	} {
		s, ok := versioning.Get(tt.scheme)
		if !ok {
			t.Fatalf("no scheme %s", tt.scheme)
		}
		if c := s.Compare(tt.a, tt.b); c != -1 {
			t.Errorf("Compare(%s, %s) = %d, want -1", tt.a, tt.b, c)
		}
		if c := s.Compare(tt.b, tt.a); c != 1 {
			t.Errorf("Compare(%s, %s) = %d, want 1", tt.b, tt.a, c)
		}
	}
	ls, _ := versioning.Get(linuxserver)
	bn, _ := versioning.Get(bitnami)
	pre, _ := versioning.Get(withPre)
	for _, tt := range []struct {
		s         versioning.Scheme
		a, b, typ string
		compat    bool
	}{
		{ls, "10.8.13-ls219", "10.8.13-ls220", bot.UpdatePatch, true},
		{ls, "10.8.13-ls219", "10.9.0-ls1", bot.UpdateMinor, true},
		{ls, "10.8.13-ls219", "11.0.0-ls1", bot.UpdateMajor, true},
		{bn, "1.25.3-debian-12-r5", "1.25.4-debian-12-r0", bot.UpdatePatch, true},
		{bn, "1.25.3-debian-12-r5", "1.25.4-debian-11-r0", bot.UpdatePatch, false},
	} {
		if got := tt.s.UpdateType(tt.a, tt.b); got != tt.typ {
			t.Errorf("UpdateType(%s, %s) = %s, want %s", tt.a, tt.b, got, tt.typ)
		}
		if got := tt.s.Compatible(tt.a, tt.b); got != tt.compat {
			t.Errorf("Compatible(%s, %s) = %v, want %v", tt.a, tt.b, got, tt.compat)
		}
	}
	if ls.Valid("latest") || ls.Valid("10.8.13") || !ls.Valid("10.8.13-ls219") {
		t.Error("linuxserver Valid")
	}
	if !pre.IsPrerelease("v1.3-rc1") || pre.IsPrerelease("v1.3") {
		t.Error("prerelease group")
	}
	if s, _ := versioning.Get(linuxserver); s != ls {
		t.Error("a regex scheme is compiled once")
	}
}

func TestCheck(t *testing.T) {
	for _, tt := range []struct{ name, err string }{
		{"semver", ""}, {"kubernetes", ""}, {linuxserver, ""},
		{"calver", `unknown versioning "calver"`},
		{`regex:^(?<minor>\d+)$`, "no (?<major>…) group"},
		{`regex:^(?<major>\d+)(?<flavour>.*)$`, `group "flavour" is none of`},
		{`regex:^(?<major>\d+`, "missing closing )"},
	} {
		err := versioning.Check(tt.name)
		if (err == nil) != (tt.err == "") || (err != nil && !strings.Contains(err.Error(), tt.err)) {
			t.Errorf("Check(%s) = %v, want %q", tt.name, err, tt.err)
		}
		if _, ok := versioning.Get(tt.name); ok != (tt.err == "") {
			t.Errorf("Get(%s) ok = %v", tt.name, ok)
		}
	}
}

// TestKubernetesScheme orders Kubernetes versions with and without a
// distribution's build and keeps upgrades to one minor at a time.
func TestKubernetesScheme(t *testing.T) {
	for _, tt := range []order{
		{"kubernetes", "v1.30.4", "v1.30.5"},
		{"kubernetes", "v1.30.9", "v1.31.0"},
		{"kubernetes", "v1.31.0-rc.1", "v1.31.0"},
		{"kubernetes", "v1.31.0-alpha.3", "v1.31.0-beta.0"},
		{"kubernetes", "v1.30.4-k3s1", "v1.30.4-k3s2"},
		{"kubernetes", "1.30.4", "1.31.0"},
	} {
		s, _ := versioning.Get(tt.scheme)
		if c := s.Compare(tt.a, tt.b); c != -1 {
			t.Errorf("Compare(%s, %s) = %d, want -1", tt.a, tt.b, c)
		}
		if c := s.Compare(tt.b, tt.a); c != 1 {
			t.Errorf("Compare(%s, %s) = %d, want 1", tt.b, tt.a, c)
		}
	}
	for _, tt := range []struct {
		scheme, a, b string
		reachable    bool
	}{
		{"kubernetes", "v1.29.3", "v1.29.9", true},
		{"kubernetes", "v1.29.3", "v1.30.0", true},
		{"kubernetes", "v1.29.3", "v1.31.0", false},
		{"kubernetes", "v1.29.3", "v2.0.0", false},
		{"k3s", "v1.29.3+k3s1", "v1.30.4+k3s1", true},
		{"k3s", "v1.29.3+k3s1", "v1.31.2+k3s1", false},
	} {
		s, _ := versioning.Get(tt.scheme)
		sw, ok := s.(versioning.Stepwise)
		if !ok {
			t.Fatalf("%s is not stepwise", tt.scheme)
		}
		if got := sw.Reachable(tt.a, tt.b); got != tt.reachable {
			t.Errorf("%s: Reachable(%s, %s) = %v", tt.scheme, tt.a, tt.b, got)
		}
	}
	k, _ := versioning.Get("kubernetes")
	if k.Compatible("v1.30.4-k3s1", "v1.30.5") || !k.Compatible("v1.30.4-k3s1", "v1.31.0-k3s1") || k.Compatible("v1.30.4", "1.30.5") {
		t.Error("Compatible: the flavour and the v prefix must match")
	}
	if s, _ := versioning.Get("semver"); s != nil {
		if _, step := s.(versioning.Stepwise); step {
			t.Error("semver is not stepwise")
		}
	}
}

// TestK3sFromCatalogPin: from the k3s the catalog pins today, the bot
// proposes the next Kubernetes minor and never the one after it, and a
// newer patch or build of the same minor is a patch.
func TestK3sFromCatalogPin(t *testing.T) {
	pin := templates.MustCatalog().K3s
	v, ok := k3s.Parse(pin)
	if !ok || v.RC != 0 {
		t.Fatalf("catalog k3s %q is not a k3s release", pin)
	}
	at := func(minor, patch, build int) string {
		return fmt.Sprintf("v%d.%d.%d+k3s%d", v.Major, minor, patch, build)
	}
	s, _ := versioning.Get("k3s")
	sw := s.(versioning.Stepwise)
	for _, tt := range []struct {
		to        string
		reachable bool
		update    string
	}{
		{at(v.Minor, v.Patch, v.Build+1), true, bot.UpdatePatch},
		{at(v.Minor, v.Patch+1, 1), true, bot.UpdatePatch},
		{at(v.Minor+1, 0, 1), true, bot.UpdateMinor},
		{at(v.Minor+1, 4, 2), true, bot.UpdateMinor},
		{at(v.Minor+2, 0, 1), false, bot.UpdateMinor},
	} {
		if s.Compare(pin, tt.to) != -1 {
			t.Errorf("%s is not newer than %s", tt.to, pin)
		}
		if got := sw.Reachable(pin, tt.to); got != tt.reachable {
			t.Errorf("Reachable(%s, %s) = %v, want %v", pin, tt.to, got, tt.reachable)
		}
		if got := s.UpdateType(pin, tt.to); got != tt.update {
			t.Errorf("UpdateType(%s, %s) = %s, want %s", pin, tt.to, got, tt.update)
		}
	}
}

// TestConfigNames: hl.yaml's validation names the schemes this package
// registers (internal/config cannot import bot, so the lists are held
// equal here).
func TestConfigNames(t *testing.T) {
	var names []string
	for _, s := range versioning.All() {
		names = append(names, s.Name())
	}
	if !slices.Equal(names, config.BotVersionings) {
		t.Errorf("config.BotVersionings = %v, registered %v", config.BotVersionings, names)
	}
	if config.RegexVersioningPrefix != regex.Prefix {
		t.Errorf("regex prefix %q != %q", config.RegexVersioningPrefix, regex.Prefix)
	}
}
