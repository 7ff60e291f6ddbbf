package engine

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"

	"hl.dev/hl/bot/internal/fixture"
)

// bareRepo makes root/repo.git, a bare repository that takes pushes over
// HTTP, with one commit on main (v.txt 1.0.0).
func bareRepo(t *testing.T) (root, bare string) {
	t.Helper()
	root = t.TempDir()
	bare = filepath.Join(root, "repo.git")
	if err := os.MkdirAll(bare, 0o755); err != nil {
		t.Fatal(err)
	}
	fixture.Git(t, bare, "init", "-q", "--bare", "-b", "main")
	fixture.Git(t, bare, "config", "http.receivepack", "true")
	work := t.TempDir()
	if err := os.WriteFile(filepath.Join(work, "v.txt"), []byte("1.0.0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	fixture.Git(t, work, "init", "-q", "-b", "main")
	fixture.Git(t, work, "add", ".")
	fixture.Git(t, work, "commit", "-q", "-m", "initial")
	fixture.Git(t, work, "push", "-q", bare, "main")
	return root, bare
}

// All branches go to the forge in one push (one receive-pack, so one run
// of the forge's hooks); when the forge refuses that push, each branch is
// pushed alone and only the refused one fails.
func TestPushBranchesInOnePush(t *testing.T) {
	root, bare := bareRepo(t)

	var receives atomic.Int32
	url := fixture.GitServer(t, root, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/git-receive-pack") {
				receives.Add(1)
			}
			h.ServeHTTP(w, r)
		})
	})

	ctx := context.Background()
	repo, err := OpenURL(ctx, url+"/repo.git", nil, "main", "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = repo.Close() })
	heads := func(names ...string) []Head {
		var out []Head
		for _, n := range names {
			h, err := repo.Commit(map[string][]byte{"v.txt": []byte(n + "\n")}, n)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, Head{Branch: BranchPrefix + n, Hash: h})
		}
		return out
	}
	check := func(hs []Head, errs []error, refused string) {
		t.Helper()
		for i, h := range hs {
			got, _ := exec.Command("git", "--git-dir", bare, "rev-parse", "--verify", "-q", "refs/heads/"+h.Branch).Output()
			pushed := strings.TrimSpace(string(got)) == h.Hash.String()
			if h.Branch == refused {
				if errs[i] == nil || pushed {
					t.Errorf("%s: refused branch pushed (err %v)", h.Branch, errs[i])
				}
				continue
			}
			if errs[i] != nil || !pushed {
				t.Errorf("%s: err %v, on the server: %v", h.Branch, errs[i], pushed)
			}
			if tr, err := repo.git.Reference(plumbing.ReferenceName("refs/remotes/origin/"+h.Branch), true); err != nil || tr.Hash() != h.Hash {
				t.Errorf("%s: tracking ref %v, %v", h.Branch, tr, err)
			}
		}
	}

	hs := heads("a-1.x", "b-1.x", "c-2.x")
	check(hs, repo.Push(ctx, hs), "")
	if n := receives.Load(); n != 1 {
		t.Errorf("%d receive-packs for 3 branches, want 1", n)
	}

	// The server refuses one ref: the whole push fails, then each branch
	// is pushed alone.
	hook := "#!/bin/sh\nwhile read old new ref; do [ \"$ref\" = refs/heads/hl-bot/bad-1.x ] && exit 1; done; exit 0\n"
	if err := os.WriteFile(filepath.Join(bare, "hooks", "pre-receive"), []byte(hook), 0o755); err != nil {
		t.Fatal(err)
	}
	receives.Store(0)
	hs = heads("d-1.x", "bad-1.x", "e-1.x")
	check(hs, repo.Push(ctx, hs), "hl-bot/bad-1.x")
	if n := receives.Load(); n != 4 {
		t.Errorf("%d receive-packs, want the refused push and 3 single ones", n)
	}
}

// A forge that restarts under the bot: the first answer of each step of
// the git protocol fails (502, 503, or the connection dropped before the
// server saw the request), and the clone, fetch and push still complete;
// a repository that does not exist fails at once, without retries.
func TestGitRetriesPassingFailures(t *testing.T) {
	root, bare := bareRepo(t)

	var mu sync.Mutex
	seen := map[string]int{}
	var faults, missing atomic.Int32
	url := fixture.GitServer(t, root, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.Contains(r.URL.Path, "/missing.git/") {
				missing.Add(1)
				h.ServeHTTP(w, r)
				return
			}
			step := r.Method + " " + r.URL.Path[strings.LastIndex(r.URL.Path, "/"):] + " " + r.URL.Query().Get("service")
			mu.Lock()
			seen[step]++
			first := seen[step] == 1
			mu.Unlock()
			if first {
				faults.Add(1)
				switch r.Method {
				case http.MethodGet:
					http.Error(w, "restarting", http.StatusBadGateway)
				default:
					conn, _, err := w.(http.Hijacker).Hijack()
					if err == nil {
						conn.Close()
					}
				}
				return
			}
			h.ServeHTTP(w, r)
		})
	})

	ctx := context.Background()
	repo, err := OpenURL(ctx, url+"/repo.git", nil, "main", "")
	if err != nil {
		t.Fatalf("open through failing answers: %v", err)
	}
	t.Cleanup(func() { _ = repo.Close() })
	h, err := repo.Commit(map[string][]byte{"v.txt": []byte("1.1.0\n")}, "1.1.0")
	if err != nil {
		t.Fatal(err)
	}
	if errs := repo.Push(ctx, []Head{{Branch: BranchPrefix + "v-1.x", Hash: h}}); errs[0] != nil {
		t.Fatalf("push through failing answers: %v", errs[0])
	}
	got, _ := exec.Command("git", "--git-dir", bare, "rev-parse", "--verify", "-q", "refs/heads/"+BranchPrefix+"v-1.x").Output()
	if strings.TrimSpace(string(got)) != h.String() {
		t.Errorf("the branch is not on the server: %q", got)
	}
	if n := faults.Load(); n < 3 {
		t.Errorf("%d faulted requests (%v): the failures were not met", n, seen)
	}

	if _, err := OpenURL(ctx, url+"/missing.git", nil, "main", ""); err == nil {
		t.Fatal("opened a repository that does not exist")
	}
	if n := missing.Load(); n != 1 {
		t.Errorf("%d requests for a missing repository, want 1 (no retries)", n)
	}
}
