package e2e_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"code.gitea.io/sdk/gitea"
	"gopkg.in/yaml.v3"
	corev1 "k8s.io/api/core/v1"

	"hl.dev/hl/bootstrap"
	"hl.dev/hl/e2e"
	"hl.dev/hl/internal/asrendered"
	"hl.dev/hl/internal/config"
	"hl.dev/hl/internal/gitea/testserver"
	"hl.dev/hl/internal/testcharts"
	"hl.dev/hl/internal/testharness"
	"hl.dev/hl/internal/yamlnode"
	"hl.dev/hl/secrets"
)

// The newer releases the test publishes: a chart's minor version in its
// Helm repository, an image's minor tag in the OCI registry.
const (
	bumpChart, bumpChartFrom, bumpChartTo = "kured", "5.10.0", "5.11.0"
	bumpImage                             = "ghcr.io/gethomepage/homepage"
	bumpImageFrom, bumpImageTo            = "v1.7.0", "v1.8.0"
)

// botPort is the container port the rendered Deployment listens on.
const botPort = 8080

// TestBotAsRendered runs the rendered hl-bot Deployment's container as the
// kubelet would start it (asrendered.PodRun: its command, args, env,
// Secrets mounted at their paths, read-only root, its user) from hl's
// image, against a real Gitea seeded by `hl bootstrap gitea` (the bot
// user, its token and the webhook secret, in platform/hl-bot/secrets/),
// the Helm repositories and OCI registry of internal/testcharts named in
// hl.yaml's spec.mirrors.
//
// The repo is the full fixture with two newer releases published (kured
// 5.11.0 in its Helm repository, homepage v1.8.0 in the registry) and one
// secret due for rotation: it was last rotated (secrets.RotateSecret,
// the bot's own rotation) with a clock 200 days back, so its
// hl.dev/generated-at is older than spec.secrets.rotateAfter (90d). The
// Deployment runs a pass when it starts (--run-now); a Gitea
// pull_request webhook delivery signed with the rendered webhook secret
// starts one more (a delivery with a wrong signature is refused). The
// test checks /healthz and /metrics through the pod's port, waits until
// /metrics counts both runs, then checks the pull requests on Gitea:
// exactly one per change (the second run opened no duplicates), an
// upgrade per new release (branch hl-bot/..., body naming both versions,
// the file that pins it changed) and a rotation (branch
// hl-bot/rotate/..., the secret's file changed); then a kubelet's stop
// (SIGTERM) ends the bot cleanly.
//
// Seams: the pod runs in the host's network namespace (its :8080 binds on
// the host); the in-cluster Gitea Service gitea-http.gitea.svc:3000 is a
// loopback proxy to the harness (e2e.StartService); the sops-age Secret,
// made in the cluster by `hl bootstrap cluster`, is built here from the
// homelab's age key; the webhook is delivered by the test, not by Gitea;
// hl.yaml's minimumReleaseAge is set to 0d and the PR limits raised,
// as the served releases are minutes old and the test wants every PR of
// one run; datasources with no stand-in here (GitHub releases, the k3s
// channel, Debian, upstream registries) fail their lookups, which the
// bot reports and passes over.
func TestBotAsRendered(t *testing.T) {
	b := newBotLab(t, nil)
	lab, srv, due, dueDate, webhookSecret := b.lab, b.srv, b.due, b.dueDate, b.webhookSecret
	var logs testharness.SyncBuffer
	b.pod.Stdout, b.pod.Stderr = &logs, &logs
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("bot log:\n%s", logs.String())
		}
	})
	base := fmt.Sprintf("http://127.0.0.1:%d", botPort)
	stop := b.serve(t, base)

	t.Run("metrics", func(t *testing.T) {
		body := get(t, base+"/metrics")
		for _, m := range []string{"hl_bot_runs_total", "hl_bot_webhooks_total", "hl_secrets_overdue"} {
			if !strings.Contains(body, m) {
				t.Errorf("/metrics lacks %s:\n%s", m, body)
			}
		}
	})

	payload := []byte(`{"action":"closed","pull_request":{"merged":true,"head":{"ref":"hl-bot/e2e-merged"}},"sender":{"login":"admin"}}`)
	t.Run("webhook with a wrong signature", func(t *testing.T) {
		code, body := deliver(t, base, payload, sign("not-the-secret", payload), "e2e-1")
		if code != http.StatusUnauthorized {
			t.Errorf("HTTP %d %q, want 401", code, body)
		}
	})
	if code, body := deliver(t, base, payload, sign(webhookSecret, payload), "e2e-2"); code != http.StatusAccepted {
		t.Fatalf("webhook delivery: HTTP %d %q, want 202 (a run triggered)", code, body)
	}

	admin, err := gitea.NewClient(srv.URL, gitea.SetToken(srv.AdminToken))
	if err != nil {
		t.Fatal(err)
	}
	// The start's run and the one the delivery started (at once, or
	// queued behind the first) have ended when /metrics counts two.
	waitFor(t, 8*time.Minute, "the end of both runs", func() error {
		if n := runsCounted(get(t, base+"/metrics")); n < 2 {
			return fmt.Errorf("%d runs counted", n)
		}
		return nil
	})
	found := b.foundPRs(t, admin)

	files := func(t *testing.T, pr *gitea.PullRequest) []string {
		t.Helper()
		fs, _, err := admin.ListPullRequestFiles("homelab", "cluster", pr.Index, gitea.ListPullRequestFilesOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, f := range fs {
			out = append(out, f.Filename)
		}
		sort.Strings(out)
		return out
	}
	t.Run("chart upgrade PR", func(t *testing.T) {
		pr := found["chart "+bumpChart]
		if !strings.HasPrefix(pr.Head.Ref, "hl-bot/") || !strings.Contains(pr.Body, bumpChartFrom) {
			t.Errorf("branch %s, body:\n%s\nwant hl-bot/... and the old version %s", pr.Head.Ref, pr.Body, bumpChartFrom)
		}
		fs := files(t, pr)
		if !slices.Contains(fs, "system/kured/Chart.yaml") {
			t.Errorf("files %v, want system/kured/Chart.yaml", fs)
		}
	})
	t.Run("image upgrade PR", func(t *testing.T) {
		pr := found["image "+bumpImage]
		if !strings.HasPrefix(pr.Head.Ref, "hl-bot/") || !strings.Contains(pr.Body, bumpImageFrom) {
			t.Errorf("branch %s, body:\n%s\nwant hl-bot/... and the old tag %s", pr.Head.Ref, pr.Body, bumpImageFrom)
		}
		fs := files(t, pr)
		if len(fs) == 0 || !anyUnder(fs, "apps/homepage/") {
			t.Errorf("files %v, want homepage's pin under apps/homepage/", fs)
		}
	})
	t.Run("rotation PR", func(t *testing.T) {
		pr := found["rotation of "+due.Namespace+"/"+due.Name]
		if !slices.Contains(files(t, pr), due.File) {
			t.Errorf("files %v, want %s", files(t, pr), due.File)
		}
		if dueDate == "" || !strings.Contains(pr.Body, "generated on "+dueDate) {
			t.Errorf("body does not say when it was generated (%s):\n%s", dueDate, pr.Body)
		}
	})
	t.Run("metrics after the run", func(t *testing.T) {
		body := get(t, base+"/metrics")
		for _, want := range []string{`hl_bot_webhooks_total{outcome="triggered"} 1`, `hl_bot_webhooks_total{outcome="rejected"} 1`} {
			if !strings.Contains(body, want) {
				t.Errorf("/metrics lacks %s:\n%s", want, body)
			}
		}
	})

	stop()
	if out := logs.String(); strings.Contains(out, webhookSecret) || strings.Contains(out, string(lab.AgeKey)) {
		t.Error("the bot's log shows a secret value")
	}
}

