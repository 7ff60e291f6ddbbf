package bootstrap

import (
	"testing"

	"hl.dev/hl/internal/gitea/testserver"
)

// BenchmarkBootstrapFull bootstraps the full fixture's render into a fresh
// organisation of the local Gitea: every step created, the push included.
func BenchmarkBootstrapFull(b *testing.B) {
	srv := testserver.ForTest(b)
	renderFull(b) // render outside the timed loop
	for b.Loop() {
		b.StopTimer()
		opts := options(b, srv, renderFull(b))
		b.StartTimer()
		if _, err := Run(b.Context(), opts); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBootstrapUnchanged is a re-run of a finished bootstrap: every
// step only checks.
func BenchmarkBootstrapUnchanged(b *testing.B) {
	srv := testserver.ForTest(b)
	opts := options(b, srv, renderFull(b))
	if _, err := Run(b.Context(), opts); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := Run(b.Context(), opts); err != nil {
			b.Fatal(err)
		}
	}
}
