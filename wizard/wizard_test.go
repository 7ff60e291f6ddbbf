package wizard

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"hl.dev/hl/internal/config"
	"hl.dev/hl/templates"
)

var update = flag.Bool("update", false, "rewrite golden files")

const testSSHKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBrrNnO6ES1fjcsZpjIeu89t/Ks17zrxqWfKRjw/Wcxc admin@lab"

// answers joins one answer per prompt into piped input.
func answers(lines ...string) string { return strings.Join(lines, "\n") + "\n" }

// appNumber is the accessible multi-select number of an optional catalog
// component (required ones are not offered).
func appNumber(t *testing.T, name string) string {
	t.Helper()
	i := 0
	for _, c := range templates.MustCatalog().Components {
		if c.Required {
			continue
		}
		i++
		if c.Name == name {
			return strconv.Itoa(i)
		}
	}
	t.Fatalf("no optional component %q", name)
	return ""
}

// runInit runs Init in accessible mode on piped input and returns the
// transcript.
func runInit(t *testing.T, opts InitOptions, input string) (*InitResult, string, error) {
	t.Helper()
	var out bytes.Buffer
	opts.Accessible = true
	opts.In = strings.NewReader(input)
	opts.Out = &out
	if opts.Env.ConfigDir == "" {
		opts.Env.ConfigDir = t.TempDir()
	}
	res, err := Init(context.Background(), opts)
	return res, out.String(), err
}

func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./wizard -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs:\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

var recipientRe = regexp.MustCompile(`age1[0-9a-z]{58}`)

// validateMessage is what `hl config validate` says about path in data.
func validateMessage(t *testing.T, data []byte, path string) string {
	t.Helper()
	_, probs := config.Parse("x.yaml", data)
	for _, p := range probs.At(path) {
		return p.Path + ": " + p.Message
	}
	t.Fatalf("no problem at %s", path)
	return ""
}

