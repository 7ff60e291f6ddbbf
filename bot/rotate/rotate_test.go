package rotate

import (
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"filippo.io/age"

	"hl.dev/hl/bot/forge"
	"hl.dev/hl/generator"
	"hl.dev/hl/internal/gitea/testserver"
	"hl.dev/hl/secrets"
)

var forgeListAll = forge.ListOptions{}

func TestMain(m *testing.M) { testserver.Main(m) }

var fixedNow = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

func identities(t testing.TB) []age.Identity {
	t.Helper()
	ids, err := secrets.LoadIdentities("../../testdata/age/test-key.txt")
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

// renderRepo renders the minimal config into a temp dir at fixedNow.
func renderRepo(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	_, err := generator.Render(context.Background(), generator.Options{
		ConfigPath: "../../testdata/config/valid/minimal.yaml", OutDir: dir,
		Identities: identities(t), Rand: rand.NewChaCha8([32]byte{1}),
		Now: func() time.Time { return fixedNow },
	})
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// age rewrites a secret (and its copies) as if generated on date, values kept.
func ageSecret(t testing.TB, dir string, all []secrets.Secret, name, date string) {
	t.Helper()
	s, err := secrets.Find(all, name)
	if err != nil {
		t.Fatal(err)
	}
	files := []string{s.File}
	files = append(files, s.Copies...)
	for _, f := range files {
		p := filepath.Join(dir, filepath.FromSlash(f))
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		plain, err := secrets.Decrypt(b, identities(t)...)
		if err != nil {
			t.Fatal(err)
		}
		ex, err := secrets.ReadSecret(plain)
		if err != nil {
			t.Fatal(err)
		}
		md, err := secrets.ReadMetadata(f, b, fixedNow)
		if err != nil {
			t.Fatal(err)
		}
		spec, err := md.Spec()
		if err != nil {
			t.Fatal(err)
		}
		np, err := secrets.Manifest(spec, ex.Values, date)
		if err != nil {
			t.Fatal(err)
		}
		nc, err := secrets.Encrypt(np, md.Recipients)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, nc, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func values(t testing.TB, dir, file string, ids ...age.Identity) map[string]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(file)))
	if err != nil {
		t.Fatal(err)
	}
	plain, err := secrets.Decrypt(b, ids...)
	if err != nil {
		t.Fatalf("decrypt %s: %v", file, err)
	}
	ex, err := secrets.ReadSecret(plain)
	if err != nil {
		t.Fatal(err)
	}
	return ex.Values
}
