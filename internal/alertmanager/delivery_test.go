package alertmanager_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"text/template"
	"time"

	"gopkg.in/yaml.v3"

	"hl.dev/hl/generator"
	"hl.dev/hl/internal/alertmanager/testserver"
	"hl.dev/hl/internal/yamlnode"
	"hl.dev/hl/secrets"
	"hl.dev/hl/validate"
)

// The credentials the test writes into the receivers' Secret, the way the
// rendered README tells the user to.
var credentials = map[string]string{
	"phone-token":   "tk_phone-7b1d0e",
	"chat-token":    "chat-bearer-55c2",
	"mail-password": "smtp-pass-91af",
}

// TestAlertsReachAPerson renders a homelab with the three kinds of
// receivers of spec.alerting (ntfy, e-mail, webhook), writes their
// credentials into the Secret the rendered README names (encrypted for the
// repo's recipients, as `sops edit` does), decrypts it as the cluster does
// (`hl secrets manifests`, Argo CD's hl-secrets plugin), and runs a real
// Alertmanager, built from its module, on the configuration taken from the
// rendered system/monitoring/values.yaml. A critical alert must reach the
// ntfy stand-in (topic, bearer token, priority, ntfy's message templates
// filled from the JSON Alertmanager posts) and the webhook (its bearer
// token, Alertmanager's JSON), a warning alert the webhook only; an info
// alert must reach the SMTP server (STARTTLS, the SMTP password, sender,
// recipients, the alert in the mail); Watchdog must reach nobody.
//
// Seams, the only differences from the cluster: the Secret's keys are
// written as files under a temporary folder, and the configuration's
// /etc/alertmanager/ prefix (where the Prometheus operator mounts the
// Secret, alertmanagerSpec.secrets) is rewritten to that folder; the
// receivers trust a throw-away CA, given to Alertmanager by SSL_CERT_FILE
// instead of the public CAs; ntfy is a recording HTTPS server that applies
// the templates the way ntfy does (Go text/template over the posted JSON).
func TestAlertsReachAPerson(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	ca, err := testserver.NewCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ntfy := testserver.StartHTTPReceiver(ca)
	defer ntfy.Close()
	hook := testserver.StartHTTPReceiver(ca)
	defer hook.Close()
	mail, err := testserver.StartSMTP(ca)
	if err != nil {
		t.Fatal(err)
	}
	defer mail.Close()

	repo := renderWithReceivers(t, ntfy.URL, hook.URL+"/hooks/homelab", mail.Addr)
	values := readYAML(t, filepath.Join(repo, "system", "monitoring", "values.yaml"))
	cfgNode := yamlnode.Path(values, "kube-prometheus-stack", "alertmanager", "config")
	if cfgNode == nil {
		t.Fatal("system/monitoring/values.yaml has no kube-prometheus-stack.alertmanager.config")
	}
	config, err := validate.AlertmanagerConfig(cfgNode)
	if err != nil {
		t.Fatal(err)
	}
	// The operator mounts each Secret of alertmanagerSpec.secrets at
	// /etc/alertmanager/secrets/<name>/: the configuration's files must be
	// there.
	var mounted []string
	if err := yamlnode.Path(values, "kube-prometheus-stack", "alertmanager", "alertmanagerSpec", "secrets").Decode(&mounted); err != nil {
		t.Fatalf("alertmanagerSpec.secrets: %v", err)
	}
	if !slices.Equal(mounted, []string{"alertmanager-receivers"}) {
		t.Fatalf("alertmanagerSpec.secrets = %v, want [alertmanager-receivers]", mounted)
	}

	writeReceiverSecret(t, repo)
	root := t.TempDir()
	projectSecret(t, repo, filepath.Join(root, "etc", "alertmanager", "secrets"))
	config = strings.ReplaceAll(config, "/etc/alertmanager/", filepath.ToSlash(root)+"/etc/alertmanager/")
	for _, v := range credentials {
		if strings.Contains(config, v) {
			t.Fatal("a credential is in the rendered configuration")
		}
	}

	am := testserver.ForTest(t, testserver.Options{Config: config, Env: ca.Env()})
	if err := am.PostAlerts(ctx,
		testserver.Alert{
			Labels:      map[string]string{"alertname": "ResticBackupFailed", "severity": "critical", "namespace": "backups"},
			Annotations: map[string]string{"summary": "The backup of gitea to nas failed"},
		},
		testserver.Alert{
			Labels:      map[string]string{"alertname": "NodeDiskFilling", "severity": "info", "namespace": "monitoring"},
			Annotations: map[string]string{"summary": "Disk of node1 is 80% full"},
		},
		testserver.Alert{
			Labels:      map[string]string{"alertname": "EndpointCertificateExpiring", "severity": "warning", "namespace": "monitoring"},
			Annotations: map[string]string{"summary": "A hostname serves a certificate that expires within two weeks"},
		},
		testserver.Alert{Labels: map[string]string{"alertname": "Watchdog", "severity": "none"}},
	); err != nil {
		t.Fatal(err)
	}

	// The webhook gets one notification per group: the critical and the
	// warning alert.
	var got struct {
		ntfy *testserver.Request
		hook map[string]*testserver.Request
		mail *testserver.Mail
	}
	got.hook = map[string]*testserver.Request{}
	var extra []string
	for got.ntfy == nil || len(got.hook) < 2 || got.mail == nil {
		select {
		case r := <-ntfy.Requests:
			if got.ntfy != nil {
				extra = append(extra, "ntfy: "+string(r.Body))
				continue
			}
			got.ntfy = &r
		case r := <-hook.Requests:
			var body struct {
				CommonLabels map[string]string `json:"commonLabels"`
			}
			_ = json.Unmarshal(r.Body, &body) // checked below
			name := body.CommonLabels["alertname"]
			if got.hook[name] != nil {
				extra = append(extra, "webhook: "+string(r.Body))
				continue
			}
			got.hook[name] = &r
		case m := <-mail.Mails:
			if got.mail != nil {
				extra = append(extra, "mail: "+m.Data)
				continue
			}
			got.mail = &m
		case <-ctx.Done():
			t.Fatalf("deliveries: ntfy %v, webhook %d, mail %v before %v; Alertmanager's log:\n%s", got.ntfy != nil, len(got.hook), got.mail != nil, ctx.Err(), am.Log())
		}
	}
	for _, e := range extra {
		t.Errorf("unexpected delivery (Watchdog must reach nobody, each group its route's receivers): %.300s", e)
	}

	t.Run("ntfy", func(t *testing.T) {
		r := got.ntfy
		want := map[string]string{
			"Authorization": "Bearer " + credentials["phone-token"],
			"X-Priority":    "urgent",
			"X-Template":    "yes",
		}
		for h, v := range want {
			if r.Header.Get(h) != v {
				t.Errorf("header %s = %q, want %q", h, r.Header.Get(h), v)
			}
		}
		if r.Method != "POST" || r.Path != "/homelab-alerts" {
			t.Errorf("%s %s, want POST /homelab-alerts (the topic)", r.Method, r.Path)
		}
		var body map[string]any
		if err := json.Unmarshal(r.Body, &body); err != nil {
			t.Fatalf("body: %v", err)
		}
		title := ntfyTemplate(t, r.Header.Get("X-Title"), body)
		msg := ntfyTemplate(t, r.Header.Get("X-Message"), body)
		if title != "[firing] ResticBackupFailed" {
			t.Errorf("title %q", title)
		}
		if !strings.Contains(msg, "firing: The backup of gitea to nas failed") {
			t.Errorf("message %q does not carry the alert's summary", msg)
		}
	})
	t.Run("webhook", func(t *testing.T) {
		for name, summary := range map[string]string{
			"ResticBackupFailed":          "The backup of gitea to nas failed",
			"EndpointCertificateExpiring": "A hostname serves a certificate that expires within two weeks",
		} {
			r := got.hook[name]
			if r == nil {
				t.Errorf("%s did not reach the webhook; it got %d other notifications", name, len(got.hook))
				continue
			}
			if a := r.Header.Get("Authorization"); a != "Bearer "+credentials["chat-token"] {
				t.Errorf("Authorization = %q", a)
			}
			if r.Path != "/hooks/homelab" {
				t.Errorf("path %s", r.Path)
			}
			var body struct {
				Receiver string `json:"receiver"`
				Status   string `json:"status"`
				Alerts   []struct {
					Labels      map[string]string `json:"labels"`
					Annotations map[string]string `json:"annotations"`
				} `json:"alerts"`
			}
			if err := json.Unmarshal(r.Body, &body); err != nil {
				t.Fatalf("body: %v", err)
			}
			if body.Receiver != "chat" || body.Status != "firing" || len(body.Alerts) != 1 || body.Alerts[0].Annotations["summary"] != summary {
				t.Errorf("webhook body: %s", r.Body)
			}
		}
	})
	t.Run("email", func(t *testing.T) {
		m := got.mail
		if !m.TLS {
			t.Error("mail sent without STARTTLS")
		}
		if m.User != "alerts@home.example.com" || m.Password != credentials["mail-password"] {
			t.Errorf("authenticated as %q with the wrong password: %v", m.User, m.Password == credentials["mail-password"])
		}
		if m.From != "alerts@home.example.com" || !slices.Equal(m.To, []string{"admin@example.com", "ops@example.com"}) {
			t.Errorf("from %s to %v", m.From, m.To)
		}
		subject := regexp.MustCompile(`(?m)^Subject: (.*)\r$`).FindStringSubmatch(m.Data)
		if subject == nil || !strings.Contains(subject[1], "NodeDiskFilling") {
			t.Errorf("subject %q", subject)
		}
		if !strings.Contains(m.Data, "Disk of node1 is 80% full") {
			t.Errorf("the mail does not carry the alert's summary:\n%.2000s", m.Data)
		}
	})
}

