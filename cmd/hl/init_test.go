package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"hl.dev/hl/internal/config"
	"hl.dev/hl/internal/iostreams"
	"hl.dev/hl/internal/testcharts"
	"hl.dev/hl/templates"
)

const initSSHKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBrrNnO6ES1fjcsZpjIeu89t/Ks17zrxqWfKRjw/Wcxc admin@lab"

// initEnv keeps hl init away from the user's machine: its age identity
// goes to a temporary XDG_CONFIG_HOME, no ~/.ssh key is prefilled and the
// timezone is fixed. It returns the identity path.
func initEnv(t *testing.T) string {
	t.Helper()
	xdg := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", xdg)
	t.Setenv("HOME", t.TempDir())
	t.Setenv("TZ", "UTC")
	t.Setenv("SOPS_AGE_KEY_FILE", "")
	t.Setenv("SOPS_AGE_KEY", "")
	t.Setenv("ACCESSIBLE", "")
	return filepath.Join(xdg, "hl", "age.key")
}

// optionalApp is the 1-based position of an optional catalog component in
// the apps multi-select.
func optionalApp(t *testing.T, name string) int {
	t.Helper()
	i := 0
	for _, c := range templates.MustCatalog().Components {
		if c.Required {
			continue
		}
		i++
		if c.Name == name {
			return i
		}
	}
	t.Fatalf("no optional component %q", name)
	return 0
}

func loadHL(t *testing.T, path string) (*config.Homelab, []byte) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(data, []byte(config.SchemaModeline+"\n")) {
		t.Errorf("%s does not start with the schema modeline:\n%s", path, data)
	}
	doc, probs := config.Parse(path, data)
	if len(probs) != 0 {
		t.Fatalf("%s: %v", path, probs)
	}
	return doc.Homelab, data
}

// assertRendered checks the rendered tree holds hl's layout, a folder per
// node and app, and secrets encrypted for recipient.
func assertRendered(t *testing.T, dir string, h *config.Homelab, recipient string) {
	t.Helper()
	for _, p := range []string{".sops.yaml", "README.md", "bootstrap", "metal/nodes.yaml", ".hl"} {
		if _, err := os.Stat(filepath.Join(dir, p)); err != nil {
			t.Errorf("rendered repo lacks %s: %v", p, err)
		}
	}
	nodes, _ := os.ReadFile(filepath.Join(dir, "metal/nodes.yaml"))
	for _, n := range h.Spec.Metal.Nodes {
		if _, err := os.Stat(filepath.Join(dir, "metal/nodes", n.Name)); err != nil {
			t.Errorf("no metal/nodes/%s: %v", n.Name, err)
		}
		if !bytes.Contains(nodes, []byte(n.MAC)) {
			t.Errorf("metal/nodes.yaml lacks %s", n.MAC)
		}
	}
	sops, _ := os.ReadFile(filepath.Join(dir, ".sops.yaml"))
	if !bytes.Contains(sops, []byte(recipient)) {
		t.Errorf(".sops.yaml is not for %s:\n%s", recipient, sops)
	}
	secrets, _ := filepath.Glob(filepath.Join(dir, "*/*/secrets/*.sops.yaml"))
	more, _ := filepath.Glob(filepath.Join(dir, "metal/secrets/*.sops.yaml"))
	secrets = append(secrets, more...)
	if len(secrets) == 0 {
		t.Error("no secrets rendered")
	}
	for _, s := range secrets {
		if b, _ := os.ReadFile(s); !bytes.Contains(b, []byte(recipient)) {
			t.Errorf("%s is not encrypted for %s", s, recipient)
		}
	}
}

