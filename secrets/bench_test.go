package secrets

import (
	"crypto/rand"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

// A typical rendered Secret: a few passwords and tokens, one ssh key,
// encrypted for two recipients (admin key + cluster key).
func benchSecret(b testing.TB) ([]byte, []string) {
	_, rcpt := testKey(b)
	_, other := otherKey(b, 60)
	spec := testSpec()
	spec.Keys = append(spec.Keys,
		Key{Name: "db-password", Generator: Generator{Kind: KindPassword}},
		Key{Name: "session", Generator: Generator{Kind: KindBase64}},
	)
	plain, err := Render(spec, nil, "2026-01-02", seeded(1))
	if err != nil {
		b.Fatal(err)
	}
	return plain, []string{rcpt, other}
}

func BenchmarkEncrypt(b *testing.B) {
	plain, rcpts := benchSecret(b)
	for b.Loop() {
		if _, err := Encrypt(plain, rcpts); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecrypt(b *testing.B) {
	plain, rcpts := benchSecret(b)
	ids, _ := testKey(b)
	cipher, err := Encrypt(plain, rcpts)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := Decrypt(cipher, ids...); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPlainEqual is the re-render path: decrypt + canonical compare.
func BenchmarkPlainEqual(b *testing.B) {
	plain, rcpts := benchSecret(b)
	ids, _ := testKey(b)
	cipher, err := Encrypt(plain, rcpts)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if eq, err := PlainEqual(cipher, plain, ids...); err != nil || !eq {
			b.Fatal(eq, err)
		}
	}
}

// BenchmarkRenderNoBcrypt: generating values for a secret without bcrypt.
func BenchmarkRenderNoBcrypt(b *testing.B) {
	spec := testSpec()
	spec.Keys = spec.Keys[1:]
	for b.Loop() {
		if _, err := Render(spec, nil, "2026-01-02", rand.Reader); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBcryptDefaultCost: one bcrypt key at the default cost dominates
// any render that contains it.
func BenchmarkBcryptDefaultCost(b *testing.B) {
	g := Generator{Kind: KindBcrypt, Cost: bcrypt.DefaultCost}
	for b.Loop() {
		if _, err := g.Generate("k", rand.Reader); err != nil {
			b.Fatal(err)
		}
	}
}
