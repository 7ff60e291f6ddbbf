package secrets_test

import (
	"math/rand/v2"
	"testing"
	"time"

	"hl.dev/hl/generator"
	"hl.dev/hl/secrets"
)

// A fresh render: nothing is due, and every copy names its source in its
// own metadata (hl.dev/copy-of), so the scan links them without the plan.
func TestScanRendered(t *testing.T) {
	ids, err := secrets.LoadIdentities("../testdata/age/test-key.txt")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	dir := t.TempDir()
	if _, err := generator.Render(t.Context(), generator.Options{
		ConfigPath: "../testdata/config/valid/minimal.yaml", OutDir: dir,
		Identities: ids, Rand: rand.NewChaCha8([32]byte{1}), Now: func() time.Time { return now },
	}); err != nil {
		t.Fatal(err)
	}
	all, err := secrets.Scan(dir, now)
	if err != nil {
		t.Fatal(err)
	}
	generated, copies := 0, 0
	byFile := map[string]secrets.Secret{}
	for _, s := range all {
		byFile[s.File] = s
	}
	for _, s := range all {
		if s.Generated {
			generated++
		}
		if s.Due {
			t.Errorf("%s is due right after rendering", s.File)
		}
		if s.CopyOf == "" {
			continue
		}
		copies++
		src, ok := byFile[s.CopyOf]
		if !ok {
			t.Errorf("%s copies %s, which the scan did not find", s.File, s.CopyOf)
			continue
		}
		found := false
		for _, c := range src.Copies {
			found = found || c == s.File
		}
		if !found || len(s.KeyMap) == 0 {
			t.Errorf("%s: not listed among %s's copies %v, or no key map %v", s.File, src.File, src.Copies, s.KeyMap)
		}
	}
	if generated < 5 || copies == 0 {
		t.Fatalf("%d generated secrets, %d copies: the fixture has more", generated, copies)
	}
	oidc := byFile["system/argocd/secrets/argocd-oidc.sops.yaml"]
	if oidc.CopyOf != "platform/sso/secrets/dex-clients.sops.yaml" {
		t.Errorf("argocd-oidc copies %q, want dex-clients", oidc.CopyOf)
	}
}
