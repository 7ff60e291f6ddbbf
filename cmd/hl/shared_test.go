package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"hl.dev/hl/internal/iostreams"
)

// Issue 15, finding 9: a --token-file error names the file, not an
// environment variable the user did not use; a token file or age key
// other users can read is reported; the token itself is never printed.
func TestCredentialFiles(t *testing.T) {
	dir := t.TempDir()
	_, errOut, code := hl(t, "bootstrap", "gitea", "--dir", dir, "--token-file", filepath.Join(dir, "missing"))
	if code == 0 || !strings.Contains(errOut, "missing does not exist") || strings.Contains(errOut, "HL_GITEA_TOKEN") {
		t.Errorf("missing token file: exit %d, %q", code, errOut)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := hl(t, "bootstrap", "gitea", "--dir", dir, "--token-file", empty); code == 0 || !strings.Contains(errOut, "is empty") {
		t.Errorf("empty token file: exit %d, %q", code, errOut)
	}

	// A world-readable token file: warned about, its content never shown.
	open := filepath.Join(dir, "token")
	const tok = "0123456789abcdef0123456789abcdef01234567"
	if err := os.WriteFile(open, []byte(tok+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ios, _, _, errBuf := iostreams.Test()
	s := newShared(ios)
	got, err := s.token(tokenSource{What: "Gitea token", File: open, Env: []string{"HL_GITEA_TOKEN"}})
	if err != nil || got != tok {
		t.Fatalf("token %q, %v", got, err)
	}
	if w := errBuf.String(); !strings.Contains(w, "can be read by other users") || !strings.Contains(w, "chmod 600") || strings.Contains(w, tok) {
		t.Errorf("warning %q", w)
	}

	// The same for an age key.
	key, err := os.ReadFile("../../testdata/age/test-key.txt")
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dir, "age.key")
	if err := os.WriteFile(keyFile, key, 0o644); err != nil {
		t.Fatal(err)
	}
	errBuf.Reset()
	if ids, err := s.identities(keyFile, true); err != nil || len(ids) == 0 {
		t.Fatalf("identities: %v", err)
	}
	if w := errBuf.String(); !strings.Contains(w, "age.key can be read by other users") || strings.Contains(w, "AGE-SECRET-KEY") {
		t.Errorf("age key warning %q", w)
	}
	if err := os.Chmod(keyFile, 0o600); err != nil {
		t.Fatal(err)
	}
	errBuf.Reset()
	if _, err := s.identities(keyFile, true); err != nil || errBuf.Len() != 0 {
		t.Errorf("a 0600 key: %v, warned %q", err, errBuf.String())
	}
}
