package chartcache

import (
	"path/filepath"
	"testing"
)

func TestPath(t *testing.T) {
	tests := []struct {
		name, repo, chart, version, want string
	}{
		// sha256("https://charts.jetstack.io")[:16]
		{"plain", "https://charts.jetstack.io", "cert-manager", "v1.19.1", "/c/ebe10bb4e257360e/cert-manager-v1.19.1.tgz"},
		{"trailing slash and spaces are one repository", " https://charts.jetstack.io/ ", "cert-manager", "v1.19.1", "/c/ebe10bb4e257360e/cert-manager-v1.19.1.tgz"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Path("/c", tt.repo, tt.chart, tt.version); got != filepath.FromSlash(tt.want) {
				t.Errorf("Path = %s, want %s", got, tt.want)
			}
		})
	}
	if RepoKey("https://a.example/x") == RepoKey("https://a.example/y") {
		t.Error("two repositories share a cache folder")
	}
}
