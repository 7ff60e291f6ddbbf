package e2e_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"hl.dev/hl/e2e"
	"hl.dev/hl/internal/testharness"
	"hl.dev/hl/secrets"
)

// TestOwnDNSServerTakesTheRenderedKey: a homelab on its own DNS server
// (the single-node fixture, spec.dns.provider rfc2136). The server is
// BIND (named, from Debian) configured with exactly the key clause the
// rendered system/cert-manager/README.md gives and the TSIG secret hl
// generated, read the way the README says. An update signed as the
// rendered external-dns flags and cert-manager issuer name the key (name,
// algorithm) adds a DNS-01 challenge record that then resolves; the same
// update signed with another secret is refused and adds nothing. Neither
// cert-manager nor external-dns runs here (no pods): nsupdate, from
// Debian too, sends what they would.
func TestOwnDNSServerTakesTheRenderedKey(t *testing.T) {
	for _, tool := range []string{"named", "nsupdate", "dig"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed: the test needs bind9 and bind9-dnsutils (apt-get install bind9 bind9-dnsutils)", tool)
		}
	}
	lab := render(t, "single-node", e2e.RenderOptions{})
	read := func(p string) string {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(lab.Dir, p))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}

	// What the rendered consumers sign with.
	values := read("system/external-dns/values.yaml")
	issuer := read("system/cert-manager/templates/issuers.yaml")
	flag := func(name string) string {
		t.Helper()
		m := regexp.MustCompile(`"--` + name + `=([^"]+)"`).FindStringSubmatch(values)
		if m == nil {
			t.Fatalf("external-dns values lack --%s", name)
		}
		return m[1]
	}
	keyName, alg, zone := flag("rfc2136-tsig-keyname"), flag("rfc2136-tsig-secret-alg"), flag("rfc2136-zone")
	if !strings.Contains(issuer, `tsigKeyName: "`+keyName+`"`) || !strings.Contains(issuer, "tsigAlgorithm: HMAC"+strings.ToUpper(strings.TrimPrefix(alg, "hmac-"))) {
		t.Fatalf("cert-manager's issuer names another key than external-dns (%s, %s):\n%s", keyName, alg, issuer)
	}
	ciphertext, err := os.ReadFile(filepath.Join(lab.Dir, "system/cert-manager/secrets/rfc2136-tsig.sops.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	plain, err := secrets.Decrypt(ciphertext, lab.Identities...)
	if err != nil {
		t.Fatal(err)
	}
	ex, err := secrets.ReadSecret(plain)
	if err != nil {
		t.Fatal(err)
	}
	secret := ex.Values["tsig-secret"]

	// The README's BIND clause, as a user pastes it.
	readme := read("system/cert-manager/README.md")
	_, after, ok := strings.Cut(readme, "BIND (`named.conf`):\n\n")
	if !ok {
		t.Fatalf("the README has no BIND clause:\n%s", readme)
	}
	var clause []string
	for _, l := range strings.Split(after, "\n") {
		if !strings.HasPrefix(l, "    ") {
			break
		}
		clause = append(clause, strings.TrimPrefix(l, "    "))
	}
	dir := t.TempDir()
	zoneFile := filepath.Join(dir, zone+".zone")
	conf := strings.Join(clause, "\n")
	conf = strings.ReplaceAll(conf, "<the value above>", secret)
	conf = strings.ReplaceAll(conf, "/var/lib/bind/"+zone+".zone", zoneFile)
	if strings.Contains(conf, "<") || !strings.Contains(conf, zoneFile) {
		t.Fatalf("the README's clause does not take the secret and the zone file as written:\n%s", conf)
	}
	port, err := testharness.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	conf = fmt.Sprintf(`options {
  directory %q;
  pid-file %q;
  session-keyfile %q;
  listen-on port %d { 127.0.0.1; };
  listen-on-v6 { none; };
  recursion no;
  dnssec-validation no;
};
controls { };
`, dir, filepath.Join(dir, "named.pid"), filepath.Join(dir, "session.key"), port) + conf + "\n"
	if err := os.WriteFile(filepath.Join(dir, "named.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	soa := fmt.Sprintf("$TTL 300\n@ IN SOA ns1.%[1]s. hostmaster.%[1]s. 1 3600 600 86400 300\n@ IN NS ns1.%[1]s.\nns1 IN A 127.0.0.1\n", zone)
	if err := os.WriteFile(zoneFile, []byte(soa), 0o644); err != nil {
		t.Fatal(err)
	}
	log := &testharness.SyncBuffer{}
	named := exec.Command("named", "-g", "-c", filepath.Join(dir, "named.conf"))
	named.Stdout, named.Stderr = log, log
	if err := named.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { named.Process.Kill(); named.Wait() })
	server := net.JoinHostPort("127.0.0.1", fmt.Sprint(port))
	dig := func(name, typ string) string {
		out, _ := exec.Command("dig", "+short", "+time=1", "+tries=1", "-p", fmt.Sprint(port), "@127.0.0.1", name, typ).Output()
		return strings.TrimSpace(string(out))
	}
	for deadline := time.Now().Add(30 * time.Second); dig(zone, "SOA") == ""; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("named did not answer for %s on %s:\n%s", zone, server, log)
		}
	}

	update := func(secret, name, value string) ([]byte, error) {
		keyFile := filepath.Join(t.TempDir(), "key")
		key := fmt.Sprintf("key %q {\n  algorithm %s;\n  secret %q;\n};\n", keyName, alg, secret)
		if err := os.WriteFile(keyFile, []byte(key), 0o600); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, "nsupdate", "-k", keyFile)
		cmd.Stdin = strings.NewReader(fmt.Sprintf("server 127.0.0.1 %d\nzone %s\nupdate add %s 60 TXT %q\nsend\n", port, zone, name, value))
		return cmd.CombinedOutput()
	}
	challenge := "_acme-challenge.lab.example.org."
	// named can answer queries a moment before it takes updates for the
	// zone (SERVFAIL meanwhile; seen once in CI): a SERVFAIL is tried
	// again, a refusal is not.
	for i := 0; ; i++ {
		out, err := update(secret, challenge, "token-from-lets-encrypt")
		if err == nil {
			break
		}
		if i == 10 || !bytes.Contains(out, []byte("SERVFAIL")) {
			t.Fatalf("an update signed with the rendered key was refused: %v\n%s\nnamed:\n%s", err, out, log)
		}
		time.Sleep(300 * time.Millisecond)
	}
	if got := dig(challenge, "TXT"); got != `"token-from-lets-encrypt"` {
		t.Errorf("the challenge record resolves to %q", got)
	}

	other := make([]byte, 32)
	if _, err := rand.Read(other); err != nil {
		t.Fatal(err)
	}
	forged := "_acme-challenge.forged.lab.example.org."
	out, err := update(base64.StdEncoding.EncodeToString(other), forged, "forged")
	if err == nil || !bytes.Contains(out, []byte("BADSIG")) {
		t.Errorf("an update signed with another secret: %v, want refused as BADSIG:\n%s", err, out)
	}
	if got := dig(forged, "TXT"); got != "" {
		t.Errorf("the forged update's record resolves: %q", got)
	}
}
