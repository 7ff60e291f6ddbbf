package github

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"hl.dev/hl/bot/internal/fixture"
	"hl.dev/hl/bot/lookup"
	"hl.dev/hl/bot/run"
)

// scenarioGitHub answers the REST calls the run loop makes: repository
// and user from the recorded fixtures, pull requests, labels and the
// dashboard issue from state kept here, so a PR created by run 1 is what
// run 2 finds.
type scenarioGitHub struct {
	t      *testing.T
	static *fakeGitHub
	mu     sync.Mutex
	reqs   []request
	labels []string
	prs    []map[string]any
	issue  map[string]any
}

func (s *scenarioGitHub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet && (r.URL.Path == rp || r.URL.Path == "/user") {
		s.static.serve(w, r)
		return
	}
	raw, _ := io.ReadAll(r.Body)
	req := request{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Auth: r.Header.Get("Authorization")}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &req.Body); err != nil {
			s.t.Errorf("%s %s: body is not JSON: %q", r.Method, r.URL, raw)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reqs = append(s.reqs, req)
	reply := func(status int, v any) {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(v)
	}
	labelObjs := func(names []string) []map[string]any {
		out := []map[string]any{}
		for i, n := range names {
			out = append(out, map[string]any{"id": 6000 + i, "name": n, "color": "ededed"})
		}
		return out
	}
	q := r.URL.Query()
	switch {
	case r.Method == http.MethodGet && r.URL.Path == rp+"/pulls":
		out := []map[string]any{}
		for _, p := range s.prs {
			if h := q.Get("head"); h != "" && h != owner+":"+p["head"].(map[string]any)["ref"].(string) {
				continue
			}
			out = append(out, p)
		}
		reply(http.StatusOK, out)
	case r.Method == http.MethodPost && r.URL.Path == rp+"/pulls":
		b := req.Body.(map[string]any)
		n := 12 + len(s.prs)
		p := map[string]any{
			"number": n, "state": "open", "title": b["title"], "body": b["body"],
			"html_url":   fmt.Sprintf("https://github.com/%s/%s/pull/%d", owner, repo, n),
			"created_at": time.Now().UTC().Format(time.RFC3339),
			"head":       map[string]any{"ref": b["head"], "sha": headSHA, "repo": map[string]any{"full_name": owner + "/" + repo}},
			"base":       map[string]any{"ref": b["base"]},
			"labels":     []map[string]any{},
		}
		s.prs = append(s.prs, p)
		reply(http.StatusCreated, p)
	case r.Method == http.MethodGet && r.URL.Path == rp+"/labels":
		reply(http.StatusOK, labelObjs(append([]string{"bug", "major"}, s.labels...)))
	case r.Method == http.MethodPost && r.URL.Path == rp+"/labels":
		name := req.Body.(map[string]any)["name"].(string)
		s.labels = append(s.labels, name)
		reply(http.StatusCreated, labelObjs([]string{name})[0])
	case r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, rp+"/issues/") && strings.HasSuffix(r.URL.Path, "/labels"):
		var names []string
		for _, l := range req.Body.([]any) {
			names = append(names, l.(string))
		}
		for _, p := range s.prs {
			if fmt.Sprint(p["number"]) == strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, rp+"/issues/"), "/labels") {
				p["labels"] = labelObjs(names)
			}
		}
		reply(http.StatusOK, labelObjs(names))
	case r.Method == http.MethodGet && r.URL.Path == rp+"/issues":
		out := []map[string]any{}
		if s.issue != nil {
			out = append(out, s.issue)
		}
		reply(http.StatusOK, out)
	case r.Method == http.MethodPost && r.URL.Path == rp+"/issues":
		b := req.Body.(map[string]any)
		s.issue = map[string]any{"number": 3, "state": "open", "title": b["title"], "body": b["body"]}
		reply(http.StatusCreated, s.issue)
	case r.Method == http.MethodPatch && r.URL.Path == rp+"/issues/3" && s.issue != nil:
		b := req.Body.(map[string]any)
		s.issue["title"], s.issue["body"] = b["title"], b["body"]
		reply(http.StatusOK, s.issue)
	default:
		s.t.Errorf("unexpected request %s %s?%s", r.Method, r.URL.Path, r.URL.RawQuery)
		reply(http.StatusTeapot, map[string]any{"message": "no fixture"})
	}
}

func (s *scenarioGitHub) requests() []request {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.reqs
	s.reqs = nil
	return out
}

