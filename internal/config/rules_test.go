package config

import (
	"reflect"
	"strings"
	"testing"

	"github.com/invopop/jsonschema"
	"gopkg.in/yaml.v3"

	"hl.dev/hl/internal/yamlnode"
)

// freeForm are the model's fields that hold arbitrary data on purpose:
// spec.apps.<name>.values is the upstream chart's values, merged into
// values.yaml by the YAML encoder.
var freeForm = map[string]bool{"App.Values": true}

// TestEveryStringHasARule walks the model: a new string field (or list or
// map of strings) must get a rule in schemaRules, an enum tag, or a type
// with a schema of its own, so no user string reaches a template
// unchecked.
func TestEveryStringHasARule(t *testing.T) {
	schemaType := reflect.TypeOf((*interface{ JSONSchema() *jsonschema.Schema })(nil)).Elem()
	seen := map[reflect.Type]bool{}
	used := map[string]bool{}
	var walk func(t reflect.Type)
	walk = func(typ reflect.Type) {
		if typ.Kind() != reflect.Struct || seen[typ] {
			return
		}
		seen[typ] = true
		for i := range typ.NumField() {
			f := typ.Field(i)
			key := typ.Name() + "." + f.Name
			ft := f.Type
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Map {
				if _, ok := keyRules[key]; !ok && !freeForm[key] {
					t.Errorf("%s: map keys have no rule in keyRules", key)
				}
				used["key:"+key] = true
			}
			elem := ft
			if ft.Kind() == reflect.Slice || ft.Kind() == reflect.Map {
				elem = ft.Elem()
			}
			switch {
			case freeForm[key]:
			case elem.Kind() == reflect.Struct:
				walk(elem)
			case elem.Kind() == reflect.String && elem.Implements(schemaType):
			case elem.Kind() == reflect.String:
				if schemaRules[key] == nil && !strings.Contains(f.Tag.Get("jsonschema"), "enum=") {
					t.Errorf("%s is a user string without a rule: add it to schemaRules (rules.go) and check it in Validate", key)
				}
				used[key] = true
			}
		}
	}
	walk(reflect.TypeOf(Homelab{}))
	for key := range schemaRules {
		if !used[key] {
			t.Errorf("schemaRules has %s, which is not a string field", key)
		}
	}
	for key := range keyRules {
		if !used["key:"+key] {
			t.Errorf("keyRules has %s, which is not a map field", key)
		}
	}
}

func TestRules(t *testing.T) {
	for _, c := range []struct {
		name     string
		r        *rule
		good     []string
		bad      []string
		fullPath string
	}{
		{name: "email", r: ruleEmail,
			good: []string{"admin@example.com", "first.last+hl@mail.example.co.uk", "ops_team%x@Example.COM", "a-b@x.io"},
			bad:  []string{"a'||'x@example.com", `"a b"@example.com`, "Admin <a@example.com>", "a@localhost", ".a@example.com", "a..b@example.com", "a@example.com\n", "a@exa_mple.com", "a@-x.com"}},
		{name: "fqdn", r: ruleFQDN,
			good: []string{"home.example.com", "a.b", "x-1.example.io"},
			bad:  []string{"example", "Home.example.com", "a..b", "a.b.", "a.b\nx: y", "-a.b"}},
		{name: "forge URL", r: ruleHTTPURL,
			good: []string{"https://git.home.example.com", "http://192.168.1.5:3000", "https://example.com/gitea", "https://[fd00::5]:3000", "https://Git.Example.com/a/b/"},
			bad:  []string{"ftp://x.com", "https://x.com/\"x", "https://x.com/#frag", "https://x.com/?q=1", "https://user:pw@x.com", "https://x.com/a b", "https://x.com/%0a", "https://x.com/../a", "https://x.com/'", "https://x.com\n", "oci://x.com"}},
		{name: "chart repo", r: ruleChartRepo,
			good: []string{"https://charts.jetstack.io", "oci://registry.lan:5000/charts", "http://10.0.0.5/helm/"},
			bad:  []string{"registry.lan/charts", "https://charts.lan/jetstack#x", "oci://x.com/${X}"}},
		{name: "registry", r: ruleRegistry,
			good: []string{"docker.io", "ghcr.io", "registry.lan:5000/cache", "registry.home.example.com/dockerhub/", "localhost:5000", "r.lan/a__b/c-d"},
			bad:  []string{"https://docker.io", "registry.lan:5000/cache\n    env: x", "registry.lan/Upper", "r.lan/a b", "r.lan/$(id)", "r.lan/a#b"}},
		{name: "disk", r: ruleDisk,
			good: []string{"/dev/sda", "/dev/nvme0n1", "/dev/disk/by-id/nvme-Samsung_SSD_970_EVO_Plus_1TB_S4EWNX0N123456A", "/dev/disk/by-path/pci-0000:00:1f.2-ata-1.0", "/dev/mapper/vg0-root"},
			bad:  []string{"/dev/../../etc/passwd", "/dev/./sda", "/dev/sda/", "/dev/a..b", "/dev/sd a", "/dev/sda;reboot", "/etc/passwd", "/dev/.hidden", "/dev//sda"}},
		{name: "forge name", r: ruleForgeName,
			good: []string{"cluster", ".github", "my.repo", "My_Org-2", "a."},
			bad:  []string{".", "..", "a..b", "../x", "a/b", "a b", "a'b", ""}},
		{name: "branch", r: ruleBranch,
			good: []string{"main", "release/1.x", "feature/foo-bar", "v1.2.3"},
			bad:  []string{"..", ".", "a..b", "/main", "main/", "a//b", ".hidden", "main.", "a b", "a~1", "a^", "a:b", "a@{1}", "a\\b"}},
		{name: "timezone", r: ruleTimezone,
			good: []string{"UTC", "Europe/Berlin", "America/Argentina/Buenos_Aires", "Etc/GMT+1", "Etc/GMT-14"},
			bad:  []string{"../etc/passwd", "Europe/Berlin\n", "Europe Berlin", "/Europe"}},
		{name: "ssh key", r: ruleSSHKey,
			good: []string{"ssh-ed25519 AAAAC3Nz", "ssh-ed25519 AAAAC3Nz admin@laptop", "ssh-rsa AAAAB3Nz== rsa-key-20240101", "ecdsa-sha2-nistp256 AAAAE2Vj user@host.lan 2024-01-01"},
			bad:  []string{`command="sh" ssh-ed25519 AAAAC3Nz`, "ssh-ed25519 AAAAC3Nz a'b", "ssh-ed25519 AAAAC3Nz $(reboot)", "ssh-ed25519 AAAAC3Nz x\ny", "ssh-ed25519  AAAAC3Nz", "ssh-ed25519 AAAAC3Nz #x"}},
		{name: "cron", r: ruleCron,
			good: []string{"0 4 * * *", "*/15 2-5 * * MON-FRI", "@daily", "@every 6h", "0 0 1,15 * ?"},
			bad:  []string{"CRON_TZ=UTC 0 4 * * *", "0 4 * * *\n", "0  4 * * *", "0 4 * * * x", "@daily;x"}},
		{name: "glob", r: ruleGlob,
			good: []string{"*", "ghcr.io/*", "docker.io/library/nginx", "[a-c]*", "debian-installer/bookworm/amd64"},
			bad:  []string{"a b", "a'b", "a\nb", "a#b", "${X}"}},
		{name: "semver constraint", r: ruleSemverSet,
			good: []string{">=2.0.0", ">= 1.2, < 3", "~1.2 || ^2", "1.2 - 1.4.5", "!=1.0.0-rc.1", "2.x", "*", "<2.0.0 >=1.5"},
			bad:  []string{"- injected", "*alias", ">= 2.0.0\ninjected: true", "1.0 # x", ">=${V}"}},
		{name: "interface", r: ruleInterface,
			good: []string{"eno1", "eth0.100", "enp0s31f6", "br-lan"},
			bad:  []string{".", "..", "eth 0", "averyveryverylongname", "e/1"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			for _, s := range c.good {
				if !c.r.ok(s) {
					t.Errorf("%q rejected", s)
				}
			}
			for _, s := range c.bad {
				if c.r.ok(s) {
					t.Errorf("%q accepted", s)
				}
			}
		})
	}
}

