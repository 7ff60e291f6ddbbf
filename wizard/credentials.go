package wizard

import (
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"net/mail"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"

	"filippo.io/age"
	"github.com/charmbracelet/huh"
	"gopkg.in/yaml.v3"

	"hl.dev/hl/internal/config"
	"hl.dev/hl/internal/fsutil"
	"hl.dev/hl/internal/yamlnode"
	"hl.dev/hl/secrets"
	"hl.dev/hl/templates"
)

// Credentials are what only another service can issue: the DNS
// provider's API token, the offsite bucket's keys, an alert receiver's
// login. The wizard asks for them once, with the input hidden, and writes
// them SOPS-encrypted into the rendered repo after rendering. They are
// never written into hl.yaml, shown in the review or printed.
type Credentials struct {
	// DNSToken is the Cloudflare API token (Zone → DNS → Edit) that
	// cert-manager and external-dns use.
	DNSToken string
	// TSIGSecret is the secret of a TSIG key the own DNS server already
	// has (empty: the generated one stays).
	TSIGSecret string
	// OffsiteKeyID and OffsiteSecret are the offsite target's S3 keys.
	OffsiteKeyID, OffsiteSecret string
	// AlertSecret is the chosen receiver's token (ntfy, webhook bearer) or
	// password (e-mail); empty for a receiver that does not log in.
	AlertSecret string
}

// Alert receiver kinds the wizard offers; "" adds none.
const (
	alertNone    = ""
	alertNtfy    = config.ReceiverNtfy
	alertMail    = config.ReceiverEmail
	alertWebhook = config.ReceiverWebhook
)

// Alert is the receiver typed in the credentials step; it becomes
// spec.alerting when hl.yaml has no receivers yet.
type Alert struct {
	Kind string
	// ntfy
	URL, Topic string
	// e-mail
	Smarthost, To, Username string
	// webhook
	WebhookURL string
}

// Files the credentials go into, relative to the rendered repo.
const (
	certManagerTokenFile = "system/cert-manager/secrets/cloudflare-api-token.sops.yaml"
	externalDNSTokenFile = "system/external-dns/secrets/cloudflare-api-token.sops.yaml"
	offsiteFile          = "system/backups/secrets/restic-offsite.sops.yaml"
	tsigFile             = "system/cert-manager/secrets/rfc2136-tsig.sops.yaml"
	offsiteTarget        = "offsite"
)

// alertReceiverName is the receiver the wizard adds.
func (a Alert) receiverName() string { return a.Kind }

// offsiteDefault is the offsite target's repository as a render sees it
// without an override.
func offsiteDefault(a *Answers) string {
	repo, err := templates.MustCatalog().BackupRepository(offsiteTarget, a.Domain, a.Name, nil)
	if err != nil {
		return ""
	}
	return repo
}

