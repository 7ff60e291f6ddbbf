package oci_test

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"
	"time"

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

// Past 256 archives the least recently used go.
func TestBlobsPruned(t *testing.T) {
	b := &oci.Blobs{Dir: t.TempDir()}
	var first string
	for i := range 260 {
		data := []byte{byte(i), byte(i >> 8), 'x'}
		h := sha256.Sum256(data)
		sum := hex.EncodeToString(h[:])
		if i == 0 {
			first = sum
		}
		b.Put(sum, data)
		old := time.Now().Add(time.Duration(i-300) * time.Minute) // put in order of use
		if err := os.Chtimes(filepath.Join(b.Dir, sum+".tgz"), old, old); err != nil {
			t.Fatal(err)
		}
	}
	ents, err := os.ReadDir(b.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) > 256 {
		t.Errorf("%d archives kept, want at most 256", len(ents))
	}
	if _, ok := b.Get(first); ok {
		t.Error("the least recently used archive was kept")
	}
}
