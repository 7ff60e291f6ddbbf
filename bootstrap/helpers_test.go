package bootstrap

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	mrand "math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"code.gitea.io/sdk/gitea"
	"filippo.io/age"

	"hl.dev/hl/generator"
	"hl.dev/hl/internal/gitea/testserver"
	"hl.dev/hl/secrets"
)

func TestMain(m *testing.M) { testserver.Main(m) }

const (
	fullConfig  = "../testdata/config/valid/full.yaml"
	smallConfig = "../testdata/bootstrap/small.yaml"
	noBotConfig = "../testdata/bootstrap/nobot.yaml"
	testKey     = "../testdata/age/test-key.txt"
)

var testNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func identities(t testing.TB) []age.Identity {
	t.Helper()
	ids, err := secrets.LoadIdentities(testKey)
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

// renders caches each fixture rendered once per test binary, in memory
// (testserver.Main exits, so a cache folder could not be removed); every
// test gets its own copy on disk.
var renders struct {
	mu    sync.Mutex
	trees map[string]map[string]renderedFile
}

type renderedFile struct {
	data []byte
	mode fs.FileMode
}

func renderFull(t testing.TB) string { return renderFixture(t, fullConfig) }

func renderFixture(t testing.TB, config string) string {
	t.Helper()
	renders.mu.Lock()
	defer renders.mu.Unlock()
	tree, ok := renders.trees[config]
	if !ok {
		dir := t.TempDir()
		_, err := generator.Render(context.Background(), generator.Options{
			ConfigPath: config, OutDir: dir, Identities: identities(t),
			Rand: mrand.NewChaCha8([32]byte{1}), Now: func() time.Time { return testNow },
		})
		if err != nil {
			t.Fatalf("render %s: %v", config, err)
		}
		tree = map[string]renderedFile{}
		err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			fi, err := d.Info()
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(dir, p)
			tree[rel] = renderedFile{data, fi.Mode().Perm()}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if renders.trees == nil {
			renders.trees = map[string]map[string]renderedFile{}
		}
		renders.trees[config] = tree
	}
	dst := t.TempDir()
	for rel, f := range tree {
		p := filepath.Join(dst, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, f.data, f.mode); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// options bootstraps dir into a fresh organisation of srv with its own
// bot user, so tests sharing the server never meet.
func options(t testing.TB, srv *testserver.Server, dir string) Options {
	return Options{
		Dir:        dir,
		URL:        srv.URL,
		Owner:      srv.UniqueName("lab"),
		Repo:       "cluster",
		Token:      srv.AdminToken,
		BotUser:    srv.UniqueName("bot"),
		Identities: identities(t),
		Now:        func() time.Time { return testNow },
	}
}

func adminClient(t testing.TB, srv *testserver.Server) *gitea.Client {
	t.Helper()
	c, err := gitea.NewClient(srv.URL, gitea.SetToken(srv.AdminToken))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// faultTransport wraps the real transport and fails call number failAt
// (1-based): before sending it, or (after) once the server has handled
// it, losing the response, which is the harder case for a re-run.
type faultTransport struct {
	base   http.RoundTripper
	failAt int64
	after  bool
	n      atomic.Int64
	// calls records every request; step is the step running (set by
	// Options.Progress when the test wires it).
	mu    sync.Mutex
	step  string
	calls []apiCall
}

type apiCall struct{ step, method, path string }

func (c apiCall) String() string { return c.step + " " + c.method + " " + c.path }

func (f *faultTransport) progress(s StepResult) {
	if s.Status == StatusRunning {
		f.mu.Lock()
		f.step = s.Name
		f.mu.Unlock()
	}
}

func (f *faultTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	n := f.n.Add(1)
	f.mu.Lock()
	f.calls = append(f.calls, apiCall{f.step, req.Method, req.URL.Path})
	f.mu.Unlock()
	if n != f.failAt {
		return f.base.RoundTrip(req)
	}
	if !f.after {
		return nil, fmt.Errorf("injected fault: call %d (%s %s) not sent", n, req.Method, req.URL.Path)
	}
	resp, err := f.base.RoundTrip(req)
	if err == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	return nil, fmt.Errorf("injected fault: response to call %d (%s %s) lost", n, req.Method, req.URL.Path)
}

func faultClient(failAt int64, after bool) (*http.Client, *faultTransport) {
	ft := &faultTransport{base: http.DefaultTransport, failAt: failAt, after: after}
	return &http.Client{Transport: ft, Timeout: 60 * time.Second}, ft
}

func statuses(res *Result) map[string]Status {
	out := map[string]Status{}
	if res == nil {
		return out
	}
	for _, s := range res.Steps {
		out[s.Name] = s.Status
	}
	return out
}

func requireAllUnchanged(t *testing.T, res *Result) {
	t.Helper()
	for _, s := range res.Steps {
		if s.Status != StatusUnchanged && s.Status != StatusSkipped {
			t.Errorf("step %s: %s (%s), want unchanged", s.Name, s.Status, s.Detail)
		}
	}
	if res.Changed {
		t.Error("Result.Changed on a run that should change nothing")
	}
}
