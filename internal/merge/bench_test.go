package merge

import (
	"fmt"
	"strings"
	"testing"
)

// configLines returns an n-line YAML-ish file with the repetition real
// manifests have: blank lines, repeated keys, similar blocks.
func configLines(n int) []string {
	lines := make([]string, 0, n)
	for i := 0; len(lines) < n; i++ {
		block := []string{
			fmt.Sprintf("- name: app-%d\n", i),
			"  namespace: apps\n",
			fmt.Sprintf("  image: registry.example/app-%d:v1.%d.0\n", i, i%7),
			"  replicas: 1\n",
			"  enabled: true\n",
			"\n",
		}
		lines = append(lines, block...)
	}
	return lines[:n]
}

// tenKInputs is a 10k-line base with a user edit, a bot bump and a
// deletion on ours, and a template change, an insertion and an append on
// theirs, all clean.
func tenKInputs() (base, ours, theirs []byte) {
	b := configLines(10000)
	o := append([]string(nil), b...)
	t := append([]string(nil), b...)
	o[120] = "  namespace: custom\n"
	o[5002] = "  image: registry.example/app-833:v9.9.9\n"
	o = append(o[:7000:7000], o[7006:]...)
	t[3] = "  replicas: 2\n"
	t = append(t[:4000:4000], append([]string{"  # managed by hl\n"}, t[4000:]...)...)
	t = append(t, "- name: extra\n")
	return []byte(strings.Join(b, "")), []byte(strings.Join(o, "")), []byte(strings.Join(t, ""))
}

func BenchmarkMerge10kLines(b *testing.B) {
	base, ours, theirs := tenKInputs()
	if r := Merge(base, ours, theirs, Options{}); !r.Clean {
		b.Fatal("benchmark input should merge cleanly")
	}
	b.SetBytes(int64(len(base)))
	b.ReportAllocs()
	for b.Loop() {
		Merge(base, ours, theirs, Options{})
	}
}

func BenchmarkDiff10kLines(b *testing.B) {
	base, ours, _ := tenKInputs()
	b.SetBytes(int64(len(base)))
	b.ReportAllocs()
	for b.Loop() {
		Diff(base, ours, "a", "b", 3)
	}
}
