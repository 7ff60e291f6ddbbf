package wizard

import (
	"slices"
	"strings"
	"sync"

	"gopkg.in/yaml.v3"

	"hl.dev/hl/internal/config"
	"hl.dev/hl/internal/yamlnode"
	"hl.dev/hl/templates"
)

// Answers are the wizard's fields as the user typed them. They are applied
// onto the hl.yaml node tree (apply), never encoded on their own, so
// everything the wizard does not ask about survives.
type Answers struct {
	Name, Domain, Timezone, Email string

	NodeCIDR, Gateway string
	// DNSServers is comma-separated; empty means the gateway (the default).
	DNSServers        string
	LoadBalancerRange string
	ControlPlaneVIP   string
	PXEAddress        string

	Nodes []Node

	// OS is "name version", e.g. "debian 12".
	OS       string
	DHCPMode string
	// SSHKey is the first authorized key; the others are kept as they are.
	SSHKey      string
	moreSSHKeys []string

	// Apps are the enabled optional catalog components (required ones are
	// always on).
	Apps []string

	ForgeType, ForgeURL, ForgeOwner, ForgeRepo string
	// Bootstrap asks for the forge to be seeded after rendering.
	Bootstrap bool

	Recipients []string
	// baseRecipients are the source file's recipients without the public
	// test key: what "keep" keeps and what an identity is added to.
	baseRecipients []string
	// Identity is the age identity chosen in the secrets step (nil: keep
	// the recipients as they are).
	Identity *Identity

	BotSchedule string
	Automerge   []string

	// DNSProvider and DNSServer are spec.dns's provider and (rfc2136)
	// server; origDNS the source file's.
	DNSProvider, DNSServer string
	origDNS                struct{ provider, server string }

	// OffsiteRepo is the offsite backup target's restic repository.
	OffsiteRepo string
	// Alert is a receiver to add (when hl.yaml has none: hadReceivers).
	Alert        Alert
	hadReceivers int
	// Creds are never written into hl.yaml (see Credentials).
	Creds Credentials
	// People is spec.people as typed: "alice <alice@example.org>, ...";
	// origPeople is the source file's, for what this run added.
	People     string
	origPeople []config.Person
}

// Node is one machine as typed; orig is its index in the source file's
// spec.metal.nodes (-1 for a node added in this run), so an edited node
// keeps its YAML node, comments and unknown keys.
type Node struct {
	config.Node
	orig int
}

// Identity is the age identity secrets are encrypted for.
type Identity struct {
	Path      string
	Recipient string
	// New is the identity file content when this run generated it; it is
	// written (never over an existing file) only together with hl.yaml.
	New []byte
}

// answersFrom reads the answers out of a parsed document (defaults
// applied) and its node tree.
func answersFrom(h *config.Homelab, root *yaml.Node) *Answers {
	s := &h.Spec
	a := &Answers{
		Name: h.Metadata.Name, Domain: s.Domain, Timezone: s.Timezone, Email: s.Email,
		NodeCIDR: s.Network.NodeCIDR, Gateway: s.Network.Gateway,
		LoadBalancerRange: s.Network.LoadBalancerRange, ControlPlaneVIP: s.Network.ControlPlaneVIP,
		PXEAddress: s.Metal.PXE.Address,
		OS:         strings.TrimSpace(s.Metal.OS.Name + " " + s.Metal.OS.Version),
		DHCPMode:   s.Metal.PXE.DHCPMode,
		ForgeType:  s.Forge.Type, ForgeURL: s.Forge.URL, ForgeOwner: s.Forge.Owner, ForgeRepo: s.Forge.Repo,
		Recipients:  slices.Clone(s.Secrets.AgeRecipients),
		BotSchedule: s.Bot.Schedule,
		Automerge:   slices.Clone(s.Bot.Automerge),
	}
	a.baseRecipients = slices.DeleteFunc(slices.Clone(a.Recipients), isTestRecipient)
	a.hadReceivers = len(s.Alerting.Receivers)
	a.DNSProvider = s.DNS.Provider
	if r := s.DNS.RFC2136; r != nil {
		a.DNSServer = r.Server
	}
	a.origDNS.provider, a.origDNS.server = a.DNSProvider, a.DNSServer
	a.People, a.origPeople = formatPeople(s.People), slices.Clone(s.People)
	if r := lookup(root, path{"spec", "apps", "backups", "values", "targets", offsiteTarget, "repository"}); r != nil && r.Kind == yaml.ScalarNode {
		a.OffsiteRepo = r.Value
	}
	// An absent dnsServers defaults to the gateway; keep it absent (and
	// following the gateway) unless the file lists servers.
	if lookup(root, path{"spec", "network", "dnsServers"}) != nil {
		a.DNSServers = strings.Join(s.Network.DNSServers, ", ")
	}
	if keys := s.Metal.SSHAuthorizedKeys; len(keys) > 0 {
		a.SSHKey, a.moreSSHKeys = keys[0], slices.Clone(keys[1:])
	}
	for i, n := range s.Metal.Nodes {
		a.Nodes = append(a.Nodes, Node{Node: n, orig: i})
	}
	for _, c := range templates.MustCatalog().Components {
		if !c.Required && h.Enabled(c.Name) {
			a.Apps = append(a.Apps, c.Name)
		}
	}
	return a
}

