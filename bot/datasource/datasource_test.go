package datasource_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"hl.dev/hl/bot"
	"hl.dev/hl/bot/datasource"
	"hl.dev/hl/internal/config"
)

// fake records calls and the highest number running at once.
type fake struct {
	mu       sync.Mutex
	calls    map[string]int
	running  atomic.Int32
	maxSeen  atomic.Int32
	failWhen string
}

func (f *fake) Name() string { return "docker" }

func (f *fake) Releases(ctx context.Context, d bot.Dependency) ([]bot.Release, error) {
	n := f.running.Add(1)
	defer f.running.Add(-1)
	for {
		m := f.maxSeen.Load()
		if n <= m || f.maxSeen.CompareAndSwap(m, n) {
			break
		}
	}
	f.mu.Lock()
	f.calls[d.Package]++
	f.mu.Unlock()
	time.Sleep(5 * time.Millisecond)
	if d.Package == f.failWhen {
		return nil, errors.New("registry said no")
	}
	return []bot.Release{{Version: "1.0.0"}}, nil
}

func TestLookupDedupesBoundsAndIsolatesFailures(t *testing.T) {
	f := &fake{calls: map[string]int{}, failWhen: "docker.io/library/broken"}
	l := datasource.NewLookup([]datasource.Datasource{f}, 3, config.Mirrors{})
	var deps []bot.Dependency
	for i := 0; i < 40; i++ {
		deps = append(deps, bot.Dependency{Datasource: "docker", Package: fmt.Sprintf("docker.io/library/app%d", i%10)})
	}
	deps = append(deps, bot.Dependency{Datasource: "docker", Package: "docker.io/library/broken"}, bot.Dependency{Datasource: "nope", Package: "x"})
	res := l.ReleasesAll(context.Background(), deps)
	for i, r := range res[:40] {
		if r.Err != nil || len(r.Releases) != 1 {
			t.Errorf("dep %d: %v", i, r.Err)
		}
	}
	if res[40].Err == nil || res[41].Err == nil {
		t.Error("failures must stay with their dependency")
	}
	for p, n := range f.calls {
		if n != 1 {
			t.Errorf("%s looked up %d times", p, n)
		}
	}
	if len(f.calls) != 11 || l.Calls() != 11 {
		t.Errorf("calls %v / %d", f.calls, l.Calls())
	}
	if m := f.maxSeen.Load(); m > 3 || m < 2 {
		t.Errorf("max concurrent = %d, want 2..3", m)
	}
}

func TestMirror(t *testing.T) {
	m := config.Mirrors{
		Charts: []config.Mirror{
			{From: "https://charts.jetstack.io", To: "https://charts.mirror.example/jetstack"},
			{From: "oci://ghcr.io/bjw-s", To: "oci://registry.example/ghcr/bjw-s"},
		},
		Registries: []config.Mirror{
			{From: "docker.io", To: "registry.example/dockerhub"},
			{From: "docker.io/library", To: "registry.example/library"},
		},
	}
	for _, tt := range []struct{ in, want bot.Dependency }{
		{bot.Dependency{Datasource: "helm", RegistryURL: "https://charts.jetstack.io"}, bot.Dependency{Datasource: "helm", RegistryURL: "https://charts.mirror.example/jetstack"}},
		{bot.Dependency{Datasource: "oci", RegistryURL: "oci://ghcr.io/bjw-s/helm"}, bot.Dependency{Datasource: "oci", RegistryURL: "oci://registry.example/ghcr/bjw-s/helm"}},
		{bot.Dependency{Datasource: "helm", RegistryURL: "https://charts.jetstack.io.evil"}, bot.Dependency{Datasource: "helm", RegistryURL: "https://charts.jetstack.io.evil"}},
		{bot.Dependency{Datasource: "docker", Package: "nginx"}, bot.Dependency{Datasource: "docker", Package: "registry.example/library/nginx"}},
		{bot.Dependency{Datasource: "docker", Package: "grafana/grafana"}, bot.Dependency{Datasource: "docker", Package: "registry.example/dockerhub/grafana/grafana"}},
		{bot.Dependency{Datasource: "docker", Package: "ghcr.io/x/y"}, bot.Dependency{Datasource: "docker", Package: "ghcr.io/x/y"}},
	} {
		if got := datasource.Mirror(tt.in, m); got.RegistryURL != tt.want.RegistryURL || got.Package != tt.want.Package {
			t.Errorf("Mirror(%+v) = %+v, want %+v", tt.in, got, tt.want)
		}
	}
}

func TestRegistry(t *testing.T) {
	seen := map[string]bool{}
	for _, n := range datasource.Names() {
		seen[n] = true
	}
	for _, n := range []string{"helm", "oci", "docker", "github-releases", "gitea-releases", "k3s-channel", "debian-netboot", "fedora-netboot", "git-tags"} {
		if !seen[n] {
			t.Errorf("datasource %s not registered", n)
		}
	}
}
