package config

import (
	"net"
	"strings"

	"hl.dev/hl/templates"
)

// Default values, applied by ApplyDefaults and nowhere else.
const (
	DefaultTimezone          = "UTC"
	DefaultDHCPMode          = DHCPProxy
	DefaultPXEPort           = 8080
	DefaultOSName            = OSDebian
	DefaultDebianVersion     = "13"
	DefaultClusterCIDR       = "10.42.0.0/16"
	DefaultServiceCIDR       = "10.43.0.0/16"
	DefaultBranch            = "main"
	DefaultRotateAfter       = Duration("90d")
	DefaultBotSchedule       = "0 4 * * *"
	DefaultMinimumReleaseAge = Duration("3d")
	DefaultSLOWindow         = Duration("30d")
	DefaultMaxOpenPRs        = 10
	DefaultMaxPRsPerRun      = 10
	DefaultMaxPRsPerHour     = 2
	DefaultGitHubURL         = "https://github.com"
)

// DefaultDisable are k3s components a catalog component replaces:
// MetalLB replaces servicelb, and k3s's bundled Traefik gives way to the
// catalog's traefik component (Argo CD installs it from the Helm chart, so
// its version and values live in the repo and the bot upgrades it).
var DefaultDisable = []string{"servicelb", "traefik"}

// RetiredComponent is a component hl rendered once and no longer does,
// and the one that took its place.
type RetiredComponent struct {
	Name, Layer, ReplacedBy, Why string
}

// RetiredComponents are kept so that a repository rendered before their
// retirement re-renders cleanly: Validate explains a leftover
// spec.apps.<name>, and the generator deletes the component's folder
// even where it was edited since (see system/traefik/README.md).
var RetiredComponents = []RetiredComponent{
	{Name: "ingress-nginx", Layer: "system", ReplacedBy: "traefik", Why: "retired upstream in March 2026"},
}

// Retired returns the retired component called name.
func Retired(name string) (RetiredComponent, bool) {
	for _, r := range RetiredComponents {
		if r.Name == name {
			return r, true
		}
	}
	return RetiredComponent{}, false
}

// RetiredFolder reports whether the repo path p (slash-separated) lies in
// the folder <layer>/<name>/ of a retired component.
func RetiredFolder(p string) (RetiredComponent, bool) {
	for _, r := range RetiredComponents {
		if strings.HasPrefix(p, r.Layer+"/"+r.Name+"/") {
			return r, true
		}
	}
	return RetiredComponent{}, false
}

// ApplyDefaults fills every unset field with its default. It is the one
// place defaults live; Validate runs after it.
func ApplyDefaults(h *Homelab) {
	s := &h.Spec
	if s.Timezone == "" {
		s.Timezone = DefaultTimezone
	}
	if len(s.Network.DNSServers) == 0 && s.Network.Gateway != "" {
		s.Network.DNSServers = []string{s.Network.Gateway}
	}
	m := &s.Metal
	if m.PXE.DHCPMode == "" {
		m.PXE.DHCPMode = DefaultDHCPMode
	}
	if m.PXE.Port == 0 {
		m.PXE.Port = DefaultPXEPort
	}
	if m.OS.Name == "" {
		m.OS.Name = DefaultOSName
	}
	if m.OS.Version == "" {
		if m.OS.Name == OSDebian {
			m.OS.Version = DefaultDebianVersion
		}
	}
	for i := range m.Nodes {
		if mac, err := net.ParseMAC(m.Nodes[i].MAC); err == nil && len(mac) == 6 {
			m.Nodes[i].MAC = mac.String()
		}
	}
	k := &s.Kubernetes
	if k.K3sVersion == "" {
		k.K3sVersion = templates.MustCatalog().K3s
	}
	if k.Disable == nil {
		k.Disable = append([]string(nil), DefaultDisable...)
	}
	if k.SecretsEncryption == nil {
		t := true
		k.SecretsEncryption = &t
	}
	if k.ClusterCIDR == "" {
		k.ClusterCIDR = DefaultClusterCIDR
	}
	if k.ServiceCIDR == "" {
		k.ServiceCIDR = DefaultServiceCIDR
	}
	f := &s.Forge
	if f.Type == "" {
		f.Type = ForgeGitea
	}
	if f.URL == "" && f.Type == ForgeGitHub {
		f.URL = DefaultGitHubURL
	}
	f.URL = strings.TrimSuffix(f.URL, "/")
	if f.DefaultBranch == "" {
		f.DefaultBranch = DefaultBranch
	}
	if s.Apps == nil {
		s.Apps = map[string]App{}
	}
	for _, c := range templates.MustCatalog().Components {
		a := s.Apps[c.Name]
		if a.Enabled == nil {
			on := c.Default
			a.Enabled = &on
		}
		s.Apps[c.Name] = a
	}
	if s.Secrets.RotateAfter == "" {
		s.Secrets.RotateAfter = DefaultRotateAfter
	}
	b := &s.Bot
	if b.Schedule == "" {
		b.Schedule = DefaultBotSchedule
	}
	if b.Timezone == "" {
		b.Timezone = s.Timezone
	}
	if b.Automerge == nil {
		b.Automerge = []string{UpdatePatch}
	}
	if b.MinimumReleaseAge == "" {
		b.MinimumReleaseAge = DefaultMinimumReleaseAge
	}
	if b.Limits.MaxOpenPRs == 0 {
		b.Limits.MaxOpenPRs = DefaultMaxOpenPRs
	}
	if b.Limits.MaxPRsPerRun == 0 {
		b.Limits.MaxPRsPerRun = DefaultMaxPRsPerRun
	}
	if b.Limits.MaxPRsPerHour == 0 {
		b.Limits.MaxPRsPerHour = DefaultMaxPRsPerHour
	}
	for i := range s.SLO {
		if s.SLO[i].Window == "" {
			s.SLO[i].Window = DefaultSLOWindow
		}
	}
	applyAlertingDefaults(&s.Alerting)
	if s.DNS.Provider == "" {
		s.DNS.Provider = DNSCloudflare
	}
	if r := s.DNS.RFC2136; r != nil {
		if r.Port == 0 {
			r.Port = 53
		}
		if r.Zone == "" {
			r.Zone = s.Domain
		}
		r.Zone = strings.TrimSuffix(r.Zone, ".")
		if r.TSIGKeyName == "" {
			r.TSIGKeyName = "hl-" + h.Metadata.Name
		}
		if r.TSIGAlgorithm == "" {
			r.TSIGAlgorithm = DefaultTSIGAlgorithm
		}
	}
}

// DefaultTSIGAlgorithm is the TSIG HMAC of a spec.dns.rfc2136 key.
const DefaultTSIGAlgorithm = "hmac-sha256"

// Enabled reports whether a catalog component is on (after defaults).
func (h *Homelab) Enabled(name string) bool {
	a, ok := h.Spec.Apps[name]
	return ok && a.Enabled != nil && *a.Enabled
}

// Hostname is where a catalog component is served: hl.yaml's
// apps.<name>.hostname, else the catalog's host label under spec.domain;
// "" for a component the catalog serves on no host.
func (h *Homelab) Hostname(component string) string {
	if hn := h.Spec.Apps[component].Hostname; hn != "" {
		return hn
	}
	if c, ok := templates.MustCatalog().Component(component); ok && c.Host != "" {
		return c.Host + "." + h.Spec.Domain
	}
	return ""
}

// Servers returns the server nodes in file order.
func (h *Homelab) Servers() []Node {
	var out []Node
	for _, n := range h.Spec.Metal.Nodes {
		if n.Role == RoleServer {
			out = append(out, n)
		}
	}
	return out
}
