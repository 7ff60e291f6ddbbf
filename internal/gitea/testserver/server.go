package testserver

import (
	"hl.dev/hl/internal/testharness"

	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Options tunes Start. The zero value is ready to use.
type Options struct {
	// Binary is the gitea executable; default Binary().
	Binary string
	// SourceDir is the gitea module source (STATIC_ROOT_PATH); default SourceDir().
	SourceDir string
	// AdminUser is the first (admin) user's name; default "hladmin".
	AdminUser string
	// Config overrides app.ini keys: section ("" for the root) → key → value.
	Config map[string]map[string]string
	// StartTimeout bounds waiting for the API to answer; default 60s.
	StartTimeout time.Duration
}

// Server is a running Gitea instance that owns a temporary folder.
type Server struct {
	// URL is the base URL without a trailing slash, e.g. http://127.0.0.1:40123.
	URL string
	// AdminUser and AdminPassword log in as the site administrator.
	AdminUser     string
	AdminPassword string
	// AdminToken is an access token of AdminUser with scope "all".
	AdminToken string
	// Dir holds app.ini, the sqlite database, repositories and logs.
	Dir string

	bin, config string
	mu          sync.Mutex // Kill and Restart
	cmd         *exec.Cmd
	exited      chan struct{} // closed when the process has been reaped
	waitErr     error
	closeOnce   sync.Once
	closeErr    error
	http        *http.Client
	names       atomic.Int64
}

// User is an ordinary account created by CreateUser.
type User struct {
	Name     string
	Password string
	Token    string // scope "all"
}

// Start runs a fresh Gitea and returns once its API answers with Version and
// the admin user and token exist. ctx bounds start-up only; the process lives
// until Close.
func Start(ctx context.Context, opts Options) (_ *Server, err error) {
	if opts.Binary == "" {
		if opts.Binary, err = Binary(); err != nil {
			return nil, err
		}
	}
	if opts.SourceDir == "" {
		if opts.SourceDir, err = SourceDir(ctx); err != nil {
			return nil, err
		}
	}
	if opts.AdminUser == "" {
		opts.AdminUser = "hladmin"
	}
	if opts.StartTimeout == 0 {
		opts.StartTimeout = 60 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, opts.StartTimeout)
	defer cancel()

	dir, err := os.MkdirTemp("", "hl-gitea-*")
	if err != nil {
		return nil, fmt.Errorf("gitea temp dir: %w", err)
	}
	s := &Server{
		Dir:       dir,
		AdminUser: opts.AdminUser,
		bin:       opts.Binary,
		config:    filepath.Join(dir, "app.ini"),
		http:      &http.Client{Timeout: 30 * time.Second},
	}
	defer func() {
		if err != nil {
			_ = s.Close()
		}
	}()

	// The port is free when picked but may be taken before gitea binds it;
	// only that case is worth another try.
	const attempts = 5
	for i := 1; ; i++ {
		err = s.startWeb(ctx, opts)
		if err == nil {
			break
		}
		if i == attempts || !errors.Is(err, errPortInUse) {
			return nil, err
		}
	}
	if err := s.createAdmin(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

var errPortInUse = errors.New("port in use")

func (s *Server) startWeb(ctx context.Context, opts Options) error {
	port, err := testharness.FreePort()
	if err != nil {
		return err
	}
	ini, err := appINI(s.Dir, opts.SourceDir, port, opts.Config)
	if err != nil {
		return err
	}
	// Gitea may write generated values back, so the file must stay writable.
	if err := os.WriteFile(s.config, []byte(ini), 0o600); err != nil {
		return fmt.Errorf("write app.ini: %w", err)
	}
	out, err := os.Create(filepath.Join(s.Dir, "web.out"))
	if err != nil {
		return fmt.Errorf("gitea output file: %w", err)
	}
	defer out.Close() // the child holds its own descriptor

	s.URL = "http://127.0.0.1:" + strconv.Itoa(port)
	if err := s.launch(ctx, out); err != nil {
		logs := s.logTail()
		if strings.Contains(logs, "address already in use") {
			return fmt.Errorf("gitea on port %d: %w", port, errPortInUse)
		}
		return err
	}
	return nil
}

// launch starts `gitea web` with the written app.ini and waits until its
// API answers; on failure the process is gone.
func (s *Server) launch(ctx context.Context, out *os.File) error {
	s.cmd = exec.Command(s.bin, "web", "--config", s.config, "--work-path", s.Dir, "--custom-path", filepath.Join(s.Dir, "custom"))
	s.cmd.Dir = s.Dir
	s.cmd.Env = s.env()
	s.cmd.Stdout = out
	s.cmd.Stderr = out
	s.cmd.SysProcAttr = testharness.SysProcAttr()
	if err := s.cmd.Start(); err != nil {
		s.cmd = nil
		return fmt.Errorf("start gitea: %w", err)
	}
	s.exited = make(chan struct{})
	go func(cmd *exec.Cmd, exited chan struct{}) {
		s.waitErr = cmd.Wait()
		close(exited)
	}(s.cmd, s.exited)

	if err := s.waitReady(ctx); err != nil {
		logs := s.logTail()
		s.kill()
		return fmt.Errorf("%w\n--- gitea output (%s) ---\n%s", err, s.Dir, logs)
	}
	return nil
}

// Kill stops Gitea with SIGKILL, the git processes it runs with it; its
// folder, database and repositories stay for Restart. A no-op when it is
// not running. Use it on a server of the test's own (New), never on the
// shared one.
func (s *Server) Kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.kill()
}

// Restart starts a killed Gitea again on the same port, app.ini and data,
// and waits until its API answers (ctx bounds the wait).
func (s *Server) Restart(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return errors.New("gitea is running")
	}
	out, err := os.OpenFile(filepath.Join(s.Dir, "web.out"), os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("gitea output file: %w", err)
	}
	defer out.Close()
	return s.launch(ctx, out)
}

// env is the parent's environment without GITEA__* overrides, which would
// silently change the app.ini written here.
func (s *Server) env() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "GITEA_") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "GITEA_WORK_DIR="+s.Dir, "GITEA_CUSTOM="+filepath.Join(s.Dir, "custom"))
}

