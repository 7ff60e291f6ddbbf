package k3s_test

import (
	"testing"

	"hl.dev/hl/bot/extract/internal/extracttest"
	"hl.dev/hl/bot/extract/k3s"
)

type W = extracttest.Want

func TestExtractYAML(t *testing.T) {
	tests := []struct {
		name, file, content string
		want                []W
	}{
		{"upgrade plans", "system/system-upgrade/plans.yaml", `apiVersion: upgrade.cattle.io/v1
kind: Plan
metadata:
  name: server
spec:
  concurrency: 1
  upgrade:
    image: rancher/k3s-upgrade
  version: v1.33.5+k3s1
---
apiVersion: upgrade.cattle.io/v1
kind: Plan
metadata:
  name: agent
spec:
  upgrade:
    image: rancher/k3s-upgrade
  version: "v1.33.5+k3s1"
`, []W{{"k3s-channel", "", "k3s", "v1.33.5+k3s1", nil}, {"k3s-channel", "", "k3s", "v1.33.5+k3s1", nil}}},
		{"hl metal pin", "metal/nodes.yaml", `# Rendered by hl.
server: http://192.168.10.5:8080
os: {name: debian, version: "12"}
k3s: v1.33.5+k3s1
nodes: {}
`, []W{{"k3s-channel", "", "k3s", "v1.33.5+k3s1", nil}}},
		{"ansible var, rc, comments ignored", "metal/group_vars/all.yml", `# k3s v1.29.0+k3s1 was the first
k3s_version: v1.34.0-rc1+k3s1
other: v1.33.5
`, []W{{"k3s-channel", "", "k3s", "v1.34.0-rc1+k3s1", nil}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			deps, err := k3s.Extractor{}.Extract(tt.file, []byte(tt.content))
			if err != nil {
				t.Fatal(err)
			}
			extracttest.Check(t, tt.file, "k3s", tt.content, deps, tt.want)
		})
	}
}

func TestExtractScript(t *testing.T) {
	content := `#!/bin/sh
# Stages k3s v1.33.5+k3s1 for the first boot.
cat > /etc/systemd/system/hl-k3s-install.service <<'UNIT'
[Unit]
Description=hl: install k3s v1.33.5+k3s1 (server) on first boot
[Service]
Environment=INSTALL_K3S_VERSION=v1.33.5+k3s1
ExecStart=/bin/sh -c 'curl -fsSL -o /run/k3s.sh https://raw.githubusercontent.com/k3s-io/k3s/v1.33.5+k3s1/install.sh && sh /run/k3s.sh'
UNIT
`
	deps, err := k3s.Extractor{}.Extract("metal/nodes/cp1/post-install.sh", []byte(content))
	if err != nil {
		t.Fatal(err)
	}
	if len(deps) != 1 {
		t.Fatalf("got %d deps, want 1", len(deps))
	}
	d := deps[0]
	if got := content[d.Range.Start-len("INSTALL_K3S_VERSION=") : d.Range.End]; got != "INSTALL_K3S_VERSION=v1.33.5+k3s1" {
		t.Errorf("primary range is not the INSTALL_K3S_VERSION value: %q", got)
	}
	if len(d.Related) != 3 {
		t.Fatalf("related = %v, want the 3 other mentions", d.Related)
	}
	for role, r := range d.Related {
		if s := extracttest.Slice(content, r); s != "v1.33.5+k3s1" {
			t.Errorf("%s slices %q", role, s)
		}
	}
}

func TestMatch(t *testing.T) {
	e := k3s.Extractor{}
	for p, want := range map[string]bool{"a.yaml": true, "x/post-install.sh": true, "boot.ipxe": true, "README.md": false, "main.go": false} {
		if got := e.Match(p); got != want {
			t.Errorf("Match(%s) = %v", p, got)
		}
	}
}
