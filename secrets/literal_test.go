package secrets

import (
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

func TestLiteralAndNamedHash(t *testing.T) {
	spec := Spec{Name: "s", Namespace: "n", Rotatable: true, Keys: []Key{
		{Name: "username", Generator: Generator{Kind: KindLiteral, Value: "hl-admin"}},
		{Name: "plain", Generator: Generator{Kind: KindBcrypt, Length: 20, Cost: 4, HashKey: "admin.password"}},
		{Name: "web", Generator: Generator{Kind: KindBcrypt, Length: 20, Cost: 4, User: "ci"}},
	}}
	vals, _, err := Values(spec, nil, seeded(7))
	if err != nil {
		t.Fatal(err)
	}
	if vals["username"] != "hl-admin" {
		t.Errorf("literal = %q", vals["username"])
	}
	if bcrypt.CompareHashAndPassword([]byte(vals["admin.password"]), []byte(vals["plain"])) != nil {
		t.Error("hash under hashKey does not verify the password")
	}
	if _, ok := vals["plain-hash"]; ok {
		t.Error("default hash key written although hashKey is set")
	}
	user, hash, ok := strings.Cut(vals["web-hash"], ":")
	if !ok || user != "ci" || bcrypt.CompareHashAndPassword([]byte(hash), []byte(vals["web"])) != nil {
		t.Errorf("htpasswd line %q does not verify", vals["web-hash"])
	}
	// A changed literal in the declaration wins over the stored value.
	vals["username"] = "old"
	spec.Keys[0].Generator.Value = "new-admin"
	again, gen, err := Values(spec, vals, seeded(8))
	if err != nil || again["username"] != "new-admin" || again["plain"] != vals["plain"] || len(gen) != 0 {
		t.Errorf("re-render: %v %q %v", err, again["username"], gen)
	}
	for _, bad := range []Generator{{Kind: KindLiteral}, {Kind: KindPassword, Value: "x"}, {Kind: KindHex, HashKey: "h"}, {Kind: KindBcrypt, User: "a:b"}} {
		if bad.Validate() == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}

func TestPlainTextEqualMatchesPlainEqual(t *testing.T) {
	ids, rcpt := testKey(t)
	spec := Spec{Name: "s", Namespace: "n", Rotatable: true, Keys: []Key{{Name: "p", Generator: Generator{Kind: KindPassword}}}}
	plain, err := Render(spec, nil, "2026-01-02", seeded(3))
	if err != nil {
		t.Fatal(err)
	}
	cipher, err := Encrypt(plain, []string{rcpt})
	if err != nil {
		t.Fatal(err)
	}
	dec, err := Decrypt(cipher, ids...)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := Render(spec, nil, "2026-01-02", seeded(4))
	for _, c := range []struct {
		new  []byte
		want bool
	}{{plain, true}, {other, false}} {
		a, err1 := PlainEqual(cipher, c.new, ids...)
		b, err2 := PlainTextEqual(dec, c.new)
		if err1 != nil || err2 != nil || a != c.want || b != c.want {
			t.Errorf("want %v: PlainEqual %v %v, PlainTextEqual %v %v", c.want, a, err1, b, err2)
		}
	}
}
