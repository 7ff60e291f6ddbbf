package secrets

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"
)

func TestWriteIdentityFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "new", "dir")
	path := filepath.Join(dir, "age.key")
	rcpt, err := WriteIdentityFile(path)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("identity file mode %v, want 0600", st.Mode().Perm())
	}
	if dst, _ := os.Stat(dir); dst.Mode().Perm() != 0o700 {
		t.Errorf("created directory mode %v, want 0700", dst.Mode().Perm())
	}
	ids, err := LoadIdentities(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := ids[0].(*age.X25519Identity).Recipient().String(); got != rcpt {
		t.Errorf("returned recipient %s, file holds %s", rcpt, got)
	}
	data, _ := os.ReadFile(path)
	if !strings.Contains(string(data), "# public key: "+rcpt+"\n") {
		t.Errorf("no public key comment:\n%s", data)
	}

	// Never overwrite.
	before, _ := os.ReadFile(path)
	_, err = WriteIdentityFile(path)
	if err == nil || !strings.Contains(err.Error(), "refusing to overwrite") {
		t.Errorf("second write: err %v, want a refusal", err)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Errorf("existing identity file was modified")
	}

	// The key works end to end.
	cipher, err := Encrypt(renderTest(t), []string{rcpt})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Decrypt(cipher, ids...); err != nil {
		t.Errorf("decrypt with the written identity: %v", err)
	}
}

func TestGenerateIdentityFresh(t *testing.T) {
	var a, b bytes.Buffer
	ra, err := GenerateIdentity(&a)
	if err != nil {
		t.Fatal(err)
	}
	rb, _ := GenerateIdentity(&b)
	if ra == rb || bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Errorf("two generated identities are equal")
	}
	ids, err := ParseIdentities(a.Bytes())
	if err != nil || len(ids) != 1 {
		t.Fatalf("generated file parses to %d identities: %v", len(ids), err)
	}
}

func TestLoadIdentities(t *testing.T) {
	testIDs, rcpt := testKey(t)
	other, otherRcpt := otherKey(t, 50)
	otherStr := other.(*age.X25519Identity).String()
	recipientOf := func(ids []age.Identity) []string {
		var out []string
		for _, id := range ids {
			out = append(out, id.(*age.X25519Identity).Recipient().String())
		}
		return out
	}
	tests := []struct {
		name    string
		path    string
		file    string
		key     string
		want    []string
		wantErr error
	}{
		{name: "explicit path wins over env", path: testKeyPath, key: otherStr, want: []string{rcpt}},
		{name: "key file env", file: testKeyPath, want: []string{rcpt}},
		{name: "key env, two keys on one line", key: otherStr + " " + testIDs[0].(*age.X25519Identity).String(), want: []string{otherRcpt, rcpt}},
		{name: "both envs", file: testKeyPath, key: "# comment\n" + otherStr, want: []string{rcpt, otherRcpt}},
		{name: "nothing", wantErr: ErrNoIdentities},
		{name: "missing file", path: "/nonexistent/key.txt", wantErr: os.ErrNotExist},
		{name: "garbage key", key: "AGE-SECRET-KEY-1NOTAKEY"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(EnvAgeKeyFile, tt.file)
			t.Setenv(EnvAgeKey, tt.key)
			ids, err := LoadIdentities(tt.path)
			if tt.want == nil {
				if err == nil {
					t.Fatalf("no error, got %d identities", len(ids))
				}
				if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
					t.Errorf("err %v, want %v", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "NOTAKEY") {
					t.Errorf("error leaks key material: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := recipientOf(ids); strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Errorf("identities for %v, want %v", got, tt.want)
			}
		})
	}
}

func TestTestKeyFile(t *testing.T) {
	data, err := os.ReadFile(testKeyPath)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(data), "# test-only age identity for hl tests — never use for real data\n") {
		t.Errorf("test key lacks its warning comment")
	}
	testKey(t) // checks the "# public key:" line
}
