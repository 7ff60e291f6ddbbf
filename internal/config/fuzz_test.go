package config

import (
	"os"
	"testing"
)

// FuzzParse feeds arbitrary bytes to the loader: it must never panic, and
// every problem it reports must carry a file and a message.
func FuzzParse(f *testing.F) {
	for _, dir := range []string{"valid", "invalid"} {
		for _, file := range fixtures(f, dir) {
			data, err := os.ReadFile(file)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(data)
		}
	}
	f.Add([]byte("apiVersion: hl.dev/v1alpha1\nkind: Homelab\nspec: &a\n  x: *a\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		doc, probs := Parse("fuzz.yaml", data)
		if doc == nil {
			t.Fatal("nil document")
		}
		for _, p := range probs {
			if p.File != "fuzz.yaml" || p.Message == "" {
				t.Fatalf("problem without file or message: %+v", p)
			}
		}
	})
}
