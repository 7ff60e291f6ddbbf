package testserver_test

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"code.gitea.io/sdk/gitea"

	"hl.dev/hl/internal/gitea/testserver"
)

func TestMain(m *testing.M) { testserver.Main(m) }

func client(t *testing.T, srv *testserver.Server, token string, opts ...gitea.ClientOption) *gitea.Client {
	t.Helper()
	opts = append([]gitea.ClientOption{gitea.SetToken(token), gitea.SetContext(t.Context())}, opts...)
	c, err := gitea.NewClient(srv.URL, opts...)
	if err != nil {
		t.Fatalf("gitea.NewClient(%s): %v", srv.URL, err)
	}
	return c
}

func TestServerVersion(t *testing.T) {
	srv := testserver.ForTest(t)
	v, _, err := client(t, srv, srv.AdminToken).ServerVersion()
	if err != nil {
		t.Fatalf("ServerVersion: %v", err)
	}
	if v != testserver.Version {
		t.Errorf("ServerVersion = %q, want %q", v, testserver.Version)
	}
}

func TestAdminToken(t *testing.T) {
	srv := testserver.ForTest(t)
	me, _, err := client(t, srv, srv.AdminToken).GetMyUserInfo()
	if err != nil {
		t.Fatalf("GetMyUserInfo: %v", err)
	}
	if me.UserName != srv.AdminUser || !me.IsAdmin {
		t.Errorf("token user = %q (admin %v), want admin %q", me.UserName, me.IsAdmin, srv.AdminUser)
	}
}

func TestCreateOrgAndRepo(t *testing.T) {
	srv := testserver.ForTest(t)
	c := client(t, srv, srv.AdminToken)
	orgName := srv.UniqueName("homelab")

	if _, _, err := c.CreateOrg(gitea.CreateOrgOption{Name: orgName, Visibility: gitea.VisibleTypePrivate}); err != nil {
		t.Fatalf("CreateOrg: %v", err)
	}
	if _, _, err := c.CreateOrgRepo(orgName, gitea.CreateRepoOption{Name: "cluster", Private: true, AutoInit: true, DefaultBranch: "main"}); err != nil {
		t.Fatalf("CreateOrgRepo: %v", err)
	}

	org, _, err := c.GetOrg(orgName)
	if err != nil {
		t.Fatalf("GetOrg: %v", err)
	}
	if org.UserName != orgName {
		t.Errorf("org name = %q, want %q", org.UserName, orgName)
	}
	repo, _, err := c.GetRepo(orgName, "cluster")
	if err != nil {
		t.Fatalf("GetRepo: %v", err)
	}
	if repo.FullName != orgName+"/cluster" || !repo.Private || repo.DefaultBranch != "main" || repo.Empty {
		t.Errorf("repo = %s private=%v default=%q empty=%v, want private %s/cluster on main, initialised",
			repo.FullName, repo.Private, repo.DefaultBranch, repo.Empty, orgName)
	}
	repos, _, err := c.ListOrgRepos(orgName, gitea.ListOrgReposOptions{})
	if err != nil {
		t.Fatalf("ListOrgRepos: %v", err)
	}
	if len(repos) != 1 || repos[0].Name != "cluster" {
		t.Errorf("ListOrgRepos = %d repos, want just cluster", len(repos))
	}
}

// The bot and bootstrap tests receive webhooks on loopback httptest servers,
// which Gitea refuses unless [webhook] ALLOWED_HOST_LIST allows it.
func TestWebhookToLoopback(t *testing.T) {
	srv := testserver.ForTest(t)
	c := client(t, srv, srv.AdminToken)

	got := make(chan string, 10)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var p struct {
			Ref string `json:"ref"`
		}
		_ = json.NewDecoder(r.Body).Decode(&p)
		got <- r.Header.Get("X-Gitea-Event") + " " + p.Ref
	}))
	defer hook.Close()

	repoName := srv.UniqueName("hooked")
	if _, _, err := c.CreateRepo(gitea.CreateRepoOption{Name: repoName, AutoInit: true, DefaultBranch: "main"}); err != nil {
		t.Fatalf("CreateRepo: %v", err)
	}
	_, _, err := c.CreateRepoHook(srv.AdminUser, repoName, gitea.CreateHookOption{
		Type:   gitea.HookTypeGitea,
		Config: map[string]string{"url": hook.URL, "content_type": "json"},
		Events: []string{"push"},
		Active: true,
	})
	if err != nil {
		t.Fatalf("CreateRepoHook: %v", err)
	}
	_, _, err = c.CreateFile(srv.AdminUser, repoName, "hl.yaml", gitea.CreateFileOptions{
		Content: base64.StdEncoding.EncodeToString([]byte("apiVersion: hl.dev/v1\n")),
	})
	if err != nil {
		t.Fatalf("CreateFile: %v", err)
	}
	select {
	case ev := <-got:
		if ev != "push refs/heads/main" {
			t.Errorf("webhook = %q, want push refs/heads/main", ev)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("no webhook delivered to loopback within 15s")
	}
}

