package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestBotScanPrintsFileLine: the text output names each pin by file:line,
// as editors and reviewers find it; -o json keeps the byte range.
func TestBotScanPrintsFileLine(t *testing.T) {
	dir := "../../testdata/bot/repos/hl-rendered"
	out, errOut, code := hl(t, "bot", "scan", dir)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	// system/argocd/Chart.yaml pins argo-cd's version on its seventh line.
	var line string
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "argo-cd") {
			line = l
		}
	}
	if !strings.HasPrefix(line, "system/argocd/Chart.yaml:7 ") {
		t.Errorf("argo-cd line = %q, want it to start with system/argocd/Chart.yaml:7\n%s", line, out)
	}
	js, _, code := hl(t, "bot", "scan", dir, "-o", "json")
	if code != 0 {
		t.Fatalf("json: exit %d", code)
	}
	var deps []struct {
		File  string
		Line  int
		Range struct{ Start, End int }
	}
	if err := json.Unmarshal([]byte(js), &deps); err != nil {
		t.Fatal(err)
	}
	for _, d := range deps {
		if d.Line < 1 || d.Range.End <= d.Range.Start {
			t.Errorf("%s: line %d range %+v", d.File, d.Line, d.Range)
		}
	}
}