// TestValidateStrings runs Validate's checks beyond the patterns on the
// embedded example with one field changed.
func TestValidateStrings(t *testing.T) {
	for _, c := range []struct {
		path, value string
		want        string // "" means valid without a problem at path
		warning     bool
	}{
		{"spec.network.gateway", "fe80::1%eth0", "is not an IP address", false},
		{"spec.network.loadBalancerRange", "192.168.1.220 - 192.168.1.239", "without spaces", false},
		{"spec.forge.url", "http://git.home.example.com", "cleartext", true},
		{"spec.forge.url", "https://git.home.example.com:99999", "not a TCP port", false},
		{"spec.forge.url", "https://[fe80::1%25eth0]", "hl accepts", false},
		{"spec.forge.url", "https://git.home.example.com", "", false},
		{"spec.forge.repo", "..", `may not be "." or ".."`, false},
		{"spec.forge.owner", "a..b", `may not be "." or ".."`, false},
		{"spec.forge.defaultBranch", "..", "not a branch name", false},
		{"spec.forge.defaultBranch", "main.lock", "not a branch name", false},
		{"spec.forge.defaultBranch", "release/2025", "", false},
		{"spec.email", "a'||'x@example.com", "not a plain email address", false},
		{"spec.timezone", "Local", "unknown timezone", false},
		{"spec.bot.schedule", "CRON_TZ=Europe/Berlin 0 4 * * *", "spec.bot.timezone", false},
	} {
		t.Run(c.path+"="+c.value, func(t *testing.T) {
			var root yaml.Node
			if err := yaml.Unmarshal(Example(), &root); err != nil {
				t.Fatal(err)
			}
			setPath(t, root.Content[0], c.path, c.value)
			data, err := yaml.Marshal(&root)
			if err != nil {
				t.Fatal(err)
			}
			_, probs := Parse("x.yaml", data)
			at := probs.At(c.path)
			if c.want == "" {
				if len(at) > 0 {
					t.Fatalf("unexpected problems: %v", at)
				}
				return
			}
			if len(at) != 1 || !strings.Contains(at[0].Message, c.want) || (at[0].Severity == SeverityWarning) != c.warning {
				t.Fatalf("want one %s containing %q at %s, got %v", map[bool]string{true: "warning", false: "error"}[c.warning], c.want, c.path, probs)
			}
		})
	}
}

// setPath sets a dotted mapping path, creating missing mappings.
func setPath(t *testing.T, n *yaml.Node, path, value string) {
	t.Helper()
	keys := strings.Split(path, ".")
	for _, k := range keys[:len(keys)-1] {
		next := yamlnode.Value(n, k)
		if next == nil {
			next = &yaml.Node{Kind: yaml.MappingNode}
			n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: k}, next)
		}
		n = next
	}
	last := keys[len(keys)-1]
	if v := yamlnode.Value(n, last); v != nil {
		*v = yaml.Node{Kind: yaml.ScalarNode, Value: value, Tag: "!!str"}
		return
	}
	n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: last}, &yaml.Node{Kind: yaml.ScalarNode, Value: value, Tag: "!!str"})
}
