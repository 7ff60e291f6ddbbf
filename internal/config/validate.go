package config

import (
	"fmt"
	"net"
	"net/mail"
	"net/netip"
	"net/url"
	"path"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"
	_ "time/tzdata" // timezone checks must not depend on the host's zoneinfo

	"filippo.io/age"
	"github.com/Masterminds/semver/v3"
	"github.com/robfig/cron/v3"
	"golang.org/x/crypto/ssh"

	"hl.dev/hl/templates"
)

var (
	dnsLabel    = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`)
	k3sVersion  = regexp.MustCompile(`^v[0-9]+\.[0-9]+\.[0-9]+\+k3s[0-9]+$`)
	forgeName   = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,100}$`)
	ifaceName   = regexp.MustCompile(`^[A-Za-z0-9_.:@-]{1,15}$`)
	diskPath    = regexp.MustCompile(`^/dev/[A-Za-z0-9_./-]+$`)
	k3sDisables = []string{"coredns", "local-storage", "metrics-server", "servicelb", "traefik"}
	updateTypes = []string{UpdateMajor, UpdateMinor, UpdatePatch, UpdateDigest}
	severities  = []string{"error", "warning", "off"}
	cronParser  = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)
)

// validator collects problems, locating each by field path in doc.
type validator struct {
	doc   *Document
	probs Problems
}

func (v *validator) add(sev, path, format string, args ...any) {
	p := Problem{Path: path, Message: fmt.Sprintf(format, args...), Severity: sev}
	if v.doc != nil {
		p.File = v.doc.File
		pos := v.doc.PosOf(path)
		p.Line, p.Column = pos.Line, pos.Column
	}
	v.probs = append(v.probs, p)
}

func (v *validator) errorf(path, format string, args ...any) {
	v.add(SeverityError, path, format, args...)
}

func (v *validator) warnf(path, format string, args ...any) {
	v.add(SeverityWarning, path, format, args...)
}

func (v *validator) required(path, value, what string) bool {
	if strings.TrimSpace(value) == "" {
		v.errorf(path, "is required: %s", what)
		return false
	}
	return true
}

// Validate checks a defaulted Homelab and returns every problem found.
// doc locates problems in the source; it may be nil for documents built in
// code.
func Validate(h *Homelab, doc *Document) Problems {
	v := &validator{doc: doc}
	if h.APIVersion != APIVersion {
		v.errorf("apiVersion", "must be %s, got %q", APIVersion, h.APIVersion)
	}
	if h.Kind != Kind {
		v.errorf("kind", "must be %s, got %q", Kind, h.Kind)
	}
	if v.required("metadata.name", h.Metadata.Name, "a DNS label naming the homelab") && !dnsLabel.MatchString(h.Metadata.Name) {
		v.errorf("metadata.name", "%q is not a valid DNS label (lower-case letters, digits and '-', at most 63)", h.Metadata.Name)
	}
	s := &h.Spec
	if v.required("spec.domain", s.Domain, "the domain apps are served under, e.g. home.example.com") {
		if err := checkFQDN(s.Domain); err != nil {
			v.errorf("spec.domain", "%v", err)
		}
	}
	if _, err := time.LoadLocation(s.Timezone); err != nil || s.Timezone == "Local" {
		v.errorf("spec.timezone", "unknown timezone %q: use an IANA name such as Europe/Berlin", s.Timezone)
	}
	if v.required("spec.email", s.Email, "an address for Let's Encrypt and alerts") {
		if a, err := mail.ParseAddress(s.Email); err != nil || a.Address != s.Email {
			v.errorf("spec.email", "%q is not a plain email address", s.Email)
		}
	}
	v.network(h)
	v.metal(h)
	v.kubernetes(h)
	v.forge(h)
	v.apps(h)
	v.secrets(h)
	v.mirrors(h)
	v.bot(h)
	v.slo(h)
	for id, sev := range s.Validation.Policies {
		if !slices.Contains(severities, sev) {
			v.errorf(joinPath("spec.validation.policies", id), "must be one of %s, got %q", strings.Join(severities, ", "), sev)
		}
	}
	return v.probs
}