// apply writes the answers into the hl.yaml node tree root, in place.
func apply(root *yaml.Node, a *Answers) {
	setStr(root, path{"apiVersion"}, config.APIVersion, "")
	setStr(root, path{"kind"}, config.Kind, "")
	setStr(root, path{"metadata", "name"}, a.Name, "")
	setStr(root, path{"spec", "domain"}, a.Domain, "")
	setStr(root, path{"spec", "timezone"}, a.Timezone, config.DefaultTimezone)
	setStr(root, path{"spec", "email"}, a.Email, "")

	setStr(root, path{"spec", "network", "nodeCIDR"}, a.NodeCIDR, "")
	setStr(root, path{"spec", "network", "gateway"}, a.Gateway, "")
	setStrList(root, path{"spec", "network", "dnsServers"}, splitList(a.DNSServers), nil, true)
	setStr(root, path{"spec", "network", "loadBalancerRange"}, a.LoadBalancerRange, "")
	setStr(root, path{"spec", "network", "controlPlaneVIP"}, a.ControlPlaneVIP, "")

	setStr(root, path{"spec", "metal", "pxe", "address"}, a.PXEAddress, "")
	setStr(root, path{"spec", "metal", "pxe", "dhcpMode"}, a.DHCPMode, config.DefaultDHCPMode)
	osName, osVersion, _ := strings.Cut(a.OS, " ")
	setStr(root, path{"spec", "metal", "os", "name"}, osName, config.DefaultOSName)
	setStr(root, path{"spec", "metal", "os", "version"}, osVersion, defaultOSVersion(osName))
	keys := append([]string{}, a.SSHKey)
	keys = slices.DeleteFunc(append(keys, a.moreSSHKeys...), func(k string) bool { return strings.TrimSpace(k) == "" })
	setStrList(root, path{"spec", "metal", "sshAuthorizedKeys"}, keys, nil, false)
	applyNodes(root, a.Nodes)

	setStr(root, path{"spec", "forge", "type"}, a.ForgeType, config.ForgeGitea)
	urlDef := ""
	if a.ForgeType == config.ForgeGitHub {
		urlDef = config.DefaultGitHubURL
	}
	setStr(root, path{"spec", "forge", "url"}, a.ForgeURL, urlDef)
	setStr(root, path{"spec", "forge", "owner"}, a.ForgeOwner, "")
	setStr(root, path{"spec", "forge", "repo"}, a.ForgeRepo, "")

	applyApps(root, a.Apps)

	setStrList(root, path{"spec", "secrets", "ageRecipients"}, a.Recipients, nil, false)
	if k, _ := yamlnode.Pair(ensureMap(root, path{"spec", "secrets"}), "ageRecipients"); k != nil &&
		strings.Contains(k.HeadComment, "TEST key") && !slices.ContainsFunc(a.Recipients, isTestRecipient) {
		k.HeadComment = "# Secrets are encrypted for these age recipients; the identities that\n# decrypt them stay outside the repo (hl init keeps yours in its config dir)."
	}

	applyDNS(root, a)
	applyCredentials(root, a)
	applyPeople(root, a)

	setStr(root, path{"spec", "bot", "schedule"}, a.BotSchedule, config.DefaultBotSchedule)
	setStrList(root, path{"spec", "bot", "automerge"}, a.Automerge, []string{config.UpdatePatch}, false)
	if bot := lookup(root, path{"spec", "bot"}); bot != nil && bot.Kind == yaml.MappingNode && len(bot.Content) == 0 {
		removeKey(root, path{"spec", "bot"})
	}
}

