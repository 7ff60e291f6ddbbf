package rotate

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"code.gitea.io/sdk/gitea"
	"github.com/go-git/go-git/v5"
	gitconfig "github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing/object"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"

	"hl.dev/hl/bot/engine"
	"hl.dev/hl/bot/forge"
	giteaforge "hl.dev/hl/bot/forge/gitea"
	"hl.dev/hl/internal/gitea/testserver"
	"hl.dev/hl/secrets"
)

// testRepo is a Gitea repository the pass runs against through the real
// forge (bot/forge/gitea), with an admin SDK client for what a human does.
type testRepo struct {
	*giteaforge.Forge
	c           *gitea.Client
	token       string
	owner, repo string
}

// pushRepo creates a Gitea repo and pushes dir's files to its main branch.
func pushRepo(t *testing.T, srv *testserver.Server, dir string) *testRepo {
	t.Helper()
	c, err := gitea.NewClient(srv.URL, gitea.SetToken(srv.AdminToken))
	if err != nil {
		t.Fatal(err)
	}
	name := srv.UniqueName("rot")
	if _, _, err := c.CreateRepo(gitea.CreateRepoOption{Name: name, DefaultBranch: "main"}); err != nil {
		t.Fatal(err)
	}
	fg, err := giteaforge.New(giteaforge.Options{URL: srv.URL, Token: srv.AdminToken, Owner: srv.AdminUser, Repo: name})
	if err != nil {
		t.Fatal(err)
	}
	f := &testRepo{Forge: fg, c: c, token: srv.AdminToken, owner: srv.AdminUser, repo: name}
	repo, err := git.PlainInitWithOptions(dir, &git.PlainInitOptions{InitOptions: git.InitOptions{DefaultBranch: "refs/heads/main"}})
	if err != nil {
		t.Fatal(err)
	}
	commitAll(t, repo, "initial render")
	if _, err := repo.CreateRemote(&gitconfig.RemoteConfig{Name: "origin", URLs: []string{f.CloneURL()}}); err != nil {
		t.Fatal(err)
	}
	push(t, repo, f)
	if err := srv.WaitPushed(t.Context(), f.owner, f.repo); err != nil {
		t.Fatal(err)
	}
	return f
}

func commitAll(t *testing.T, repo *git.Repository, msg string) {
	t.Helper()
	wt, _ := repo.Worktree()
	if err := wt.AddWithOptions(&git.AddOptions{All: true}); err != nil {
		t.Fatal(err)
	}
	sig := &object.Signature{Name: "t", Email: "t@example.com", When: time.Now()}
	if _, err := wt.Commit(msg, &git.CommitOptions{Author: sig}); err != nil {
		t.Fatal(err)
	}
}

func push(t *testing.T, repo *git.Repository, f *testRepo) {
	t.Helper()
	err := repo.Push(&git.PushOptions{RemoteName: "origin", Auth: &githttp.BasicAuth{Username: f.owner, Password: f.token},
		RefSpecs: []gitconfig.RefSpec{"refs/heads/main:refs/heads/main"}})
	if err != nil {
		t.Fatal(err)
	}
}

func cloneMain(t *testing.T, f *testRepo) string {
	t.Helper()
	dir := t.TempDir()
	if _, err := git.PlainClone(dir, false, &git.CloneOptions{URL: f.CloneURL(), Auth: f.Auth()}); err != nil {
		t.Fatal(err)
	}
	return dir
}

func mergeAll(t *testing.T, f *testRepo, urls []string) {
	t.Helper()
	prs, _, err := f.c.ListRepoPullRequests(f.owner, f.repo, gitea.ListPullRequestsOptions{State: gitea.StateOpen})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range prs {
		var ok bool
		// Gitea checks mergeability asynchronously right after creation.
		for i := 0; i < 50 && !ok; i++ {
			ok, _, err = f.c.MergePullRequest(f.owner, f.repo, p.Index, gitea.MergePullRequestOption{Style: gitea.MergeStyleMerge})
			if !ok {
				time.Sleep(200 * time.Millisecond)
			}
		}
		if !ok {
			t.Fatalf("merge #%d: %v", p.Index, err)
		}
	}
}

