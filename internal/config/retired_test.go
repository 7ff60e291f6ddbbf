package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRetiredComponentEntry: an hl.yaml written when ingress-nginx was a
// component still loads. An entry that only enabled it is a warning (its
// replacement renders anyway); one with a hostname or values is an error
// naming the replacement, since those were meant for the old chart.
func TestRetiredComponentEntry(t *testing.T) {
	base, err := os.ReadFile(filepath.Join("..", "..", "testdata", "config", "valid", "minimal.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(base), "\n  forge:") {
		t.Fatal("minimal.yaml changed shape: no spec.forge")
	}
	tests := []struct {
		name, entry, severity string
	}{
		{"enabled only", "    ingress-nginx: {enabled: true}\n", SeverityWarning},
		{"with values", "    ingress-nginx:\n      enabled: true\n      values: {controller: {replicaCount: 3}}\n", SeverityError},
		{"with hostname", "    ingress-nginx: {hostname: edge.home.example.com}\n", SeverityError},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			data := strings.Replace(string(base), "\n  forge:", "\n  apps:\n"+tc.entry+"  forge:", 1)
			_, probs := Parse("hl.yaml", []byte(data))
			var got []Problem
			for _, p := range probs {
				if p.Path == "spec.apps.ingress-nginx" {
					got = append(got, p)
				} else if p.Severity == SeverityError {
					t.Errorf("unexpected problem: %s", p)
				}
			}
			if len(got) != 1 || got[0].Severity != tc.severity || !strings.Contains(got[0].Message, "replaced by traefik") {
				t.Fatalf("want one %s naming traefik at spec.apps.ingress-nginx, got %v", tc.severity, got)
			}
			if got[0].Line == 0 {
				t.Errorf("no line: %s", got[0])
			}
		})
	}
}
