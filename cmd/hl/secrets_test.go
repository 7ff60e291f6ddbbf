package main

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"hl.dev/hl/internal/testcharts"
	"hl.dev/hl/secrets"
	"hl.dev/hl/validate"
)

// secretValues decrypts one rendered secret with the test identity.
func secretValues(t *testing.T, dir, p string) secrets.Existing {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, p))
	if err != nil {
		t.Fatal(err)
	}
	ids, err := secrets.LoadIdentities(os.Getenv(secrets.EnvAgeKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	plain, err := secrets.Decrypt(data, ids...)
	if err != nil {
		t.Fatalf("decrypt %s: %v", p, err)
	}
	ex, err := secrets.ReadSecret(plain)
	if err != nil {
		t.Fatal(err)
	}
	return ex
}

// TestSecretsSet writes credentials a person was given into the rendered
// repo as hl init and the READMEs tell them to: the value from standard
// input, never printed; the secret's other keys and every copy follow; a
// re-render keeps it and hl render --check passes; a key the secret does
// not have is refused with nothing changed.
func TestSecretsSet(t *testing.T) {
	dir := renderHA(t)
	const token = "cf-token-0123456789abcdef"

	out, errOut, code := hlIn(t, token+"\n", false, "secrets", "set", "-C", dir, "external-dns/cloudflare-api-token", "api-token")
	if code != 0 {
		t.Fatalf("set: exit %d\n%s%s", code, out, errOut)
	}
	if strings.Contains(out+errOut, token) {
		t.Errorf("the value was printed:\n%s%s", out, errOut)
	}
	if !strings.Contains(out, "wrote    system/external-dns/secrets/cloudflare-api-token.sops.yaml") || !strings.Contains(out, "restarts Helm values external-dns (system/external-dns/values.yaml)") {
		t.Errorf("output does not name the file and the restart:\n%s", out)
	}
	if got := secretValues(t, dir, "system/external-dns/secrets/cloudflare-api-token.sops.yaml").Values["api-token"]; got != token {
		t.Errorf("stored api-token %q, want the one given", got)
	}
	if got := secretValues(t, dir, "system/cert-manager/secrets/cloudflare-api-token.sops.yaml").Values["api-token"]; got == token {
		t.Error("cert-manager's token changed too: only the named secret should")
	}

	t.Run("a target's keys reach every copy, its password stays", func(t *testing.T) {
		before := secretValues(t, dir, "system/backups/secrets/restic-offsite.sops.yaml")
		if _, errOut, code := hlIn(t, "AKIAEXAMPLE\n", false, "secrets", "set", "-C", dir, "restic-offsite", "AWS_ACCESS_KEY_ID"); code != 0 {
			t.Fatalf("set: exit %d: %s", code, errOut)
		}
		after := secretValues(t, dir, "system/backups/secrets/restic-offsite.sops.yaml")
		if after.Values["AWS_ACCESS_KEY_ID"] != "AKIAEXAMPLE" || after.Values["RESTIC_PASSWORD"] != before.Values["RESTIC_PASSWORD"] || after.Values["AWS_SECRET_ACCESS_KEY"] != before.Values["AWS_SECRET_ACCESS_KEY"] {
			t.Error("the target's other keys changed or the new key is not stored")
		}
		copies, _ := filepath.Glob(filepath.Join(dir, "system/backups/secrets/volsync-*-offsite.sops.yaml"))
		if len(copies) == 0 {
			t.Fatal("no copies of restic-offsite rendered")
		}
		for _, c := range copies {
			rel, _ := filepath.Rel(dir, c)
			if v := secretValues(t, dir, rel).Values; v["AWS_ACCESS_KEY_ID"] != "AKIAEXAMPLE" || v["RESTIC_PASSWORD"] != before.Values["RESTIC_PASSWORD"] {
				t.Errorf("%s does not carry the target's values", rel)
			}
		}
	})

	t.Run("re-render keeps the values", func(t *testing.T) {
		if out, errOut, code := hl(t, "render", "--config", filepath.Join(dir, "hl.yaml"), "--out", dir, "--check"); code != 0 {
			t.Errorf("render --check after set: exit %d\n%s%s", code, out, errOut)
		}
		if _, errOut, code := hl(t, "render", "--config", filepath.Join(dir, "hl.yaml"), "--out", dir); code != 0 {
			t.Fatalf("render: %s", errOut)
		}
		if got := secretValues(t, dir, "system/external-dns/secrets/cloudflare-api-token.sops.yaml").Values["api-token"]; got != token {
			t.Errorf("after a re-render api-token is %q", got)
		}
	})

	t.Run("refused", func(t *testing.T) {
		f := filepath.Join(dir, "system/backups/secrets/restic-offsite.sops.yaml")
		before, _ := os.ReadFile(f)
		for name, args := range map[string][]string{
			"a key the secret does not have": {"restic-offsite", "AWS_ACCES_KEY_ID"},
			"a literal from hl.yaml":         {"restic-offsite", "repository.gitea.gitea-shared-storage"},
			"two keys from a pipe":           {"restic-offsite", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"},
			"a secret that does not exist":   {"no-such-secret", "key"},
		} {
			_, errOut, code := hlIn(t, "v\n", false, append([]string{"secrets", "set", "-C", dir}, args...)...)
			if code == 0 || errOut == "" {
				t.Errorf("%s: exit %d, stderr %q", name, code, errOut)
			}
		}
		if _, errOut, code := hlIn(t, "\n", false, "secrets", "set", "-C", dir, "restic-offsite", "AWS_ACCESS_KEY_ID"); code == 0 || !strings.Contains(errOut, "empty") {
			t.Errorf("an empty value: exit %d, %q", code, errOut)
		}
		if after, _ := os.ReadFile(f); string(after) != string(before) {
			t.Error("a refused set changed the file")
		}
	})
}

// A homelab on its own DNS server (spec.dns.provider rfc2136, the
// single-node fixture) renders a repo hl validate accepts offline with the
// catalog's charts: external-dns's rfc2136 flags, cert-manager's rfc2136
// solver, the TSIG secret and its copy, the policies to the server.
func TestValidateRFC2136Repo(t *testing.T) {
	key, _ := filepath.Abs("../../testdata/age/test-key.txt")
	t.Setenv("SOPS_AGE_KEY_FILE", key)
	dir := t.TempDir()
	if _, errOut, code := hl(t, "render", "--config", "../../testdata/config/valid/single-node.yaml", "--out", dir); code != 0 {
		t.Fatalf("render: %d\n%s", code, errOut)
	}
	for _, f := range []string{"system/cert-manager/secrets/rfc2136-tsig.sops.yaml", "system/external-dns/secrets/rfc2136-tsig.sops.yaml"} {
		v := secretValues(t, dir, f).Values["tsig-secret"]
		if b, err := base64.StdEncoding.DecodeString(v); err != nil || len(b) != 32 {
			t.Errorf("%s: tsig-secret is not 32 bytes of base64 (%d, %v)", f, len(b), err)
		}
	}
	if a, b := secretValues(t, dir, "system/cert-manager/secrets/rfc2136-tsig.sops.yaml").Values["tsig-secret"],
		secretValues(t, dir, "system/external-dns/secrets/rfc2136-tsig.sops.yaml").Values["tsig-secret"]; a != b {
		t.Error("external-dns's TSIG secret differs from cert-manager's")
	}
	cache := t.TempDir()
	testcharts.Catalog(t).Cache(t, cache)
	if out, errOut, code := hl(t, "validate", dir, "--chart-cache", cache, "--offline"); code != 0 {
		t.Errorf("hl validate: exit %d\n%s%s", code, out, errOut)
	}
	// The Deployment the real external-dns chart renders runs the
	// rfc2136 provider with the flags and the key from the Secret.
	_, ms, err := validate.Render(t.Context(), validate.Options{Dir: dir, CacheDir: cache, Offline: true})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, m := range ms {
		if m.Object["kind"] != "Deployment" || !strings.HasPrefix(m.App, "system/external-dns") {
			continue
		}
		found = true
		b, _ := json.Marshal(m.Object)
		for _, want := range []string{`"--provider=rfc2136"`, `"--rfc2136-host=10.20.0.1"`, `"--rfc2136-zone=example.org"`, `"--rfc2136-tsig-keyname=hl-flat"`, `"--rfc2136-tsig-axfr"`,
			`{"name":"EXTERNAL_DNS_RFC2136_TSIG_SECRET","valueFrom":{"secretKeyRef":{"key":"tsig-secret","name":"rfc2136-tsig"}}}`} {
			if !strings.Contains(string(b), want) {
				t.Errorf("external-dns Deployment lacks %s:\n%s", want, b)
			}
		}
	}
	if !found {
		t.Error("no external-dns Deployment rendered")
	}
}