// waitReady polls /api/v1/version until it reports Version.
func (s *Server) waitReady(ctx context.Context) error {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		v, err := s.version(ctx)
		switch {
		case err == nil && v == Version:
			return nil
		case err == nil:
			return fmt.Errorf("gitea at %s reports version %q, want %q (was it built with -X main.Version=%s?)", s.URL, v, Version, Version)
		}
		last = err
		select {
		case <-s.exited:
			return fmt.Errorf("gitea exited before it was ready: %v", s.waitErr)
		case <-ctx.Done():
			return fmt.Errorf("gitea not ready: %w (last error: %v)", ctx.Err(), last)
		case <-tick.C:
		}
	}
}

func (s *Server) version(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var v struct {
		Version string `json:"version"`
	}
	if err := s.do(ctx, http.MethodGet, "/api/v1/version", nil, nil, &v); err != nil {
		return "", err
	}
	return v.Version, nil
}

// createAdmin uses the CLI, the only way to make the first user of a
// registration-disabled instance, then mints the admin token over the API.
func (s *Server) createAdmin(ctx context.Context) error {
	s.AdminPassword = randomPassword()
	cmd := exec.CommandContext(ctx, s.bin, "admin", "user", "create",
		"--config", s.config, "--work-path", s.Dir, "--custom-path", filepath.Join(s.Dir, "custom"),
		"--admin", "--username", s.AdminUser, "--password", s.AdminPassword,
		"--email", s.AdminUser+"@example.com", "--must-change-password=false")
	cmd.Dir = s.Dir
	cmd.Env = s.env()
	cmd.SysProcAttr = testharness.SysProcAttr()
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("gitea admin user create %s: %w\n%s", s.AdminUser, err, out)
	}
	tok, err := s.createToken(ctx, s.AdminUser, s.AdminPassword)
	if err != nil {
		return err
	}
	s.AdminToken = tok
	return nil
}

// UniqueName returns prefix with a suffix not handed out before by this
// server, so tests sharing one instance (also under -count=N) do not collide
// on org, repo or user names.
func (s *Server) UniqueName(prefix string) string {
	return prefix + "-" + strconv.FormatInt(s.names.Add(1), 10)
}

// CreateUser creates an active, non-admin user with a random password and
// an access token of scope "all".
func (s *Server) CreateUser(ctx context.Context, name string) (*User, error) {
	u := &User{Name: name, Password: randomPassword()}
	body := map[string]any{
		"username":             name,
		"email":                name + "@example.com",
		"password":             u.Password,
		"must_change_password": false,
		"send_notify":          false,
	}
	if err := s.do(ctx, http.MethodPost, "/api/v1/admin/users", s.tokenAuth(s.AdminToken), body, nil); err != nil {
		return nil, fmt.Errorf("create gitea user %s: %w", name, err)
	}
	tok, err := s.createToken(ctx, name, u.Password)
	if err != nil {
		return nil, err
	}
	u.Token = tok
	return u, nil
}

