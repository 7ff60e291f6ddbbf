package validate

import (
	"context"
	"strings"
	"testing"
)

// TestAlertmanagerConfig checks alertmanager.config of a wrapper chart of
// kube-prometheus-stack with Alertmanager's own config package: what it
// refuses is an error at the config's line, no notifier anywhere a
// warning, other charts' values are not read.
func TestAlertmanagerConfig(t *testing.T) {
	const chart = "apiVersion: v2\nname: monitoring\nversion: 1.0.0\ndependencies:\n  - name: kube-prometheus-stack\n    version: 79.5.0\n    repository: https://prometheus-community.github.io/helm-charts\n"
	const good = `kube-prometheus-stack:
  alertmanager:
    config:
      route:
        receiver: "mail"
        routes:
          - receiver: "null"
            matchers: ['alertname = "Watchdog"']
      receivers:
        - name: "null"
        - name: "mail"
          email_configs:
            - to: "me@example.com"
              from: "alerts@example.com"
              smarthost: "smtp.example.com:587"
              auth_username: "alerts@example.com"
              auth_password_file: "/etc/alertmanager/secrets/alertmanager-receivers/mail-password"
`
	for _, tc := range []struct {
		name   string
		files  map[string]string
		want   Severity // "" = no finding
		line   int
		substr string
	}{
		{name: "good", files: map[string]string{"system/monitoring/Chart.yaml": chart, "system/monitoring/values.yaml": good}},
		{
			name:  "route to an unknown receiver",
			files: map[string]string{"system/monitoring/Chart.yaml": chart, "system/monitoring/values.yaml": strings.Replace(good, `receiver: "mail"`, `receiver: "pager"`, 1)},
			want:  SeverityError, line: 3, substr: `undefined receiver "pager"`,
		},
		{
			name:  "a field Alertmanager does not know",
			files: map[string]string{"system/monitoring/Chart.yaml": chart, "system/monitoring/values.yaml": strings.Replace(good, "smarthost:", "smart_host:", 1)},
			want:  SeverityError, line: 15, substr: "field smart_host not found",
		},
		{
			name: "only the null receiver",
			files: map[string]string{"system/monitoring/Chart.yaml": chart, "system/monitoring/values.yaml": `kube-prometheus-stack:
  alertmanager:
    config:
      route: {receiver: "null"}
      receivers: [{name: "null"}]
`},
			want: SeverityWarning, line: 3, substr: "every alert goes nowhere",
		},
		{
			name:  "an alias names the values key",
			files: map[string]string{"system/monitoring/Chart.yaml": chart + "    alias: kps\n", "system/monitoring/values.yaml": "kps:\n  alertmanager:\n    config:\n      route: {receiver: x}\n"},
			want:  SeverityError, line: 3, substr: `undefined receiver "x"`,
		},
		{
			name:  "another chart's alertmanager key is not Alertmanager's",
			files: map[string]string{"apps/x/Chart.yaml": "apiVersion: v2\nname: x\nversion: 1.0.0\n", "apps/x/values.yaml": "kube-prometheus-stack:\n  alertmanager:\n    config: {route: {receiver: x}}\n"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := repoFor(t, "")
			writeFiles(t, dir, tc.files)
			r, err := Run(context.Background(), Options{Dir: dir, CacheDir: t.TempDir(), Offline: true})
			if err != nil {
				t.Fatal(err)
			}
			var got []Finding
			for _, f := range r.Findings {
				if f.Policy == PolicyAlertmanagerConfig {
					got = append(got, f)
				}
			}
			if tc.want == "" {
				if len(got) > 0 {
					t.Fatalf("unexpected: %v", got)
				}
				return
			}
			if len(got) != 1 {
				t.Fatalf("want one %s finding, got %v", PolicyAlertmanagerConfig, got)
			}
			f := got[0]
			if f.Severity != tc.want || f.Line != tc.line || !strings.HasSuffix(f.File, "values.yaml") || !strings.Contains(f.Message, tc.substr) || !strings.HasSuffix(f.Path, "alertmanager.config") {
				t.Errorf("got %s; want %s at line %d with %q", f, tc.want, tc.line, tc.substr)
			}
		})
	}
}