// serve starts the hl-bot container as rendered, waits until /healthz
// at base answers and returns stop: SIGTERM, which must end it cleanly.
// A test that ends without stop kills it.
func (b *botLab) serve(t *testing.T, base string) (stop func()) {
	t.Helper()
	proc, err := b.pod.Start(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			proc.Kill()
			_, _ = proc.Wait()
		}
	})
	waitFor(t, 60*time.Second, "the bot's /healthz", func() error {
		return expectStatus(base+"/healthz", http.StatusOK)
	})
	return func() {
		t.Helper()
		stopped = true
		if code, err := proc.Stop(40 * time.Second); err != nil || code != 0 {
			t.Errorf("stop: exit %d, %v: want a clean exit on SIGTERM", code, err)
		}
	}
}

// botLab is what TestBotAsRendered and the chaos test share: the full
// fixture rendered with two newer releases published and one secret due,
// pushed to a real Gitea by `hl bootstrap gitea`, and the rendered hl-bot
// Deployment ready to start from hl's image.
type botLab struct {
	lab           *e2e.Homelab
	srv           *testserver.Server
	pod           *asrendered.PodRun
	due           secrets.Secret
	dueDate       string
	webhookSecret string
	// wantPRs match the three pull requests the bot owes: the chart, the
	// image and the rotation.
	wantPRs map[string]func(*gitea.PullRequest) bool
}