func TestBadTokenRejected(t *testing.T) {
	srv := testserver.ForTest(t)
	const bad = "0123456789abcdef0123456789abcdef01234567"

	// NewClient asks for the server version with the token, so it already
	// fails there.
	if _, err := gitea.NewClient(srv.URL, gitea.SetToken(bad), gitea.SetContext(t.Context())); err == nil {
		t.Error("gitea.NewClient with a bad token succeeded")
	}

	// Pinning the version skips that call and shows the API's answer.
	_, resp, err := client(t, srv, bad, gitea.SetGiteaVersion(testserver.Version)).GetMyUserInfo()
	if err == nil {
		t.Fatal("GetMyUserInfo with a bad token succeeded")
	}
	if resp == nil || resp.StatusCode != http.StatusUnauthorized {
		code := 0
		if resp != nil {
			code = resp.StatusCode
		}
		t.Errorf("bad token: HTTP %d (%v), want 401", code, err)
	}
}

func TestCreateUser(t *testing.T) {
	srv := testserver.ForTest(t)
	name := srv.UniqueName("renovator")
	u, err := srv.CreateUser(t.Context(), name)
	if err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
	c := client(t, srv, u.Token)
	me, _, err := c.GetMyUserInfo()
	if err != nil {
		t.Fatalf("GetMyUserInfo as new user: %v", err)
	}
	if me.UserName != name || me.IsAdmin {
		t.Errorf("new user = %q (admin %v), want non-admin %q", me.UserName, me.IsAdmin, name)
	}
	// A token with scope all can act: create a repo of its own.
	if _, _, err := c.CreateRepo(gitea.CreateRepoOption{Name: "fork"}); err != nil {
		t.Errorf("CreateRepo as new user: %v", err)
	}

	_, err = srv.CreateUser(t.Context(), name)
	var apiErr *testserver.APIError
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusUnprocessableEntity {
		t.Errorf("CreateUser twice: err = %v, want HTTP 422", err)
	}
}

// Kill stops Gitea (its API refuses connections); Restart brings it back
// on the same URL with everything it held: users, tokens, repositories.
func TestKillAndRestart(t *testing.T) {
	srv := testserver.New(t, testserver.Options{})
	u, err := srv.CreateUser(t.Context(), "survivor")
	if err != nil {
		t.Fatal(err)
	}
	c := client(t, srv, u.Token)
	if _, _, err := c.CreateRepo(gitea.CreateRepoOption{Name: "kept", AutoInit: true}); err != nil {
		t.Fatal(err)
	}
	srv.Kill()
	srv.Kill() // a second kill is a no-op
	if _, err := http.Get(srv.URL + "/api/v1/version"); err == nil {
		t.Fatal("the killed Gitea still answers")
	}
	if err := srv.Restart(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := srv.Restart(t.Context()); err == nil {
		t.Error("Restart of a running Gitea succeeded")
	}
	if _, _, err := c.GetRepo("survivor", "kept"); err != nil {
		t.Errorf("after the restart, the user's token and repository: %v", err)
	}
}

func TestMissingBinaryFailsWithHint(t *testing.T) {
	t.Setenv(testserver.EnvBinary, t.TempDir()+"/nope")
	_, err := testserver.Binary()
	if !errors.Is(err, testserver.ErrNoBinary) {
		t.Fatalf("Binary() with missing %s: err = %v, want ErrNoBinary", testserver.EnvBinary, err)
	}
	if want := "make gitea"; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not mention %q", err, want)
	}
}

// BenchmarkStart measures a cold start of a fresh instance (migrations,
// admin user, token); run with -bench Start -benchtime 3x.
func BenchmarkStart(b *testing.B) {
	for b.Loop() {
		srv, err := testserver.Start(b.Context(), testserver.Options{})
		if err != nil {
			b.Fatal(err)
		}
		if err := srv.Close(); err != nil {
			b.Fatal(err)
		}
	}
}