// TestInitPipedInput drives the accessible prompts with piped stdin (no
// --accessible: stdin is not a terminal, so hl init falls back to it). A
// wrong MAC is rejected with validate's message and typed again; the
// repo is rendered with the new identity.
func TestInitPipedInput(t *testing.T) {
	keyFile := initEnv(t)
	dir := filepath.Join(t.TempDir(), "lab")
	in := strings.Join([]string{
		"lab", "lab.example.org", "Europe/Berlin", "admin@example.org",
		"10.20.0.0/24", "", "", "", "", "10.20.0.5",
		"", "", "52:54:00:zz", "52:54:00:00:20:01", "", "", "",
		"2",
		"", "", "52:54:00:00:20:02", "", "/dev/nvme0n1", "eno1",
		"1",
		"", "", initSSHKey,
		strconv.Itoa(optionalApp(t, "jellyfin")), "0",
		"", "", "", "", "y",
		"",
		"", "", "", "", // credentials: Cloudflare, offsite repository kept, no alert receiver, no people
		"", "0",
		"1",
	}, "\n") + "\n"
	ios, stdin, stdout, stderr := iostreams.Test()
	stdin.WriteString(in)
	start := time.Now()
	code := run(ios, []string{"init", "--out", dir})
	t.Logf("hl init (piped, with render) took %s", time.Since(start).Round(time.Millisecond))
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	out := stdout.String()
	for _, want := range []string{
		`spec.metal.nodes[0].mac: "52:54:00:zz" is not a MAC address (e.g. 52:54:00:12:34:56)`,
		"wrote age identity " + keyFile,
		"rendered " + dir,
		"bootstrap: run hl bootstrap gitea",
		"Next steps, in this order",
		"  1. Set node1, node2 to boot from the network first",
		"  2. On 10.20.0.5, in " + dir + ": hl up, then power the nodes on.",
		"  3. Optional: read " + filepath.Join(dir, "docs", "day-two.md"),
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	h, data := loadHL(t, filepath.Join(dir, "hl.yaml"))
	if h.Metadata.Name != "lab" || h.Spec.Domain != "lab.example.org" || h.Spec.Network.Gateway != "10.20.0.1" ||
		h.Spec.Network.LoadBalancerRange != "10.20.0.220-10.20.0.239" || h.Spec.Network.ControlPlaneVIP != "10.20.0.10" ||
		len(h.Spec.Metal.Nodes) != 2 || h.Spec.Metal.Nodes[1].IP != "10.20.0.12" || h.Spec.Metal.Nodes[1].Interface != "eno1" ||
		!h.Enabled("jellyfin") || h.Spec.Forge.URL != "https://git.lab.example.org" {
		t.Errorf("unexpected hl.yaml:\n%s", data)
	}
	rcpts := h.Spec.Secrets.AgeRecipients
	if len(rcpts) != 1 {
		t.Fatalf("recipients %v", rcpts)
	}
	assertRendered(t, dir, h, rcpts[0])
}

// TestInitDefaults: `hl init --defaults --out DIR` on a fresh machine
// renders the example with a new identity (never the public test key);
// a second run reuses the identity, and a re-render with it changes
// nothing (the secrets are decrypted and kept).
func TestInitDefaults(t *testing.T) {
	keyFile := initEnv(t)
	dir := filepath.Join(t.TempDir(), "repo")
	start := time.Now()
	out, errOut, code := hl(t, "init", "--defaults", "--out", dir)
	t.Logf("hl init --defaults took %s", time.Since(start).Round(time.Millisecond))
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	h, data := loadHL(t, filepath.Join(dir, "hl.yaml"))
	example, _ := config.Parse("example.yaml", config.Example())
	test := example.Homelab.Spec.Secrets.AgeRecipients[0]
	if bytes.Contains(data, []byte(test)) {
		t.Fatalf("hl.yaml still encrypts for the public test key:\n%s", data)
	}
	key, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	rcpt := h.Spec.Secrets.AgeRecipients[0]
	if !bytes.Contains(key, []byte("# public key: "+rcpt)) {
		t.Fatalf("hl.yaml recipient %s is not the identity in %s", rcpt, keyFile)
	}
	assertRendered(t, dir, h, rcpt)
	if len(h.Spec.Metal.Nodes) != 3 {
		t.Errorf("the example's nodes are missing:\n%s", data)
	}
	// Nothing was asked: every credential another service issues is
	// listed with the command that sets it.
	for _, want := range []string{"Credentials to add later, in " + dir, "hl secrets set system/cert-manager/secrets/cloudflare-api-token.sops.yaml api-token",
		"hl secrets set system/backups/secrets/restic-offsite.sops.yaml AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY"} {
		if !strings.Contains(out, want) {
			t.Errorf("first run's output lacks %q:\n%s", want, out)
		}
	}

	out, _, code = hl(t, "init", "--defaults", "--out", dir)
	if code != 0 || !strings.Contains(out, "reusing the existing age identity "+keyFile) {
		t.Fatalf("second run: exit %d\n%s", code, out)
	}
	// A second run cannot tell a placeholder from a value set since.
	if !strings.Contains(out, "Credentials not given in this run") || strings.Contains(out, "Credentials to add later") {
		t.Errorf("second run's credentials list reads as if nothing were set:\n%s", out)
	}
	if again, _ := os.ReadFile(keyFile); !bytes.Equal(again, key) {
		t.Fatal("the identity file was rewritten")
	}
	if out, errOut, code := hl(t, "render", "--check", "--config", filepath.Join(dir, "hl.yaml"), "--age-key", keyFile); code != 0 {
		t.Errorf("a re-render with the identity changes the repo: exit %d\n%s\n%s", code, out, errOut)
	}
}

func TestInitDefaultsInvalidConfig(t *testing.T) {
	initEnv(t)
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, bytes.Replace(config.Example(), []byte("domain: home.example.com"), []byte("domain: home"), 1), 0o644)
	dir := t.TempDir()
	_, errOut, code := hl(t, "init", "--defaults", "--config", bad, "--out", dir)
	if code != 1 || !strings.Contains(errOut, `spec.domain: "home" is not a fully qualified domain name`) {
		t.Fatalf("exit %d\n%s", code, errOut)
	}
	if _, err := os.Stat(filepath.Join(dir, "hl.yaml")); !os.IsNotExist(err) {
		t.Error("an invalid hl.yaml was written")
	}
}