// CreateSiteAdmin creates a site administrator with the given name and
// password, as a Gitea chart does from its admin Secret at start-up (no
// token: whoever has the password makes their own).
func (s *Server) CreateSiteAdmin(ctx context.Context, name, password string) error {
	body := map[string]any{
		"username":             name,
		"email":                name + "@example.com",
		"password":             password,
		"must_change_password": false,
		"send_notify":          false,
	}
	if err := s.do(ctx, http.MethodPost, "/api/v1/admin/users", s.tokenAuth(s.AdminToken), body, nil); err != nil {
		return fmt.Errorf("create gitea admin %s: %w", name, err)
	}
	admin := map[string]any{"admin": true, "login_name": name, "source_id": 0}
	if err := s.do(ctx, http.MethodPatch, "/api/v1/admin/users/"+name, s.tokenAuth(s.AdminToken), admin, nil); err != nil {
		return fmt.Errorf("make %s a site administrator: %w", name, err)
	}
	return nil
}

// WaitPushed waits until Gitea has processed the first push to
// owner/repo. Gitea clears a repository's "empty" flag from its push queue,
// after the push itself returned; until then it answers 404 to the
// repository's pull-request API (pulls need a non-empty repository).
func (s *Server) WaitPushed(ctx context.Context, owner, repo string) error {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		var r struct {
			Empty bool `json:"empty"`
		}
		err := s.do(ctx, http.MethodGet, "/api/v1/repos/"+owner+"/"+repo, s.tokenAuth(s.AdminToken), nil, &r)
		if err == nil && !r.Empty {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s/%s still empty after the push: %w (last error: %v)", owner, repo, ctx.Err(), err)
		case <-tick.C:
		}
	}
}

// createToken needs basic auth: Gitea does not let a token mint tokens.
func (s *Server) createToken(ctx context.Context, user, password string) (string, error) {
	body := map[string]any{
		"name":   "hl-test-" + strconv.FormatInt(time.Now().UnixNano(), 36),
		"scopes": []string{"all"},
	}
	var resp struct {
		SHA1 string `json:"sha1"`
	}
	auth := func(r *http.Request) { r.SetBasicAuth(user, password) }
	if err := s.do(ctx, http.MethodPost, "/api/v1/users/"+url.PathEscape(user)+"/tokens", auth, body, &resp); err != nil {
		return "", fmt.Errorf("create token for %s: %w", user, err)
	}
	if resp.SHA1 == "" {
		return "", fmt.Errorf("create token for %s: empty token in response", user)
	}
	return resp.SHA1, nil
}

func (s *Server) tokenAuth(tok string) func(*http.Request) {
	return func(r *http.Request) { r.Header.Set("Authorization", "token "+tok) }
}

// APIError is a non-2xx answer from the Gitea API.
type APIError struct {
	Method, Path string
	StatusCode   int
	Body         string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("%s %s: HTTP %d: %s", e.Method, e.Path, e.StatusCode, e.Body)
}

func (s *Server) do(ctx context.Context, method, path string, auth func(*http.Request), in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, s.URL+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if auth != nil {
		auth(req)
	}
	resp, err := s.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		return &APIError{Method: method, Path: path, StatusCode: resp.StatusCode, Body: strings.TrimSpace(string(b))}
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("%s %s: decode: %w", method, path, err)
		}
	}
	return nil
}

// logTail is the end of gitea's stdout/stderr and log file, for errors.
func (s *Server) logTail() string {
	var b strings.Builder
	for _, name := range []string{"web.out", filepath.Join("log", "gitea.log")} {
		data, err := os.ReadFile(filepath.Join(s.Dir, name))
		if err != nil || len(data) == 0 {
			continue
		}
		if len(data) > 4096 {
			data = data[len(data)-4096:]
		}
		fmt.Fprintf(&b, "[%s]\n%s\n", name, data)
	}
	return b.String()
}

// kill stops the process group (gitea spawns git) and reaps it.
func (s *Server) kill() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	testharness.KillGroup(s.cmd.Process)
	<-s.exited
	s.cmd = nil
}

// Close kills Gitea and removes its folder. It is safe to call twice.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.kill()
		s.mu.Unlock()
		s.closeErr = os.RemoveAll(s.Dir)
	})
	return s.closeErr
}
