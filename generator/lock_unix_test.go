//go:build unix

package generator

import (
	"strings"
	"testing"
)

// A render that finds another render's staging folder still locked (the
// other process is alive) refuses instead of taking the folder for an
// interrupted render and rolling it back under the live one.
func TestRenderRefusesWhileAnotherRenderWrites(t *testing.T) {
	dir := t.TempDir()
	mustRender(t, fixture("minimal"), dir, nil)
	other, err := openStage(dir) // the other render, half-way through staging
	if err != nil {
		t.Fatal(err)
	}
	if err := other.put("README.md", []byte("theirs\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = render(t, fixture("minimal"), dir, nil)
	if err == nil || !strings.Contains(err.Error(), "another hl render is writing") {
		t.Fatalf("want a refusal, got %v", err)
	}
	if len(stagingLeftovers(t, dir)) != 1 {
		t.Error("the live render's staging folder was touched")
	}
	other.discard()
	mustRender(t, fixture("minimal"), dir, nil)
}