// TestRunUpgradeScenario drives bot/run.Run with the GitHub forge: REST
// calls against the fixture server, clone and push against a real git
// smart-HTTP server.
func TestRunUpgradeScenario(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git not installed")
	}
	ctx := context.Background()
	helmURL := fixture.HelmRepo(t, nil, "1.0.0", "2.0.0")

	// The repository: a bare repo seeded with one wrapper chart.
	root := t.TempDir()
	bare := filepath.Join(root, owner, repo+".git")
	if err := os.MkdirAll(bare, 0o755); err != nil {
		t.Fatal(err)
	}
	fixture.Git(t, bare, "init", "-q", "--bare", "-b", "main")
	fixture.Git(t, bare, "config", "http.receivepack", "true")
	work := t.TempDir()
	chartYAML := fmt.Sprintf("apiVersion: v2\nname: web\nversion: 0.1.0\ndependencies:\n  - name: podinfo\n    version: 1.0.0 # pinned\n    repository: %s\n", helmURL)
	files := map[string]string{
		"README.md":            "# homelab\n",
		"apps/web/Chart.yaml":  chartYAML,
		"apps/web/values.yaml": "podinfo:\n  replicas: 3\n",
	}
	for p, c := range files {
		os.MkdirAll(filepath.Dir(filepath.Join(work, p)), 0o755)
		if err := os.WriteFile(filepath.Join(work, p), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	fixture.Git(t, work, "init", "-q", "-b", "main")
	fixture.Git(t, work, "add", ".")
	fixture.Git(t, work, "commit", "-q", "-m", "initial")
	fixture.Git(t, work, "push", "-q", bare, "main")
	webURL := fixture.GitServer(t, root, nil)

	api := &scenarioGitHub{t: t, static: newFake(t)}
	api.static.on("GET "+rp, ok("repos/repo.json"))
	api.static.on("GET /user", ok("users/me.json"))
	apiSrv := httptest.NewServer(api)
	t.Cleanup(apiSrv.Close)

	const branch = "hl-bot/podinfo-2.x"
	const title = "Update podinfo to 2.0.0 (major)"
	runOnce := func() *run.Result {
		t.Helper()
		f, err := New(Options{APIURL: apiSrv.URL + "/", WebURL: webURL, Token: token, Owner: owner, Repo: repo, Attempts: 2, Backoff: time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		if got, want := f.CloneURL(), webURL+"/"+owner+"/"+repo+".git"; got != want {
			t.Fatalf("CloneURL %q, want %q", got, want)
		}
		res, err := run.Run(ctx, run.Options{
			Forge:  f,
			Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})),
			Lookup: lookup.Config{Retries: 1, Backoff: 10 * time.Millisecond},
		})
		if err != nil {
			t.Fatalf("run: %v (result %+v)", err, res)
		}
		return res
	}
	countCreate := func(reqs []request) (n int) {
		for _, r := range reqs {
			if r.Method == http.MethodPost && r.Path == rp+"/pulls" {
				n++
			}
		}
		return n
	}

	// Run 1: no PR yet → push the branch, open the PR, then label it.
	res := runOnce()
	t.Logf("run 1: %+v", res.Actions)
	reqs := api.requests()
	checkAuth(t, reqs)
	if n := countCreate(reqs); n != 1 {
		t.Fatalf("run 1: %d create-PR calls, want 1: %v", n, keys(reqs))
	}
	createAt := slices.IndexFunc(reqs, func(r request) bool { return r.Method == http.MethodPost && r.Path == rp+"/pulls" })
	if got := field(t, reqs[createAt], "head"); got != branch {
		t.Errorf("PR head %v, want %s", got, branch)
	}
	if got := field(t, reqs[createAt], "base"); got != "main" {
		t.Errorf("PR base %v, want main", got)
	}
	if got, _ := field(t, reqs[createAt], "title").(string); got != title || !strings.Contains(got, "2.0.0") {
		t.Errorf("PR title %q, want %q", got, title)
	}
	labelAt := slices.IndexFunc(reqs, func(r request) bool {
		return r.Method == http.MethodPost && r.Path == rp+"/issues/12/labels"
	})
	if labelAt < createAt {
		t.Fatalf("labels not added after creating the PR: %v", keys(reqs))
	}
	var labels []string
	for _, l := range reqs[labelAt].Body.([]any) {
		labels = append(labels, l.(string))
	}
	if !slices.Contains(labels, "upgrade") || !slices.Contains(labels, "major") {
		t.Errorf("labels %v, want upgrade and major", labels)
	}

	// The git server holds the branch, one commit on main changing only
	// the pinned version.
	if got := fixture.Git(t, bare, "rev-parse", "main^{commit}"); strings.TrimSpace(fixture.Git(t, bare, "rev-parse", branch+"^")) != strings.TrimSpace(got) {
		t.Errorf("%s is not one commit on main", branch)
	}
	if got := strings.TrimSpace(fixture.Git(t, bare, "diff", "--name-only", "main", branch)); got != "apps/web/Chart.yaml" {
		t.Errorf("files changed on %s: %q, want apps/web/Chart.yaml", branch, got)
	}
	wantChart := strings.Replace(chartYAML, "version: 1.0.0 # pinned", "version: 2.0.0 # pinned", 1)
	if got := fixture.Git(t, bare, "show", branch+":apps/web/Chart.yaml"); got != wantChart {
		t.Errorf("Chart.yaml on %s:\n%s\nwant:\n%s", branch, got, wantChart)
	}

	// Run 2: the fixture now lists that PR as open for the head → no
	// second create.
	res = runOnce()
	t.Logf("run 2: %+v", res.Actions)
	reqs = api.requests()
	checkAuth(t, reqs)
	if n := countCreate(reqs); n != 0 {
		t.Fatalf("run 2: %d create-PR calls, want none: %v", n, keys(reqs))
	}
	if i := slices.IndexFunc(res.Actions, func(a run.Action) bool { return a.Branch == branch }); i < 0 || res.Actions[i].Verb != "unchanged" || res.Actions[i].PR != 12 {
		t.Errorf("run 2 actions %+v, want %s unchanged #12", res.Actions, branch)
	}
}
