package alertmanager_test

import (
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"hl.dev/hl/generator"
	"hl.dev/hl/internal/config"
	"hl.dev/hl/secrets"
)

// TestEveryHostnameIsProbed renders each valid fixture and compares the
// hostnames the repo exposes — every host, hosts or domain value under
// system/, platform/ and apps/ that is a name in spec.domain (Ingress
// rules and TLS, chart ingress values, Argo CD's domain) — with the
// targets of the blackbox Probes in system/monitoring: each exposed name
// is probed over https, nothing else is, and every Probe asks the
// rendered exporter for a module its configuration defines.
func TestEveryHostnameIsProbed(t *testing.T) {
	ids, err := secrets.LoadIdentities(filepath.Join("..", "..", "testdata", "age", "test-key.txt"))
	if err != nil {
		t.Fatal(err)
	}
	for _, fixture := range []string{"minimal", "single-node", "ha", "full"} {
		t.Run(fixture, func(t *testing.T) {
			cfgPath := filepath.Join("..", "..", "testdata", "config", "valid", fixture+".yaml")
			doc, probs, err := config.Load(cfgPath)
			if err != nil || len(probs) > 0 {
				t.Fatalf("%s: %v %v", cfgPath, err, probs)
			}
			domain := doc.Homelab.Spec.Domain
			dir := t.TempDir()
			if _, err := generator.Render(t.Context(), generator.Options{ConfigPath: cfgPath, OutDir: dir, Identities: ids}); err != nil {
				t.Fatal(err)
			}
			exposed := map[string]string{}
			for _, layer := range []string{"system", "platform", "apps"} {
				err := filepath.WalkDir(filepath.Join(dir, layer), func(p string, d fs.DirEntry, err error) error {
					if err != nil || d.IsDir() || !strings.HasSuffix(p, ".yaml") || strings.HasSuffix(p, ".sops.yaml") {
						return err
					}
					rel, _ := filepath.Rel(dir, p)
					for _, h := range hostnames(t, p, domain) {
						exposed[h] = filepath.ToSlash(rel)
					}
					return nil
				})
				if err != nil && !os.IsNotExist(err) {
					t.Fatal(err)
				}
			}
			if len(exposed) < 2 {
				t.Fatalf("only %d exposed hostnames found: %v", len(exposed), exposed)
			}
			probed, modules := probes(t, filepath.Join(dir, "system", "monitoring", "templates", "probes.yaml"))
			for h, file := range exposed {
				p, ok := probed[h]
				if !ok {
					t.Errorf("%s (exposed by %s) is not probed", h, file)
					continue
				}
				if !slices.Contains(modules, p.module) {
					t.Errorf("the probe of %s uses module %q; the exporter has %v", h, p.module, modules)
				}
				if p.scheme != "https" {
					t.Errorf("%s is probed over %s", h, p.scheme)
				}
			}
			for h := range probed {
				if _, ok := exposed[h]; !ok {
					t.Errorf("%s is probed but nothing exposes it", h)
				}
			}
		})
	}
}

// hostnames are the values of host, hosts and domain keys in file that
// are names under domain.
func hostnames(t *testing.T, file, domain string) []string {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	var walk func(n *yaml.Node, key string)
	walk = func(n *yaml.Node, key string) {
		switch n.Kind {
		case yaml.DocumentNode, yaml.SequenceNode:
			for _, c := range n.Content {
				walk(c, key)
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				walk(n.Content[i+1], n.Content[i].Value)
			}
		case yaml.ScalarNode:
			if (key == "host" || key == "hosts" || key == "domain") && (n.Value == domain || strings.HasSuffix(n.Value, "."+domain)) {
				out = append(out, n.Value)
			}
		}
	}
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	for {
		var doc yaml.Node
		if err := dec.Decode(&doc); err != nil {
			break // the end, or a chart template that is not YAML
		}
		walk(&doc, "")
	}
	return out
}

type probe struct{ module, scheme string }

// probes reads the Probes (by target host) and the exporter's module
// names from probes.yaml.
func probes(t *testing.T, file string) (map[string]probe, []string) {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]probe{}
	var modules []string
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	for {
		var obj struct {
			Kind string
			Data map[string]string
			Spec struct {
				Module  string
				Targets struct {
					StaticConfig struct {
						Static []string
					} `yaml:"staticConfig"`
				}
			}
		}
		if err := dec.Decode(&obj); err != nil {
			break
		}
		switch obj.Kind {
		case "ConfigMap":
			var cfg struct {
				Modules map[string]any
			}
			if err := yaml.Unmarshal([]byte(obj.Data["blackbox.yml"]), &cfg); err != nil {
				t.Fatalf("blackbox.yml: %v", err)
			}
			for m := range cfg.Modules {
				modules = append(modules, m)
			}
		case "Probe":
			for _, target := range obj.Spec.Targets.StaticConfig.Static {
				u, err := url.Parse(target)
				if err != nil {
					t.Fatalf("probe target %q: %v", target, err)
				}
				if _, dup := out[u.Host]; dup {
					t.Errorf("%s is probed twice", u.Host)
				}
				out[u.Host] = probe{module: obj.Spec.Module, scheme: u.Scheme}
			}
		}
	}
	sort.Strings(modules)
	if len(modules) == 0 {
		t.Fatal("probes.yaml has no blackbox exporter modules")
	}
	return out, modules
}
