package config

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"path"
	"regexp"
	"slices"
	"sort"
	"strconv"
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
	dnsLabel    = ruleDNSLabel.re
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
		v.errorf("apiVersion", "must be %s, got %s", APIVersion, quoteValue(h.APIVersion))
	}
	if h.Kind != Kind {
		v.errorf("kind", "must be %s, got %s", Kind, quoteValue(h.Kind))
	}
	if v.required("metadata.name", h.Metadata.Name, "a DNS label naming the homelab") && !dnsLabel.MatchString(h.Metadata.Name) {
		v.errorf("metadata.name", "%s is not a valid DNS label (lower-case letters, digits and '-', at most 63)", quoteValue(h.Metadata.Name))
	}
	s := &h.Spec
	if v.required("spec.domain", s.Domain, "the domain apps are served under, e.g. home.example.com") {
		if err := checkFQDN(s.Domain); err != nil {
			v.errorf("spec.domain", "%v", err)
		}
	}
	v.timezone("spec.timezone", s.Timezone)
	if v.required("spec.email", s.Email, "an address for Let's Encrypt and alerts") && !ruleEmail.ok(s.Email) {
		v.errorf("spec.email", "%s is not a plain email address (letters, digits and ._%%+- before the @, a DNS domain after it)", quoteValue(s.Email))
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
	v.alerting(h)
	v.people(h)
	v.dns(h)
	for id, sev := range s.Validation.Policies {
		p := joinPath("spec.validation.policies", id)
		if !rulePolicyID.ok(id) {
			v.errorf(p, "%s is not a policy id (lower-case letters, digits and '-'; hl validate --help lists them)", quoteValue(id))
		} else if !slices.Contains(severities, sev) {
			v.errorf(p, "must be one of %s, got %s", strings.Join(severities, ", "), quoteValue(sev))
		}
	}
	for i, w := range s.Validation.PrivilegedAllowed {
		p := fmt.Sprintf("spec.validation.privilegedAllowed[%d]", i)
		if _, err := path.Match(w, ""); err != nil || !ruleWorkload.ok(w) {
			v.errorf(p, "%s is not a namespace/name pattern (e.g. storage/longhorn-*)", quoteValue(w))
		}
	}
	return v.probs
}

// timezone checks an IANA zone name; "Local" depends on the machine.
func (v *validator) timezone(path, tz string) {
	if _, err := time.LoadLocation(tz); err != nil || tz == "Local" || !ruleTimezone.ok(tz) {
		v.errorf(path, "unknown timezone %s: use an IANA name such as Europe/Berlin", quoteValue(tz))
	}
}