func checkFQDN(d string) error {
	if len(d) > 253 || !strings.Contains(d, ".") {
		return fmt.Errorf("%q is not a fully qualified domain name (e.g. home.example.com)", d)
	}
	for _, l := range strings.Split(d, ".") {
		if !dnsLabel.MatchString(l) {
			return fmt.Errorf("%q is not a valid domain: label %q must be lower-case letters, digits and '-'", d, l)
		}
	}
	return nil
}

// owner is who uses an address, for "used twice" messages.
type owner struct{ path, what string }

func (v *validator) network(h *Homelab) {
	n := &h.Spec.Network
	m := &h.Spec.Metal
	var prefix netip.Prefix
	if v.required("spec.network.nodeCIDR", n.NodeCIDR, "the node LAN, e.g. 192.168.1.0/24") {
		p, err := netip.ParsePrefix(n.NodeCIDR)
		switch {
		case err != nil:
			v.errorf("spec.network.nodeCIDR", "%q is not a CIDR (e.g. 192.168.1.0/24)", n.NodeCIDR)
		case p.Masked() != p:
			v.errorf("spec.network.nodeCIDR", "%q is not canonical: did you mean %s?", n.NodeCIDR, p.Masked())
		default:
			prefix = p
		}
	}
	used := map[netip.Addr]owner{}
	claim := func(path, what, s string) (netip.Addr, bool) {
		a, err := netip.ParseAddr(s)
		if err != nil {
			v.errorf(path, "%q is not an IP address", s)
			return a, false
		}
		if prefix.IsValid() {
			if !prefix.Contains(a) {
				v.errorf(path, "%s is outside spec.network.nodeCIDR %s", a, prefix)
			} else if a.Is4() && (a == prefix.Addr() || a == lastAddr(prefix)) && prefix.Bits() < 31 {
				v.errorf(path, "%s is the network or broadcast address of %s", a, prefix)
			}
		}
		if prev, dup := used[a]; dup {
			v.errorf(path, "%s is already used by %s (%s)", a, prev.what, prev.path)
			return a, false
		}
		used[a] = owner{path, what}
		return a, true
	}
	if v.required("spec.network.gateway", n.Gateway, "the LAN's default gateway") {
		claim("spec.network.gateway", "the gateway", n.Gateway)
	}
	if v.required("spec.network.controlPlaneVIP", n.ControlPlaneVIP, "a free address for the Kubernetes API") {
		claim("spec.network.controlPlaneVIP", "the control-plane VIP", n.ControlPlaneVIP)
	}
	if v.required("spec.metal.pxe.address", m.PXE.Address, "the address of the host running hl metal serve") {
		claim("spec.metal.pxe.address", "the PXE controller", m.PXE.Address)
	}
	for i, node := range m.Nodes {
		p := fmt.Sprintf("spec.metal.nodes[%d].ip", i)
		if v.required(p, node.IP, "the node's static address") {
			claim(p, "node "+node.Name, node.IP)
		}
	}
	for i, d := range n.DNSServers {
		if _, err := netip.ParseAddr(d); err != nil {
			v.errorf(fmt.Sprintf("spec.network.dnsServers[%d]", i), "%q is not an IP address", d)
		}
	}
	if v.required("spec.network.loadBalancerRange", n.LoadBalancerRange, "a free range for LoadBalancer services, e.g. 192.168.1.220-192.168.1.239") {
		first, last, err := parseRange(n.LoadBalancerRange)
		if err != nil {
			v.errorf("spec.network.loadBalancerRange", "%v", err)
			return
		}
		if prefix.IsValid() && (!prefix.Contains(first) || !prefix.Contains(last)) {
			v.errorf("spec.network.loadBalancerRange", "%s is not inside spec.network.nodeCIDR %s", n.LoadBalancerRange, prefix)
		}
		addrs := make([]netip.Addr, 0, len(used))
		for a := range used {
			addrs = append(addrs, a)
		}
		sort.Slice(addrs, func(i, j int) bool { return addrs[i].Less(addrs[j]) })
		for _, a := range addrs {
			if first.Compare(a) <= 0 && a.Compare(last) <= 0 {
				o := used[a]
				v.errorf("spec.network.loadBalancerRange", "%s overlaps %s at %s (%s)", n.LoadBalancerRange, o.what, a, o.path)
			}
		}
	}
}