// credentials is the step for what other services issue. The terminal UI
// asks for secrets with hidden input; accessible mode reads lines (which
// a terminal echoes), so there it asks only for what is not secret and
// says how to set the rest.
func (w *wizard) credentials() error {
	a := w.a
	c := &a.Creds
	if a.OffsiteRepo == "" {
		a.OffsiteRepo = offsiteDefault(a)
	}
	secret := func(title, desc string, v *string) huh.Field {
		return huh.NewInput().Title(title).Description(desc).EchoMode(huh.EchoModePassword).Value(v)
	}
	if err := w.dnsStep(secret); err != nil {
		return err
	}
	var groups []*huh.Group
	if w.enabled("backups") {
		fields := []huh.Field{
			w.note("Offsite backups", "restic sends every volume's backups to an S3 bucket off the premises (Backblaze B2, Wasabi, a friend's MinIO). The keys come from that storage."),
			w.inputFn("Offsite repository", "restic repository, s3:https://host/bucket[/prefix]", &a.OffsiteRepo, func() error {
				if !resticRepoRe.MatchString(a.OffsiteRepo) {
					return fmt.Errorf("%q is not a restic repository (s3:, b2:, rest:, sftp:, azure:, gs:, swift: or rclone:, e.g. s3:https://s3.example.com/bucket)", a.OffsiteRepo)
				}
				return w.check("spec.apps.backups")
			}),
		}
		if !w.acc {
			fields = append(fields, secret("Access key ID", "empty: later", &c.OffsiteKeyID), secret("Secret access key", "empty: later", &c.OffsiteSecret))
		}
		groups = append(groups, huh.NewGroup(fields...))
	}
	if a.hadReceivers == 0 {
		kinds := []huh.Option[string]{
			huh.NewOption("Nowhere yet (hl validate warns until a receiver is set)", alertNone),
			huh.NewOption("ntfy: push notifications to a phone", alertNtfy),
			huh.NewOption("E-mail over SMTP", alertMail),
			huh.NewOption("A webhook (a chat bridge, home automation, your own script)", alertWebhook),
		}
		groups = append(groups, huh.NewGroup(
			w.note("Alerts", "Alertmanager sends firing alerts (a failed backup, a full disk, a node down) to one receiver; more can be added in hl.yaml (spec.alerting)."),
			w.choice("Alerts go to", "", &a.Alert.Kind, kinds, nil),
		))
	}
	if w.enabled("sso") {
		groups = append(groups, huh.NewGroup(
			w.note("People", "Everyone listed gets an account in single sign-on, and through it in Gitea, Grafana, Argo CD and the apps that sign in there. Their passwords are generated; hl init writes the new ones to a file only you can read, to hand over."),
			w.inputFn("People", "login <e-mail>, comma-separated; empty: only you", &a.People, func() error {
				if _, err := parsePeople(a.People); err != nil {
					return err
				}
				return w.check("spec.people")
			}),
		))
	}
	err := w.ask(func() []*huh.Group { return groups }, func() error { return w.check("spec.apps.backups", "spec.people") })
	if err != nil {
		return err
	}
	var fields []huh.Field
	switch a.Alert.Kind {
	case alertNtfy:
		if a.Alert.URL == "" {
			a.Alert.URL = "https://ntfy.sh"
		}
		if a.Alert.Topic == "" {
			a.Alert.Topic = a.Name + "-alerts"
		}
		fields = append(fields,
			w.input("ntfy server", "", &a.Alert.URL, "spec.alerting"),
			w.input("Topic", "pick one nobody guesses on a public server", &a.Alert.Topic, "spec.alerting"))
		if !w.acc {
			fields = append(fields, secret("Access token", "empty: the topic is open (auth: none)", &c.AlertSecret))
		}
	case alertMail:
		if a.Alert.To == "" {
			a.Alert.To = a.Email
		}
		fields = append(fields,
			w.input("SMTP server", "host:port, e.g. smtp.example.org:587", &a.Alert.Smarthost, "spec.alerting"),
			w.inputFn("Send to", "comma-separated addresses", &a.Alert.To, func() error {
				for _, to := range splitList(a.Alert.To) {
					if _, err := mail.ParseAddress(to); err != nil {
						return fmt.Errorf("%q is not an e-mail address", to)
					}
				}
				return w.check("spec.alerting")
			}),
			w.input("SMTP user name", "empty: no login", &a.Alert.Username, "spec.alerting"))
		if !w.acc {
			fields = append(fields, secret("SMTP password", "needed with a user name", &c.AlertSecret))
		}
	case alertWebhook:
		fields = append(fields, w.input("Webhook URL", "Alertmanager POSTs its JSON here, e.g. https://hooks.example.org/alertmanager", &a.Alert.WebhookURL, "spec.alerting"))
		if !w.acc {
			fields = append(fields, secret("Bearer token", "empty: no Authorization header", &c.AlertSecret))
		}
	default:
		return nil
	}
	return w.ask(func() []*huh.Group { return []*huh.Group{huh.NewGroup(fields...)} }, func() error { return w.check("spec.alerting") })
}