func checkFQDN(d string) error {
	if len(d) > 253 || !strings.Contains(d, ".") {
		return fmt.Errorf("%s is not a fully qualified domain name (e.g. home.example.com)", quoteValue(d))
	}
	for _, l := range strings.Split(d, ".") {
		if !dnsLabel.MatchString(l) {
			return fmt.Errorf("%s is not a valid domain: label %q must be lower-case letters, digits and '-'", quoteValue(d), l)
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
		case err != nil || !ruleCIDR.ok(n.NodeCIDR):
			v.errorf("spec.network.nodeCIDR", "%s is not a CIDR (e.g. 192.168.1.0/24)", quoteValue(n.NodeCIDR))
		case p.Masked() != p:
			v.errorf("spec.network.nodeCIDR", "%q is not canonical: did you mean %s?", n.NodeCIDR, p.Masked())
		default:
			prefix = p
		}
	}
	used := map[netip.Addr]owner{}
	claim := func(path, what, s string) (netip.Addr, bool) {
		a, err := parseAddr(s)
		if err != nil {
			v.errorf(path, "%v", err)
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
		if _, err := parseAddr(d); err != nil {
			v.errorf(fmt.Sprintf("spec.network.dnsServers[%d]", i), "%v", err)
		}
	}
	if v.required("spec.network.loadBalancerRange", n.LoadBalancerRange, "a free range for LoadBalancer services, e.g. 192.168.1.220-192.168.1.239") {
		first, last, err := parseRange(n.LoadBalancerRange)
		if err == nil && !ruleIPRange.ok(n.LoadBalancerRange) {
			err = fmt.Errorf("%s is not a range: write FIRST-LAST without spaces, e.g. 192.168.1.220-192.168.1.239", quoteValue(n.LoadBalancerRange))
		}
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

// parseAddr parses an IP address without an IPv6 zone: a zone
// ("fe80::1%eth0") may hold any character and no rendered file needs one.
func parseAddr(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" || !ruleIP.ok(s) {
		return a, fmt.Errorf("%s is not an IP address", quoteValue(s))
	}
	return a, nil
}

func parseRange(s string) (netip.Addr, netip.Addr, error) {
	a, b, ok := strings.Cut(s, "-")
	first, err1 := parseAddr(strings.TrimSpace(a))
	last, err2 := parseAddr(strings.TrimSpace(b))
	if !ok || err1 != nil || err2 != nil {
		return first, last, fmt.Errorf("%s is not a range: want FIRST-LAST, e.g. 192.168.1.220-192.168.1.239", quoteValue(s))
	}
	if last.Less(first) {
		return first, last, fmt.Errorf("%q: the first address is after the last", s)
	}
	return first, last, nil
}

// otherVersions is versions without skip, each quoted.
func otherVersions(versions []string, skip string) []string {
	var out []string
	for _, v := range versions {
		if v != skip {
			out = append(out, quoteValue(v))
		}
	}
	return out
}

func (v *validator) metal(h *Homelab) {
	m := &h.Spec.Metal
	if m.PXE.DHCPMode != DHCPProxy && m.PXE.DHCPMode != DHCPFull {
		v.errorf("spec.metal.pxe.dhcpMode", "must be proxy or full, got %s", quoteValue(m.PXE.DHCPMode))
	}
	if m.PXE.Port < 1 || m.PXE.Port > 65535 {
		v.errorf("spec.metal.pxe.port", "%d is not a TCP port", m.PXE.Port)
	}
	cat := templates.MustCatalog()
	switch m.OS.Name {
	case OSDebian:
		if _, ok := cat.OSImage(m.OS.Name, m.OS.Version); !ok {
			v.errorf("spec.metal.os.version", "no pinned netboot image for %s %s; pinned: %s", m.OS.Name, quoteValue(m.OS.Version), strings.Join(cat.OSVersions(m.OS.Name), ", "))
		}
	case OSFedora:
		v.errorf("spec.metal.os.name", "Fedora is no longer offered: nodes install only netboot images pinned by checksum, and none is pinned for a supported Fedora release; use name: debian (version %s, the default, or %s)", quoteValue(DefaultDebianVersion), strings.Join(otherVersions(cat.OSVersions(OSDebian), DefaultDebianVersion), ", "))
	default:
		v.errorf("spec.metal.os.name", "must be debian, got %s", quoteValue(m.OS.Name))
	}
	if len(m.SSHAuthorizedKeys) == 0 {
		v.errorf("spec.metal.sshAuthorizedKeys", "at least one SSH public key is required: root login is locked, this is the way in")
	}
	for i, k := range m.SSHAuthorizedKeys {
		p := fmt.Sprintf("spec.metal.sshAuthorizedKeys[%d]", i)
		_, _, opts, rest, err := ssh.ParseAuthorizedKey([]byte(k))
		switch {
		case err != nil || len(strings.TrimSpace(string(rest))) > 0:
			v.errorf(p, "not an SSH public key in authorized_keys format (ssh-ed25519 AAAA... comment)")
		case len(opts) > 0:
			v.errorf(p, "authorized_keys options (%s) are not supported: write the key type, the key and a comment", strings.Join(opts, ","))
		case !ruleSSHKey.ok(k):
			v.errorf(p, "the key's comment may hold only letters, digits, single spaces and @._+=:,/- (e.g. admin@laptop)")
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
				v.errorf(p+".name", "%s is not a valid DNS label (lower-case letters, digits and '-', at most 63)", quoteValue(n.Name))
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
			v.errorf(p+".role", "must be server or agent, got %s", quoteValue(n.Role))
		}
		if v.required(p+".mac", n.MAC, "the MAC address of the PXE-booting interface") {
			mac, err := net.ParseMAC(n.MAC)
			if err != nil || len(mac) != 6 || !ruleMAC.ok(n.MAC) {
				v.errorf(p+".mac", "%s is not a MAC address (e.g. 52:54:00:12:34:56)", quoteValue(n.MAC))
			} else if j, dup := macs[mac.String()]; dup {
				v.errorf(p+".mac", "%s is already the MAC of spec.metal.nodes[%d] (%s)", mac, j, m.Nodes[j].Name)
			} else {
				macs[mac.String()] = i
			}
		}
		if v.required(p+".disk", n.Disk, "the disk the installer wipes, e.g. /dev/sda") && !ruleDisk.ok(n.Disk) {
			v.errorf(p+".disk", "%s is not a device path under /dev (letters, digits and _.:- in each part, no \"..\"; e.g. /dev/sda, /dev/disk/by-id/nvme-...)", quoteValue(n.Disk))
		}
		if n.Interface != "" && !ruleInterface.ok(n.Interface) {
			v.errorf(p+".interface", "%s is not a network interface name", quoteValue(n.Interface))
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
	if !ruleK3s.ok(k.K3sVersion) {
		v.errorf("spec.kubernetes.k3sVersion", "%s does not look like a k3s release (vX.Y.Z+k3sN, e.g. %s)", quoteValue(k.K3sVersion), templates.MustCatalog().K3s)
	}
	for i, d := range k.Disable {
		if !slices.Contains(k3sDisables, d) {
			v.errorf(fmt.Sprintf("spec.kubernetes.disable[%d]", i), "unknown k3s component %s; one of %s", quoteValue(d), strings.Join(k3sDisables, ", "))
		}
	}
	nodeNet, _ := netip.ParsePrefix(h.Spec.Network.NodeCIDR)
	nets := map[string]netip.Prefix{"spec.network.nodeCIDR": nodeNet}
	for _, c := range []struct{ path, val string }{{"spec.kubernetes.clusterCIDR", k.ClusterCIDR}, {"spec.kubernetes.serviceCIDR", k.ServiceCIDR}} {
		p, err := netip.ParsePrefix(c.val)
		if err != nil || p.Masked() != p || !ruleCIDR.ok(c.val) {
			v.errorf(c.path, "%s is not a canonical CIDR", quoteValue(c.val))
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
	if p, err := netip.ParsePrefix(k.ServiceCIDR); err == nil && p.Masked() == p && h.ForgeServiceIP() == "" {
		if in, _ := h.InClusterForge(); in {
			v.errorf("spec.kubernetes.serviceCIDR", "%s is too small: the in-cluster forge's Service takes its address %d", p, forgeServiceOffset)
		}
	}
}

func (v *validator) forge(h *Homelab) {
	f := &h.Spec.Forge
	if f.Type != ForgeGitea && f.Type != ForgeGitHub {
		v.errorf("spec.forge.type", "must be gitea or github, got %s", quoteValue(f.Type))
	}
	if v.required("spec.forge.url", f.URL, "the forge's base URL, e.g. https://git.home.example.com") {
		if u, ok := v.url("spec.forge.url", f.URL, ruleHTTPURL, "http", "https"); ok && u.Scheme == "http" {
			v.warnf("spec.forge.url", "%s is plain http: hl's forge token (an admin token for hl bootstrap gitea) crosses the network in cleartext; use https", quoteValue(f.URL))
		}
	}
	for _, c := range []struct{ path, val, what string }{
		{"spec.forge.owner", f.Owner, "the user or organisation owning the repo"},
		{"spec.forge.repo", f.Repo, "the repository name"},
	} {
		if v.required(c.path, c.val, c.what) && !ruleForgeName.ok(c.val) {
			if strings.Contains(c.val, "..") || strings.Trim(c.val, ".") == "" {
				v.errorf(c.path, "%s: a name may not be \".\" or \"..\" or hold \"..\"", quoteValue(c.val))
			} else {
				v.errorf(c.path, "%s may hold only letters, digits, '.', '_' and '-'", quoteValue(c.val))
			}
		}
	}
	if b := f.DefaultBranch; v.required("spec.forge.defaultBranch", b, "the default branch") && (!ruleBranch.ok(b) || strings.HasSuffix(b, ".lock")) {
		v.errorf("spec.forge.defaultBranch", "%s is not a branch name hl accepts: letters, digits and '.', '_', '-', '/'; no part starting or ending with '.', no \"..\", no .lock suffix", quoteValue(b))
	}
}

// url checks a URL against r (which allows no credentials, query,
// fragment, whitespace or quotes) and the scheme allowlist, and returns
// it parsed.
func (v *validator) url(p, s string, r *rule, schemes ...string) (*url.URL, bool) {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || !slices.Contains(schemes, u.Scheme) {
		v.errorf(p, "%s is not %s URL", quoteValue(s), schemeList(schemes))
		return nil, false
	}
	if !r.ok(s) {
		v.errorf(p, "%s is not %s URL hl accepts: a host, an optional port and path of letters, digits and ._~-; no user, query, fragment, spaces, quotes or %%-escapes", quoteValue(s), schemeList(schemes))
		return nil, false
	}
	if port := u.Port(); port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			v.errorf(p, "%s: port %s is not a TCP port", quoteValue(s), port)
			return nil, false
		}
	}
	if h := u.Hostname(); strings.Contains(u.Host, "[") {
		if a, err := netip.ParseAddr(h); err != nil || !a.Is6() || a.Zone() != "" {
			v.errorf(p, "%s: %s is not an IPv6 address", quoteValue(s), h)
			return nil, false
		}
	}
	return u, true
}

func schemeList(schemes []string) string {
	if slices.Contains(schemes, "oci") {
		return "an http(s):// or oci://"
	}
	return "an http(s)"
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
		if r, retired := Retired(name); retired && !ok {
			// Only enabling it carries over by itself: the replacement
			// renders anyway. A hostname or values were meant for the
			// old chart and need a person.
			if a := h.Spec.Apps[name]; a.Hostname == "" && len(a.Values) == 0 {
				v.warnf(p, "%s was %s and is replaced by %s, which renders in its place: remove this entry", name, r.Why, r.ReplacedBy)
			} else {
				v.errorf(p, "%s was %s and is replaced by %s: move what still applies of its hostname and values to spec.apps.%s (they are %s chart values now) and remove this entry", name, r.Why, r.ReplacedBy, r.ReplacedBy, r.ReplacedBy)
			}
			continue
		}
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
			v.errorf(p, "unknown catalog component %s%s; known: %s", quoteValue(name), hint, strings.Join(cat.Names(), ", "))
			continue
		}
		if !ruleDNSLabel.ok(name) {
			continue // not a catalog name either, reported above
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
		if _, err := age.ParseX25519Recipient(r); err != nil || !ruleAge.ok(r) {
			v.errorf(p, "%s is not an age X25519 recipient (age1...)", quoteValue(r))
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
			for _, s := range []struct{ f, val string }{{"from", m.From}, {"to", m.To}} {
				switch {
				case s.val == "":
				case isURL:
					v.url(p+"."+s.f, s.val, ruleChartRepo, "http", "https", "oci")
				case strings.Contains(s.val, "://"):
					v.errorf(p+"."+s.f, "%s: registries are written without a scheme (e.g. docker.io, registry.lan:5000/cache)", quoteValue(s.val))
				case !ruleRegistry.ok(s.val):
					v.errorf(p+"."+s.f, "%s is not a registry prefix: host[:port][/path] with lower-case path parts (e.g. docker.io, registry.lan:5000/cache)", quoteValue(s.val))
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
		v.errorf("spec.bot.schedule", "%s is not a cron schedule: %v", quoteValue(b.Schedule), err)
	} else if !ruleCron.ok(b.Schedule) {
		v.errorf("spec.bot.schedule", "%s: write five fields separated by single spaces, or a descriptor such as @daily (the time zone goes into spec.bot.timezone)", quoteValue(b.Schedule))
	}
	// An unset bot timezone inherits spec.timezone, already checked.
	if b.Timezone != h.Spec.Timezone {
		v.timezone("spec.bot.timezone", b.Timezone)
	}
	checkTypes := func(path string, ts []string) {
		for i, t := range ts {
			if !slices.Contains(updateTypes, t) {
				v.errorf(fmt.Sprintf("%s[%d]", path, i), "unknown update type %s; one of %s", quoteValue(t), strings.Join(updateTypes, ", "))
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
				v.errorf(p+".name", "%s must be lower-case letters, digits and '-' (it becomes a branch name)", quoteValue(g.Name))
			} else if j, dup := groups[g.Name]; dup {
				v.errorf(p+".name", "%q is already the name of spec.bot.groups[%d]", g.Name, j)
			}
			groups[g.Name] = i
		}
		checkTypes(p+".updateTypes", g.UpdateTypes)
		v.globs(p+".packages", g.Packages)
	}
	v.botRules(b)
	for i, ig := range b.Ignore {
		p := fmt.Sprintf("spec.bot.ignore[%d]", i)
		if v.required(p+".package", ig.Package, "a package name or glob") {
			v.globs(p+".package", []string{ig.Package})
		}
		checkTypes(p+".updateTypes", ig.UpdateTypes)
		if ig.Versions != "" {
			if _, err := semver.NewConstraint(ig.Versions); err != nil || !ruleSemverSet.ok(ig.Versions) {
				v.errorf(p+".versions", "%s is not a version constraint (e.g. \">=2.0.0\")", quoteValue(ig.Versions))
			}
		}
	}
}

// botRules checks spec.bot.rules and spec.bot.helmRepositories.
func (v *validator) botRules(b *Bot) {
	for i, r := range b.Rules {
		p := fmt.Sprintf("spec.bot.rules[%d]", i)
		if len(r.Packages) == 0 {
			v.errorf(p+".packages", "is required: the package globs the rule applies to")
		}
		v.globs(p+".packages", r.Packages)
		if r.Versioning == "" {
			v.errorf(p, "sets nothing: add versioning")
			continue
		}
		if msg := versioningProblem(r.Versioning); msg != "" {
			v.errorf(p+".versioning", "%s", msg)
		}
	}
	names := make([]string, 0, len(b.HelmRepositories))
	for n := range b.HelmRepositories {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		p, u := joinPath("spec.bot.helmRepositories", n), b.HelmRepositories[n]
		switch {
		case !ruleRepoName.ok(n):
			v.errorf(p, "%s is not a repository name: letters, digits, '.', '_' and '-'", quoteValue(n))
		case !strings.HasPrefix(u, "https://") && !strings.HasPrefix(u, "http://"):
			v.errorf(p, "%s: a chart repository added by name is an http(s) URL (OCI charts are named by their oci:// URL)", quoteValue(u))
		case !ruleChartRepo.ok(u):
			v.errorf(p, "%s is not a chart repository URL", quoteValue(u))
		}
	}
}

// regexGroups are the named groups a regex versioning may use.
var regexGroups = []string{"major", "minor", "patch", "build", "revision", "prerelease", "compatibility"}

// versioningProblem explains why s is not a versioning ("" when it is).
func versioningProblem(s string) string {
	pattern, isRegex := strings.CutPrefix(s, RegexVersioningPrefix)
	if !isRegex {
		if !slices.Contains(BotVersionings, s) {
			return fmt.Sprintf("unknown versioning %s; one of %s, or %s<pattern>", quoteValue(s), strings.Join(BotVersionings, ", "), RegexVersioningPrefix)
		}
		return ""
	}
	re, err := regexp.Compile(pattern)
	if err != nil {
		return fmt.Sprintf("%s is not a regular expression: %v", quoteValue(pattern), err)
	}
	hasMajor := false
	for _, g := range re.SubexpNames() {
		if g == "" {
			continue
		}
		if !slices.Contains(regexGroups, g) {
			return fmt.Sprintf("group %q is none of %s", g, strings.Join(regexGroups, ", "))
		}
		hasMajor = hasMajor || g == "major"
	}
	switch {
	case !hasMajor:
		return "the pattern has no (?<major>...) group"
	case !ruleVersioning.ok(s):
		return fmt.Sprintf("%s: anchor the pattern (^...$) and write it without spaces, quotes, backticks or '#'", quoteValue(pattern))
	}
	return ""
}

func (v *validator) globs(p string, gs []string) {
	for i, g := range gs {
		q := p
		if len(gs) > 1 || strings.HasSuffix(p, "packages") {
			q = fmt.Sprintf("%s[%d]", p, i)
		}
		if _, err := path.Match(g, ""); err != nil {
			v.errorf(q, "%s is not a valid glob: %v", quoteValue(g), err)
		} else if !ruleGlob.ok(g) {
			v.errorf(q, "%s: a package glob holds letters, digits, ._/:@+- and the glob characters *?[]^ only", quoteValue(g))
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
			v.errorf(p+".app", "unknown catalog component %s", quoteValue(s.App))
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

// people checks spec.people: unique logins and e-mail addresses (Dex
// signs people in by address), none taken by the administrator Dex
// already has, and single sign-on enabled.
func (v *validator) people(h *Homelab) {
	if len(h.Spec.People) > 0 && !h.Enabled("sso") {
		v.errorf("spec.people", "people sign in through single sign-on: enable spec.apps.sso or remove spec.people")
	}
	admin := h.Metadata.Name + "-admin"
	names, emails := map[string]int{}, map[string]int{}
	for i, p := range h.Spec.People {
		at := fmt.Sprintf("spec.people[%d]", i)
		if v.required(at+".name", p.Name, "a login, e.g. alice") && v.check(at+".name", p.Name, ruleDNSLabel, "a login (lower-case letters, digits and '-')") {
			if j, dup := names[p.Name]; dup {
				v.errorf(at+".name", "%q is already the name of spec.people[%d]", p.Name, j)
			} else if p.Name == admin {
				v.errorf(at+".name", "%q is the administrator single sign-on already has (%s)", p.Name, "metadata.name + \"-admin\"")
			}
			names[p.Name] = i
		}
		if v.required(at+".email", p.Email, "their e-mail address, which they sign in with") && v.check(at+".email", p.Email, ruleEmail, "a plain email address") {
			e := strings.ToLower(p.Email)
			if j, dup := emails[e]; dup {
				v.errorf(at+".email", "%s is already the address of spec.people[%d]", p.Email, j)
			} else if strings.EqualFold(p.Email, h.Spec.Email) {
				v.errorf(at+".email", "%s is spec.email, the administrator's sign-in; give this person their own address", p.Email)
			}
			emails[e] = i
		}
	}
}

// dns checks spec.dns: an rfc2136 provider needs its server, by IP
// address, and a zone that holds spec.domain.
func (v *validator) dns(h *Homelab) {
	d := h.Spec.DNS
	switch {
	case d.Provider != DNSRFC2136 && d.Provider != DNSCloudflare:
		v.errorf("spec.dns.provider", "must be cloudflare or rfc2136, got %s", quoteValue(d.Provider))
		return
	case d.Provider == DNSRFC2136 && d.RFC2136 == nil:
		v.errorf("spec.dns.rfc2136", "is required with provider rfc2136: the DNS server's address, e.g. {server: 192.168.1.2}")
		return
	case d.Provider != DNSRFC2136 && d.RFC2136 != nil:
		v.errorf("spec.dns.rfc2136", "is set but provider is %s: set provider: rfc2136 or remove it", d.Provider)
		return
	case d.RFC2136 == nil:
		return
	}
	r := d.RFC2136
	if v.required("spec.dns.rfc2136.server", r.Server, "the DNS server's IP address, e.g. 192.168.1.2") {
		if _, err := parseAddr(r.Server); err != nil {
			v.errorf("spec.dns.rfc2136.server", "%s is not an IP address (NetworkPolicies allow the updates to the server by address)", quoteValue(r.Server))
		}
	}
	if r.Port < 1 || r.Port > 65535 {
		v.errorf("spec.dns.rfc2136.port", "%d is not a port", r.Port)
	}
	if err := checkFQDN(r.Zone); err != nil {
		if r.Zone != h.Spec.Domain { // a defaulted zone's fault is spec.domain's
			v.errorf("spec.dns.rfc2136.zone", "%v", err)
		}
	} else if dom := strings.ToLower(h.Spec.Domain); checkFQDN(dom) == nil && dom != strings.ToLower(r.Zone) && !strings.HasSuffix(dom, "."+strings.ToLower(r.Zone)) {
		v.errorf("spec.dns.rfc2136.zone", "%s does not contain spec.domain %s: the records of the apps go under spec.domain", r.Zone, h.Spec.Domain)
	}
	v.check("spec.dns.rfc2136.tsigKeyName", r.TSIGKeyName, ruleFQDNOrLabel, "a TSIG key name (DNS labels, e.g. hl-lab)")
	if r.TSIGAlgorithm != "hmac-sha256" && r.TSIGAlgorithm != "hmac-sha512" {
		v.errorf("spec.dns.rfc2136.tsigAlgorithm", "must be hmac-sha256 or hmac-sha512, got %s", quoteValue(r.TSIGAlgorithm))
	}
}

func humanDuration(d time.Duration) string {
	if d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	}
	return d.String()
}
