package wizard

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/charmbracelet/huh"

	"hl.dev/hl/internal/config"
	"hl.dev/hl/templates"
)

// Sections of the wizard, in order; the review step jumps back to one.
const (
	secBasics  = "basics"
	secNetwork = "network"
	secNodes   = "nodes"
	secOS      = "os"
	secApps    = "apps"
	secForge   = "forge"
	secSecrets = "secrets"
	secCreds   = "credentials"
	secBot     = "bot"
)

var sections = []struct{ id, title string }{
	{secBasics, "Basics"},
	{secNetwork, "Network"},
	{secNodes, "Nodes"},
	{secOS, "Operating system and access"},
	{secApps, "Apps"},
	{secForge, "Forge"},
	{secSecrets, "Secrets"},
	{secCreds, "Credentials and alerts"},
	{secBot, "Update bot"},
}

func (w *wizard) runSection(id string) error {
	for _, s := range sections {
		if s.id == id && w.acc {
			fmt.Fprintf(w.out, "\n== %s ==\n", s.title)
		}
	}
	switch id {
	case secBasics:
		return w.basics()
	case secNetwork:
		return w.network()
	case secNodes:
		return w.nodes()
	case secOS:
		return w.osStep()
	case secApps:
		return w.apps()
	case secForge:
		return w.forge()
	case secSecrets:
		return w.secrets()
	case secCreds:
		return w.credentials()
	case secBot:
		return w.bot()
	}
	return fmt.Errorf("unknown section %q", id)
}

// interactive asks every section, then loops on the review until the
// user writes or quits.
func (w *wizard) interactive(_ context.Context) error {
	if w.src.fresh {
		fmt.Fprintf(w.out, "hl init: answering a few questions writes %s and renders the repo next to it.\n", w.file)
	} else {
		fmt.Fprintf(w.out, "hl init: editing %s; answers are prefilled, everything else in the file is kept.\n", w.src.name)
	}
	if w.acc {
		fmt.Fprintln(w.out, "Press Enter to keep the value in [brackets].")
	}
	for _, s := range sections {
		if err := w.runSection(s.id); err != nil {
			return err
		}
	}
	for {
		next, err := w.review()
		if err != nil {
			return err
		}
		switch next {
		case actionWrite:
			return nil
		case actionQuit:
			return ErrAborted
		}
		if err := w.runSection(next); err != nil {
			return err
		}
	}
}

// input is a text field bound to v whose value is checked against the
// candidate hl.yaml: only problems matching paths are shown, so a field
// shows exactly what `hl config validate` would say about it.
func (w *wizard) input(title, desc string, v *string, paths ...string) *huh.Input {
	return w.inputFn(title, desc, v, func() error { return w.check(paths...) })
}

func (w *wizard) inputFn(title, desc string, v *string, check func() error) *huh.Input {
	def := *v
	return huh.NewInput().
		Title(w.title(title, desc, def)).
		Description(w.desc(desc)).
		Value(v).
		Validate(func(s string) error {
			s = strings.TrimSpace(s)
			if w.acc && s == "" {
				// Accessible mode keeps the bracketed value on Enter but
				// validates the raw line.
				s = def
			}
			*v = s
			return check()
		})
}

// title carries the description and the current value in accessible mode,
// where huh prints only the title before the prompt.
func (w *wizard) title(title, desc, current string) string {
	if !w.acc {
		return title
	}
	if desc != "" {
		title += " (" + desc + ")"
	}
	if current != "" {
		title += " [" + current + "]"
	}
	return title + ":"
}

func (w *wizard) desc(desc string) string {
	if w.acc {
		return ""
	}
	return desc
}

// note shows text. The terminal UI reads _, * and ` in a note as
// markup, so they are escaped; accessible mode prints the text as is and
// leaves out the title, which the section heading already says.
func (w *wizard) note(title, text string) *huh.Note {
	if w.acc {
		return huh.NewNote().Description(text)
	}
	return huh.NewNote().Title(title).Description(noteEscaper.Replace(text))
}