// dnsStep asks for the DNS provider and what it needs: Cloudflare's API
// token, or the own server's address and (optionally) the secret of a TSIG
// key it already has.
func (w *wizard) dnsStep(secret func(title, desc string, v *string) huh.Field) error {
	a := w.a
	c := &a.Creds
	opts := []huh.Option[string]{
		huh.NewOption("Cloudflare (a zone there, an API token)", config.DNSCloudflare),
		huh.NewOption("My own DNS server (RFC 2136 updates signed with a TSIG key; no cloud account)", config.DNSRFC2136),
	}
	err := w.ask(func() []*huh.Group {
		return []*huh.Group{huh.NewGroup(
			w.note("DNS and certificates", "external-dns writes the apps' records under "+a.Domain+" and cert-manager proves the domain to Let's Encrypt (DNS-01) through the DNS provider."),
			w.choice("DNS provider", "", &a.DNSProvider, opts, nil),
		)}
	}, nil)
	if err != nil {
		return err
	}
	var fields []huh.Field
	switch a.DNSProvider {
	case config.DNSRFC2136:
		fields = append(fields,
			w.note("Your DNS server", "It must be the primary for a zone holding "+a.Domain+", delegated publicly so Let's Encrypt can resolve it. hl generates the TSIG key; system/cert-manager/README.md shows the server's key clause."),
			w.input("DNS server address", "its IP address, e.g. 192.168.1.2", &a.DNSServer, "spec.dns"))
		if !w.acc {
			fields = append(fields, huh.NewInput().Title("TSIG secret").Description("base64, from a key the server already has; empty: hl generates one").
				EchoMode(huh.EchoModePassword).Value(&c.TSIGSecret).Validate(func(s string) error {
				if s = strings.TrimSpace(s); s != "" {
					if b, err := base64.StdEncoding.DecodeString(s); err != nil || len(b) < 16 {
						return errors.New("not a base64 TSIG secret of at least 16 bytes")
					}
				}
				return nil
			}))
		}
	default:
		fields = append(fields, w.note("Cloudflare", "external-dns and cert-manager use a Cloudflare API token (Zone → DNS → Edit on "+a.Domain+"). Leave it empty to set it later with hl secrets set; the input is hidden and stored SOPS-encrypted only."))
		if !w.acc {
			fields = append(fields, secret("Cloudflare API token", "empty: later", &c.DNSToken))
		}
	}
	return w.ask(func() []*huh.Group { return []*huh.Group{huh.NewGroup(fields...)} }, func() error { return w.check("spec.dns") })
}

// applyDNS writes spec.dns when the provider or the server changed: an
// own server as provider rfc2136 with its address (other rfc2136 fields
// kept), Cloudflare as no spec.dns at all (the default).
func applyDNS(root *yaml.Node, a *Answers) {
	if a.DNSProvider == a.origDNS.provider && a.DNSServer == a.origDNS.server {
		return
	}
	if a.DNSProvider != config.DNSRFC2136 {
		removeKey(root, path{"spec", "dns"})
		return
	}
	setStr(root, path{"spec", "dns", "provider"}, config.DNSRFC2136, "")
	setStr(root, path{"spec", "dns", "rfc2136", "server"}, a.DNSServer, "")
}

// resticRepoRe is a restic repository of a remote backend, one line.
var resticRepoRe = regexp.MustCompile(`^(s3|b2|rest|sftp|azure|gs|swift|rclone):[^\s]+$`)

// enabled reports whether the candidate hl.yaml enables a component.
func (w *wizard) enabled(name string) bool {
	_, doc, _ := w.candidate()
	return doc != nil && doc.Homelab != nil && doc.Homelab.Enabled(name)
}

