package oci_test

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"

	"hl.dev/hl/bot/datasource/oci"
)

// Blobs keeps bytes only under their own sha256, and a file changed on
// disk is not served (and is dropped).
func TestBlobs(t *testing.T) {
	b := &oci.Blobs{Dir: t.TempDir()}
	data := []byte("a chart archive")
	h := sha256.Sum256(data)
	sum := hex.EncodeToString(h[:])
	b.Put(sum, []byte("other bytes"))
	if _, ok := b.Get(sum); ok {
		t.Fatal("bytes kept under a digest that is not theirs")
	}
	b.Put("sha256:"+sum, data)
	if got, ok := b.Get(sum); !ok || string(got) != string(data) {
		t.Fatalf("get: %q %v", got, ok)
	}
	if err := os.WriteFile(filepath.Join(b.Dir, sum+".tgz"), []byte("tampered"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, ok := b.Get(sum); ok {
		t.Error("a tampered file was served")
	}
	if _, err := os.Stat(filepath.Join(b.Dir, sum+".tgz")); !os.IsNotExist(err) {
		t.Errorf("the tampered file is still there: %v", err)
	}
	for _, bad := range []string{"", "../x", "sha256:zz"} {
		if _, ok := b.Get(bad); ok {
			t.Errorf("Get(%q) answered", bad)
		}
	}
	var none *oci.Blobs
	none.Put(sum, data)
	if _, ok := none.Get(sum); ok {
		t.Error("a nil Blobs kept something")
	}
}