// TestAccessibleFresh fills a new hl.yaml through plain prompts: a wrong
// domain and MAC are rejected with validate's messages and typed again,
// two nodes are added, an app is picked, and the review catches a
// LoadBalancer range overlapping a node, which is fixed by looping back to
// the network section.
func TestAccessibleFresh(t *testing.T) {
	dir := t.TempDir()
	cfg := t.TempDir()
	in := answers(
		// basics
		"lab", "Lab.Example.org", "lab.example.org", "Europe/Berlin", "admin@example.org",
		// network: CIDR, then the suggested gateway, DNS, VIP, range, PXE host
		"10.10.0.0/24", "", "", "", "", "",
		// node 1: name, role, MAC (wrong, then right), IP, disk, interface
		"", "", "zz:zz", "52:54:00:AA:00:01", "", "", "",
		"2", // add another node
		"", "", "52:54:00:aa:00:02", "10.10.0.225", "/dev/nvme0n1", "eno1",
		"1", // done
		// OS, DHCP, SSH key
		"", "", testSSHKey,
		// apps: jellyfin on
		appNumber(t, "jellyfin"), "0",
		// forge: type, URL, owner, repo, bootstrap
		"", "", "", "", "",
		// secrets: generate
		"",
		// credentials (accessible mode asks for no secret): Cloudflare, the
		// default offsite repository, alerts to ntfy, a person, then ntfy's
		// default server and topic
		"", "", "2", "Alice <alice@example.org>", "alice <alice@example.org>", "", "",
		// bot: schedule, automerge
		"", "0",
		// review: the range overlaps node2; the default is to fix network
		"",
		"", "", "", "", "10.10.0.230-10.10.0.239", "",
		// review: write
		"1",
	)
	res, out, err := runInit(t, InitOptions{Dir: dir, NoRender: true, Env: Env{ConfigDir: cfg}}, in)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !res.Written || len(res.Problems) != 0 {
		t.Fatalf("written %v, problems %v\n%s", res.Written, res.Problems, out)
	}
	data, err := os.ReadFile(filepath.Join(dir, "hl.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	// The inline messages are validate's, word for word.
	for _, want := range []string{
		validateMessage(t, bytes.Replace(data, []byte("domain: lab.example.org"), []byte("domain: Lab.Example.org"), 1), "spec.domain"),
		validateMessage(t, bytes.Replace(data, []byte(`"52:54:00:aa:00:01"`), []byte(`"zz:zz"`), 1), "spec.metal.nodes[0].mac"),
		"spec.network.loadBalancerRange: 10.10.0.220-10.10.0.239 overlaps node node2 at 10.10.0.225 (spec.metal.nodes[1].ip)",
		"Next [Fix network (1 problem)]",
		`spec.people[0].name: "Alice" is not a login (lower-case letters, digits and '-')`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("transcript lacks %q:\n%s", want, out)
		}
	}
	id := res.Identity
	if id == nil || id.Path != filepath.Join(cfg, "hl", "age.key") {
		t.Fatalf("identity %+v", id)
	}
	if fi, err := os.Stat(id.Path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("identity file: %v %v", fi, err)
	}
	if !bytes.Contains(data, []byte(id.Recipient)) {
		t.Errorf("hl.yaml lacks the new recipient %s", id.Recipient)
	}
	golden(t, "../testdata/init/fresh.golden.yaml", recipientRe.ReplaceAll(data, []byte("AGE_RECIPIENT")))
}

// TestAccessibleWebhookReceiver: alerts can go to a webhook (a chat
// bridge, home automation); hl.yaml gets the receiver and the route, and
// a URL that is not one is refused with validate's message.
func TestAccessibleWebhookReceiver(t *testing.T) {
	dir := t.TempDir()
	in := answers(
		"lab", "lab.example.org", "lab.example.org", "Europe/Berlin", "admin@example.org",
		"10.10.0.0/24", "", "", "", "", "",
		"", "", "52:54:00:aa:00:01", "", "", "",
		"1", // done with nodes
		"", "", testSSHKey,
		"0",                // apps as they are
		"", "", "", "", "", // forge
		"", // secrets: generate
		// credentials: Cloudflare, the default offsite repository, alerts to
		// a webhook, nobody else; then the URL (a wrong one first)
		"", "", "4", "", "not a url", "https://hooks.lab.example.org/alertmanager",
		"", "0", // bot
		"1", // review: write
	)
	res, out, err := runInit(t, InitOptions{Dir: dir, NoRender: true, Env: Env{ConfigDir: t.TempDir()}}, in)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !res.Written || len(res.Problems) != 0 {
		t.Fatalf("written %v, problems %v\n%s", res.Written, res.Problems, out)
	}
	if !strings.Contains(out, "spec.alerting.receivers[0].webhook.url") {
		t.Errorf("the wrong URL was not refused with its field path:\n%s", out)
	}
	doc, _, err := config.Load(filepath.Join(dir, "hl.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	h := doc.Homelab
	r := h.Spec.Alerting.Receivers
	if len(r) != 1 || r[0].Webhook == nil || r[0].Webhook.URL != "https://hooks.lab.example.org/alertmanager" ||
		r[0].Webhook.Auth != config.WebhookAuthNone || h.Spec.Alerting.Route.Receiver != r[0].Name {
		t.Errorf("alerting %+v", h.Spec.Alerting)
	}
}

// existingIn copies testdata's hand-written hl.yaml into a new folder and
// returns the folder and the file's bytes.
func existingIn(t *testing.T) (string, []byte) {
	t.Helper()
	dir := t.TempDir()
	src, err := os.ReadFile("../testdata/init/existing.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "hl.yaml"), src, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, src
}

// TestAccessibleEditKeepsEverythingElse re-runs the wizard on a
// hand-written hl.yaml: answers are prefilled (Enter keeps them), and
// comments, key order and sections the wizard does not ask about survive.
func TestAccessibleEditKeepsEverythingElse(t *testing.T) {
	dir, _ := existingIn(t)
	in := answers(
		"", "", "", "admin@attic.example.net", // basics: new email
		"", "", "", "", "", "", // network unchanged
		// nodes menu: done, add, edit alpha/beta/gamma, remove alpha/beta/gamma
		"7", // remove beta
		"4", // edit gamma (menu: done, add, edit alpha, edit gamma, ...)
		"", "", "", "192.168.50.14", "", "eno1",
		"2", // add a node
		"delta", "", "52:54:00:50:00:04", "", "", "",
		"1",        // done
		"", "", "", // OS, DHCP, SSH key kept
		appNumber(t, "paperless"), "0",
		"", "", "", "", "", // forge kept, no bootstrap
		"",             // secrets: keep the recipients
		"", "", "", "", // credentials: DNS and offsite repository kept, no alerts, no people
		"", "0", // bot kept
		"1", // write
	)
	res, out, err := runInit(t, InitOptions{Dir: dir, NoRender: true}, in)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !res.Written || len(res.Problems) != 0 || res.Identity != nil {
		t.Fatalf("written %v, problems %v, identity %v\n%s", res.Written, res.Problems, res.Identity, out)
	}
	data, err := os.ReadFile(filepath.Join(dir, "hl.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "../testdata/init/existing.golden.yaml", data)
}

// TestAccessibleChoicesRechecked: a choice that makes the file invalid
// (no server node, an app without what it needs) is refused with
// validate's message after the prompt and asked again.
func TestAccessibleChoicesRechecked(t *testing.T) {
	dir, _ := existingIn(t)
	storage := appNumber(t, "storage")
	in := answers(
		"", "", "", "", "", "", "", "", "", "",
		"3", "", "2", "", "", "", "", // alpha becomes an agent
		"1",                          // done: refused
		"3", "", "1", "", "", "", "", // alpha is a server again
		"1",
		"", "", "",
		storage, "0", // storage off: refused
		storage, "0",
		"", "", "", "", "", "", "", "", "", "", "", "0",
		"11", // quit
	)
	_, out, err := runInit(t, InitOptions{Dir: dir}, in)
	if !errors.Is(err, ErrAborted) {
		t.Fatalf("err %v\n%s", err, out)
	}
	for _, want := range []string{
		"spec.metal.nodes: at least one node must have role server",
		"spec.apps.gitea.enabled: gitea needs storage (repositories live on a persistent volume): enable spec.apps.storage or disable spec.apps.gitea",
	} {
		if strings.Count(out, want) != 1 {
			t.Errorf("transcript should show %q once:\n%s", want, out)
		}
	}
}

func TestInputEndsEarly(t *testing.T) {
	dir := t.TempDir()
	_, out, err := runInit(t, InitOptions{Dir: dir}, answers("lab", "lab.example.org"))
	if !errors.Is(err, ErrInputEnded) {
		t.Fatalf("err %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "hl.yaml")); !os.IsNotExist(err) {
		t.Errorf("hl.yaml written: %v", err)
	}
}

func TestQuitWritesNothing(t *testing.T) {
	dir, src := existingIn(t)
	in := answers("", "", "", "", "", "", "", "", "", "", "1", "", "", "", "0", "", "", "", "", "", "", "", "", "", "", "", "0", "11")
	_, out, err := runInit(t, InitOptions{Dir: dir}, in)
	if !errors.Is(err, ErrAborted) {
		t.Fatalf("err %v\n%s", err, out)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "hl.yaml")); !bytes.Equal(got, src) {
		t.Error("hl.yaml changed")
	}
}

// TestDefaultsIdentity: --defaults never keeps the example's public test
// key; it generates an identity once and reuses it afterwards.
func TestDefaultsIdentity(t *testing.T) {
	cfg := t.TempDir()
	dir := t.TempDir()
	res, out, err := runInit(t, InitOptions{Dir: dir, Defaults: true, NoRender: true, Env: Env{ConfigDir: cfg}}, "")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	data, _ := os.ReadFile(filepath.Join(dir, "hl.yaml"))
	if !bytes.HasPrefix(data, []byte(config.SchemaModeline+"\n")) {
		t.Errorf("no modeline:\n%s", data)
	}
	doc, probs := config.Parse("hl.yaml", data)
	if len(probs) != 0 {
		t.Fatal(probs)
	}
	rcpts := doc.Homelab.Spec.Secrets.AgeRecipients
	if len(rcpts) != 1 || isTestRecipient(rcpts[0]) || rcpts[0] != res.Identity.Recipient {
		t.Fatalf("recipients %v, identity %+v", rcpts, res.Identity)
	}
	if bytes.Contains(data, []byte("TEST key")) {
		t.Error("the test-key comment survived")
	}
	keyFile := filepath.Join(cfg, "hl", "age.key")
	key1, _ := os.ReadFile(keyFile)

	// A second run in a new folder reuses the identity and says so.
	dir2 := t.TempDir()
	res2, out2, err := runInit(t, InitOptions{Dir: dir2, Defaults: true, NoRender: true, Env: Env{ConfigDir: cfg}}, "")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out2, "reusing the existing age identity "+keyFile) || res2.Identity.Recipient != res.Identity.Recipient {
		t.Errorf("not reused:\n%s", out2)
	}
	if key2, _ := os.ReadFile(keyFile); !bytes.Equal(key1, key2) {
		t.Error("identity file rewritten")
	}

	// --age-key points elsewhere.
	other := filepath.Join(t.TempDir(), "keys", "lab.key")
	res3, _, err := runInit(t, InitOptions{Dir: t.TempDir(), Defaults: true, NoRender: true, AgeKey: other, Env: Env{ConfigDir: cfg}}, "")
	if err != nil {
		t.Fatal(err)
	}
	if res3.Identity.Path != other || res3.Identity.Recipient == res.Identity.Recipient {
		t.Errorf("--age-key: %+v", res3.Identity)
	}
	if _, err := os.Stat(other); err != nil {
		t.Error(err)
	}
}

// TestApplyKeepsUnknownContent: a key hl does not know (an error for
// validate) and every comment survive an edit.
func TestApplyKeepsUnknownContent(t *testing.T) {
	src := append(config.Example(), []byte("  x-notes: {rack: attic} # mine\n")...)
	doc, probs := config.Parse("hl.yaml", src)
	if len(probs.At("spec.x-notes")) == 0 {
		t.Fatalf("fixture should have an unknown key: %v", probs)
	}
	a := answersFrom(doc.Homelab, doc.Root)
	a.Domain = "lab.example.org"
	a.Nodes = a.Nodes[:1]
	a.Apps = slices.DeleteFunc(a.Apps, func(s string) bool { return s == "blog" })
	apply(doc.Root, a)
	out, err := encode(doc.Root)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"x-notes: {rack: attic} # mine",
		"address: 192.168.1.5 # the machine running `hl metal serve`",
		"# An example homelab",
		"domain: lab.example.org",
		"blog: {enabled: false}",
		"jellyfin: {enabled: true}",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(string(out), "node2") {
		t.Errorf("node2 not removed:\n%s", out)
	}
}

func TestApplyUnchangedIsIdentity(t *testing.T) {
	for _, f := range []string{"../testdata/init/existing.yaml", "../internal/config/example.yaml"} {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		doc, _ := config.Parse(f, src)
		apply(doc.Root, answersFrom(doc.Homelab, doc.Root))
		out, err := encode(doc.Root)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out, src) {
			t.Errorf("%s: applying its own answers changed it:\n%s", f, out)
		}
	}
}

func TestSuggestNetwork(t *testing.T) {
	for _, tc := range []struct {
		cidr, gw, pxe, vip, lb, node, err string
	}{
		{cidr: "192.168.1.0/24", gw: "192.168.1.1", pxe: "192.168.1.5", vip: "192.168.1.10", lb: "192.168.1.220-192.168.1.239", node: "192.168.1.11"},
		{cidr: "10.0.0.0/16", gw: "10.0.0.1", pxe: "10.0.0.5", vip: "10.0.0.10", lb: "10.0.0.220-10.0.0.239", node: "10.0.0.11"},
		{cidr: "10.0.0.16/28", gw: "10.0.0.17", pxe: "10.0.0.18", vip: "10.0.0.19", lb: "10.0.0.28-10.0.0.30", node: "10.0.0.20"},
		{cidr: "10.0.0.1/24", err: `"10.0.0.1/24" is not canonical: did you mean 10.0.0.0/24?`},
		{cidr: "10.0.0.0/30", err: "10.0.0.0/30 is too small"},
		{cidr: "lan", err: `"lan" is not a CIDR (e.g. 192.168.1.0/24)`},
	} {
		s, err := config.SuggestNetwork(tc.cidr)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: err %v, want %q", tc.cidr, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		got := []string{s.Gateway, s.PXEAddress, s.ControlPlaneVIP, s.LoadBalancerRange, s.NodeIP([]string{s.Gateway})}
		want := []string{tc.gw, tc.pxe, tc.vip, tc.lb, tc.node}
		if !slices.Equal(got, want) {
			t.Errorf("%s: got %v, want %v", tc.cidr, got, want)
		}
	}
	// The suggestions pass validation.
	data := config.Example()
	s, _ := config.SuggestNetwork("192.168.1.0/24")
	if s.NodeIP([]string{"192.168.1.11", "192.168.1.12"}) != "192.168.1.13" {
		t.Error("NodeIP does not skip used addresses")
	}
	if _, probs := config.Parse("x", data); len(probs) != 0 {
		t.Fatal(probs)
	}
}

func TestLineReaderOneLinePerRead(t *testing.T) {
	lr := newLineReader(strings.NewReader("a\nbb\nccc"))
	buf := make([]byte, 64)
	var got []string
	for {
		n, err := lr.Read(buf)
		if err != nil {
			break
		}
		got = append(got, string(buf[:n]))
	}
	if !slices.Equal(got, []string{"a\n", "bb\n", "ccc"}) || !lr.eof {
		t.Errorf("got %q eof %v", got, lr.eof)
	}
}

// TestAccessibleOwnDNSServer switches an existing hl.yaml to the
// homelab's own DNS server: a name instead of an address is refused with
// validate's message, the address is written as spec.dns, and everything
// else stays.
func TestAccessibleOwnDNSServer(t *testing.T) {
	dir, src := existingIn(t)
	in := answers(
		"", "", "", "", // basics
		"", "", "", "", "", "", // network
		"1",        // nodes: done
		"", "", "", // OS, DHCP, SSH key
		"0",                // apps unchanged
		"", "", "", "", "", // forge
		"", // secrets: keep
		// credentials: own DNS server, a name (refused), its address; an
		// offsite repository that is no restic URL (refused), then kept;
		// alerts, people kept
		"2", "ns1.attic.example.net", "192.168.50.2", "nas/backups", "", "", "",
		"", "0", // bot
		"1", // write
	)
	res, out, err := runInit(t, InitOptions{Dir: dir, NoRender: true}, in)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !res.Written || len(res.Problems) != 0 {
		t.Fatalf("written %v, problems %v\n%s", res.Written, res.Problems, out)
	}
	for _, want := range []string{`spec.dns.rfc2136.server: "ns1.attic.example.net" is not an IP address`, `"nas/backups" is not a restic repository`} {
		if !strings.Contains(out, want) {
			t.Errorf("transcript lacks %q:\n%s", want, out)
		}
	}
	d := res.Homelab.Spec.DNS
	if d.Provider != config.DNSRFC2136 || d.RFC2136 == nil || d.RFC2136.Server != "192.168.50.2" || d.RFC2136.Zone != res.Homelab.Spec.Domain {
		t.Errorf("spec.dns: %+v %+v", d, d.RFC2136)
	}
	data, _ := os.ReadFile(filepath.Join(dir, "hl.yaml"))
	if got := strings.Replace(string(data), "  dns:\n    provider: rfc2136\n    rfc2136:\n      server: 192.168.50.2\n", "", 1); got != string(src) {
		t.Errorf("more than spec.dns changed:\n%s", data)
	}
}