// applyCredentials writes the non-secret part of the credentials step
// into hl.yaml: the offsite repository when it is not the default, and
// the alert receiver when the file had none.
func applyCredentials(root *yaml.Node, a *Answers) {
	if a.OffsiteRepo != "" {
		p := path{"spec", "apps", "backups", "values", "targets", offsiteTarget}
		if a.OffsiteRepo != offsiteDefault(a) || lookup(root, append(p, "repository")) != nil {
			m := ensureMap(root, p)
			if _, v := yamlnode.Pair(m, "repository"); v != nil {
				setScalar(v, a.OffsiteRepo, "!!str")
			} else {
				m.Content = append(m.Content, strNode("repository"), strNode(a.OffsiteRepo))
			}
		}
	}
	if a.hadReceivers > 0 || a.Alert.Kind == alertNone {
		return
	}
	r := config.Receiver{Name: a.Alert.receiverName()}
	switch a.Alert.Kind {
	case alertNtfy:
		auth := config.NtfyAuthToken
		if a.Creds.AlertSecret == "" {
			auth = config.NtfyAuthNone
		}
		r.Ntfy = &config.NtfyReceiver{URL: a.Alert.URL, Topic: a.Alert.Topic, Priority: "high", Auth: auth}
	case alertMail:
		r.Email = &config.EmailReceiver{Smarthost: a.Alert.Smarthost, From: "alertmanager@" + a.Domain, To: splitList(a.Alert.To), Username: a.Alert.Username}
	case alertWebhook:
		auth := config.WebhookAuthBearer
		if a.Creds.AlertSecret == "" {
			auth = config.WebhookAuthNone
		}
		r.Webhook = &config.WebhookReceiver{URL: strings.TrimSpace(a.Alert.WebhookURL), Auth: auth}
	}
	al := config.Alerting{Receivers: []config.Receiver{r}, Route: config.AlertRoute{Receiver: r.Name}}
	var n yaml.Node
	if err := n.Encode(al); err != nil {
		return // plain structs always encode
	}
	spec := ensureMap(root, path{"spec"})
	if _, v := yamlnode.Pair(spec, "alerting"); v != nil {
		*v = n
		return
	}
	insertKey(spec, path{"spec"}, "alerting", &n)
	if k, _ := yamlnode.Pair(spec, "alerting"); k != nil {
		k.HeadComment = "# Where Alertmanager sends firing alerts (hl init asked). More receivers,\n# routes by severity and their credentials: system/monitoring/README.md."
	}
}