func lastAddr(p netip.Prefix) netip.Addr {
	a := p.Masked().Addr().As16()
	bits := p.Bits()
	if p.Addr().Is4() {
		bits += 96
	}
	for i := bits; i < 128; i++ {
		a[i/8] |= 1 << (7 - i%8)
	}
	out := netip.AddrFrom16(a)
	if p.Addr().Is4() {
		return out.Unmap()
	}
	return out
}

func parseRange(s string) (netip.Addr, netip.Addr, error) {
	a, b, ok := strings.Cut(s, "-")
	first, err1 := netip.ParseAddr(strings.TrimSpace(a))
	last, err2 := netip.ParseAddr(strings.TrimSpace(b))
	if !ok || err1 != nil || err2 != nil {
		return first, last, fmt.Errorf("%q is not a range: want FIRST-LAST, e.g. 192.168.1.220-192.168.1.239", s)
	}
	if last.Less(first) {
		return first, last, fmt.Errorf("%q: the first address is after the last", s)
	}
	return first, last, nil
}

func (v *validator) metal(h *Homelab) {
	m := &h.Spec.Metal
	if m.PXE.DHCPMode != DHCPProxy && m.PXE.DHCPMode != DHCPFull {
		v.errorf("spec.metal.pxe.dhcpMode", "must be proxy or full, got %q", m.PXE.DHCPMode)
	}
	if m.PXE.Port < 1 || m.PXE.Port > 65535 {
		v.errorf("spec.metal.pxe.port", "%d is not a TCP port", m.PXE.Port)
	}
	cat := templates.MustCatalog()
	switch m.OS.Name {
	case OSDebian, OSFedora:
		if _, ok := cat.OSImage(m.OS.Name, m.OS.Version); !ok {
			v.errorf("spec.metal.os.version", "no pinned netboot image for %s %s; pinned: %s", m.OS.Name, m.OS.Version, strings.Join(cat.OSVersions(m.OS.Name), ", "))
		}
	default:
		v.errorf("spec.metal.os.name", "must be debian or fedora, got %q", m.OS.Name)
	}
	if len(m.SSHAuthorizedKeys) == 0 {
		v.errorf("spec.metal.sshAuthorizedKeys", "at least one SSH public key is required: root login is locked, this is the way in")
	}
	for i, k := range m.SSHAuthorizedKeys {
		if _, _, _, rest, err := ssh.ParseAuthorizedKey([]byte(k)); err != nil || len(strings.TrimSpace(string(rest))) > 0 {
			v.errorf(fmt.Sprintf("spec.metal.sshAuthorizedKeys[%d]", i), "not an SSH public key in authorized_keys format (ssh-ed25519 AAAA... comment)")
		}
	}
	if len(m.Nodes) == 0 {
		v.errorf("spec.metal.nodes", "at least one node is required")
		return
	}
	names := map[string]int{}
	macs := map[string]int{}
	servers := 0
	for i, n := range m.Nodes {
		p := fmt.Sprintf("spec.metal.nodes[%d]", i)
		if v.required(p+".name", n.Name, "the node's hostname") {
			if !dnsLabel.MatchString(n.Name) {
				v.errorf(p+".name", "%q is not a valid DNS label (lower-case letters, digits and '-', at most 63)", n.Name)
			} else if j, dup := names[n.Name]; dup {
				v.errorf(p+".name", "%q is already the name of spec.metal.nodes[%d]", n.Name, j)
			} else {
				names[n.Name] = i
			}
		}
		switch n.Role {
		case RoleServer:
			servers++
		case RoleAgent:
		case "":
			v.errorf(p+".role", "is required: server or agent")
		default:
			v.errorf(p+".role", "must be server or agent, got %q", n.Role)
		}
		if v.required(p+".mac", n.MAC, "the MAC address of the PXE-booting interface") {
			mac, err := net.ParseMAC(n.MAC)
			if err != nil || len(mac) != 6 {
				v.errorf(p+".mac", "%q is not a MAC address (e.g. 52:54:00:12:34:56)", n.MAC)
			} else if j, dup := macs[mac.String()]; dup {
				v.errorf(p+".mac", "%s is already the MAC of spec.metal.nodes[%d] (%s)", mac, j, m.Nodes[j].Name)
			} else {
				macs[mac.String()] = i
			}
		}
		if v.required(p+".disk", n.Disk, "the disk the installer wipes, e.g. /dev/sda") && !diskPath.MatchString(n.Disk) {
			v.errorf(p+".disk", "%q is not a device path under /dev", n.Disk)
		}
		if n.Interface != "" && !ifaceName.MatchString(n.Interface) {
			v.errorf(p+".interface", "%q is not a network interface name", n.Interface)
		}
	}
	switch {
	case servers == 0:
		v.errorf("spec.metal.nodes", "at least one node must have role server")
	case servers == 2 || servers%2 == 0:
		v.warnf("spec.metal.nodes", "%d servers: embedded etcd needs an odd number to keep quorum when one fails; use 1, 3 or 5", servers)
	}
}

