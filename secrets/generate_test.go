package secrets

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"io"
	"math/rand/v2"
	"strings"
	"testing"

	"filippo.io/age"
	"golang.org/x/crypto/bcrypt"
	"golang.org/x/crypto/ssh"
)

// seeded returns a deterministic randomness stream for tests.
func seeded(seed byte) io.Reader {
	var s [32]byte
	s[0] = seed
	return rand.NewChaCha8(s)
}

func onlyFrom(t *testing.T, s, alphabet string) {
	t.Helper()
	for _, c := range s {
		if !strings.ContainsRune(alphabet, c) {
			t.Fatalf("%q contains %q, not in alphabet %q", s, c, alphabet)
		}
	}
}

func TestGeneratorShapes(t *testing.T) {
	tests := []struct {
		name  string
		gen   Generator
		check func(t *testing.T, out map[string]string)
	}{
		{"password default", Generator{Kind: KindPassword}, func(t *testing.T, out map[string]string) {
			if len(out["k"]) != DefaultPasswordLength {
				t.Errorf("length %d, want %d", len(out["k"]), DefaultPasswordLength)
			}
			onlyFrom(t, out["k"], AlnumChars)
		}},
		{"password alnum 17", Generator{Kind: KindPassword, Length: 17, Charset: CharsetAlnum}, func(t *testing.T, out map[string]string) {
			if len(out["k"]) != 17 {
				t.Errorf("length %d, want 17", len(out["k"]))
			}
			onlyFrom(t, out["k"], AlnumChars)
		}},
		{"password symbols", Generator{Kind: KindPassword, Length: 200, Charset: CharsetAlnumSymbols}, func(t *testing.T, out map[string]string) {
			if len(out["k"]) != 200 {
				t.Errorf("length %d, want 200", len(out["k"]))
			}
			onlyFrom(t, out["k"], AlnumChars+SymbolChars)
			if !strings.ContainsAny(out["k"], SymbolChars) {
				t.Errorf("200 chars from alnum+symbols without a symbol: %q", out["k"])
			}
		}},
		{"password custom", Generator{Kind: KindPassword, Length: 64, Charset: CharsetCustom, Chars: "ab9"}, func(t *testing.T, out map[string]string) {
			if len(out["k"]) != 64 {
				t.Errorf("length %d, want 64", len(out["k"]))
			}
			onlyFrom(t, out["k"], "ab9")
		}},
		{"hex", Generator{Kind: KindHex, Length: 16}, func(t *testing.T, out map[string]string) {
			b, err := hex.DecodeString(out["k"])
			if err != nil || len(b) != 16 || len(out["k"]) != 32 {
				t.Errorf("hex %q: %d bytes, err %v", out["k"], len(b), err)
			}
		}},
		{"hex default", Generator{Kind: KindHex}, func(t *testing.T, out map[string]string) {
			if b, err := hex.DecodeString(out["k"]); err != nil || len(b) != DefaultByteLength {
				t.Errorf("hex %q: %d bytes, err %v", out["k"], len(b), err)
			}
		}},
		{"base64", Generator{Kind: KindBase64, Length: 33}, func(t *testing.T, out map[string]string) {
			b, err := base64.StdEncoding.DecodeString(out["k"])
			if err != nil || len(b) != 33 {
				t.Errorf("base64 %q: %d bytes, err %v", out["k"], len(b), err)
			}
		}},
		{"bcrypt", Generator{Kind: KindBcrypt, Length: 24, Cost: bcrypt.MinCost}, func(t *testing.T, out map[string]string) {
			pw, hash := out["k"], out["k-hash"]
			if len(pw) != 24 {
				t.Errorf("password length %d, want 24", len(pw))
			}
			onlyFrom(t, pw, AlnumChars)
			if err := bcrypt.CompareHashAndPassword([]byte(hash), []byte(pw)); err != nil {
				t.Errorf("hash %q does not verify the password: %v", hash, err)
			}
			if err := bcrypt.CompareHashAndPassword([]byte(hash), []byte(pw+"x")); err == nil {
				t.Errorf("hash verifies a different password")
			}
			if c, err := bcrypt.Cost([]byte(hash)); err != nil || c != bcrypt.MinCost {
				t.Errorf("cost %d (%v), want %d", c, err, bcrypt.MinCost)
			}
		}},
		{"ed25519-ssh", Generator{Kind: KindEd25519SSH}, func(t *testing.T, out map[string]string) {
			raw, err := ssh.ParseRawPrivateKey([]byte(out["k"]))
			if err != nil {
				t.Fatalf("private key does not parse: %v\n%s", err, out["k"])
			}
			priv, ok := raw.(*ed25519.PrivateKey)
			if !ok {
				t.Fatalf("private key is %T, want *ed25519.PrivateKey", raw)
			}
			pub, _, _, rest, err := ssh.ParseAuthorizedKey([]byte(out["k.pub"]))
			if err != nil || len(rest) != 0 {
				t.Fatalf("public line %q: %v (rest %q)", out["k.pub"], err, rest)
			}
			want, _ := ssh.NewPublicKey(priv.Public())
			if !bytes.Equal(pub.Marshal(), want.Marshal()) {
				t.Errorf("public line does not match the private key")
			}
			// The key signs, and the public line verifies the signature.
			signer, err := ssh.NewSignerFromKey(*priv)
			if err != nil {
				t.Fatal(err)
			}
			sig, err := signer.Sign(seeded(9), []byte("hello"))
			if err != nil {
				t.Fatal(err)
			}
			if err := pub.Verify([]byte("hello"), sig); err != nil {
				t.Errorf("signature does not verify: %v", err)
			}
		}},
		{"age", Generator{Kind: KindAge}, func(t *testing.T, out map[string]string) {
			id, err := age.ParseX25519Identity(out["k"])
			if err != nil {
				t.Fatalf("identity does not parse: %v", err)
			}
			if id.Recipient().String() != out["k.pub"] {
				t.Errorf("recipient %q does not belong to the identity (%q)", out["k.pub"], id.Recipient())
			}
			rcpt, err := age.ParseX25519Recipient(out["k.pub"])
			if err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			w, _ := age.Encrypt(&buf, rcpt)
			io.WriteString(w, "ping")
			w.Close()
			r, err := age.Decrypt(&buf, id)
			if err != nil {
				t.Fatalf("decrypt with generated identity: %v", err)
			}
			if got, _ := io.ReadAll(r); string(got) != "ping" {
				t.Errorf("round trip gave %q", got)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := tt.gen.Generate("k", seeded(1))
			if err != nil {
				t.Fatal(err)
			}
			var keys []string
			for k := range out {
				keys = append(keys, k)
			}
			if want := tt.gen.Outputs("k"); len(keys) != len(want) {
				t.Errorf("outputs %v, want %v", keys, want)
			}
			for _, k := range tt.gen.Outputs("k") {
				if out[k] == "" {
					t.Errorf("output %q missing or empty", k)
				}
			}
			tt.check(t, out)
		})
	}
}

func TestGeneratorDeterministic(t *testing.T) {
	gens := []Generator{
		{Kind: KindPassword, Length: 40, Charset: CharsetAlnumSymbols},
		{Kind: KindHex},
		{Kind: KindBase64},
		{Kind: KindBcrypt, Cost: bcrypt.MinCost},
		{Kind: KindEd25519SSH},
		{Kind: KindAge},
	}
	for _, g := range gens {
		t.Run(string(g.Kind), func(t *testing.T) {
			a, err := g.Generate("k", seeded(7))
			if err != nil {
				t.Fatal(err)
			}
			b, err := g.Generate("k", seeded(7))
			if err != nil {
				t.Fatal(err)
			}
			c, err := g.Generate("k", seeded(8))
			if err != nil {
				t.Fatal(err)
			}
			for k := range a {
				if a[k] != b[k] {
					t.Errorf("%s: same seed, different output:\n%q\n%q", k, a[k], b[k])
				}
				if a[k] == c[k] {
					t.Errorf("%s: different seeds, same output %q", k, a[k])
				}
			}
		})
	}
}

// cycle yields 0, 1, ..., 255, 0, 1, ... so every byte value appears equally
// often.
type cycle struct{ n int }

func (c *cycle) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(c.n)
		c.n++
	}
	return len(p), nil
}

