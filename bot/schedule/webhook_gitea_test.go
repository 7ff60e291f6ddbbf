package schedule

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	sdk "code.gitea.io/sdk/gitea"
	git "github.com/go-git/go-git/v5"
	gitconfig "github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing/object"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"

	"hl.dev/hl/bot"
	"hl.dev/hl/bot/engine"
	"hl.dev/hl/bot/forge"
	giteaforge "hl.dev/hl/bot/forge/gitea"
	"hl.dev/hl/bot/pr"
	"hl.dev/hl/bot/rotate"
	"hl.dev/hl/internal/config"
	"hl.dev/hl/internal/gitea/testserver"
	"hl.dev/hl/secrets"
)

func TestMain(m *testing.M) { testserver.Main(m) }

// Real Gitea deliveries to the daemon's webhook: merging a PR of the
// upgrade pass and one of the rotation pass (branch names as the passes
// make them) each start a run; the bot rewriting its own dashboard starts
// none, a human ticking it does. Every delivery is waited for through the
// webhook counters, so "no run" is asserted after the delivery arrived,
// not after a sleep.
func TestGiteaWebhookTriggers(t *testing.T) {
	ctx := t.Context()
	srv := testserver.ForTest(t)
	botUser, err := srv.CreateUser(ctx, srv.UniqueName("bot"))
	if err != nil {
		t.Fatal(err)
	}
	admin, err := sdk.NewClient(srv.URL, sdk.SetToken(srv.AdminToken), sdk.SetGiteaVersion(""))
	if err != nil {
		t.Fatal(err)
	}
	botc, err := sdk.NewClient(srv.URL, sdk.SetToken(botUser.Token), sdk.SetGiteaVersion(""))
	if err != nil {
		t.Fatal(err)
	}
	owner, name := botUser.Name, srv.UniqueName("hook")
	if _, _, err := botc.CreateRepo(sdk.CreateRepoOption{Name: name, DefaultBranch: "main"}); err != nil {
		t.Fatal(err)
	}
	pushInitial(t, srv.URL+"/"+owner+"/"+name+".git", botUser, map[string]string{"apps/web/Chart.yaml": "version: 1.0.0\n", "dex.txt": "a\n"})
	if err := srv.WaitPushed(ctx, owner, name); err != nil {
		t.Fatal(err)
	}

	var runs atomic.Int32
	d, err := New(Options{Schedule: "@yearly", WebhookSecret: "hook-secret", BotLogin: botUser.Name,
		Passes: []Pass{{Name: "count", Run: func(context.Context) error { runs.Add(1); return nil }}}})
	if err != nil {
		t.Fatal(err)
	}
	// Every delivery is recorded with the daemon's answer: 202 started a
	// run, 200 was ignored.
	var mu sync.Mutex
	var seen []delivery
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		rec := httptest.NewRecorder()
		d.Handler().ServeHTTP(rec, r)
		var p struct {
			Action string `json:"action"`
			Sender struct {
				Login string `json:"login"`
			} `json:"sender"`
		}
		_ = json.Unmarshal(body, &p)
		mu.Lock()
		seen = append(seen, delivery{event: r.Header.Get("X-Gitea-Event"), action: p.Action, sender: p.Sender.Login, code: rec.Code})
		mu.Unlock()
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		w.Write(rec.Body.Bytes())
	}))
	defer hook.Close()
	if _, _, err := admin.CreateRepoHook(owner, name, sdk.CreateHookOption{
		Type: sdk.HookTypeGitea, Active: true, Events: []string{"pull_request", "issues"},
		Config: map[string]string{"url": hook.URL + "/webhook", "content_type": "json", "secret": "hook-secret"},
	}); err != nil {
		t.Fatal(err)
	}
	// await waits for the delivery of event/action by sender and returns
	// the daemon's answer to it.
	await := func(what, event, action, sender string) int {
		t.Helper()
		for end := time.Now().Add(30 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
			mu.Lock()
			for i, dl := range seen {
				if dl.event == event && dl.action == action && dl.sender == sender {
					seen = append(seen[:i:i], seen[i+1:]...)
					mu.Unlock()
					return dl.code
				}
			}
			mu.Unlock()
		}
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("%s: no %s/%s delivery from %s within 30s (seen %+v)", what, event, action, sender, seen)
		return 0
	}

	fg, err := giteaforge.New(giteaforge.Options{URL: srv.URL, Token: botUser.Token, Owner: owner, Repo: name})
	if err != nil {
		t.Fatal(err)
	}
	repo, err := engine.Open(ctx, engine.Options{Forge: fg})
	if err != nil {
		t.Fatal(err)
	}
	defer repo.Close()
	upgrade := pr.Plan([]bot.Update{{Dependency: bot.Dependency{File: "apps/web/Chart.yaml", Package: "podinfo", Current: "1.0.0"},
		NewValue: "1.0.1", Type: bot.UpdatePatch}}, config.Bot{})[0].Name
	rotation := rotate.SecretBranch(secrets.Secret{Namespace: "dex", Name: "dex-clients"})
	merge := func(branch, file string) {
		t.Helper()
		h, err := repo.Commit(map[string][]byte{file: []byte(branch + "\n")}, "change "+branch)
		if err != nil {
			t.Fatal(err)
		}
		if err := repo.Push(ctx, []engine.Head{{Branch: branch, Hash: h}})[0]; err != nil {
			t.Fatal(err)
		}
		p, _, err := repo.EnsurePR(ctx, nil, forge.NewPR{Title: branch, Body: "test", Head: branch})
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; ; i++ { // Gitea checks mergeability after creation
			ok, _, err := admin.MergePullRequest(owner, name, int64(p.Number), sdk.MergePullRequestOption{Style: sdk.MergeStyleMerge})
			if ok {
				break
			}
			if i == 100 {
				t.Fatalf("merge %s: %v", branch, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	// Opening a bot PR is ignored; merging one starts a run.
	merge(upgrade, "apps/web/Chart.yaml")
	if code := await("upgrade PR opened", "pull_request", "opened", botUser.Name); code != http.StatusOK {
		t.Errorf("opening the upgrade PR: %d, want 200 (ignored)", code)
	}
	if code := await("upgrade PR merged", "pull_request", "closed", srv.AdminUser); code != http.StatusAccepted {
		t.Errorf("merging the upgrade PR %s: %d, want 202 (a run)", upgrade, code)
	}
	merge(rotation, "dex.txt")
	if code := await("rotation PR merged", "pull_request", "closed", srv.AdminUser); code != http.StatusAccepted {
		t.Errorf("merging the rotation PR %s: %d, want 202 (a run)", rotation, code)
	}

	// A bot PR closed by deleting its branch: Gitea's delivery names the
	// head as refs/pull/N/head (the branch is gone), its label the branch.
	declined := pr.Plan([]bot.Update{{Dependency: bot.Dependency{File: "apps/web/Chart.yaml", Package: "podinfo", Current: "1.0.0"},
		NewValue: "2.0.0", Type: bot.UpdateMajor}}, config.Bot{})[0].Name
	h, err := repo.Commit(map[string][]byte{"apps/web/Chart.yaml": []byte(declined + "\n")}, "change "+declined)
	if err != nil {
		t.Fatal(err)
	}
	if err := repo.Push(ctx, []engine.Head{{Branch: declined, Hash: h}})[0]; err != nil {
		t.Fatal(err)
	}
	if _, _, err := repo.EnsurePR(ctx, nil, forge.NewPR{Title: declined, Body: "test", Head: declined}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := admin.DeleteRepoBranch(owner, name, declined); err != nil {
		t.Fatal(err)
	}
	if code := await("bot PR closed by deleting its branch", "pull_request", "closed", srv.AdminUser); code != http.StatusAccepted {
		t.Errorf("closing %s by deleting its branch: %d, want 202 (a run)", declined, code)
	}

	// The bot writes and rewrites its dashboard: ignored; a human ticking
	// a box starts a run.
	is, _, err := botc.CreateIssue(owner, name, sdk.CreateIssueOption{Title: "Dependency Dashboard", Body: "- [ ] a\n" + engine.DashboardMarker + "\n"})
	if err != nil {
		t.Fatal(err)
	}
	body := "- [ ] b\n" + engine.DashboardMarker + "\n"
	if _, _, err := botc.EditIssue(owner, name, is.Index, sdk.EditIssueOption{Body: &body}); err != nil {
		t.Fatal(err)
	}
	if code := await("the bot's dashboard edit", "issues", "edited", botUser.Name); code != http.StatusOK {
		t.Errorf("the bot's own dashboard edit: %d, want 200 (ignored)", code)
	}
	ticked := "- [x] b\n" + engine.DashboardMarker + "\n"
	if _, _, err := admin.EditIssue(owner, name, is.Index, sdk.EditIssueOption{Body: &ticked}); err != nil {
		t.Fatal(err)
	}
	if code := await("a human's dashboard edit", "issues", "edited", srv.AdminUser); code != http.StatusAccepted {
		t.Errorf("a human's dashboard edit: %d, want 202 (a run)", code)
	}
	for end := time.Now().Add(10 * time.Second); runs.Load() < 4 && time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
	}
	if n := runs.Load(); n != 4 {
		t.Errorf("%d runs, want 4 (two merges, one close, one human edit)", n)
	}
}

type delivery struct {
	event, action, sender string
	code                  int
}

func pushInitial(t *testing.T, url string, u *testserver.User, files map[string]string) {
	t.Helper()
	dir := t.TempDir()
	r, err := git.PlainInitWithOptions(dir, &git.PlainInitOptions{InitOptions: git.InitOptions{DefaultBranch: "refs/heads/main"}})
	if err != nil {
		t.Fatal(err)
	}
	wt, _ := r.Worktree()
	for p, c := range files {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, p), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := wt.Add(p); err != nil {
			t.Fatal(err)
		}
	}
	sig := &object.Signature{Name: u.Name, Email: u.Name + "@example.com", When: time.Now()}
	if _, err := wt.Commit("initial", &git.CommitOptions{Author: sig}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.CreateRemote(&gitconfig.RemoteConfig{Name: "origin", URLs: []string{url}}); err != nil {
		t.Fatal(err)
	}
	if err := r.Push(&git.PushOptions{Auth: &githttp.BasicAuth{Username: u.Name, Password: u.Token},
		RefSpecs: []gitconfig.RefSpec{"refs/heads/main:refs/heads/main"}}); err != nil {
		t.Fatal(err)
	}
}