func (v *validator) kubernetes(h *Homelab) {
	k := &h.Spec.Kubernetes
	if !k3sVersion.MatchString(k.K3sVersion) {
		v.errorf("spec.kubernetes.k3sVersion", "%q does not look like a k3s release (vX.Y.Z+k3sN, e.g. %s)", k.K3sVersion, templates.MustCatalog().K3s)
	}
	for i, d := range k.Disable {
		if !slices.Contains(k3sDisables, d) {
			v.errorf(fmt.Sprintf("spec.kubernetes.disable[%d]", i), "unknown k3s component %q; one of %s", d, strings.Join(k3sDisables, ", "))
		}
	}
	nodeNet, _ := netip.ParsePrefix(h.Spec.Network.NodeCIDR)
	nets := map[string]netip.Prefix{"spec.network.nodeCIDR": nodeNet}
	for _, c := range []struct{ path, val string }{{"spec.kubernetes.clusterCIDR", k.ClusterCIDR}, {"spec.kubernetes.serviceCIDR", k.ServiceCIDR}} {
		p, err := netip.ParsePrefix(c.val)
		if err != nil || p.Masked() != p {
			v.errorf(c.path, "%q is not a canonical CIDR", c.val)
			continue
		}
		others := make([]string, 0, len(nets))
		for o := range nets {
			others = append(others, o)
		}
		sort.Strings(others)
		for _, o := range others {
			if nets[o].IsValid() && nets[o].Overlaps(p) {
				v.errorf(c.path, "%s overlaps %s %s", p, o, nets[o])
			}
		}
		nets[c.path] = p
	}
}

func (v *validator) forge(h *Homelab) {
	f := &h.Spec.Forge
	if f.Type != ForgeGitea && f.Type != ForgeGitHub {
		v.errorf("spec.forge.type", "must be gitea or github, got %q", f.Type)
	}
	if v.required("spec.forge.url", f.URL, "the forge's base URL, e.g. https://git.home.example.com") {
		u, err := url.Parse(f.URL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			v.errorf("spec.forge.url", "%q is not an http(s) URL", f.URL)
		}
	}
	for _, c := range []struct{ path, val, what string }{
		{"spec.forge.owner", f.Owner, "the user or organisation owning the repo"},
		{"spec.forge.repo", f.Repo, "the repository name"},
		{"spec.forge.defaultBranch", f.DefaultBranch, "the default branch"},
	} {
		if v.required(c.path, c.val, c.what) && !forgeName.MatchString(c.val) {
			v.errorf(c.path, "%q may hold only letters, digits, '.', '_' and '-'", c.val)
		}
	}
}