func TestPasswordUnbiased(t *testing.T) {
	// With 3 characters, 256%3 == 1, so byte 255 must be rejected. Starting
	// at 255, 255 picks are then exactly bytes 0..254: 85 of each. A plain
	// b%3 would use byte 255 as an extra 'a' (86 a, 85 b, 84 c).
	pw, err := randomString(&cycle{n: 255}, "abc", 255)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range "abc" {
		if n := strings.Count(pw, string(c)); n != 85 {
			t.Errorf("%q picked %d times, want 85", c, n)
		}
	}
	// 62 alnum characters: bytes 248..255 are rejected, so 248 picks
	// starting at byte 248 are bytes 0..247: 4 of each.
	pw, err = randomString(&cycle{n: 248}, AlnumChars, 248)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range AlnumChars {
		if n := strings.Count(pw, string(c)); n != 4 {
			t.Errorf("%q picked %d times, want 4", c, n)
		}
	}
}

func TestGeneratorValidate(t *testing.T) {
	bad := []Generator{
		{},
		{Kind: "uuid"},
		{Kind: KindPassword, Length: -1},
		{Kind: KindPassword, Length: MaxLength + 1},
		{Kind: KindPassword, Charset: "emoji"},
		{Kind: KindPassword, Charset: CharsetCustom, Chars: "a"},
		{Kind: KindPassword, Charset: CharsetCustom, Chars: "aba"},
		{Kind: KindPassword, Charset: CharsetCustom, Chars: "a b"},
		{Kind: KindPassword, Chars: "abc"},
		{Kind: KindPassword, Cost: 10},
		{Kind: KindBcrypt, Length: 73},
		{Kind: KindBcrypt, Cost: 3},
		{Kind: KindHex, Charset: CharsetAlnum},
		{Kind: KindEd25519SSH, Length: 32},
		{Kind: KindAge, Charset: CharsetAlnum},
	}
	for _, g := range bad {
		if err := g.Validate(); err == nil {
			t.Errorf("%+v: Validate accepted it", g)
		}
		if _, err := g.Generate("k", seeded(1)); err == nil {
			t.Errorf("%+v: Generate accepted it", g)
		}
	}
	good := []Generator{
		{Kind: KindPassword, Length: 1},
		{Kind: KindPassword, Charset: CharsetCustom, Chars: "01"},
		{Kind: KindBcrypt, Length: 72, Cost: 4},
		{Kind: KindHex, Length: 1},
		{Kind: KindEd25519SSH},
	}
	for _, g := range good {
		if err := g.Validate(); err != nil {
			t.Errorf("%+v: %v", g, err)
		}
	}
}

func TestShortReader(t *testing.T) {
	for _, g := range []Generator{{Kind: KindPassword}, {Kind: KindHex}, {Kind: KindEd25519SSH}, {Kind: KindAge}, {Kind: KindBcrypt, Cost: 4}} {
		if _, err := g.Generate("k", bytes.NewReader(make([]byte, 5))); err == nil {
			t.Errorf("%s: no error from an exhausted reader", g.Kind)
		}
	}
}
