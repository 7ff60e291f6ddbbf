package wizard

import (
	"fmt"
	"strings"

	"github.com/charmbracelet/huh"

	"hl.dev/hl/internal/config"
	"hl.dev/hl/templates"
)

const (
	actionWrite = "write"
	actionQuit  = "quit"
)

// sectionOf maps a problem's field path to the section that asks for it
// ("" when the wizard does not ask for that field).
func sectionOf(p string) string {
	has := func(prefixes ...string) bool {
		return len(config.Problems{{Path: p}}.At(prefixes...)) > 0
	}
	switch {
	case has("metadata.name", "spec.domain", "spec.timezone", "spec.email"):
		return secBasics
	case has("spec.network", "spec.metal.pxe.address", "spec.kubernetes.clusterCIDR", "spec.kubernetes.serviceCIDR"):
		return secNetwork
	case has("spec.metal.nodes"):
		return secNodes
	case has("spec.metal.os", "spec.metal.pxe", "spec.metal.sshAuthorizedKeys"):
		return secOS
	case has("spec.apps.backups.values.targets", "spec.alerting", "spec.people", "spec.dns"):
		return secCreds
	case has("spec.apps", "spec.slo"):
		return secApps
	case has("spec.forge"):
		return secForge
	case has("spec.secrets.ageRecipients"):
		return secSecrets
	case has("spec.bot.schedule", "spec.bot.automerge"):
		return secBot
	}
	return ""
}

// review shows the candidate hl.yaml's summary and every problem
// config.Parse finds in it, and asks what next: write, fix or edit a
// section, or quit. Problems in fields the wizard does not ask for can
// only be fixed by hand, so writing stays possible.
func (w *wizard) review() (string, error) {
	_, doc, probs := w.candidate()
	errs := probs.Errors()
	counts := map[string]int{}
	for _, p := range probs {
		counts[sectionOf(p.Path)]++
	}
	var b strings.Builder
	if doc != nil && doc.Homelab != nil {
		b.WriteString(w.summary(doc.Homelab))
	}
	b.WriteString("\n\n")
	if len(probs) == 0 {
		b.WriteString("No problems: hl config validate passes.")
	} else {
		fmt.Fprintf(&b, "%s, %s (as hl config validate reports them):\n", plural(len(errs), "error"), plural(len(probs)-len(errs), "warning"))
		for _, p := range probs {
			fmt.Fprintf(&b, "  %s\n", p.String())
		}
	}
	next := actionWrite
	if len(errs) > 0 {
		next = ""
		for _, p := range errs {
			if s := sectionOf(p.Path); s != "" && next == "" {
				next = s
			}
		}
		if next == "" {
			next = actionWrite
		}
	}
	writeLabel := "Write hl.yaml and render the repo"
	switch {
	case len(errs) > 0:
		writeLabel = fmt.Sprintf("Write hl.yaml anyway (%s; nothing is rendered)", plural(len(errs), "error"))
	case w.opts.NoRender:
		writeLabel = "Write hl.yaml"
	}
	opts := []huh.Option[string]{huh.NewOption(writeLabel, actionWrite)}
	for _, s := range sections {
		label := "Edit " + strings.ToLower(s.title)
		if n := counts[s.id]; n > 0 {
			label = fmt.Sprintf("Fix %s (%s)", strings.ToLower(s.title), plural(n, "problem"))
		}
		opts = append(opts, huh.NewOption(label, s.id))
	}
	opts = append(opts, huh.NewOption("Quit without writing", actionQuit))
	if w.acc {
		fmt.Fprintf(w.out, "\n== Review %s ==\n", w.file)
	}
	err := w.form(huh.NewGroup(
		w.note("Review "+w.file, b.String()),
		w.choice("Next", "", &next, opts, nil),
	))
	return next, err
}

func (w *wizard) summary(h *config.Homelab) string {
	s := &h.Spec
	var b strings.Builder
	fmt.Fprintf(&b, "Homelab %s at %s (%s), %s\n", h.Metadata.Name, s.Domain, s.Timezone, s.Email)
	n := s.Network
	fmt.Fprintf(&b, "Network %s: gateway %s, DNS %s, VIP %s, LoadBalancer %s\n", n.NodeCIDR, n.Gateway, strings.Join(n.DNSServers, ", "), n.ControlPlaneVIP, n.LoadBalancerRange)
	m := s.Metal
	fmt.Fprintf(&b, "PXE host %s (%s DHCP), %s %s\n", m.PXE.Address, m.PXE.DHCPMode, m.OS.Name, m.OS.Version)
	for _, nd := range m.Nodes {
		fmt.Fprintf(&b, "  node %s: %s, %s, %s, %s\n", nd.Name, nd.Role, nd.MAC, nd.IP, nd.Disk)
	}
	var on []string
	for _, c := range templates.MustCatalog().Components {
		if h.Enabled(c.Name) {
			on = append(on, c.Name)
		}
	}
	fmt.Fprintf(&b, "Apps (%d): %s\n", len(on), strings.Join(on, ", "))
	f := s.Forge
	fmt.Fprintf(&b, "Forge %s: %s/%s/%s", f.Type, f.URL, f.Owner, f.Repo)
	if w.a.Bootstrap && f.Type == config.ForgeGitea {
		b.WriteString(" (bootstrap after rendering)")
	}
	b.WriteString("\n")
	id := "recipients " + short(strings.Join(s.Secrets.AgeRecipients, ", "))
	if w.a.Identity != nil {
		verb := "existing"
		if w.a.Identity.New != nil {
			verb = "new"
		}
		id = fmt.Sprintf("%s identity %s (%s)", verb, w.a.Identity.Path, short(w.a.Identity.Recipient))
	}
	fmt.Fprintf(&b, "Secrets: %s\n", id)
	if r := s.DNS.RFC2136; r != nil {
		fmt.Fprintf(&b, "DNS: own server %s (zone %s, TSIG key %s)\n", r.Server, r.Zone, r.TSIGKeyName)
	} else {
		fmt.Fprintf(&b, "DNS: %s\n", s.DNS.Provider)
	}
	var rs []string
	for _, r := range s.Alerting.Receivers {
		rs = append(rs, r.Name+" ("+r.Kind()+")")
	}
	if len(rs) == 0 {
		rs = append(rs, "nowhere yet")
	}
	fmt.Fprintf(&b, "Alerts: %s\n", strings.Join(rs, ", "))
	if len(s.People) > 0 {
		var ps []string
		for _, p := range s.People {
			ps = append(ps, p.Name)
		}
		fmt.Fprintf(&b, "People: %s (and you)\n", strings.Join(ps, ", "))
	}
	var given []string
	c := w.a.Creds
	if c.DNSToken != "" {
		given = append(given, "Cloudflare token")
	}
	if c.OffsiteKeyID != "" || c.OffsiteSecret != "" {
		given = append(given, "offsite bucket keys")
	}
	if c.AlertSecret != "" {
		given = append(given, "alert login")
	}
	if len(given) > 0 {
		fmt.Fprintf(&b, "Credentials given (stored encrypted after rendering): %s\n", strings.Join(given, ", "))
	}
	fmt.Fprintf(&b, "Bot: %q, automerge %s", s.Bot.Schedule, strings.Join(s.Bot.Automerge, ", "))
	return b.String()
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}