func (v *validator) apps(h *Homelab) {
	cat := templates.MustCatalog()
	names := make([]string, 0, len(h.Spec.Apps))
	for name := range h.Spec.Apps {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		p := joinPath("spec.apps", name)
		c, ok := cat.Component(name)
		if !ok {
			hint := ""
			best, bd := "", 4
			for _, n := range cat.Names() {
				if d := levenshtein(name, n); d < bd {
					best, bd = n, d
				}
			}
			if best != "" {
				hint = fmt.Sprintf(" (did you mean %q?)", best)
			}
			v.errorf(p, "unknown catalog component %q%s; known: %s", name, hint, strings.Join(cat.Names(), ", "))
			continue
		}
		app := h.Spec.Apps[name]
		if app.Hostname != "" {
			if err := checkFQDN(app.Hostname); err != nil {
				v.errorf(p+".hostname", "%v", err)
			}
		}
		if !h.Enabled(name) {
			if c.Required {
				v.errorf(p+".enabled", "%s cannot be disabled: the homelab does not work without it (%s)", name, c.Description)
			}
			continue
		}
		for _, r := range c.Requires {
			if r.WhenForge != "" && r.WhenForge != h.Spec.Forge.Type {
				continue
			}
			if !h.Enabled(r.Component) {
				v.errorf(p+".enabled", "%s needs %s (%s): enable spec.apps.%s or disable spec.apps.%s", name, r.Component, r.Why, r.Component, name)
			}
		}
	}
}

func (v *validator) secrets(h *Homelab) {
	s := &h.Spec.Secrets
	if len(s.AgeRecipients) == 0 {
		v.errorf("spec.secrets.ageRecipients", "at least one age recipient (age1...) is required; `hl secrets keygen` makes one")
	}
	seen := map[string]int{}
	for i, r := range s.AgeRecipients {
		p := fmt.Sprintf("spec.secrets.ageRecipients[%d]", i)
		if _, err := age.ParseX25519Recipient(r); err != nil {
			v.errorf(p, "%q is not an age X25519 recipient (age1...)", r)
		} else if j, dup := seen[r]; dup {
			v.errorf(p, "already listed as spec.secrets.ageRecipients[%d]", j)
		} else {
			seen[r] = i
		}
	}
	v.duration("spec.secrets.rotateAfter", s.RotateAfter, 24*time.Hour)
}

func (v *validator) duration(path string, d Duration, atLeast time.Duration) {
	got, err := d.Parse()
	if err != nil {
		v.errorf(path, "%v", err)
	} else if d != "" && got < atLeast {
		v.errorf(path, "%s is shorter than the minimum %s", d, humanDuration(atLeast))
	}
}

func (v *validator) mirrors(h *Homelab) {
	check := func(kind string, ms []Mirror, isURL bool) {
		seen := map[string]int{}
		for i, m := range ms {
			p := fmt.Sprintf("spec.mirrors.%s[%d]", kind, i)
			v.required(p+".from", m.From, "the upstream prefix")
			v.required(p+".to", m.To, "the mirror prefix")
			if j, dup := seen[m.From]; dup && m.From != "" {
				v.errorf(p+".from", "%q is already mirrored by spec.mirrors.%s[%d]", m.From, kind, j)
			}
			seen[m.From] = i
			if isURL {
				for _, s := range []struct{ f, val string }{{"from", m.From}, {"to", m.To}} {
					if u, err := url.Parse(s.val); s.val != "" && (err != nil || u.Host == "" || !slices.Contains([]string{"http", "https", "oci"}, u.Scheme)) {
						v.errorf(p+"."+s.f, "%q is not an http(s):// or oci:// URL", s.val)
					}
				}
			} else {
				for _, s := range []struct{ f, val string }{{"from", m.From}, {"to", m.To}} {
					if strings.Contains(s.val, "://") {
						v.errorf(p+"."+s.f, "%q: registries are written without a scheme (e.g. docker.io, registry.lan:5000/cache)", s.val)
					}
				}
			}
		}
	}
	check("charts", h.Spec.Mirrors.Charts, true)
	check("registries", h.Spec.Mirrors.Registries, false)
}