var noteEscaper = strings.NewReplacer(`\`, `\\`, "_", `\_`, "*", `\*`, "`", "\\`")

// choice is a select bound to v; check runs inline in the terminal UI and
// after the form in accessible mode (see ask).
func (w *wizard) choice(title, desc string, v *string, opts []huh.Option[string], check func(string) error) *huh.Select[string] {
	cur := ""
	for _, o := range opts {
		if o.Value == *v {
			cur = o.Key
		}
	}
	s := huh.NewSelect[string]().Title(w.title(title, desc, cur)).Description(w.desc(desc)).Options(opts...).Value(v)
	if check != nil && !w.acc {
		s.Validate(check)
	}
	return s
}

func (w *wizard) basics() error {
	a := w.a
	return w.ask(func() []*huh.Group {
		return []*huh.Group{huh.NewGroup(
			w.input("Homelab name", "a DNS label; names the cluster and the repo", &a.Name, "metadata.name"),
			w.input("Domain", "apps are served as <app>.<domain>, e.g. home.example.com", &a.Domain, "spec.domain"),
			w.input("Timezone", "IANA name, e.g. Europe/Berlin", &a.Timezone, "spec.timezone"),
			w.input("Email", "for Let's Encrypt and alerts", &a.Email, "spec.email"),
		).Title("Basics")}
	}, nil)
}

func (w *wizard) network() error {
	a := w.a
	err := w.ask(func() []*huh.Group {
		return []*huh.Group{huh.NewGroup(
			w.inputFn("Node network (CIDR)", "the LAN the nodes live on, e.g. 192.168.1.0/24", &a.NodeCIDR, func() error {
				if err := w.check("spec.network.nodeCIDR"); err != nil {
					return err
				}
				if _, err := config.SuggestNetwork(a.NodeCIDR); err != nil {
					return fmt.Errorf("spec.network.nodeCIDR: %v", err)
				}
				return nil
			}),
		).Title("Network").Description("The other addresses are suggested from the node network.")}
	}, nil)
	if err != nil {
		return err
	}
	w.suggestNetwork()
	s, _ := config.SuggestNetwork(a.NodeCIDR)
	sugg := func(what, v string) string {
		if v == "" {
			return what
		}
		return what + "; suggested " + v
	}
	return w.ask(func() []*huh.Group {
		return []*huh.Group{huh.NewGroup(
			w.input("Gateway", sugg("your router", s.Gateway), &a.Gateway, "spec.network.gateway"),
			w.input("DNS servers", "comma-separated; empty: the gateway", &a.DNSServers, "spec.network.dnsServers"),
			w.input("Control-plane VIP", sugg("a free address for the Kubernetes API", s.ControlPlaneVIP), &a.ControlPlaneVIP, "spec.network.controlPlaneVIP"),
			w.input("LoadBalancer range", sugg("FIRST-LAST, free addresses for services", s.LoadBalancerRange), &a.LoadBalancerRange, "spec.network.loadBalancerRange"),
			w.input("PXE host", "the machine that runs hl metal serve, usually this one", &a.PXEAddress, "spec.metal.pxe.address"),
		).Title("Network: addresses in " + a.NodeCIDR)}
	}, nil)
}

const (
	nodeAdd  = "add"
	nodeDone = "done"
)

func (w *wizard) nodes() error {
	a := w.a
	checkAll := func(v string) error {
		if v != nodeDone {
			return nil
		}
		return w.check("spec.metal.nodes")
	}
	for {
		if len(a.Nodes) == 0 {
			if err := w.nodeForm(-1); err != nil {
				return err
			}
			continue
		}
		action := nodeDone
		err := w.ask(func() []*huh.Group {
			// Done and Add come first so their numbers (and cursor moves)
			// do not depend on how many nodes there are.
			opts := []huh.Option[string]{huh.NewOption("Done with nodes", nodeDone), huh.NewOption("Add another node", nodeAdd)}
			for i, n := range a.Nodes {
				opts = append(opts, huh.NewOption("Edit "+n.Name, "edit:"+strconv.Itoa(i)))
			}
			for i, n := range a.Nodes {
				opts = append(opts, huh.NewOption("Remove "+n.Name, "remove:"+strconv.Itoa(i)))
			}
			return []*huh.Group{huh.NewGroup(
				w.note("Nodes", nodeList(a.Nodes)),
				w.choice("Nodes", "", &action, opts, checkAll),
			)}
		}, func() error { return checkAll(action) })
		if err != nil {
			return err
		}
		verb, idx, _ := strings.Cut(action, ":")
		i, _ := strconv.Atoi(idx)
		switch verb {
		case nodeDone:
			return nil
		case nodeAdd:
			err = w.nodeForm(-1)
		case "edit":
			err = w.nodeForm(i)
		case "remove":
			a.Nodes = slices.Delete(a.Nodes, i, i+1)
			fmt.Fprintf(w.out, "removed a node; %d left\n", len(a.Nodes))
		}
		if err != nil {
			return err
		}
	}
}

func nodeList(nodes []Node) string {
	if len(nodes) == 0 {
		return "no nodes yet"
	}
	var b strings.Builder
	for _, n := range nodes {
		fmt.Fprintf(&b, "%s: %s, %s, %s, %s\n", n.Name, n.Role, n.MAC, n.IP, n.Disk)
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// nodeForm asks for node i, or a new node when i < 0.
func (w *wizard) nodeForm(i int) error {
	a := w.a
	title := "Edit node"
	if i < 0 {
		n := Node{orig: -1, Node: config.Node{Name: nextNodeName(a.Nodes), Role: config.RoleAgent, Disk: "/dev/sda"}}
		if !slices.ContainsFunc(a.Nodes, func(n Node) bool { return n.Role == config.RoleServer }) {
			n.Role = config.RoleServer
		}
		if s, err := config.SuggestNetwork(a.NodeCIDR); err == nil {
			used := []string{a.Gateway, a.ControlPlaneVIP, a.PXEAddress}
			for _, o := range a.Nodes {
				used = append(used, o.IP)
			}
			n.IP = s.NodeIP(used)
		}
		a.Nodes = append(a.Nodes, n)
		i = len(a.Nodes) - 1
		title = fmt.Sprintf("Node %d", i+1)
	}
	n := &a.Nodes[i].Node
	p := fmt.Sprintf("spec.metal.nodes[%d]", i)
	if w.acc {
		fmt.Fprintf(w.out, "\n-- %s --\n", title)
	}
	roles := []huh.Option[string]{
		huh.NewOption("server (control plane and workloads)", config.RoleServer),
		huh.NewOption("agent (workloads only)", config.RoleAgent),
	}
	return w.ask(func() []*huh.Group {
		return []*huh.Group{huh.NewGroup(
			w.input("Name", "hostname, a DNS label", &n.Name, p+".name"),
			w.choice("Role", "", &n.Role, roles, nil),
			w.input("MAC address", "of the interface that PXE-boots, e.g. 52:54:00:12:34:56", &n.MAC, p+".mac"),
			w.input("IP address", "static, inside "+a.NodeCIDR, &n.IP, p+".ip"),
			w.input("Install disk", "wiped by the installer, e.g. /dev/sda or /dev/nvme0n1", &n.Disk, p+".disk"),
			w.input("Interface", "optional: NIC name in the installed OS, e.g. eno1", &n.Interface, p+".interface"),
		).Title(title)}
	}, nil)
}

func nextNodeName(nodes []Node) string {
	for i := len(nodes) + 1; ; i++ {
		name := "node" + strconv.Itoa(i)
		if !slices.ContainsFunc(nodes, func(n Node) bool { return n.Name == name }) {
			return name
		}
	}
}

func (w *wizard) osStep() error {
	a := w.a
	var osOpts []huh.Option[string]
	for _, o := range templates.MustCatalog().OS {
		label := strings.ToUpper(o.Name[:1]) + o.Name[1:] + " " + o.Version
		if o.Kernel.SHA256 == "" {
			label += " (netboot image not pinned yet)"
		}
		osOpts = append(osOpts, huh.NewOption(label, o.Name+" "+o.Version))
	}
	dhcp := []huh.Option[string]{
		huh.NewOption("proxy: your router keeps handing out leases", config.DHCPProxy),
		huh.NewOption("full: hl's dnsmasq is the DHCP server", config.DHCPFull),
	}
	keyDesc := "installed for the admin user on every node; root login is locked"
	if n := len(a.moreSSHKeys); n > 0 {
		keyDesc += "; hl.yaml's " + plural(n, "other key") + " stay"
	}
	keyPaths := func(p config.Problem) bool {
		return p.Path == "spec.metal.sshAuthorizedKeys" || p.Path == "spec.metal.sshAuthorizedKeys[0]"
	}
	return w.ask(func() []*huh.Group {
		return []*huh.Group{huh.NewGroup(
			w.choice("Operating system", "", &a.OS, osOpts, nil),
			w.choice("DHCP", "how the nodes find the PXE host", &a.DHCPMode, dhcp, nil),
			w.inputFn("SSH public key", keyDesc, &a.SSHKey, func() error { return w.checkFn(keyPaths) }),
		).Title("Operating system and access")}
	}, func() error { return w.check("spec.metal.os") })
}

func (w *wizard) apps() error {
	a := w.a
	cat := templates.MustCatalog()
	var always, needs []string
	var opts []huh.Option[string]
	for _, c := range cat.Components {
		if c.Required {
			always = append(always, c.Title)
			continue
		}
		label := fmt.Sprintf("%-14s %s", c.Name, c.Description)
		var deps []string
		for _, r := range c.Requires {
			deps = append(deps, r.Component)
			when := ""
			if r.WhenForge != "" {
				when = " (with a " + r.WhenForge + " forge)"
			}
			needs = append(needs, fmt.Sprintf("%s needs %s%s: %s", c.Name, r.Component, when, r.Why))
		}
		if len(deps) > 0 {
			label += " [needs " + strings.Join(deps, ", ") + "]"
		}
		opts = append(opts, huh.NewOption(label, c.Name))
	}
	note := "Always installed: " + strings.Join(always, ", ") + ".\n" + strings.Join(needs, "\n")
	check := func([]string) error { return w.check("spec.apps", "spec.slo") }
	return w.ask(func() []*huh.Group {
		ms := huh.NewMultiSelect[string]().
			Title(w.title("Apps", "toggle with the number, 0 when done", "")).
			Description(w.desc("space or x toggles, enter confirms")).
			Options(opts...).
			Value(&a.Apps).
			Height(len(opts) + 2)
		if !w.acc {
			ms.Validate(check)
		}
		return []*huh.Group{huh.NewGroup(w.note("Apps", note), ms)}
	}, func() error { return check(nil) })
}

func (w *wizard) forge() error {
	a := w.a
	types := []huh.Option[string]{
		huh.NewOption("Gitea (self-hosted, the default)", config.ForgeGitea),
		huh.NewOption("GitHub", config.ForgeGitHub),
	}
	err := w.ask(func() []*huh.Group {
		return []*huh.Group{huh.NewGroup(
			w.choice("Forge", "where the rendered repo lives", &a.ForgeType, types, nil),
		).Title("Forge")}
	}, nil)
	if err != nil {
		return err
	}
	switch {
	case a.ForgeType == config.ForgeGitHub && (a.ForgeURL == "" || !strings.Contains(a.ForgeURL, "github")):
		a.ForgeURL = config.DefaultGitHubURL
	case a.ForgeType == config.ForgeGitea && (a.ForgeURL == "" || a.ForgeURL == config.DefaultGitHubURL) && a.Domain != "":
		a.ForgeURL = "https://git." + a.Domain
	}
	if a.ForgeOwner == "" {
		a.ForgeOwner = a.Name
	}
	if a.ForgeType != config.ForgeGitea {
		a.Bootstrap = false
	}
	return w.ask(func() []*huh.Group {
		fields := []huh.Field{
			w.input("URL", "the forge's base URL", &a.ForgeURL, "spec.forge.url"),
			w.input("Owner", "user or organisation owning the repo", &a.ForgeOwner, "spec.forge.owner"),
			w.input("Repository", "the repository name", &a.ForgeRepo, "spec.forge.repo"),
		}
		if a.ForgeType == config.ForgeGitea {
			fields = append(fields, huh.NewConfirm().
				Title(w.title("Bootstrap into Gitea after rendering?", "create the repo and push", "")).
				Description(w.desc("creates "+a.ForgeOwner+"/"+a.ForgeRepo+" and pushes the rendered repo")).
				Value(&a.Bootstrap))
		}
		return []*huh.Group{huh.NewGroup(fields...).Title("Forge: " + a.ForgeType)}
	}, nil)
}

const (
	idKeep     = "keep"
	idDefault  = "default"
	idGenerate = "generate"
	idFile     = "file"
)

func (w *wizard) secrets() error {
	a := w.a
	kept := a.baseRecipients
	var opts []huh.Option[string]
	mode := idGenerate
	if len(kept) > 0 {
		opts = append(opts, huh.NewOption("Keep the current recipients ("+short(strings.Join(kept, ", "))+")", idKeep))
		if a.Identity == nil {
			mode = idKeep
		}
	}
	switch {
	case w.keyPath == "":
	case fileExists(w.keyPath):
		opts = append(opts, huh.NewOption("Use my age identity "+w.keyPath+" (exists; hl never overwrites it)", idDefault))
		if (a.Identity == nil && mode != idKeep) || (a.Identity != nil && a.Identity.Path == w.keyPath) {
			mode = idDefault
		}
	default:
		opts = append(opts, huh.NewOption("Generate a new age identity into "+w.keyPath, idGenerate))
	}
	opts = append(opts, huh.NewOption("Use another age identity file", idFile))
	if a.Identity != nil && a.Identity.Path != w.keyPath {
		mode = idFile
	}
	if !slices.ContainsFunc(opts, func(o huh.Option[string]) bool { return o.Value == mode }) {
		mode = opts[0].Value
	}
	err := w.ask(func() []*huh.Group {
		return []*huh.Group{huh.NewGroup(
			w.note("Secrets", "Generated passwords and keys are SOPS-encrypted in the repo for an age identity that stays outside it (bootstrap gives the cluster a copy)."),
			w.choice("Age identity", "", &mode, opts, nil),
		)}
	}, nil)
	if err != nil {
		return err
	}
	switch mode {
	case idKeep:
		a.Identity = nil
		a.Recipients = slices.Clone(kept)
		return nil
	case idDefault:
		id, err := readIdentity(w.keyPath)
		if err != nil {
			return err
		}
		a.Identity = id
	case idGenerate:
		if a.Identity == nil || a.Identity.New == nil {
			id, err := newIdentity(w.keyPath)
			if err != nil {
				return err
			}
			a.Identity = id
		}
	case idFile:
		file := ""
		if a.Identity != nil {
			file = a.Identity.Path
		}
		var id *Identity
		err := w.ask(func() []*huh.Group {
			return []*huh.Group{huh.NewGroup(
				w.inputFn("Age identity file", "AGE-SECRET-KEY-1... inside", &file, func() error {
					var err error
					id, err = readIdentity(file)
					return err
				}),
			)}
		}, func() error {
			var err error
			id, err = readIdentity(file)
			return err
		})
		if err != nil {
			return err
		}
		a.Identity = id
	}
	a.Recipients = withRecipient(kept, a.Identity.Recipient)
	return nil
}

// withRecipient puts r first in a copy of rs, unless rs has it.
func withRecipient(rs []string, r string) []string {
	if slices.Contains(rs, r) {
		return slices.Clone(rs)
	}
	return append([]string{r}, rs...)
}

func short(s string) string {
	if len(s) > 60 {
		return s[:57] + "..."
	}
	return s
}

func (w *wizard) bot() error {
	a := w.a
	types := []huh.Option[string]{
		huh.NewOption("patch: 1.2.3 to 1.2.4", config.UpdatePatch),
		huh.NewOption("minor: 1.2.3 to 1.3.0", config.UpdateMinor),
		huh.NewOption("digest: same tag, new image digest", config.UpdateDigest),
		huh.NewOption("major: 1.2.3 to 2.0.0", config.UpdateMajor),
	}
	return w.ask(func() []*huh.Group {
		return []*huh.Group{huh.NewGroup(
			w.input("Schedule", "5-field cron or @daily, in spec.timezone", &a.BotSchedule, "spec.bot.schedule"),
			huh.NewMultiSelect[string]().
				Title(w.title("Automerge", "update types merged once checks pass; number toggles, 0 when done", "")).
				Description(w.desc("update types merged once checks pass")).
				Options(types...).
				Value(&a.Automerge),
		).Title("Update bot")}
	}, func() error { return w.check("spec.bot") })
}

func normMAC(s string) string {
	if mac, err := net.ParseMAC(strings.TrimSpace(s)); err == nil && len(mac) == 6 {
		return mac.String()
	}
	return s
}

func isPrivateList(s string) bool {
	for _, d := range splitList(s) {
		if a, err := netip.ParseAddr(d); err != nil || !a.IsPrivate() {
			return false
		}
	}
	return true
}
