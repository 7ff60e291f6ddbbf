package github

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	owner   = "octo-org"
	repo    = "homelab"
	token   = "ghp_fixtureToken0123456789abcdefABCDEF"
	headRef = "hl/k3s-v1.30.4"
	headSHA = "6dcb09b5b57875f334f61aebed695e2e4193db5e"
	rp      = "/repos/" + owner + "/" + repo
)

// reply is one canned answer: a status and a fixture under testdata/github.
type reply struct {
	status int
	file   string
}

func ok(file string) reply { return reply{http.StatusOK, file} }

// request is what the client sent.
type request struct {
	Method, Path, Query, Auth, IfNoneMatch string
	Body                                   any
	Status                                 int
}

func (r request) key() string { return r.Method + " " + r.Path }

// fakeGitHub serves fixtures keyed by "METHOD /path?query" (query compared
// after normalisation); a key with several replies serves them in order and
// repeats the last. GET 200s carry an ETag; a matching If-None-Match gets
// a 304.
type fakeGitHub struct {
	t      *testing.T
	srv    *httptest.Server
	mu     sync.Mutex
	routes map[string][]reply
	hits   map[string]int
	reqs   []request
}

func newFake(t *testing.T) *fakeGitHub {
	t.Helper()
	g := &fakeGitHub{t: t, routes: map[string][]reply{}, hits: map[string]int{}}
	g.srv = httptest.NewServer(http.HandlerFunc(g.serve))
	t.Cleanup(g.srv.Close)
	return g
}

func normKey(method, path, rawQuery string) string {
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		panic(err)
	}
	k := method + " " + path
	if len(q) > 0 {
		k += "?" + q.Encode()
	}
	return k
}

// on sets the replies for a key such as "GET /repos/o/r/pulls?head=o:b&state=all".
func (g *fakeGitHub) on(key string, replies ...reply) {
	method, rest, _ := strings.Cut(key, " ")
	path, query, _ := strings.Cut(rest, "?")
	g.mu.Lock()
	defer g.mu.Unlock()
	k := normKey(method, path, query)
	g.routes[k] = replies
	g.hits[k] = 0
}

func (g *fakeGitHub) serve(w http.ResponseWriter, r *http.Request) {
	raw, _ := io.ReadAll(r.Body)
	req := request{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Auth: r.Header.Get("Authorization"), IfNoneMatch: r.Header.Get("If-None-Match")}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &req.Body); err != nil {
			g.t.Errorf("%s %s: body is not JSON: %q", r.Method, r.URL, raw)
		}
	}
	k := normKey(r.Method, r.URL.Path, r.URL.RawQuery)
	g.mu.Lock()
	replies := g.routes[k]
	var rep reply
	if len(replies) > 0 {
		i := min(g.hits[k], len(replies)-1)
		g.hits[k]++
		rep = replies[i]
	}
	g.mu.Unlock()
	// Record before answering: the client goes on as soon as it reads
	// the reply.
	record := func(status int) {
		req.Status = status
		g.mu.Lock()
		g.reqs = append(g.reqs, req)
		g.mu.Unlock()
	}
	if rep.status == 0 {
		g.t.Errorf("unexpected request %s", k)
		record(http.StatusTeapot)
		http.Error(w, `{"message":"no fixture for `+k+`"}`, http.StatusTeapot)
		return
	}
	var body []byte
	if rep.file != "" {
		b, err := os.ReadFile(filepath.Join("..", "..", "..", "testdata", "github", rep.file))
		if err != nil {
			g.t.Errorf("fixture: %v", err)
		}
		body = b
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("X-GitHub-Media-Type", "github.v3; format=json")
	w.Header().Set("X-RateLimit-Limit", "5000")
	w.Header().Set("X-RateLimit-Remaining", "4990")
	w.Header().Set("X-RateLimit-Reset", fmt.Sprint(time.Now().Add(time.Hour).Unix()))
	if r.Method == http.MethodGet && rep.status == http.StatusOK {
		sum := sha256.Sum256(body)
		etag := `W/"` + hex.EncodeToString(sum[:16]) + `"`
		w.Header().Set("ETag", etag)
		if r.Header.Get("If-None-Match") == etag {
			record(http.StatusNotModified)
			w.WriteHeader(http.StatusNotModified)
			return
		}
	}
	record(rep.status)
	if rep.status == http.StatusNoContent {
		w.WriteHeader(rep.status)
		return
	}
	w.WriteHeader(rep.status)
	w.Write(body)
}

// requests returns what was sent so far and forgets it.
func (g *fakeGitHub) requests() []request {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := g.reqs
	g.reqs = nil
	return out
}

// newForge points a Forge at the fake (tiny backoff, 3 attempts).
func (g *fakeGitHub) forge(t *testing.T) *Forge {
	t.Helper()
	f, err := New(Options{APIURL: g.srv.URL + "/", Token: token, Owner: owner, Repo: repo, Attempts: 3, Backoff: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// checkAuth asserts every request carried the bearer token.
func checkAuth(t *testing.T, reqs []request) {
	t.Helper()
	for _, r := range reqs {
		if r.Auth != "Bearer "+token {
			t.Errorf("%s %s: Authorization = %q, want the bearer token", r.Method, r.Path, r.Auth)
		}
	}
}

// keys lists "METHOD /path" of the requests, in order.
func keys(reqs []request) []string {
	var out []string
	for _, r := range reqs {
		out = append(out, r.key())
	}
	return out
}

func field(t *testing.T, r request, name string) any {
	t.Helper()
	m, ok := r.Body.(map[string]any)
	if !ok {
		t.Fatalf("%s %s: body %v is not an object", r.Method, r.Path, r.Body)
	}
	return m[name]
}