func (v *validator) bot(h *Homelab) {
	b := &h.Spec.Bot
	if _, err := cronParser.Parse(b.Schedule); err != nil {
		v.errorf("spec.bot.schedule", "%q is not a cron schedule: %v", b.Schedule, err)
	}
	// An unset bot timezone inherits spec.timezone, already checked.
	if _, err := time.LoadLocation(b.Timezone); (err != nil || b.Timezone == "Local") && b.Timezone != h.Spec.Timezone {
		v.errorf("spec.bot.timezone", "unknown timezone %q: use an IANA name such as Europe/Berlin", b.Timezone)
	}
	checkTypes := func(path string, ts []string) {
		for i, t := range ts {
			if !slices.Contains(updateTypes, t) {
				v.errorf(fmt.Sprintf("%s[%d]", path, i), "unknown update type %q; one of %s", t, strings.Join(updateTypes, ", "))
			}
		}
	}
	checkTypes("spec.bot.automerge", b.Automerge)
	v.duration("spec.bot.minimumReleaseAge", b.MinimumReleaseAge, 0)
	v.duration("spec.bot.rotateDataKeys", b.RotateDataKeys, 24*time.Hour)
	for _, l := range []struct {
		path string
		n    int
	}{{"spec.bot.limits.maxOpenPRs", b.Limits.MaxOpenPRs}, {"spec.bot.limits.maxPRsPerRun", b.Limits.MaxPRsPerRun}, {"spec.bot.limits.maxPRsPerHour", b.Limits.MaxPRsPerHour}} {
		if l.n < 0 {
			v.errorf(l.path, "must not be negative")
		}
	}
	groups := map[string]int{}
	for i, g := range b.Groups {
		p := fmt.Sprintf("spec.bot.groups[%d]", i)
		if v.required(p+".name", g.Name, "a name for the group's branch and PR title") {
			if !dnsLabel.MatchString(g.Name) {
				v.errorf(p+".name", "%q must be lower-case letters, digits and '-' (it becomes a branch name)", g.Name)
			} else if j, dup := groups[g.Name]; dup {
				v.errorf(p+".name", "%q is already the name of spec.bot.groups[%d]", g.Name, j)
			}
			groups[g.Name] = i
		}
		checkTypes(p+".updateTypes", g.UpdateTypes)
		v.globs(p+".packages", g.Packages)
	}
	for i, ig := range b.Ignore {
		p := fmt.Sprintf("spec.bot.ignore[%d]", i)
		if v.required(p+".package", ig.Package, "a package name or glob") {
			v.globs(p+".package", []string{ig.Package})
		}
		checkTypes(p+".updateTypes", ig.UpdateTypes)
		if ig.Versions != "" {
			if _, err := semver.NewConstraint(ig.Versions); err != nil {
				v.errorf(p+".versions", "%q is not a version constraint (e.g. \">=2.0.0\"): %v", ig.Versions, err)
			}
		}
	}
}

func (v *validator) globs(p string, gs []string) {
	for i, g := range gs {
		if _, err := path.Match(g, ""); err != nil {
			q := p
			if len(gs) > 1 || strings.HasSuffix(p, "packages") {
				q = fmt.Sprintf("%s[%d]", p, i)
			}
			v.errorf(q, "%q is not a valid glob: %v", g, err)
		}
	}
}

func (v *validator) slo(h *Homelab) {
	if len(h.Spec.SLO) > 0 && !h.Enabled("monitoring") {
		v.errorf("spec.slo", "SLOs are evaluated by monitoring: enable spec.apps.monitoring or remove spec.slo")
	}
	seen := map[string]int{}
	for i, s := range h.Spec.SLO {
		p := fmt.Sprintf("spec.slo[%d]", i)
		if _, ok := templates.MustCatalog().Component(s.App); !ok {
			v.errorf(p+".app", "unknown catalog component %q", s.App)
		} else if !h.Enabled(s.App) {
			v.errorf(p+".app", "%s is not enabled: enable spec.apps.%s or remove this SLO", s.App, s.App)
		}
		if j, dup := seen[s.App]; dup {
			v.errorf(p+".app", "%s already has an SLO at spec.slo[%d]", s.App, j)
		}
		seen[s.App] = i
		if s.Availability <= 0 || s.Availability >= 100 {
			v.errorf(p+".availability", "%v is not a percentage between 0 and 100 (exclusive), e.g. 99.9", s.Availability)
		}
		v.duration(p+".window", s.Window, time.Hour)
	}
}

func humanDuration(d time.Duration) string {
	if d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	}
	return d.String()
}