// tmux drives a real terminal: hl runs in a detached session of a private
// tmux server with a fixed size; the test types with send-keys and reads
// the screen with capture-pane.
type tmux struct {
	t    *testing.T
	sock string
}

func (m *tmux) cmd(args ...string) string {
	m.t.Helper()
	out, err := exec.Command("tmux", append([]string{"-S", m.sock}, args...)...).CombinedOutput()
	if err != nil {
		m.t.Fatalf("tmux %v: %v\n%s", args, err, out)
	}
	return string(out)
}

func (m *tmux) keys(keys ...string) {
	m.t.Helper()
	m.cmd(append([]string{"send-keys", "-t", "hl"}, keys...)...)
}

// text types s literally (no key names).
func (m *tmux) text(s string) {
	m.t.Helper()
	m.cmd("send-keys", "-t", "hl", "-l", s)
}

func (m *tmux) screen() string {
	m.t.Helper()
	return m.cmd("capture-pane", "-p", "-t", "hl")
}

// waitFor polls the screen until ok; the deadline only bounds a hang.
func (m *tmux) waitFor(what string, ok func(string) bool) string {
	m.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		s := m.screen()
		if ok(s) {
			return s
		}
		if time.Now().After(deadline) {
			m.t.Fatalf("timed out waiting for %s; screen:\n%s", what, s)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// focus waits until the field titled title has the focus bar. huh moves
// focus asynchronously, so keys for the next field must wait for it.
func (m *tmux) focus(title string) string {
	m.t.Helper()
	re := regexp.MustCompile(`(?m)^┃ ` + regexp.QuoteMeta(title) + `\s*$`)
	return m.waitFor("focus on "+title, re.MatchString)
}

// fill focuses title, replaces the field's text with value and submits.
func (m *tmux) fill(title, value string) {
	m.t.Helper()
	m.focus(title)
	m.keys("C-u")
	if value != "" {
		m.text(value)
	}
	m.keys("Enter")
}

func (m *tmux) accept(title string) {
	m.t.Helper()
	m.focus(title)
	m.keys("Enter")
}

// TestInitTUI fills the full terminal UI in tmux: basics, network with
// suggested addresses, two nodes (a wrong MAC rejected inline), an app,
// Gitea with bootstrap, a new identity, the review; then checks hl.yaml
// and the rendered repo.
func TestInitTUI(t *testing.T) {
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Fatal("tmux is not installed; the terminal UI test needs it: apt-get install tmux")
	}
	tmp := t.TempDir()
	bin := filepath.Join(tmp, "hl")
	start := time.Now()
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	t.Logf("go build took %s", time.Since(start).Round(time.Millisecond))
	home, xdg, work := filepath.Join(tmp, "home"), filepath.Join(tmp, "xdg"), filepath.Join(tmp, "work")
	for _, d := range []string{home, xdg, work} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	m := &tmux{t: t, sock: filepath.Join(tmp, "tmux.sock")}
	script := "cd " + work + " && env -u TMUX -u SOPS_AGE_KEY_FILE -u SOPS_AGE_KEY -u ACCESSIBLE HOME=" + home +
		" XDG_CONFIG_HOME=" + xdg + " TZ=UTC TERM=xterm-256color " + bin + " init --out repo; echo \"[hl exited $?]\"; sleep 600"
	m.cmd("new-session", "-d", "-s", "hl", "-x", "200", "-y", "50", script)
	t.Cleanup(func() { exec.Command("tmux", "-S", m.sock, "kill-server").Run() })
	start = time.Now()

	m.fill("Homelab name", "lab")
	m.fill("Domain", "lab.example.org")
	m.fill("Timezone", "Europe/Berlin")
	m.fill("Email", "admin@example.org")
	m.fill("Node network (CIDR)", "10.20.0.0/24")
	s := m.focus("Gateway")
	for _, sugg := range []string{"> 10.20.0.1", "> 10.20.0.10", "> 10.20.0.220-10.20.0.239"} {
		if !strings.Contains(s, sugg) {
			t.Errorf("network form lacks the suggestion %q:\n%s", sugg, s)
		}
	}
	m.accept("Gateway")
	m.fill("DNS servers", "")
	m.accept("Control-plane VIP")
	m.accept("LoadBalancer range")
	m.fill("PXE host", "10.20.0.5")

	// node 1, with a MAC that validation rejects first
	m.accept("Name")
	m.accept("Role")
	m.fill("MAC address", "52:54:00:zz")
	m.waitFor("the MAC error", func(s string) bool {
		return strings.Contains(s, `spec.metal.nodes[0].mac: "52:54:00:zz" is not a MAC address (e.g. 52:54:00:12:34:56)`)
	})
	m.fill("MAC address", "52:54:00:00:20:01")
	m.accept("IP address")
	m.accept("Install disk")
	m.fill("Interface", "")
	m.focus("Nodes")
	m.keys("Down", "Enter") // Add another node
	// node 2
	m.accept("Name")
	m.accept("Role")
	m.fill("MAC address", "52:54:00:00:20:02")
	m.accept("IP address")
	m.fill("Install disk", "/dev/nvme0n1")
	m.fill("Interface", "eno1")
	s = m.focus("Nodes")
	if !strings.Contains(s, "node2: agent, 52:54:00:00:20:02, 10.20.0.12, /dev/nvme0n1") {
		t.Errorf("node list:\n%s", s)
	}
	m.keys("Enter") // Done with nodes

	m.accept("Operating system")
	m.accept("DHCP")
	m.fill("SSH public key", initSSHKey)
	m.focus("Apps")
	m.keys("Home")
	for range optionalApp(t, "jellyfin") - 1 {
		m.keys("Down")
	}
	m.keys("x", "Enter")

	m.accept("Forge")
	m.accept("URL")
	m.accept("Owner")
	m.accept("Repository")
	m.focus("Bootstrap into Gitea after rendering?")
	m.keys("y")
	m.accept("Age identity")
	// Credentials: typed once, hidden, stored encrypted after rendering.
	m.accept("DNS provider") // Cloudflare
	m.fill("Cloudflare API token", tuiDNSToken)
	m.fill("Offsite repository", "s3:https://s3.example.net/lab-offsite")
	m.fill("Access key ID", tuiKeyID)
	m.fill("Secret access key", tuiKeySecret)
	m.focus("Alerts go to")
	m.keys("Down", "Enter") // ntfy
	m.fill("People", "alice <alice@lab.example.org>, bob <bob@lab.example.org>")
	m.fill("ntfy server", "https://ntfy.lab.example.org")
	m.fill("Topic", "lab-pager")
	m.fill("Access token", tuiNtfyToken)
	m.accept("Schedule")
	m.accept("Automerge")

	s = m.focus("Next")
	if !strings.Contains(s, "No problems: hl config validate passes.") || !strings.Contains(s, "> Write hl.yaml and render the repo") {
		t.Fatalf("review:\n%s", s)
	}
	m.keys("Enter")
	s = m.waitFor("hl to exit", func(s string) bool { return strings.Contains(s, "[hl exited") })
	t.Logf("the TUI session took %s", time.Since(start).Round(time.Millisecond))
	if !strings.Contains(s, "[hl exited 0]") {
		t.Fatalf("hl failed:\n%s", s)
	}
	for _, want := range []string{"bootstrap: run hl bootstrap gitea", "Next steps, in this order", "wrote age identity " + filepath.Join(xdg, "hl", "age.key")} {
		if !strings.Contains(strings.ReplaceAll(s, "\n", ""), want) {
			t.Errorf("screen lacks %q:\n%s", want, s)
		}
	}

	dir := filepath.Join(work, "repo")
	h, data := loadHL(t, filepath.Join(dir, "hl.yaml"))
	got := h
	if got.Metadata.Name != "lab" || got.Spec.Domain != "lab.example.org" || got.Spec.Timezone != "Europe/Berlin" ||
		got.Spec.Email != "admin@example.org" || got.Spec.Network.NodeCIDR != "10.20.0.0/24" ||
		got.Spec.Network.Gateway != "10.20.0.1" || got.Spec.Metal.PXE.Address != "10.20.0.5" ||
		len(got.Spec.Metal.Nodes) != 2 ||
		got.Spec.Metal.Nodes[0] != (config.Node{Name: "node1", Role: "server", MAC: "52:54:00:00:20:01", IP: "10.20.0.11", Disk: "/dev/sda"}) ||
		got.Spec.Metal.Nodes[1] != (config.Node{Name: "node2", Role: "agent", MAC: "52:54:00:00:20:02", IP: "10.20.0.12", Disk: "/dev/nvme0n1", Interface: "eno1"}) ||
		!got.Enabled("jellyfin") || got.Spec.Forge.URL != "https://git.lab.example.org" || got.Spec.Forge.Owner != "lab" ||
		got.Spec.Metal.SSHAuthorizedKeys[0] != initSSHKey {
		t.Errorf("unexpected hl.yaml:\n%s", data)
	}
	assertRendered(t, dir, h, h.Spec.Secrets.AgeRecipients[0])

	// The credentials: never on the screen, encrypted where their
	// consumers read them, the alert receiver in hl.yaml.
	for _, v := range []string{tuiDNSToken, tuiKeyID, tuiKeySecret, tuiNtfyToken} {
		if strings.Contains(s, v) || bytes.Contains(data, []byte(v)) {
			t.Errorf("a typed credential is on the screen or in hl.yaml")
		}
	}
	t.Setenv("SOPS_AGE_KEY_FILE", filepath.Join(xdg, "hl", "age.key"))
	for file, want := range map[string]map[string]string{
		"system/cert-manager/secrets/cloudflare-api-token.sops.yaml":            {"api-token": tuiDNSToken},
		"system/external-dns/secrets/cloudflare-api-token.sops.yaml":            {"api-token": tuiDNSToken},
		"system/backups/secrets/restic-offsite.sops.yaml":                       {"AWS_ACCESS_KEY_ID": tuiKeyID, "AWS_SECRET_ACCESS_KEY": tuiKeySecret, "repository.gitea.gitea-shared-storage": "s3:https://s3.example.net/lab-offsite/gitea/gitea-shared-storage"},
		"system/monitoring/secrets/alertmanager-receivers.sops.yaml":            {"ntfy-token": tuiNtfyToken},
		"system/backups/secrets/volsync-gitea-shared-storage-offsite.sops.yaml": {"AWS_ACCESS_KEY_ID": tuiKeyID},
	} {
		got := secretValues(t, dir, file).Values
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%s: %s is not what was typed", file, k)
			}
		}
	}
	r := h.Spec.Alerting.Receivers
	if len(r) != 1 || r[0].Ntfy == nil || r[0].Ntfy.URL != "https://ntfy.lab.example.org" || r[0].Ntfy.Topic != "lab-pager" || r[0].Ntfy.Auth != config.NtfyAuthToken || h.Spec.Alerting.Route.Receiver != "ntfy" {
		t.Errorf("alerting in hl.yaml: %+v", h.Spec.Alerting)
	}

	// The people: in hl.yaml and Dex, their passwords in a file only the
	// user can read (not on the screen), each matching Dex's hash.
	if len(h.Spec.People) != 2 || h.Spec.People[0] != (config.Person{Name: "alice", Email: "alice@lab.example.org"}) {
		t.Errorf("people in hl.yaml: %+v", h.Spec.People)
	}
	sso, _ := os.ReadFile(filepath.Join(dir, "platform/sso/values.yaml"))
	if !bytes.Contains(sso, []byte(`email: "bob@lab.example.org"`)) || !bytes.Contains(sso, []byte("hashFromEnv: DEX_PERSON_BOB_HASH")) {
		t.Errorf("Dex's values lack bob:\n%s", sso)
	}
	handout := filepath.Join(xdg, "hl", "lab-new-passwords.txt")
	fi, err := os.Stat(handout)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("hand-out file: %v %v", fi, err)
	}
	lines, _ := os.ReadFile(handout)
	people := secretValues(t, dir, "platform/sso/secrets/dex-people.sops.yaml").Values
	found := 0
	for _, l := range strings.Split(string(lines), "\n") {
		f := strings.Split(l, "\t")
		if len(f) != 3 {
			continue
		}
		found++
		if err := bcrypt.CompareHashAndPassword([]byte(people[f[0]+"-hash"]), []byte(f[2])); err != nil {
			t.Errorf("%s's handed-out password does not match Dex's hash: %v", f[0], err)
		}
		if strings.Contains(s, f[2]) {
			t.Errorf("%s's password is on the screen", f[0])
		}
	}
	if found != 2 {
		t.Errorf("hand-out file has %d people, want 2:\n%s", found, lines)
	}

	// The rendered repo validates as it is, offline, against the
	// catalog's charts.
	cache := t.TempDir()
	testcharts.Catalog(t).Cache(t, cache, h.Spec.Mirrors.Charts...)
	if out, errOut, code := hl(t, "validate", dir, "--chart-cache", cache, "--offline"); code != 0 {
		t.Errorf("hl validate on the wizard's repo: exit %d\n%s%s", code, out, errOut)
	}
}

// What TestInitTUI types into the hidden credential fields.
const (
	tuiDNSToken  = "cf-tui-token-3f9a7c1e5b"
	tuiKeyID     = "K00TUIKEYID42"
	tuiKeySecret = "tui-secret-access-key-8d2e4f6a"
	tuiNtfyToken = "tk_tuintfytoken0123456789"
)
