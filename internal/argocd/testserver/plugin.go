package testserver

import (
	"context"
	"fmt"
	"os"
	"strconv"

	"sigs.k8s.io/yaml"
)

// maxSocketPath is what fits sun_path (108 bytes with the final NUL).
const maxSocketPath = 107

// startPlugin runs one argocd-cmp-server as the sidecar of repo-server:
// its plugin.yaml in a config folder of its own, its socket in the shared
// folder that ARGOCD_PLUGINSOCKFILEPATH names for both, where repo-server
// discovers it (<name>.sock, or <name>-<version>.sock when versioned).
func (s *Server) startPlugin(ctx context.Context, i int, p Plugin) error {
	var cfg struct {
		Kind     string `json:"kind"`
		Metadata struct {
			Name string `json:"name"`
		} `json:"metadata"`
		Spec struct {
			Version string `json:"version"`
		} `json:"spec"`
	}
	if err := yaml.Unmarshal([]byte(p.Config), &cfg); err != nil {
		return fmt.Errorf("plugin %d: plugin.yaml: %w", i, err)
	}
	if cfg.Kind != "ConfigManagementPlugin" || cfg.Metadata.Name == "" {
		return fmt.Errorf("plugin %d: plugin.yaml: want kind ConfigManagementPlugin with metadata.name, got kind %q name %q", i, cfg.Kind, cfg.Metadata.Name)
	}
	sockName := cfg.Metadata.Name
	if cfg.Spec.Version != "" {
		sockName += "-" + cfg.Spec.Version
	}
	sock := s.path("plugins", sockName+".sock")
	if len(sock) > maxSocketPath {
		return fmt.Errorf("plugin %s: socket path %s is longer than %d bytes; set TMPDIR to a shorter folder", cfg.Metadata.Name, sock, maxSocketPath)
	}
	name := cmpServer + "-" + cfg.Metadata.Name
	confDir, work := s.path("cmp", strconv.Itoa(i), "config"), s.path("cmp", strconv.Itoa(i), "work")
	for _, d := range []string{confDir, work} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return fmt.Errorf("plugin %s: %w", cfg.Metadata.Name, err)
		}
	}
	if err := os.WriteFile(s.path("cmp", strconv.Itoa(i), "config", "plugin.yaml"), []byte(p.Config), 0o600); err != nil {
		return fmt.Errorf("plugin %s: %w", cfg.Metadata.Name, err)
	}
	return s.launch(ctx, name, s.bins.Argocd, cmpServer, 0, func([]int) ([]string, []string, func(context.Context) error) {
		// A stale socket of an earlier try would pass the check at once.
		_ = os.Remove(sock)
		extra := append([]string{
			"PATH=" + s.searchPath(p.PATH),
			"ARGOCD_CMP_WORKDIR=" + work,
		}, p.Env...)
		return []string{"--config-dir-path", confDir}, extra, func(context.Context) error {
			_, err := os.Stat(sock)
			return err
		}
	})
}