// writeCredentials stores the typed credentials in the rendered repo at
// dir, encrypted for recipients: into the generated secrets' keys (their
// copies and consumers' restart annotations follow, as with hl secrets
// set) and, for an alert receiver's login, the receivers' Secret the user
// would otherwise write with sops. It prints file names, never values,
// and says how to set what was left empty.
func (w *wizard) writeCredentials(dir string, h *config.Homelab, ids []age.Identity) error {
	c := w.a.Creds
	var later []string
	set := func(file string, vals map[string]string, what string) error {
		if _, err := os.Stat(filepath.Join(dir, file)); errors.Is(err, os.ErrNotExist) {
			return nil // the component is not enabled
		}
		var empty []string
		for k, v := range vals {
			if v == "" {
				delete(vals, k)
				empty = append(empty, k)
			}
		}
		if len(empty) > 0 {
			sort.Strings(empty)
			later = append(later, "hl secrets set "+file+" "+strings.Join(empty, " "))
		}
		if len(vals) == 0 {
			return nil
		}
		if _, err := secrets.SetValues(dir, file, vals, ids, secrets.Options{}); err != nil {
			// hl.yaml and the render are written: say what to redo
			// instead of failing the whole init.
			fmt.Fprintf(w.opts.ErrOut, "could not store %s: %v\n", what, err)
			keys := slices.Sorted(maps.Keys(vals))
			later = append(later, "hl secrets set "+file+" "+strings.Join(keys, " "))
			return nil
		}
		fmt.Fprintf(w.out, "stored %s in %s (encrypted)\n", what, file)
		return nil
	}
	if h.Spec.DNS.RFC2136 != nil {
		if c.TSIGSecret != "" {
			if err := set(tsigFile, map[string]string{"tsig-secret": strings.TrimSpace(c.TSIGSecret)}, "the TSIG key's secret"); err != nil {
				return err
			}
		} else if _, err := os.Stat(filepath.Join(dir, tsigFile)); err == nil {
			later = append(later, "give the DNS server "+h.Spec.DNS.RFC2136.Server+" the TSIG key "+h.Spec.DNS.RFC2136.TSIGKeyName+" (system/cert-manager/README.md)")
		}
	} else {
		for _, f := range []string{certManagerTokenFile, externalDNSTokenFile} {
			if err := set(f, map[string]string{"api-token": c.DNSToken}, "the Cloudflare API token"); err != nil {
				return err
			}
		}
	}
	if err := set(offsiteFile, map[string]string{"AWS_ACCESS_KEY_ID": c.OffsiteKeyID, "AWS_SECRET_ACCESS_KEY": c.OffsiteSecret}, "the offsite bucket's keys"); err != nil {
		return err
	}
	// The local targets' keys come from the user's own S3 servers (a NAS's
	// MinIO or Garage); the wizard does not ask, it only says where.
	for _, t := range templates.MustCatalog().BackupTargets {
		if t.Name == offsiteTarget {
			continue
		}
		if err := set("system/backups/secrets/restic-"+t.Name+".sops.yaml", map[string]string{"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": ""}, ""); err != nil {
			return err
		}
	}
	if keys := h.Spec.Alerting.SecretKeys(); len(keys) > 0 {
		file := "system/monitoring/secrets/" + h.Spec.Alerting.SecretName() + ".sops.yaml"
		_, err := os.Stat(filepath.Join(dir, file))
		switch {
		case err == nil:
		case c.AlertSecret != "" && len(keys) == 1 && keys[0] == w.a.Alert.receiverName()+secretSuffix(w.a.Alert.Kind):
			if err := writeProvided(filepath.Join(dir, file), h.Spec.Alerting.SecretName(), "monitoring", map[string]string{keys[0]: c.AlertSecret}, h.Spec.Secrets.AgeRecipients); err != nil {
				return err
			}
			fmt.Fprintf(w.out, "stored the alert receiver's login in %s (encrypted)\n", file)
		default:
			later = append(later, "write "+strings.Join(keys, ", ")+" into "+file+" (system/monitoring/README.md)")
		}
	}
	if len(later) > 0 {
		sort.Strings(later)
		head := "Credentials to add later, in %s (what needs them waits until then):\n"
		if w.src.existing {
			// An edit run cannot tell a placeholder from a value set
			// before without decrypting every file: say both.
			head = "Credentials not given in this run (if never set, what needs them waits), to set or replace in %s:\n"
		}
		fmt.Fprintf(w.out, head, dir)
		for _, l := range slices.Compact(later) {
			fmt.Fprintln(w.out, "  "+l)
		}
	}
	return nil
}

func secretSuffix(kind string) string {
	if kind == alertMail {
		return "-password"
	}
	return "-token"
}

// writeProvided writes a Secret hl does not generate (its keys as
// stringData, as the README tells a user to write it with sops edit),
// encrypted for recipients.
func writeProvided(file, name, namespace string, values map[string]string, recipients []string) error {
	doc := struct {
		APIVersion string            `yaml:"apiVersion"`
		Kind       string            `yaml:"kind"`
		Metadata   map[string]string `yaml:"metadata"`
		StringData map[string]string `yaml:"stringData"`
	}{"v1", "Secret", map[string]string{"name": name, "namespace": namespace}, values}
	plain, err := yaml.Marshal(doc)
	if err != nil {
		return err
	}
	enc, err := secrets.Encrypt(plain, recipients)
	if err != nil {
		return fmt.Errorf("encrypt %s: %w", file, err)
	}
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return err
	}
	return fsutil.WriteFileAtomic(file, enc, 0o644)
}

// formatPeople writes spec.people the way the wizard asks for it.
func formatPeople(ps []config.Person) string {
	parts := make([]string, len(ps))
	for i, p := range ps {
		parts[i] = p.Name + " <" + p.Email + ">"
	}
	return strings.Join(parts, ", ")
}

