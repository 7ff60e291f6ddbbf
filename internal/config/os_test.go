package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestOSChoices: Debian 13 is the default and accepted, Debian 12 is still
// accepted, anything without a pinned netboot image is refused with the
// field and what is offered instead; Fedora is no longer offered, and its
// error says so and names Debian.
func TestOSChoices(t *testing.T) {
	base, err := os.ReadFile(filepath.Join("..", "..", "testdata", "config", "valid", "minimal.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(base), "os:") {
		t.Fatal("minimal.yaml names an OS; this test adds its own")
	}
	withOS := func(os string) []byte {
		out := strings.Replace(string(base), "    pxe:\n", "    os: "+os+"\n    pxe:\n", 1)
		if out == string(base) {
			t.Fatal("minimal.yaml has no spec.metal.pxe to put the OS beside")
		}
		return []byte(out)
	}
	for _, c := range []struct {
		name, os string
		data     []byte
		want     string // "" when valid
		version  string // the version after defaults
	}{
		{name: "default", data: base, version: "13"},
		{name: "debian 13", os: `{name: debian, version: "13"}`, version: "13"},
		{name: "debian without a version", os: `{name: debian}`, version: "13"},
		{name: "debian 12", os: `{name: debian, version: "12"}`, version: "12"},
		{name: "debian 11", os: `{name: debian, version: "11"}`, want: `spec.metal.os.version: no pinned netboot image for debian "11"; pinned: 13, 12`},
		{name: "fedora", os: `{name: fedora, version: "42"}`, want: `spec.metal.os.name: Fedora is no longer offered: nodes install only netboot images pinned by checksum, and none is pinned for a supported Fedora release; use name: debian (version "13", the default, or "12")`},
		{name: "fedora without a version", os: `{name: fedora}`, want: `spec.metal.os.name: Fedora is no longer offered`},
		{name: "ubuntu", os: `{name: ubuntu, version: "24.04"}`, want: `spec.metal.os.name: must be debian, got "ubuntu"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			data := c.data
			if data == nil {
				data = withOS(c.os)
			}
			doc, probs := Parse("hl.yaml", data)
			var errs []string
			for _, p := range probs {
				if p.Severity == "error" {
					errs = append(errs, p.Path+": "+p.Message)
				}
			}
			got := strings.Join(errs, "\n")
			if c.want == "" {
				if got != "" {
					t.Fatalf("refused: %s", got)
				}
				if doc.Homelab.Spec.Metal.OS.Name != OSDebian || doc.Homelab.Spec.Metal.OS.Version != c.version {
					t.Errorf("os after defaults = %+v, want debian %s", doc.Homelab.Spec.Metal.OS, c.version)
				}
				return
			}
			if !strings.Contains(got, c.want) {
				t.Errorf("problems:\n%s\nwant %q", got, c.want)
			}
		})
	}
}