// renderWithReceivers renders testdata/config/valid/minimal.yaml with
// spec.alerting pointing at the local receivers.
func renderWithReceivers(t *testing.T, ntfyURL, hookURL, smarthost string) string {
	t.Helper()
	base, err := os.ReadFile(filepath.Join("..", "..", "testdata", "config", "valid", "minimal.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := string(base) + fmt.Sprintf(`  alerting:
    receivers:
      - name: phone
        ntfy: {url: %q, topic: homelab-alerts, priority: urgent}
      - name: mail
        email:
          smarthost: %q
          from: alerts@home.example.com
          to: [admin@example.com, ops@example.com]
          username: alerts@home.example.com
      - name: chat
        webhook: {url: %q, auth: bearer}
    route:
      receiver: mail
      groupWait: 0s
      groupInterval: 1s
      repeatInterval: 1h
      routes:
        - {severities: [critical], receiver: phone, continue: true}
        - {severities: [critical, warning], receiver: chat}
`, ntfyURL, smarthost, hookURL)
	ids, err := secrets.LoadIdentities(filepath.Join("..", "..", "testdata", "age", "test-key.txt"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if _, err := generator.Render(t.Context(), generator.Options{ConfigPath: "hl.yaml", ConfigData: []byte(cfg), OutDir: dir, Identities: ids}); err != nil {
		t.Fatal(err)
	}
	return dir
}

// writeReceiverSecret does what the rendered README asks of the user:
// the Secret of its example, each "..." replaced by the credential,
// encrypted for the recipients of the rendered .sops.yaml.
func writeReceiverSecret(t *testing.T, repo string) {
	t.Helper()
	readme, err := os.ReadFile(filepath.Join(repo, "system", "monitoring", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)```sh\n(sops edit [^\n]*)\n```.*?```yaml\n(apiVersion: v1\nkind: Secret\n.*?)```").FindSubmatch(readme)
	if m == nil {
		t.Fatalf("the rendered README does not show the receivers' Secret:\n%s", readme)
	}
	file := strings.TrimPrefix(string(m[1]), "sops edit ")
	secret := string(m[2])
	for k, v := range credentials {
		from := "  " + k + `: "..."`
		if !strings.Contains(secret, from) {
			t.Fatalf("the README's Secret has no key %s:\n%s", k, secret)
		}
		secret = strings.Replace(secret, from, fmt.Sprintf("  %s: %q", k, v), 1)
	}
	if strings.Contains(secret, `"..."`) {
		t.Fatalf("the README's Secret has keys the test does not know:\n%s", secret)
	}
	var sopsCfg struct {
		Rules []struct {
			Age string `yaml:"age"`
		} `yaml:"creation_rules"`
	}
	data, err := os.ReadFile(filepath.Join(repo, ".sops.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, &sopsCfg); err != nil || len(sopsCfg.Rules) == 0 {
		t.Fatalf(".sops.yaml: %v", err)
	}
	enc, err := secrets.Encrypt([]byte(secret), strings.Split(sopsCfg.Rules[0].Age, ","))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(repo, filepath.FromSlash(file)), enc, 0o644); err != nil {
		t.Fatal(err)
	}
}

// projectSecret decrypts system/monitoring/secrets as Argo CD's hl-secrets
// plugin does and writes the receivers' Secret as the kubelet projects a
// Secret volume: one file per key, in a folder named after the Secret.
func projectSecret(t *testing.T, repo, secretsRoot string) {
	t.Helper()
	ids, err := secrets.LoadIdentities(filepath.Join("..", "..", "testdata", "age", "test-key.txt"))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := secrets.Manifests(filepath.Join(repo, "system", "monitoring", "secrets"), ids, &out); err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(&out)
	found := false
	for {
		var s struct {
			Metadata   struct{ Name string }
			StringData map[string]string `yaml:"stringData"`
		}
		if err := dec.Decode(&s); err != nil {
			break
		}
		if s.Metadata.Name != "alertmanager-receivers" {
			continue
		}
		found = true
		dir := filepath.Join(secretsRoot, s.Metadata.Name)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		for k, v := range s.StringData {
			if err := os.WriteFile(filepath.Join(dir, k), []byte(v), 0o400); err != nil {
				t.Fatal(err)
			}
		}
	}
	if !found {
		t.Fatal("hl secrets manifests gave no Secret alertmanager-receivers")
	}
}

// ntfyTemplate fills an ntfy template header the way ntfy does with
// X-Template: yes.
func ntfyTemplate(t *testing.T, text string, body map[string]any) string {
	t.Helper()
	tmpl, err := template.New("ntfy").Parse(text)
	if err != nil {
		t.Fatalf("ntfy template %q: %v", text, err)
	}
	var b strings.Builder
	if err := tmpl.Execute(&b, body); err != nil {
		t.Fatalf("ntfy template %q: %v", text, err)
	}
	return strings.TrimSpace(b.String())
}

func readYAML(t *testing.T, file string) *yaml.Node {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Content) == 0 {
		t.Fatalf("%s is empty", file)
	}
	return doc.Content[0]
}
