package bootstrap

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"code.gitea.io/sdk/gitea"
	"github.com/go-git/go-billy/v5/memfs"
	"github.com/go-git/go-git/v5"
	gitconfig "github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	"github.com/go-git/go-git/v5/storage/memory"

	"hl.dev/hl/generator"
	"hl.dev/hl/internal/gitea/testserver"
	"hl.dev/hl/secrets"
)

// bootstrapFiles are the repo files a bootstrap of the full fixture adds.
var bootstrapFiles = []string{RepoCredsPath, ArgoCDWebhookPath, WoodpeckerWebhookPath, WoodpeckerForgePath, BotTokenPath, BotWebhookPath}

func TestBootstrapFull(t *testing.T) {
	srv := testserver.ForTest(t)
	dir := renderFull(t)
	opts := options(t, srv, dir)
	ctx := t.Context()
	admin := adminClient(t, srv)
	owner, repo, bot := opts.Owner, opts.Repo, opts.BotUser

	res, err := Run(ctx, opts)
	if err != nil {
		t.Fatalf("bootstrap: %v\n%+v", err, res)
	}
	for _, s := range res.Steps {
		// render changes files only when templates list the provided
		// secrets (their folders' app.yaml); either way the pushed tree is
		// a fresh render.
		if s.Status != StatusCreated && !(s.Name == "render" && s.Status != StatusFailed) {
			t.Errorf("first run, step %s: %s (%s), want created", s.Name, s.Status, s.Detail)
		}
	}
	if !res.Changed {
		t.Error("first run: Changed = false")
	}

	t.Run("repo", func(t *testing.T) {
		r, _, err := admin.GetRepo(owner, repo)
		if err != nil {
			t.Fatal(err)
		}
		if !r.Private || r.DefaultBranch != "main" {
			t.Errorf("repo private=%v default=%q, want private, main", r.Private, r.DefaultBranch)
		}
		topics, _, err := admin.ListRepoTopics(owner, repo, gitea.ListRepoTopicsOptions{})
		if err != nil || !slices.Contains(topics, TopicManaged) {
			t.Errorf("topics %v (%v), want %s", topics, err, TopicManaged)
		}
	})

	t.Run("files match the render byte for byte", func(t *testing.T) {
		got, head := cloneFiles(t, srv.URL+"/"+owner+"/"+repo+".git", srv.AdminToken)
		want := dirFiles(t, dir)
		for _, p := range bootstrapFiles {
			if _, ok := want[p]; !ok {
				t.Errorf("%s not written into the repo", p)
			}
		}
		compareFiles(t, got, want)
		if head.NumParents() != 0 {
			t.Errorf("first commit has %d parents", head.NumParents())
		}
		if head.Author.Name != "full homelab" || head.Author.Email != "admin@example.com" {
			t.Errorf("author %s <%s>, want the config's", head.Author.Name, head.Author.Email)
		}
		if !strings.Contains(head.Message, "hl render") || !strings.Contains(head.Message, "hl bootstrap gitea") {
			t.Errorf("commit message does not say what rendered it:\n%s", head.Message)
		}
	})

	t.Run("Argo CD's reader clones and can do nothing else", func(t *testing.T) {
		keys, _, err := admin.ListDeployKeys(owner, repo, gitea.ListDeployKeysOptions{})
		if err != nil || len(keys) != 0 {
			t.Fatalf("deploy keys %v (%v): Argo CD clones over HTTP, none wanted", keys, err)
		}
		ex, err := secrets.ReadSecret(decrypt(t, dir, RepoCredsPath))
		if err != nil {
			t.Fatal(err)
		}
		if ex.Labels["argocd.argoproj.io/secret-type"] != "repository" || ex.Values["type"] != "git" {
			t.Errorf("not an Argo CD repository secret: labels %v type %q", ex.Labels, ex.Values["type"])
		}
		// The URL must be the one the rendered Applications clone: the
		// in-cluster Gitea's HTTP Service.
		root, _ := os.ReadFile(filepath.Join(dir, "bootstrap", "root.yaml"))
		if want := "http://git.home.example.com:3000/homelab/cluster.git"; ex.Values["url"] != want || !bytes.Contains(root, []byte(want)) {
			t.Errorf("secret url %q, want %q as in bootstrap/root.yaml", ex.Values["url"], want)
		}
		reader, tok := ex.Values["username"], ex.Values["password"]
		p, _, err := admin.CollaboratorPermission(owner, repo, reader)
		if err != nil || p.Permission != gitea.AccessModeRead {
			t.Errorf("%s's permission %v (%v), want read", reader, p, err)
		}
		// It clones (here through the test's URL of the same repo)...
		if _, err := git.CloneContext(t.Context(), memory.NewStorage(), memfs.New(), &git.CloneOptions{
			URL: srv.URL + "/" + owner + "/" + repo + ".git", Auth: &githttp.BasicAuth{Username: reader, Password: tok}}); err != nil {
			t.Errorf("the reader cannot clone: %v", err)
		}
		// ...and pushes nothing, on no branch, and writes nothing.
		if err := gitPushFile(t, srv.URL+"/"+owner+"/"+repo+".git", reader, tok, "reader-branch", "R.md"); err == nil {
			t.Error("the reader pushed a branch")
		}
		rc, err := gitea.NewClient(srv.URL, gitea.SetToken(tok), gitea.SetGiteaVersion(""))
		if err != nil {
			t.Fatal(err)
		}
		if _, resp, err := rc.CreateIssue(owner, repo, gitea.CreateIssueOption{Title: "x"}); err == nil {
			t.Errorf("the reader opened an issue: HTTP %d", statusOf(resp))
		}
		if _, resp, err := rc.GetMyUserInfo(); err == nil {
			t.Errorf("the reader's token reads user data (scope beyond read:repository): HTTP %d", statusOf(resp))
		}
		if ex.Annotations[secrets.AnnotationRotatable] != "false" {
			t.Errorf("repo-creds rotatable = %q, want false (Gitea mints it)", ex.Annotations[secrets.AnnotationRotatable])
		}
	})

	t.Run("labels and collaborator", func(t *testing.T) {
		ls, _, err := admin.ListRepoLabels(owner, repo, gitea.ListLabelsOptions{})
		if err != nil || len(ls) != len(Labels) {
			t.Fatalf("labels %d (%v), want %d", len(ls), err, len(Labels))
		}
		p, _, err := admin.CollaboratorPermission(owner, repo, bot)
		if err != nil || p.Permission != gitea.AccessModeWrite {
			t.Errorf("bot permission %v (%v), want write", p, err)
		}
	})

	t.Run("branch protection", func(t *testing.T) {
		p, _, err := admin.GetBranchProtection(owner, repo, "main")
		if err != nil {
			t.Fatal(err)
		}
		if p.EnablePush || !p.EnableStatusCheck || !slices.Equal(p.StatusCheckContexts, []string{StatusCheckContext}) || p.RequiredApprovals != 0 {
			t.Errorf("protection push=%v checks=%v %v approvals=%d", p.EnablePush, p.EnableStatusCheck, p.StatusCheckContexts, p.RequiredApprovals)
		}
	})

	t.Run("bot token works for its scopes and fails outside them", func(t *testing.T) {
		ex, err := secrets.ReadSecret(decrypt(t, dir, BotTokenPath))
		if err != nil {
			t.Fatal(err)
		}
		tok := ex.Values["token"]
		bc, err := gitea.NewClient(srv.URL, gitea.SetToken(tok))
		if err != nil {
			t.Fatal(err)
		}
		if u, _, err := bc.GetMyUserInfo(); err != nil || u.UserName != bot {
			t.Fatalf("bot whoami: %v %v", u, err)
		}
		// What the bot does: push a branch, open a labelled PR.
		if err := gitPushFile(t, srv.URL+"/"+owner+"/"+repo+".git", bot, tok, "hl/upgrade-x", "UPGRADE.md"); err != nil {
			t.Fatalf("bot push of a branch: %v", err)
		}
		pr, _, err := bc.CreatePullRequest(owner, repo, gitea.CreatePullRequestOption{Head: "hl/upgrade-x", Base: "main", Title: "Upgrade x"})
		if err != nil {
			t.Fatalf("bot PR: %v", err)
		}
		var upgrade int64
		ls, _, _ := bc.ListRepoLabels(owner, repo, gitea.ListLabelsOptions{})
		for _, l := range ls {
			if l.Name == "upgrade" {
				upgrade = l.ID
			}
		}
		if _, _, err := bc.AddIssueLabels(owner, repo, pr.Index, gitea.IssueLabelsOption{Labels: []int64{upgrade}}); err != nil {
			t.Errorf("bot labels its PR: %v", err)
		}
		// main takes pull requests only, also from the bot.
		if err := gitPushFile(t, srv.URL+"/"+owner+"/"+repo+".git", bot, tok, "main", "DIRECT.md"); err == nil {
			t.Error("bot pushed to the protected default branch")
		}
		// Outside its scopes.
		if _, resp, err := bc.CreateOrg(gitea.CreateOrgOption{Name: srv.UniqueName("botorg")}); err == nil || statusOf(resp) != http.StatusForbidden {
			t.Errorf("bot created an organization: HTTP %d %v", statusOf(resp), err)
		}
		if _, resp, err := bc.ListMyOrgs(gitea.ListOrgsOptions{}); err == nil || statusOf(resp) != http.StatusForbidden {
			t.Errorf("bot listed organizations (no read:organization): HTTP %d %v", statusOf(resp), err)
		}
		if _, resp, err := bc.AdminListUsers(gitea.AdminListUsersOptions{}); err == nil || statusOf(resp) != http.StatusForbidden {
			t.Errorf("bot read an admin endpoint: HTTP %d %v", statusOf(resp), err)
		}
		if _, resp, err := bc.CreateDeployKey(owner, repo, gitea.CreateKeyOption{Title: "x", Key: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBrrNnO6ES1fjcsZpjIeu89t/Ks17zrxqWfKRjw/Wcxc"}); err == nil {
			t.Errorf("bot (write collaborator) added a deploy key: HTTP %d", statusOf(resp))
		}
	})

	t.Run("Woodpecker's OAuth application takes the stored client secret", func(t *testing.T) {
		app := requireOAuthApp(t, srv, opts, dir)
		if !slices.Equal(app.RedirectURIs, []string{"https://ci.home.example.com/authorize"}) || !app.ConfidentialClient {
			t.Errorf("OAuth application redirects %v confidential=%v, want Woodpecker's /authorize on ci.home.example.com, confidential", app.RedirectURIs, app.ConfidentialClient)
		}
	})

	t.Run("second run changes nothing", func(t *testing.T) {
		before := dirFiles(t, dir)
		res, err := Run(ctx, opts)
		if err != nil {
			t.Fatal(err)
		}
		requireAllUnchanged(t, res)
		compareFiles(t, dirFiles(t, dir), before)
		if w := otherWarnings(res); len(w) > 0 {
			t.Errorf("warnings: %v", w)
		}
	})

	t.Run("re-render keeps the bootstrap files", func(t *testing.T) {
		before := dirFiles(t, dir)
		rr, err := generator.Render(ctx, generator.Options{ConfigPath: filepath.Join(dir, "hl.yaml"), OutDir: dir, Identities: identities(t), Now: func() time.Time { return testNow }})
		if err != nil {
			t.Fatal(err)
		}
		if rr.Changed() {
			for _, f := range rr.Files {
				if f.Action != generator.ActionUnchanged {
					t.Errorf("re-render: %s %s", f.Action, f.Path)
				}
			}
		}
		compareFiles(t, dirFiles(t, dir), before)
	})

	t.Run("webhooks deliver signed with the stored secrets", func(t *testing.T) {
		hooks, _, err := admin.ListRepoHooks(owner, repo, gitea.ListHooksOptions{})
		if err != nil || len(hooks) != 3 {
			t.Fatalf("hooks %d (%v), want 3", len(hooks), err)
		}
		want := map[string]struct {
			file, key string
			events    []string
		}{
			"http://argocd-server.argocd.svc/api/webhook": {ArgoCDWebhookPath, "webhook.gogs.secret", []string{"push"}},
			"https://ci.home.example.com/api/hook":        {WoodpeckerWebhookPath, "secret", []string{"push", "create", "pull_request"}},
			"http://hl-bot.hl-bot.svc:8080/webhook":       {BotWebhookPath, "secret", []string{"pull_request", "issues"}},
		}
		for _, h := range hooks {
			w, ok := want[h.Config["url"]]
			if !ok {
				t.Errorf("unexpected hook %s", h.Config["url"])
				continue
			}
			if !h.Active || h.Config["content_type"] != "json" || !hookEventsCover(h.Events, w.events) {
				t.Errorf("hook %s active=%v type=%s events=%v", h.Config["url"], h.Active, h.Config["content_type"], h.Events)
			}
			ex, err := secrets.ReadSecret(decrypt(t, dir, w.file))
			if err != nil {
				t.Fatal(err)
			}
			secret := ex.Values[w.key]
			if len(secret) < 32 {
				t.Fatalf("%s: secret %q too short", w.file, secret)
			}
			if w.file == ArgoCDWebhookPath {
				// Argo CD reads webhook secrets from argocd-secret, which
				// must point at the one stored here, and Argo CD only
				// follows the pointer to Secrets labelled part-of argocd.
				argo, err := secrets.ReadSecret(decrypt(t, dir, "system/argocd/secrets/argocd-secret.sops.yaml"))
				if err != nil {
					t.Fatal(err)
				}
				ref := "$" + strings.TrimSuffix(path.Base(w.file), ".sops.yaml") + ":" + w.key
				if argo.Values[w.key] != ref || ex.Labels["app.kubernetes.io/part-of"] != "argocd" {
					t.Errorf("argocd-secret %s = %q, want %q; webhook secret labels %v", w.key, argo.Values[w.key], ref, ex.Labels)
				}
			}
			// The real hosts do not exist here: point the hook at a
			// receiver (Gitea keeps the secret on edit), fire a test
			// delivery and check its signature with the stored secret.
			got := make(chan *http.Request, 1)
			bodies := make(chan []byte, 1)
			recv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				select {
				case got <- r:
					bodies <- b
				default:
				}
			}))
			defer recv.Close()
			// Gitea's test delivery is a push event: a hook that does not
			// take pushes (the bot's) gets it added for the test only.
			events := h.Events
			if !slices.Contains(events, "push") {
				events = append(slices.Clone(events), "push")
			}
			if _, err := admin.EditRepoHook(owner, repo, h.ID, gitea.EditHookOption{Config: map[string]string{"url": recv.URL, "content_type": "json"}, Events: events}); err != nil {
				t.Fatal(err)
			}
			testHook(t, srv, owner, repo, h.ID)
			select {
			case r := <-got:
				body := <-bodies
				mac := hmac.New(sha256.New, []byte(secret))
				mac.Write(body)
				if sig := r.Header.Get("X-Gitea-Signature"); sig != hex.EncodeToString(mac.Sum(nil)) {
					t.Errorf("%s: delivery signature %q does not match the stored secret", w.file, sig)
				}
			case <-time.After(20 * time.Second):
				t.Fatalf("no delivery for %s", h.Config["url"])
			}
		}
	})
}

