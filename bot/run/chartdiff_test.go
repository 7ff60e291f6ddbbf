package run_test

import (
	"fmt"
	"strings"
	"testing"

	"hl.dev/hl/bot/internal/fixture"
)

// A chart from an OCI registry, named in Chart.yaml under an alias, gets
// the rendered diff in its PR like an HTTP repository's chart, rendered
// with the wrapper's values under the alias (replicas: 7 here; the chart's
// default is 1). Against the real Gitea and an in-process registry holding
// the chart as helm push stores it.
func TestChartDiffFromOCIUnderAlias(t *testing.T) {
	e := newEnv(t)
	fixture.PushPodinfoOCI(t, e.regHost, "charts", "1.0.0", "1.1.0")
	e.push(t, e.owner, e.botToken, map[string]string{
		"apps/web/Chart.yaml": fmt.Sprintf(`apiVersion: v2
name: web
version: 0.1.0
dependencies:
  - name: podinfo
    version: 1.0.0
    repository: oci://%s/charts
    alias: frontend
`, e.regHost),
		"apps/web/values.yaml": "podinfo:\n  replicas: 3\nfrontend:\n  replicas: 7\n",
	}, "the chart from a registry, under an alias")
	e.run(t)
	var body string
	n := 0
	for _, ps := range e.prs(t) {
		for _, p := range ps {
			if strings.Contains(p.Body, "apps/web/Chart.yaml") {
				body = p.Body
				n++
			}
		}
	}
	if n != 1 {
		t.Fatalf("%d PRs change apps/web/Chart.yaml, want 1", n)
	}
	for _, want := range []string{"### Rendered diff", `+  version: "1.1.0"`, `replicas: "7"`} {
		if !strings.Contains(body, want) {
			t.Errorf("the OCI chart's PR body lacks %q:\n%s", want, body)
		}
	}
	if strings.Contains(body, "rendered diff unavailable") || strings.Contains(body, `replicas: "3"`) {
		t.Errorf("the diff is missing or rendered with the chart name's values, not the alias's:\n%s", body)
	}
}
