package secrets_test

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"hl.dev/hl/generator"
	"hl.dev/hl/secrets"
)

// What Argo CD's hl-secrets plugin hands the controller: every Secret of
// a rendered secrets/ folder, decrypted, in file order; nothing else.
func TestManifests(t *testing.T) {
	ids, err := secrets.LoadIdentities("../testdata/age/test-key.txt")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	if _, err := generator.Render(t.Context(), generator.Options{
		ConfigPath: "../testdata/config/valid/minimal.yaml", OutDir: dir,
		Identities: ids, Rand: rand.NewChaCha8([32]byte{2}), Now: func() time.Time { return now },
	}); err != nil {
		t.Fatal(err)
	}
	sso := filepath.Join(dir, "platform", "sso", "secrets")
	files, _ := filepath.Glob(filepath.Join(sso, "*.sops.yaml"))
	if len(files) < 2 {
		t.Fatalf("fixture has %d secrets in %s", len(files), sso)
	}
	var out bytes.Buffer
	if err := secrets.Manifests(sso, ids, &out); err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(&out)
	n := 0
	for {
		var doc struct {
			Kind       string                `yaml:"kind"`
			Metadata   struct{ Name string } `yaml:"metadata"`
			Sops       any                   `yaml:"sops"`
			Data       map[string]string
			StringData map[string]string `yaml:"stringData"`
		}
		if err := dec.Decode(&doc); err != nil {
			break
		}
		want := strings.TrimSuffix(filepath.Base(files[n]), ".sops.yaml")
		if doc.Kind != "Secret" || doc.Metadata.Name != want || doc.Sops != nil || len(doc.Data)+len(doc.StringData) == 0 {
			t.Errorf("document %d: %+v, want the decrypted Secret %s without sops metadata", n, doc, want)
		}
		n++
	}
	if n != len(files) {
		t.Fatalf("%d documents for %d files", n, len(files))
	}

	// Not a Secret: refused, with the file named and nothing printed.
	crb := []byte("apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata:\n  name: pwn\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}\nsubjects: [{kind: User, name: mallory}]\ndata: {x: eA==}\n")
	recipients, _ := secrets.Recipients(mustRead(t, files[0]))
	enc, err := secrets.Encrypt(crb, recipients)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(sso, "zz-pwn.sops.yaml"), enc, 0o644); err != nil {
		t.Fatal(err)
	}
	// A symlink to a file elsewhere: refused.
	if err := os.Symlink(files[0], filepath.Join(sso, "link.sops.yaml")); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	err = secrets.Manifests(sso, ids, &out)
	if err == nil || !strings.Contains(err.Error(), "zz-pwn.sops.yaml") || !strings.Contains(err.Error(), "ClusterRoleBinding") || !strings.Contains(err.Error(), "link.sops.yaml") {
		t.Fatalf("a non-Secret and a symlink: %v", err)
	}
	if out.Len() != 0 {
		t.Fatalf("printed %d bytes although the folder was refused", out.Len())
	}
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