// agedRepo renders the minimal config and makes the named secrets overdue.
func agedRepo(t *testing.T, names ...string) (string, []secrets.Secret) {
	t.Helper()
	dir := renderRepo(t)
	all, err := secrets.Scan(dir, fixedNow)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		ageSecret(t, dir, all, n, "2025-01-01")
	}
	return dir, all
}

func TestPassRotatesOverdueSecret(t *testing.T) {
	srv := testserver.ForTest(t)
	dir, all := agedRepo(t, "dex/dex-clients", "gitea/gitea-admin")
	src, _ := secrets.Find(all, "dex/dex-clients")
	oldVals := values(t, dir, src.File, identities(t)...)
	oldCopy := values(t, dir, "system/argocd/secrets/argocd-oidc.sops.yaml", identities(t)...)
	oldSSOValues, _ := os.ReadFile(filepath.Join(dir, "platform/sso/values.yaml"))
	f := pushRepo(t, srv, dir)

	opts := PassOptions{Forge: f, Identities: identities(t), Now: func() time.Time { return fixedNow }}
	rep, err := Pass(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("report: %+v", rep)
	if len(rep.PRs) != 1 || len(rep.Issues) != 1 || rep.Overdue != 2 {
		t.Fatalf("want 1 PR, 1 issue, 2 overdue; got %+v", rep)
	}
	prs, err := f.ListPRs(t.Context(), forgeListAll)
	if err != nil || len(prs) != 1 {
		t.Fatalf("PRs: %v %v", prs, err)
	}
	pr := prs[0]
	if !strings.HasPrefix(pr.Head, engine.RotationPrefix) || !strings.Contains(pr.Body, "dex-clients") || !strings.Contains(pr.Body, "revert") {
		t.Errorf("PR head %q body:\n%s", pr.Head, pr.Body)
	}
	for _, v := range oldVals {
		if strings.Contains(pr.Body, v) || strings.Contains(pr.Head, v) {
			t.Error("a secret value leaked into the PR")
		}
	}
	t.Logf("PR body:\n%s", pr.Body)
	is, err := f.FindIssue(t.Context(), IssueTitle(secrets.Secret{Namespace: "gitea", Name: "gitea-admin"}))
	if err != nil || !strings.Contains(is.Body, "rotatable") {
		t.Fatalf("issue: %v %v", is, err)
	}

	mergeAll(t, f, rep.PRs)
	after := cloneMain(t, f)
	newVals := values(t, after, src.File, identities(t)...)
	for k, v := range oldVals {
		if newVals[k] == "" || newVals[k] == v {
			t.Errorf("key %s not rotated", k)
		}
	}
	newCopy := values(t, after, "system/argocd/secrets/argocd-oidc.sops.yaml", identities(t)...)
	if newCopy["client-secret"] != newVals["ARGOCD_CLIENT_SECRET"] || newCopy["client-secret"] == oldCopy["client-secret"] {
		t.Error("copy argocd-oidc does not carry the new value")
	}
	ssoValues, _ := os.ReadFile(filepath.Join(after, "platform/sso/values.yaml"))
	if bytes.Equal(ssoValues, oldSSOValues) || !bytes.Contains(ssoValues, []byte(secrets.ChecksumAnnotation("dex-clients"))) {
		t.Errorf("dex's checksum annotation not set:\n%s", ssoValues)
	}
	md, _ := os.ReadFile(filepath.Join(after, src.File))
	if s, _ := secrets.ReadMetadata(src.File, md, fixedNow); s.GeneratedAt != "2026-06-01" || s.Due {
		t.Errorf("metadata not updated: %+v", s)
	}

	rep2, err := Pass(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep2.PRs)+len(rep2.Issues) != 0 {
		t.Fatalf("second pass opened %+v", rep2)
	}
}

func TestPassRecipientChange(t *testing.T) {
	srv := testserver.ForTest(t)
	dir := renderRepo(t)
	f := pushRepo(t, srv, dir)

	var key bytes.Buffer
	newRecipient, err := secrets.GenerateIdentity(&key)
	if err != nil {
		t.Fatal(err)
	}
	newIDs, err := secrets.ParseIdentities(key.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	cfg, _ := os.ReadFile(filepath.Join(dir, "hl.yaml"))
	old := "age15xdmcz5h2n3c8ut7g4gaznvfav57erdamkxkx6amkpm560mlxshqhqemxm"
	if !bytes.Contains(cfg, []byte(old)) {
		t.Fatal("fixture recipient not found")
	}
	if err := os.WriteFile(filepath.Join(dir, "hl.yaml"), bytes.ReplaceAll(cfg, []byte(old), []byte(newRecipient)), 0o644); err != nil {
		t.Fatal(err)
	}
	repo, _ := git.PlainOpen(dir)
	commitAll(t, repo, "switch age key")
	push(t, repo, f)

	opts := PassOptions{Forge: f, Identities: identities(t), Now: func() time.Time { return fixedNow }}
	rep, err := Pass(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.PRs) != 1 {
		t.Fatalf("want one re-encryption PR, got %+v", rep)
	}
	mergeAll(t, f, rep.PRs)
	after := cloneMain(t, f)
	files, _ := secrets.SopsFiles(after)
	if len(files) < 5 {
		t.Fatalf("only %d SOPS files", len(files))
	}
	for _, file := range files {
		b, _ := os.ReadFile(filepath.Join(after, file))
		if _, err := secrets.Decrypt(b, newIDs...); err != nil {
			t.Errorf("%s does not decrypt with the new identity: %v", file, err)
		}
		if _, err := secrets.Decrypt(b, identities(t)...); err == nil {
			t.Errorf("%s still decrypts with the removed identity", file)
		}
	}
	sc, _ := os.ReadFile(filepath.Join(after, ".sops.yaml"))
	if !bytes.Contains(sc, []byte(newRecipient)) || bytes.Contains(sc, []byte(old)) {
		t.Errorf(".sops.yaml not updated:\n%s", sc)
	}
	opts.Identities = newIDs
	rep2, err := Pass(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep2.PRs) != 0 {
		t.Fatalf("second pass opened %+v", rep2)
	}
}

// A rotation PR a human closes without merging is not opened again on the
// next pass; the report lists it as declined.
func TestPassDoesNotReopenDeclinedRotation(t *testing.T) {
	srv := testserver.ForTest(t)
	dir, _ := agedRepo(t, "dex/dex-clients")
	f := pushRepo(t, srv, dir)
	opts := PassOptions{Forge: f, Identities: identities(t), Now: func() time.Time { return fixedNow }}
	rep, err := Pass(t.Context(), opts)
	if err != nil || len(rep.PRs) != 1 {
		t.Fatalf("first pass: %+v %v", rep, err)
	}
	prs, err := f.ListPRs(t.Context(), forgeListAll)
	if err != nil || len(prs) != 1 {
		t.Fatalf("PRs: %v %v", prs, err)
	}
	closed := gitea.StateClosed
	if _, _, err := f.c.EditPullRequest(f.owner, f.repo, int64(prs[0].Number), gitea.EditPullRequestOption{State: &closed}); err != nil {
		t.Fatal(err)
	}

	rep, err = Pass(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.PRs) != 0 || len(rep.Declined) != 1 || rep.Declined[0] != prs[0].URL {
		t.Fatalf("second pass after the human closed the PR: %+v", rep)
	}
	after, err := f.ListPRs(t.Context(), forgeListAll)
	if err != nil || len(after) != 1 || after[0].State != forge.StateClosed || after[0].Closed.IsZero() {
		t.Fatalf("PRs after the second pass: %+v %v", after, err)
	}
}

func TestDeclinedUntil(t *testing.T) {
	created := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	closed := created.Add(100 * 24 * time.Hour)
	period := 90 * 24 * time.Hour
	if got := declinedUntil(&forge.PR{Created: created, Closed: closed}, period); !got.Equal(closed.Add(period)) {
		t.Errorf("counted from %v, want from the close", got.Add(-period))
	}
	if got := declinedUntil(&forge.PR{Created: created}, period); !got.Equal(created.Add(period)) {
		t.Errorf("without a close time: %v, want created + period", got)
	}
}
