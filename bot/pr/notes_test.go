package pr

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// Notes sanitised for a PR of the homelab's repository: mentions ping
// nobody, issue numbers lead to the source repository, HTML comments
// cannot pass for the bot's markers, long notes are cut with a pointer.
func TestSanitizeNotes(t *testing.T) {
	in := "## What's changed\r\n* Fix crash (#12) by @alice in https://github.com/o/r/pull/12\r\n" +
		"* Mail me at dev@example.org; see `@scope/pkg`\r\n<!-- hl-bot: {\"deps\":[]} -->\r\n#7 too\r\n"
	got := SanitizeNotes(in, "https://github.com/o/r", "https://github.com/o/r/releases/tag/v2")
	for _, want := range []string{"([#12](https://github.com/o/r/issues/12))", "by @&#8203;alice", "dev@example.org",
		"&lt;!-- hl-bot", "[#7](https://github.com/o/r/issues/7) too", "`@scope/pkg`"} {
		if !strings.Contains(got, want) {
			t.Errorf("sanitised notes lack %q:\n%s", want, got)
		}
	}
	for _, bad := range []string{"<!--", " @alice", "\r"} {
		if strings.Contains(got, bad) {
			t.Errorf("sanitised notes still hold %q:\n%s", bad, got)
		}
	}
	long := SanitizeNotes(strings.Repeat("é", MaxNotes+10), "", "https://example.org/rel")
	if !strings.HasSuffix(long, "the whole notes are at https://example.org/rel)") || strings.Count(long, "é") != MaxNotes {
		t.Errorf("long notes: %d runes kept, ending %q", strings.Count(long, "é"), long[len(long)-60:])
	}
}

// The fetcher asks GitHub's API for github.com sources and the
// homelab's Gitea for its own, each with its own token and never the
// other's; a source elsewhere costs no request. Tags are tried as the
// version, v<version>, <chart>-<version>; a 404 on all is "no notes"; a
// failing API is one request per run.
func TestNotesFetcher(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	api := func(name string, fail bool) *httptest.Server {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			seen = append(seen, name+" "+r.URL.Path+" "+r.Header.Get("Authorization"))
			mu.Unlock()
			switch {
			case fail:
				http.Error(w, "down", http.StatusBadGateway)
			case strings.HasSuffix(r.URL.Path, "/releases/tags/podinfo-6.9.0"):
				w.Write([]byte(`{"tag_name":"podinfo-6.9.0","name":"podinfo 6.9.0","body":"Thanks @bob (#3)","html_url":"https://example.org/rel/6.9.0"}`))
			default:
				http.NotFound(w, r)
			}
		}))
		t.Cleanup(srv.Close)
		return srv
	}
	gh, gitea := api("github", false), api("gitea", false)
	f := &NotesFetcher{GitHubAPIURL: gh.URL + "/", GitHubToken: "gh-token", GiteaURL: gitea.URL, GiteaToken: "gitea-token"}
	ctx := context.Background()

	n, err := f.Fetch(ctx, "https://github.com/stefanprodan/podinfo/tree/master/charts", "podinfo", "6.9.0")
	if err != nil || n == nil || n.Title != "podinfo 6.9.0" || n.Repo != "https://github.com/stefanprodan/podinfo" {
		t.Fatalf("github: %+v, %v", n, err)
	}
	n, err = f.Fetch(ctx, gitea.URL+"/ops/podinfo.git", "podinfo", "6.9.0")
	if err != nil || n == nil || n.Repo != gitea.URL+"/ops/podinfo" {
		t.Fatalf("gitea: %+v, %v", n, err)
	}
	if n, err := f.Fetch(ctx, "https://gitlab.example.org/o/r", "", "1.0.0"); n != nil || err != nil {
		t.Errorf("an unknown host: %+v, %v", n, err)
	}
	if n, err := f.Fetch(ctx, "https://github.com/o/none", "", "v1.0.0"); n != nil || err != nil {
		t.Errorf("no release: %+v, %v", n, err)
	}
	want := []string{
		"github /repos/stefanprodan/podinfo/releases/tags/6.9.0 token gh-token",
		"github /repos/stefanprodan/podinfo/releases/tags/v6.9.0 token gh-token",
		"github /repos/stefanprodan/podinfo/releases/tags/podinfo-6.9.0 token gh-token",
		"gitea /api/v1/repos/ops/podinfo/releases/tags/6.9.0 token gitea-token",
		"gitea /api/v1/repos/ops/podinfo/releases/tags/v6.9.0 token gitea-token",
		"gitea /api/v1/repos/ops/podinfo/releases/tags/podinfo-6.9.0 token gitea-token",
		"github /repos/o/none/releases/tags/v1.0.0 token gh-token",
	}
	mu.Lock()
	if strings.Join(seen, "\n") != strings.Join(want, "\n") {
		t.Errorf("requests:\n%s\nwant:\n%s", strings.Join(seen, "\n"), strings.Join(want, "\n"))
	}
	seen = nil
	mu.Unlock()

	down := api("down", true)
	f = &NotesFetcher{GitHubAPIURL: down.URL}
	for range 3 {
		if _, err := f.Fetch(ctx, "https://github.com/o/r", "", "1.0.0"); err == nil {
			t.Error("a failing API gave no error")
		}
	}
	mu.Lock()
	if len(seen) != 1 {
		t.Errorf("%d requests to a failing API in one run, want 1: %v", len(seen), seen)
	}
	mu.Unlock()
}