func defaultOSVersion(name string) string {
	switch name {
	case config.OSDebian:
		return config.DefaultDebianVersion
	}
	return ""
}

var nodesPath = path{"spec", "metal", "nodes"}

// applyNodes rebuilds spec.metal.nodes from the answers, reusing the
// mapping of every node that came from the file.
func applyNodes(root *yaml.Node, nodes []Node) {
	metal := ensureMap(root, path{"spec", "metal"})
	_, seq := yamlnode.Pair(metal, "nodes")
	if seq == nil {
		seq = &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
		insertKey(metal, path{"spec", "metal"}, "nodes", seq)
	}
	if seq.Kind != yaml.SequenceNode {
		*seq = yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
	}
	old := seq.Content
	// New nodes follow the file's style; the example writes one flow
	// mapping per node.
	flow := len(old) == 0 || slices.ContainsFunc(old, func(n *yaml.Node) bool { return n.Style == yaml.FlowStyle })
	content := make([]*yaml.Node, 0, len(nodes))
	for _, n := range nodes {
		var m *yaml.Node
		if n.orig >= 0 && n.orig < len(old) && old[n.orig].Kind == yaml.MappingNode {
			m = old[n.orig]
		} else {
			m = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
			if flow {
				m.Style = yaml.FlowStyle
			}
		}
		setKey(m, nodesPath, "name", n.Name, "")
		setKey(m, nodesPath, "role", n.Role, "")
		if v, changed := setKey(m, nodesPath, "mac", normMAC(n.MAC), ""); changed && v != nil {
			// YAML 1.1 readers take 52:54:00:... for a base-60 number.
			v.Style = yaml.DoubleQuotedStyle
		}
		setKey(m, nodesPath, "ip", n.IP, "")
		setKey(m, nodesPath, "disk", n.Disk, "")
		if strings.TrimSpace(n.Interface) == "" {
			removeKey(m, path{"interface"})
		} else {
			setKey(m, nodesPath, "interface", n.Interface, "")
		}
		content = append(content, m)
	}
	if len(old) == 0 && len(content) > 0 {
		seq.Style = 0
	}
	seq.Content = content
}

// applyApps switches the optional components: an entry the file has gets
// its enabled flag set; a component without an entry gets one only when
// the answer differs from its catalog default.
func applyApps(root *yaml.Node, enabled []string) {
	apps := lookup(root, path{"spec", "apps"})
	for _, c := range templates.MustCatalog().Components {
		want := c.Required || slices.Contains(enabled, c.Name)
		var entry *yaml.Node
		if apps != nil && apps.Kind == yaml.MappingNode {
			_, entry = yamlnode.Pair(apps, c.Name)
		}
		if entry != nil && entry.Kind == yaml.MappingNode {
			if _, en := yamlnode.Pair(entry, "enabled"); en != nil {
				setScalar(en, boolStr(want), "!!bool")
			} else if want != c.Default {
				entry.Content = append([]*yaml.Node{strNode("enabled"), boolNode(want)}, entry.Content...)
			}
			continue
		}
		if want == c.Default {
			continue
		}
		v := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Style: yaml.FlowStyle, Content: []*yaml.Node{strNode("enabled"), boolNode(want)}}
		if entry != nil {
			*entry = *v
			continue
		}
		apps = ensureMap(root, path{"spec", "apps"})
		insertKey(apps, path{"spec", "apps"}, c.Name, v)
	}
}

// splitList splits a comma- or space-separated list.
func splitList(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == ';' })
}

var (
	testRecipientsOnce sync.Once
	testRecipients     []string
)

// isTestRecipient reports whether r is the public test key the embedded
// example encrypts for: anyone can decrypt it, so hl init never keeps it.
func isTestRecipient(r string) bool {
	testRecipientsOnce.Do(func() {
		if doc, _ := config.Parse("example.yaml", config.Example()); doc.Homelab != nil {
			testRecipients = doc.Homelab.Spec.Secrets.AgeRecipients
		}
	})
	return slices.Contains(testRecipients, r)
}