// newBotLab sets the lab up. front, when set, puts something between
// the bot and its servers: it gets a server's base URL (Gitea's, the
// chart repositories' and registry's) and returns the one the bot is
// given (a fault proxy's).
func newBotLab(t *testing.T, front func(target string) string) *botLab {
	t.Helper()
	asrendered.RequireRoot(t)
	ctx := t.Context()
	e2e.HoldPort(t, botPort)
	requirePortFree(t, botPort)
	img := hlImage(t)
	if front == nil {
		front = func(u string) string { return u }
	}

	set := testcharts.Catalog(t)
	set.Charts = append(set.Charts, bumpedChart(t, set, bumpChart, bumpChartTo))
	repos := set.Serve(t)
	mirrored := repos.Host + "/ghcr/gethomepage/homepage"
	for _, tag := range []string{bumpImageFrom, bumpImageTo} {
		pushImage(t, mirrored+":"+tag)
	}
	reposURL := front(repos.URL)
	reposHost := strings.TrimPrefix(reposURL, "http://")
	var chartMirrors []config.Mirror
	for _, m := range repos.Mirrors {
		to := strings.Replace(m.To, repos.URL, reposURL, 1)
		to = strings.Replace(to, "oci://"+repos.Host, "oci://"+reposHost, 1)
		chartMirrors = append(chartMirrors, config.Mirror{From: m.From, To: to})
	}

	srv := testserver.New(t, testserver.Options{})
	lab := render(t, "full", e2e.RenderOptions{
		ChartMirrors:    chartMirrors,
		RegistryMirrors: []config.Mirror{{From: "ghcr.io/gethomepage", To: reposHost + "/ghcr/gethomepage"}},
		Edit: func(doc *yaml.Node) error {
			bot := yamlnode.Path(doc.Content[0], "spec", "bot")
			if v := yamlnode.Value(bot, "minimumReleaseAge"); v != nil {
				v.Value = "0d"
			}
			limits := yamlnode.Value(bot, "limits")
			if v := yamlnode.Value(limits, "maxPRsPerHour"); v != nil {
				v.Value = "20"
			}
			if v := yamlnode.Value(limits, "maxPRsPerRun"); v != nil {
				v.Value = "20"
			}
			return nil
		},
	})
	due, dueDate := makeOneDue(t, lab)
	hlRef := renderedHLImage(t, lab.Dir)

	res, err := bootstrap.Run(ctx, bootstrap.Options{
		Dir: lab.Dir, URL: srv.URL, Owner: "homelab", Repo: "cluster", Token: srv.AdminToken, Identities: lab.Identities,
	})
	if err != nil {
		t.Fatalf("hl bootstrap gitea: %v\n%+v", err, res)
	}

	gsvc, err := e2e.StartService(ctx, "gitea-http", "gitea", 3000, strings.TrimPrefix(front(srv.URL), "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { gsvc.Close() })
	sopsAge := corev1.Secret{}
	sopsAge.Name, sopsAge.Namespace = "sops-age", "hl-bot"
	sopsAge.StringData = map[string]string{"keys.txt": string(lab.AgeKey)}

	pod, err := e2e.Pod(ctx, e2e.PodOptions{
		Lab: lab, File: "platform/hl-bot/deployment.yaml", Kind: "Deployment", Name: "hl-bot",
		Decrypter: img, Images: map[string]*asrendered.Image{hlRef: img},
		Secrets: []corev1.Secret{sopsAge}, Hosts: gsvc.Hosts(),
	})
	if err != nil {
		t.Fatal(err)
	}
	b := &botLab{lab: lab, srv: srv, pod: pod, due: due, dueDate: dueDate,
		webhookSecret: secretValue(t, pod.Secrets, "hl-bot-webhook", "secret")}
	b.wantPRs = map[string]func(*gitea.PullRequest) bool{
		"chart " + bumpChart: func(pr *gitea.PullRequest) bool {
			return strings.Contains(pr.Title+pr.Body, bumpChart) && strings.Contains(pr.Title+pr.Body, bumpChartTo)
		},
		"image " + bumpImage: func(pr *gitea.PullRequest) bool {
			return strings.Contains(pr.Title+pr.Body, "homepage") && strings.Contains(pr.Title+pr.Body, bumpImageTo)
		},
		"rotation of " + due.Namespace + "/" + due.Name: func(pr *gitea.PullRequest) bool {
			return strings.HasPrefix(pr.Head.Ref, "hl-bot/rotate/") && strings.Contains(pr.Title, due.Namespace+"/"+due.Name)
		},
	}
	return b
}

// foundPRs returns, for each of the PRs the bot owes, the one open PR
// that matches it; it fails the test for none or more than one.
func (b *botLab) foundPRs(t *testing.T, admin *gitea.Client) map[string]*gitea.PullRequest {
	t.Helper()
	prs, _, err := admin.ListRepoPullRequests("homelab", "cluster", gitea.ListPullRequestsOptions{State: gitea.StateOpen, ListOptions: gitea.ListOptions{PageSize: 50}})
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]*gitea.PullRequest{}
	for what, match := range b.wantPRs {
		n := 0
		for _, pr := range prs {
			if match(pr) {
				found[what] = pr
				n++
			}
		}
		if n != 1 {
			t.Errorf("%d pull requests for the %s, want 1", n, what)
		}
	}
	if len(found) < len(b.wantPRs) {
		for _, pr := range prs {
			t.Logf("open PR #%d %s: %s", pr.Index, pr.Head.Ref, pr.Title)
		}
		issues, _, _ := admin.ListRepoIssues("homelab", "cluster", gitea.ListIssueOption{Type: gitea.IssueTypeIssue})
		for _, is := range issues {
			t.Logf("issue #%d %s:\n%s", is.Index, is.Title, is.Body)
		}
		t.FailNow()
	}
	return found
}

// dueDays is how long ago makeOneDue's secret was rotated.
const dueDays = 200

// makeOneDue makes the first rotatable secret under apps/ due
// (e2e.MakeDue) and returns it with its new generated-at date.
func makeOneDue(t *testing.T, lab *e2e.Homelab) (secrets.Secret, string) {
	t.Helper()
	s, err := e2e.MakeDue(lab.Dir, dueDays, func(s secrets.Secret) bool { return strings.HasPrefix(s.File, "apps/") })
	if err != nil {
		t.Fatal(err)
	}
	all, err := secrets.Scan(lab.Dir, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range all {
		if a.File == s.File {
			return s, a.GeneratedAt
		}
	}
	t.Fatalf("%s gone after its rotation", s.File)
	return s, ""
}

// bumpedChart is a copy of the catalog's chart name at version.
func bumpedChart(t *testing.T, set *testcharts.Set, name, version string) *testcharts.Chart {
	t.Helper()
	c, ok := set.Get(name)
	if !ok {
		t.Fatalf("no chart %s in the catalog", name)
	}
	if c.Version != bumpChartFrom {
		t.Fatalf("catalog pins %s %s, the test expects %s", name, c.Version, bumpChartFrom)
	}
	dir := filepath.Join(t.TempDir(), name)
	copyTree(t, c.Dir, dir)
	p := filepath.Join(dir, "Chart.yaml")
	data := readFile(t, p)
	edited := strings.Replace(data, "version: "+c.Version, "version: "+version, 1)
	if edited == data {
		t.Fatalf("%s has no version: %s line", p, c.Version)
	}
	writeFile(t, p, edited)
	return &testcharts.Chart{Component: c.Component, Repository: c.Repository, Name: c.Name, Version: version,
		Kind: c.Kind, Source: c.Source + ", version raised by the test", Dir: dir}
}

func pushImage(t *testing.T, ref string) {
	t.Helper()
	if err := e2e.PushImage(ref); err != nil {
		t.Fatal(err)
	}
}

func secretValue(t *testing.T, all []corev1.Secret, name, key string) string {
	t.Helper()
	for _, s := range all {
		if s.Name != name {
			continue
		}
		if v, ok := s.StringData[key]; ok {
			return v
		}
		if v, ok := s.Data[key]; ok {
			return string(v)
		}
	}
	t.Fatalf("no secret %s with key %s", name, key)
	return ""
}

func requirePortFree(t *testing.T, port int) {
	t.Helper()
	l, err := net.Listen("tcp", fmt.Sprintf(":%d", port))
	if err != nil {
		t.Fatalf("the rendered bot listens on :%d, which is taken on this host (pods share the host's network here): %v", port, err)
	}
	l.Close()
}

// runsCounted sums hl_bot_runs_total's finished runs (success and
// error) in a /metrics body.
func runsCounted(body string) int {
	n := 0
	for _, line := range strings.Split(body, "\n") {
		for _, r := range []string{"success", "error"} {
			var v float64
			if _, err := fmt.Sscanf(line, `hl_bot_runs_total{result="`+r+`"} %g`, &v); err == nil {
				n += int(v)
			}
		}
	}
	return n
}

func sign(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// deliver posts a Gitea pull_request webhook as Gitea sends it.
func deliver(t *testing.T, base string, body []byte, sig, id string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, base+"/webhook", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Gitea-Event", "pull_request")
	req.Header.Set("X-Gitea-Delivery", id)
	req.Header.Set("X-Gitea-Signature", sig)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: HTTP %d", url, resp.StatusCode)
	}
	return string(b)
}

func expectStatus(url string, want int) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != want {
		return fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	return nil
}

// waitFor polls check until it returns nil; the bound only keeps a broken
// run from hanging the suite, it is no assertion on speed.
func waitFor(t *testing.T, bound time.Duration, what string, check func() error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), bound)
	defer cancel()
	var last error
	for {
		if last = check(); last == nil {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: not there after %s: %v", what, bound, last)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func anyUnder(files []string, prefix string) bool {
	for _, f := range files {
		if strings.HasPrefix(f, prefix) {
			return true
		}
	}
	return false
}