func TestBootstrapDryRun(t *testing.T) {
	srv := testserver.ForTest(t)
	dir := renderFull(t)
	opts := options(t, srv, dir)
	opts.DryRun = true
	before := dirFiles(t, dir)
	res, err := Run(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range res.Steps {
		if s.Name == "render" && s.Status == StatusUnchanged {
			continue // nothing to re-render for this template set
		}
		if s.Status != StatusPlanned || s.Detail == "" {
			t.Errorf("dry run step %s: %s %q, want planned with a plan", s.Name, s.Status, s.Detail)
		}
	}
	if res.Changed {
		t.Error("dry run reports changes")
	}
	compareFiles(t, dirFiles(t, dir), before)
	if _, resp, _ := adminClient(t, srv).GetOrg(opts.Owner); statusOf(resp) != http.StatusNotFound {
		t.Errorf("dry run created organization %s (HTTP %d)", opts.Owner, statusOf(resp))
	}

	opts.DryRun = false
	if _, err := Run(t.Context(), opts); err != nil {
		t.Fatal(err)
	}
	opts.DryRun = true
	res, err = Run(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	requireAllUnchanged(t, res)
}

func TestBootstrapWrongToken(t *testing.T) {
	srv := testserver.ForTest(t)
	dir := renderFull(t)
	opts := options(t, srv, dir)
	opts.Token = strings.Repeat("0", 40)
	before := dirFiles(t, dir)
	res, err := Run(t.Context(), opts)
	if !errors.Is(err, ErrAuth) {
		t.Fatalf("err = %v, want ErrAuth", err)
	}
	if !strings.Contains(err.Error(), "401") || strings.Contains(err.Error(), opts.Token) {
		t.Errorf("error should give the status and never the token: %v", err)
	}
	if len(res.Steps) != 0 {
		t.Errorf("steps ran: %+v", res.Steps)
	}
	admin := adminClient(t, srv)
	if _, resp, _ := admin.GetRepo(opts.Owner, opts.Repo); statusOf(resp) != http.StatusNotFound {
		t.Errorf("repo exists after a rejected token (HTTP %d)", statusOf(resp))
	}
	if _, resp, _ := admin.GetOrg(opts.Owner); statusOf(resp) != http.StatusNotFound {
		t.Errorf("organization exists after a rejected token (HTTP %d)", statusOf(resp))
	}
	compareFiles(t, dirFiles(t, dir), before)
}

func TestBootstrapNeedsAdmin(t *testing.T) {
	srv := testserver.ForTest(t)
	u, err := srv.CreateUser(t.Context(), srv.UniqueName("user"))
	if err != nil {
		t.Fatal(err)
	}
	opts := options(t, srv, renderFixture(t, smallConfig))
	opts.Token, opts.Owner = u.Token, u.Name
	res, err := Run(t.Context(), opts)
	if !errors.Is(err, ErrNotAdmin) || len(res.Steps) != 0 {
		t.Fatalf("err = %v, steps %v; want ErrNotAdmin before any step", err, statuses(res))
	}
	if _, resp, _ := adminClient(t, srv).GetRepo(opts.Owner, opts.Repo); statusOf(resp) != http.StatusNotFound {
		t.Errorf("repo created with a non-admin token (HTTP %d)", statusOf(resp))
	}
}

func TestBootstrapRefusesForeignRepo(t *testing.T) {
	srv := testserver.ForTest(t)
	dir := renderFull(t)
	opts := options(t, srv, dir)
	opts.Owner = srv.AdminUser // user namespace: no organization step
	opts.Repo = srv.UniqueName("foreign")
	admin := adminClient(t, srv)
	if _, _, err := admin.CreateRepo(gitea.CreateRepoOption{Name: opts.Repo, Private: true, AutoInit: true, Readme: "Default"}); err != nil {
		t.Fatal(err)
	}
	before := dirFiles(t, dir)
	res, err := Run(t.Context(), opts)
	if !errors.Is(err, ErrNotManaged) || !strings.Contains(err.Error(), "--adopt") {
		t.Fatalf("err = %v, want ErrNotManaged mentioning --adopt", err)
	}
	if st := statuses(res); st["owner"] != StatusUnchanged || st["repo"] != StatusFailed || len(st) != 2 {
		t.Errorf("steps %v: want owner unchanged, repo failed, nothing after", st)
	}
	compareFiles(t, dirFiles(t, dir), before)
	if _, resp, _ := admin.GetUserInfo(opts.BotUser); statusOf(resp) != http.StatusNotFound {
		t.Error("bot user created for a refused repo")
	}

	opts.Adopt = true
	res, err = Run(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	st := statuses(res)
	if st["repo"] != StatusUpdated || st["push"] != StatusUnchanged || st["branch-protection"] != StatusCreated {
		t.Errorf("adopt: %v", st)
	}
	if w := otherWarnings(res); len(w) != 1 || !strings.Contains(w[0], "not pushed") {
		t.Errorf("adopt should warn that the differing tree was not pushed: %v", w)
	}
	opts.Adopt = false // now marked: no --adopt needed any more
	res, err = Run(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	requireAllUnchanged(t, res)
}

func TestBootstrapTakesOverEmptyRepo(t *testing.T) {
	srv := testserver.ForTest(t)
	dir := renderFull(t)
	opts := options(t, srv, dir)
	opts.Owner = srv.AdminUser
	opts.Repo = srv.UniqueName("empty")
	admin := adminClient(t, srv)
	if _, _, err := admin.CreateRepo(gitea.CreateRepoOption{Name: opts.Repo}); err != nil {
		t.Fatal(err)
	}
	res, err := Run(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if st := statuses(res); st["owner"] != StatusUnchanged || st["repo"] != StatusUpdated || st["push"] != StatusCreated {
		t.Errorf("steps %v", st)
	}
	r, _, err := admin.GetRepo(opts.Owner, opts.Repo)
	if err != nil || !r.Private {
		t.Errorf("taken-over repo not private: %v %v", r, err)
	}
}

func TestBootstrapWithoutBotAndWoodpecker(t *testing.T) {
	srv := testserver.ForTest(t)
	opts := options(t, srv, renderFixture(t, noBotConfig))
	res, err := Run(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	st := statuses(res)
	for _, n := range []string{"bot-user", "bot-token", "bot-collaborator", "webhook-bot", "webhook-woodpecker", "oauth-woodpecker"} {
		if st[n] != StatusSkipped {
			t.Errorf("step %s: %s, want skipped", n, st[n])
		}
	}
	admin := adminClient(t, srv)
	if _, resp, _ := admin.GetUserInfo(opts.BotUser); statusOf(resp) != http.StatusNotFound {
		t.Error("bot user created although hl-bot is disabled")
	}
	p, _, err := admin.GetBranchProtection(opts.Owner, opts.Repo, "main")
	if err != nil || p.EnablePush || p.EnableStatusCheck || len(p.StatusCheckContexts) != 0 {
		t.Errorf("protection without Woodpecker: %+v %v", p, err)
	}
	if hooks, _, _ := admin.ListRepoHooks(opts.Owner, opts.Repo, gitea.ListHooksOptions{}); len(hooks) != 1 {
		t.Errorf("%d webhooks, want only Argo CD's", len(hooks))
	}
	res, err = Run(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	requireAllUnchanged(t, res)
}

// Objects deleted in Gitea after a bootstrap come back from what the repo
// stores, so the committed tree does not change.
func TestBootstrapRestoresDeletedObjects(t *testing.T) {
	srv := testserver.ForTest(t)
	dir := renderFull(t)
	opts := options(t, srv, dir)
	if _, err := Run(t.Context(), opts); err != nil {
		t.Fatal(err)
	}
	admin := adminClient(t, srv)
	reader := opts.BotUser + "-argocd"
	if reader == "-argocd" {
		reader = DefaultBotUser + "-argocd"
	}
	if _, err := admin.DeleteCollaborator(opts.Owner, opts.Repo, reader); err != nil {
		t.Fatal(err)
	}
	hooks, _, _ := admin.ListRepoHooks(opts.Owner, opts.Repo, gitea.ListHooksOptions{})
	for _, h := range hooks {
		if _, err := admin.DeleteRepoHook(opts.Owner, opts.Repo, h.ID); err != nil {
			t.Fatal(err)
		}
	}
	before := dirFiles(t, dir)
	res, err := Run(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	st := statuses(res)
	if st["reader-collaborator"] != StatusCreated || st["reader-token"] != StatusUnchanged || st["webhook-argocd"] != StatusCreated || st["webhook-woodpecker"] != StatusCreated || st["webhook-bot"] != StatusCreated || st["push"] != StatusUnchanged {
		t.Errorf("steps %v", st)
	}
	compareFiles(t, dirFiles(t, dir), before)
	if w := otherWarnings(res); len(w) > 0 {
		t.Errorf("warnings: %v", w)
	}
	if p, _, err := admin.CollaboratorPermission(opts.Owner, opts.Repo, reader); err != nil || p.Permission != gitea.AccessModeRead {
		t.Errorf("reader's read access not restored: %v %v", p, err)
	}
}

// Woodpecker's OAuth application survives what a homelab does to it: its
// Secret file lost (Gitea shows a client secret only once: the same
// application gets a new one), the application deleted in Gitea (a new
// one), a second application of the same name (removed). Each time the
// stored secret is the one Gitea accepts, and there is one application.
func TestBootstrapWoodpeckerOAuthRecovers(t *testing.T) {
	srv := testserver.ForTest(t)
	dir := renderFixture(t, smallConfig)
	opts := options(t, srv, dir)
	ctx := t.Context()
	if _, err := Run(ctx, opts); err != nil {
		t.Fatal(err)
	}
	first := requireOAuthApp(t, srv, opts, dir)
	oldSecret, err := secrets.ReadSecret(decrypt(t, dir, WoodpeckerForgePath))
	if err != nil {
		t.Fatal(err)
	}
	admin := adminClient(t, srv)
	step := func(t *testing.T, want Status) {
		t.Helper()
		res, err := Run(ctx, opts)
		if err != nil {
			t.Fatal(err)
		}
		if st := statuses(res)["oauth-woodpecker"]; st != want {
			t.Errorf("oauth-woodpecker: %s, want %s", st, want)
		}
	}

	t.Run("Secret file lost", func(t *testing.T) {
		if err := os.Remove(filepath.Join(dir, WoodpeckerForgePath)); err != nil {
			t.Fatal(err)
		}
		step(t, StatusUpdated)
		app := requireOAuthApp(t, srv, opts, dir)
		if app.ID != first.ID || app.ClientID != first.ClientID {
			t.Errorf("application %d (%s), want the same %d (%s) with a new secret", app.ID, app.ClientID, first.ID, first.ClientID)
		}
		if got := oauthExchange(t, srv, app.ClientID, oldSecret.Values["client-secret"], app.RedirectURIs[0]); got != "invalid client secret" {
			t.Errorf("the lost secret still works: %q", got)
		}
	})

	t.Run("application deleted in Gitea", func(t *testing.T) {
		if _, err := admin.DeleteOauth2(oauthApps(t, srv, opts)[0].ID); err != nil {
			t.Fatal(err)
		}
		step(t, StatusCreated)
		if app := requireOAuthApp(t, srv, opts, dir); app.ClientID == first.ClientID {
			t.Error("the deleted application's client ID came back")
		}
	})

	t.Run("a second application of the same name", func(t *testing.T) {
		keep := oauthApps(t, srv, opts)[0]
		if _, _, err := admin.CreateOauth2(gitea.CreateOauth2Option{Name: keep.Name, ConfidentialClient: true, RedirectURIs: []string{"https://elsewhere.example/authorize"}}); err != nil {
			t.Fatal(err)
		}
		step(t, StatusUpdated) // removes the extra one, keeps the secret
		if now, err := secrets.ReadSecret(decrypt(t, dir, WoodpeckerForgePath)); err != nil || now.Values["client-id"] != keep.ClientID {
			t.Errorf("stored client %q (%v), want %q", now.Values["client-id"], err, keep.ClientID)
		}
		if app := requireOAuthApp(t, srv, opts, dir); app.ID != keep.ID {
			t.Errorf("kept application %d, want the stored %d", app.ID, keep.ID)
		}
	})

	res, err := Run(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	requireAllUnchanged(t, res)
}

// API calls of a full bootstrap fail, before reaching Gitea or after Gitea
// handled them (the response is lost); the next run completes, a third
// changes nothing, and nothing exists twice. Every call that changes
// something is failed both ways; of the reads, the first of each step (a
// failed read changes nothing, so later reads of the same step add no
// case). With -short only the writes are failed, after Gitea did them.
func TestBootstrapInterrupted(t *testing.T) {
	srv := testserver.ForTest(t)
	// Record the calls of a clean run, with the step making each.
	hc, ft := faultClient(0, false)
	opts := options(t, srv, renderFixture(t, smallConfig))
	opts.HTTPClient, opts.Progress = hc, ft.progress
	if _, err := Run(t.Context(), opts); err != nil {
		t.Fatal(err)
	}
	type fault struct {
		n     int
		after bool
		call  apiCall
	}
	var faults []fault
	readSeen := map[string]bool{}
	for i, c := range ft.calls {
		n := i + 1
		if c.method == http.MethodGet {
			if !readSeen[c.step] && !testing.Short() {
				faults = append(faults, fault{n, false, c})
			}
			readSeen[c.step] = true
			continue
		}
		// Of a run of identical writes (labels) the first and last.
		if i > 0 && i+1 < len(ft.calls) && ft.calls[i-1] == c && ft.calls[i+1] == c {
			continue
		}
		if !testing.Short() {
			faults = append(faults, fault{n, false, c})
		}
		faults = append(faults, fault{n, true, c})
	}
	if len(faults) < 10 {
		t.Fatalf("only %d faults from %d calls: %v", len(faults), len(ft.calls), ft.calls)
	}
	for _, f := range faults {
		mode := "before"
		if f.after {
			mode = "after"
		}
		t.Run(fmt.Sprintf("%02d-%s-%s", f.n, mode, f.call), func(t *testing.T) {
			t.Parallel()
			opts := options(t, srv, renderFixture(t, smallConfig))
			hc, _ := faultClient(int64(f.n), f.after)
			opts.HTTPClient = hc
			if _, err := Run(t.Context(), opts); err == nil || !strings.Contains(err.Error(), "injected fault") {
				t.Fatalf("faulty run: err = %v, want the injected fault", err)
			}
			opts.HTTPClient = nil
			res, err := Run(t.Context(), opts)
			if err != nil {
				t.Fatalf("re-run: %v", err)
			}
			if w := otherWarnings(res); len(w) > 0 {
				t.Errorf("re-run warnings: %v", w)
			}
			res, err = Run(t.Context(), opts)
			if err != nil {
				t.Fatalf("third run: %v", err)
			}
			requireAllUnchanged(t, res)
			requireNoDuplicates(t, srv, opts)
		})
	}
}

func requireNoDuplicates(t *testing.T, srv *testserver.Server, opts Options) {
	t.Helper()
	admin := adminClient(t, srv)
	o, r := opts.Owner, opts.Repo
	if cs, _, err := admin.ListCollaborators(o, r, gitea.ListCollaboratorsOptions{}); err != nil || len(cs) != 2 {
		t.Errorf("collaborators: %d (%v), want the bot and the reader", len(cs), err)
	}
	if hooks, _, err := admin.ListRepoHooks(o, r, gitea.ListHooksOptions{}); err != nil || len(hooks) != 3 {
		t.Errorf("webhooks: %d (%v), want 3", len(hooks), err)
	}
	if ls, _, err := admin.ListRepoLabels(o, r, gitea.ListLabelsOptions{}); err != nil || len(ls) != len(Labels) {
		t.Errorf("labels: %d (%v), want %d", len(ls), err, len(Labels))
	}
	if ps, _, err := admin.ListBranchProtections(o, r, gitea.ListBranchProtectionsOptions{}); err != nil || len(ps) != 1 {
		t.Errorf("branch protections: %d (%v), want 1", len(ps), err)
	}
	// The bot's tokens: log in as the bot (a fresh password) to list them.
	pw := "Hl-" + strings.Repeat("x", 20)
	if _, err := admin.AdminEditUser(opts.BotUser, gitea.EditUserOption{LoginName: opts.BotUser, Password: pw}); err != nil {
		t.Fatal(err)
	}
	bc, err := gitea.NewClient(srv.URL, gitea.SetBasicAuth(opts.BotUser, pw))
	if err != nil {
		t.Fatal(err)
	}
	toks, _, err := bc.ListAccessTokens(gitea.ListAccessTokensOptions{})
	if err != nil || len(toks) != 1 {
		t.Errorf("bot tokens: %d (%v), want 1", len(toks), err)
	}
	if apps := oauthApps(t, srv, opts); len(apps) != 1 {
		t.Errorf("OAuth applications for Woodpecker: %d, want 1", len(apps))
	}
	commits, _, err := admin.ListRepoCommits(o, r, gitea.ListCommitOptions{SHA: "main"})
	if err != nil || len(commits) != 1 {
		t.Errorf("commits on main: %d (%v), want 1", len(commits), err)
	}
}

// otherWarnings drops the warning every test gets for bootstrapping into
// the test server instead of hl.yaml's forge.
func otherWarnings(res *Result) []string {
	var out []string
	for _, w := range res.Warnings {
		if !strings.Contains(w, "spec.forge says") {
			out = append(out, w)
		}
	}
	return out
}

func decrypt(t *testing.T, dir, p string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(p)))
	if err != nil {
		t.Fatal(err)
	}
	plain, err := secrets.Decrypt(data, identities(t)...)
	if err != nil {
		t.Fatalf("decrypt %s: %v", p, err)
	}
	return plain
}

// dirFiles reads every file under dir except .git.
func dirFiles(t testing.TB, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == ".git" {
			return filepath.SkipDir
		}
		if d.IsDir() {
			return nil
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		out[filepath.ToSlash(rel)] = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func compareFiles(t *testing.T, got, want map[string][]byte) {
	t.Helper()
	var paths []string
	for p := range got {
		paths = append(paths, p)
	}
	for p := range want {
		if _, ok := got[p]; !ok {
			paths = append(paths, p)
		}
	}
	sort.Strings(paths)
	bad := 0
	for _, p := range paths {
		g, gok := got[p]
		w, wok := want[p]
		switch {
		case !gok:
			t.Errorf("missing %s", p)
		case !wok:
			t.Errorf("unexpected %s", p)
		case !bytes.Equal(g, w):
			t.Errorf("%s differs", p)
		default:
			continue
		}
		if bad++; bad > 10 {
			t.Fatal("more differences left out")
		}
	}
}

// cloneFiles clones url's default branch in memory and returns its files
// and head commit.
func cloneFiles(t *testing.T, url, token string) (map[string][]byte, *object.Commit) {
	t.Helper()
	repo, err := git.CloneContext(t.Context(), memory.NewStorage(), memfs.New(), &git.CloneOptions{URL: url, Auth: &githttp.BasicAuth{Username: "x", Password: token}})
	if err != nil {
		t.Fatal(err)
	}
	head, err := repo.Head()
	if err != nil {
		t.Fatal(err)
	}
	c, err := repo.CommitObject(head.Hash())
	if err != nil {
		t.Fatal(err)
	}
	files, _ := c.Files()
	out := map[string][]byte{}
	err = files.ForEach(func(f *object.File) error {
		rd, err := f.Reader()
		if err != nil {
			return err
		}
		defer rd.Close()
		out[f.Name], err = io.ReadAll(rd)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out, c
}

// gitPushFile clones url as user, commits one file on branch (created
// from main when missing) and pushes it.
func gitPushFile(t *testing.T, url, user, token, branch, name string) error {
	t.Helper()
	auth := &githttp.BasicAuth{Username: user, Password: token}
	fsys := memfs.New()
	repo, err := git.CloneContext(t.Context(), memory.NewStorage(), fsys, &git.CloneOptions{URL: url, Auth: auth})
	if err != nil {
		return err
	}
	wt, err := repo.Worktree()
	if err != nil {
		return err
	}
	ref := plumbing.NewBranchReferenceName(branch)
	if branch != "main" {
		if err := wt.Checkout(&git.CheckoutOptions{Branch: ref, Create: true}); err != nil {
			return err
		}
	}
	f, err := fsys.Create(name)
	if err != nil {
		return err
	}
	f.Write([]byte(base64.StdEncoding.EncodeToString([]byte(name)) + "\n"))
	f.Close()
	if _, err := wt.Add(name); err != nil {
		return err
	}
	sig := &object.Signature{Name: user, Email: user + "@example.com", When: time.Now()}
	if _, err := wt.Commit("add "+name, &git.CommitOptions{Author: sig}); err != nil {
		return err
	}
	return repo.PushContext(context.Background(), &git.PushOptions{Auth: auth, RefSpecs: []gitconfig.RefSpec{gitconfig.RefSpec(ref + ":" + ref)}})
}

// testHook asks Gitea for a test delivery (not in the SDK).
func testHook(t *testing.T, srv *testserver.Server, owner, repo string, id int64) {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, fmt.Sprintf("%s/api/v1/repos/%s/%s/hooks/%d/tests", srv.URL, owner, repo, id), nil)
	req.Header.Set("Authorization", "token "+srv.AdminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("test delivery: HTTP %d", resp.StatusCode)
	}
}

// oauthApps lists the admin's OAuth applications bootstrap made for
// opts' repo.
func oauthApps(t testing.TB, srv *testserver.Server, opts Options) []*gitea.Oauth2 {
	t.Helper()
	all, _, err := adminClient(t, srv).ListOauth2(gitea.ListOauth2Option{ListOptions: gitea.ListOptions{PageSize: 50}})
	if err != nil {
		t.Fatal(err)
	}
	var out []*gitea.Oauth2
	for _, a := range all {
		if a.Name == "Woodpecker CI for "+opts.Owner+"/"+opts.Repo {
			out = append(out, a)
		}
	}
	return out
}

// oauthExchange sends Gitea's token endpoint an authorization code
// exchange with a code that was never issued, as Woodpecker's server
// would after a login, and returns the OAuth error description. Gitea
// checks the client secret, then the redirect URI, then the code, so a
// stored secret that works fails only on the code.
func oauthExchange(t testing.TB, srv *testserver.Server, clientID, secret, redirect string) string {
	t.Helper()
	form := url.Values{"grant_type": {"authorization_code"}, "client_id": {clientID}, "client_secret": {secret}, "code": {"never-issued"}, "redirect_uri": {redirect}}
	resp, err := http.PostForm(srv.URL+"/login/oauth/access_token", form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("token endpoint: HTTP %d: %v", resp.StatusCode, err)
	}
	return body.Description
}

// requireOAuthApp checks that exactly one OAuth application exists for
// opts' repo, that the stored Secret names it, and that Gitea accepts the
// stored client secret and no other.
func requireOAuthApp(t *testing.T, srv *testserver.Server, opts Options, dir string) *gitea.Oauth2 {
	t.Helper()
	apps := oauthApps(t, srv, opts)
	if len(apps) != 1 {
		t.Fatalf("%d OAuth applications for the repo, want 1", len(apps))
	}
	app := apps[0]
	ex, err := secrets.ReadSecret(decrypt(t, dir, WoodpeckerForgePath))
	if err != nil {
		t.Fatal(err)
	}
	id, secret := ex.Values["client-id"], ex.Values["client-secret"]
	if id != app.ClientID || ex.Annotations[AnnotationOAuthClientID] != app.ClientID || !bytes.Contains(decrypt(t, dir, WoodpeckerForgePath), []byte("name: woodpecker-forge\n  namespace: woodpecker\n")) {
		t.Fatalf("stored woodpecker/woodpecker-forge client %q (annotation %q), Gitea's %q", id, ex.Annotations[AnnotationOAuthClientID], app.ClientID)
	}
	redirect := app.RedirectURIs[0]
	const codeUnknown = "client is not authorized"
	if got := oauthExchange(t, srv, id, secret, redirect); got != codeUnknown {
		t.Errorf("token exchange with the stored secret: %q, want %q (secret and redirect accepted, code unknown)", got, codeUnknown)
	}
	if got := oauthExchange(t, srv, id, secret+"x", redirect); got != "invalid client secret" {
		t.Errorf("token exchange with a wrong secret: %q, want invalid client secret", got)
	}
	if got := oauthExchange(t, srv, id, secret, "https://elsewhere.example/authorize"); got != "unexpected redirect URI" {
		t.Errorf("token exchange for another redirect: %q, want unexpected redirect URI", got)
	}
	return app
}