// parsePeople reads "alice <alice@example.org>, bob <bob@example.org>".
// The logins and addresses are checked by hl config validate's rules on
// the candidate file; here only the shape.
func parsePeople(s string) ([]config.Person, error) {
	var out []config.Person
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, rest, ok := strings.Cut(part, "<")
		email, closed := strings.CutSuffix(strings.TrimSpace(rest), ">")
		if !ok || !closed || strings.TrimSpace(name) == "" || strings.TrimSpace(email) == "" {
			return nil, fmt.Errorf("%q is not login <e-mail>, e.g. alice <alice@example.org>", part)
		}
		out = append(out, config.Person{Name: strings.TrimSpace(name), Email: strings.TrimSpace(email)})
	}
	return out, nil
}

// applyPeople writes spec.people when the typed list differs from the
// source file's (an unchanged list keeps its node and comments).
func applyPeople(root *yaml.Node, a *Answers) {
	ps, err := parsePeople(a.People)
	if err != nil || slices.Equal(ps, a.origPeople) {
		return
	}
	if len(ps) == 0 {
		removeKey(root, path{"spec", "people"})
		return
	}
	n := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
	for _, p := range ps {
		n.Content = append(n.Content, &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Style: yaml.FlowStyle, Content: []*yaml.Node{
			strNode("name"), strNode(p.Name), strNode("email"), strNode(p.Email)}})
	}
	spec := ensureMap(root, path{"spec"})
	if _, v := yamlnode.Pair(spec, "people"); v != nil {
		*v = *n
		return
	}
	insertKey(spec, path{"spec"}, "people", n)
	if k, _ := yamlnode.Pair(spec, "people"); k != nil {
		k.HeadComment = "# People with an account in single sign-on (hl init asked); their\n# passwords are in platform/sso/secrets/dex-people.sops.yaml."
	}
}

// writePasswords hands the passwords of the people this run added to the
// user: a file only they can read, next to the age identity (outside the
// repo), never the terminal.
func (w *wizard) writePasswords(dir string, h *config.Homelab, ids []age.Identity) error {
	var added []config.Person
	for _, p := range h.Spec.People {
		if !slices.ContainsFunc(w.a.origPeople, func(o config.Person) bool { return o.Name == p.Name }) {
			added = append(added, p)
		}
	}
	file := "platform/sso/secrets/dex-people.sops.yaml"
	if len(added) == 0 {
		return nil
	}
	if len(ids) == 0 {
		fmt.Fprintf(w.out, "the new people's passwords are in %s (no age identity here to read them: sops -d it where the identity is)\n", file)
		return nil
	}
	cipher, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil {
		return err
	}
	plain, err := secrets.Decrypt(cipher, ids...)
	if err != nil {
		return fmt.Errorf("decrypt %s: %w", file, err)
	}
	ex, err := secrets.ReadSecret(plain)
	if err != nil {
		return err
	}
	host := "the single sign-on page"
	if hn := h.Hostname("sso"); hn != "" {
		host = "https://" + hn
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# Passwords of the people hl init added to %s. Hand each one over in\n# person or through a password manager, then delete this file; they stay\n# in %s (sops -d) in the repo.\n# Sign in at %s, or with \"Sign in with SSO\" in the apps.\n", h.Metadata.Name, file, host)
	for _, p := range added {
		pw := ex.Values[p.Name]
		if pw == "" {
			return fmt.Errorf("%s has no password for %s", file, p.Name)
		}
		fmt.Fprintf(&b, "%s\t%s\t%s\n", p.Name, p.Email, pw)
	}
	base := w.opts.Env.ConfigDir
	if w.keyPath != "" {
		base = filepath.Dir(w.keyPath)
	}
	out := filepath.Join(base, h.Metadata.Name+"-new-passwords.txt")
	if err := os.MkdirAll(filepath.Dir(out), 0o700); err != nil {
		return err
	}
	if err := fsutil.WriteFileAtomic(out, []byte(b.String()), 0o600); err != nil {
		return err
	}
	names := make([]string, len(added))
	for i, p := range added {
		names[i] = p.Name
	}
	fmt.Fprintf(w.out, "wrote the passwords of %s to %s (only you can read it): hand them over, then delete the file\n", strings.Join(names, ", "), out)
	return nil
}
