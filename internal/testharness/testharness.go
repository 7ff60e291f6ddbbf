// Package testharness is what the harnesses of the real servers tests run
// against (internal/gitea/testserver, internal/kube/testserver,
// internal/argocd/testserver) share: one instance of each per test
// binary, started on first use and stopped by Main whatever harnesses a
// package combines; finding the cached binaries the build scripts make;
// the process group and parent-death signal of every server process; free
// loopback ports.
package testharness

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

var reg struct {
	mu      sync.Mutex
	inMain  bool
	entries map[string]*entry
	order   []*entry
}

type entry struct {
	once  sync.Once
	name  string
	val   any
	close func() error
	err   error
}

// Main runs the package's tests and then stops every shared server
// started, newest first. Call it from TestMain:
//
//	func TestMain(m *testing.M) { testharness.Main(m) }
func Main(m *testing.M) {
	reg.mu.Lock()
	reg.inMain = true
	reg.mu.Unlock()
	code := m.Run()
	reg.mu.Lock()
	order := reg.order
	reg.mu.Unlock()
	for i := len(order) - 1; i >= 0; i-- {
		e := order[i]
		if e.close == nil {
			continue
		}
		if err := e.close(); err != nil {
			fmt.Fprintf(os.Stderr, "testharness: close shared %s: %v\n", e.name, err)
		}
	}
	os.Exit(code)
}

// Shared returns the package's shared server named name, started by start
// on first use; its closer runs at the end of Main. A start error fails
// the test through fatal (never a skip), for every test that asks.
func Shared[T any](t testing.TB, name string, start func() (T, func() error, error), fatal func(testing.TB, error)) T {
	t.Helper()
	reg.mu.Lock()
	if !reg.inMain {
		reg.mu.Unlock()
		t.Fatalf("the shared %s needs `func TestMain(m *testing.M) { testharness.Main(m) }` in this package (or a per-test server)", name)
	}
	if reg.entries == nil {
		reg.entries = map[string]*entry{}
	}
	e := reg.entries[name]
	if e == nil {
		e = &entry{name: name}
		reg.entries[name] = e
	}
	reg.mu.Unlock()
	e.once.Do(func() {
		var v T
		v, e.close, e.err = start()
		e.val = v
		reg.mu.Lock()
		reg.order = append(reg.order, e)
		reg.mu.Unlock()
	})
	if e.err != nil {
		fatal(t, e.err)
	}
	return e.val.(T)
}

// ErrNoBinary is returned (wrapped) when a server binary is not built.
var ErrNoBinary = errors.New("binary not found")

// Binary finds an executable: the file $env names when set, else
// <cache root>/<rel> where the cache root is $cacheEnv or <repo>/.cache/<dir>
// and the repo is the nearest folder above the working directory with a
// go.mod.
func Binary(env, cacheEnv, dir, rel string) (string, error) {
	if p := os.Getenv(env); p != "" {
		if err := CheckExecutable(p); err != nil {
			return "", fmt.Errorf("%s=%s: %w", env, p, err)
		}
		return p, nil
	}
	root, err := CacheRoot(cacheEnv, dir)
	if err != nil {
		return "", err
	}
	p := filepath.Join(root, filepath.FromSlash(rel))
	if err := CheckExecutable(p); err != nil {
		return "", fmt.Errorf("%w (looked for %s)", err, p)
	}
	return p, nil
}

// CacheRoot is $cacheEnv, else <repo>/.cache/<dir>.
func CacheRoot(cacheEnv, dir string) (string, error) {
	if root := os.Getenv(cacheEnv); root != "" {
		return root, nil
	}
	repo, err := RepoRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(repo, ".cache", dir), nil
}

// CheckExecutable reports whether p is an executable file (ErrNoBinary
// when it does not exist).
func CheckExecutable(p string) error {
	AwaitBuild(p)
	fi, err := os.Stat(p)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return ErrNoBinary
		}
		return err
	}
	if fi.IsDir() || fi.Mode()&0o111 == 0 {
		return fmt.Errorf("%s is not an executable file", p)
	}
	return nil
}

// RepoRoot is the nearest folder above the working directory that holds
// go.mod.
func RepoRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find repo root: %w", err)
	}
	for dir := wd; ; {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("find repo root: no go.mod above %s", wd)
		}
		dir = parent
	}
}

// FreePort returns a TCP port free on 127.0.0.1 when asked (another
// process may take it before it is bound: callers retry on that).
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Closer is a running server.
type Closer interface{ Close() error }

// PerTest starts a server for t only (with t's context), closed when t
// ends; a start error fails the test through fatal.
func PerTest[T Closer](t testing.TB, name string, start func(context.Context) (T, error), fatal func(testing.TB, error)) T {
	t.Helper()
	srv, err := start(t.Context())
	if err != nil {
		fatal(t, err)
	}
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("close %s: %v", name, err)
		}
	})
	return srv
}

// shareCloser adapts a server's start to Shared.
func shareCloser[T Closer](start func(context.Context) (T, error)) func() (T, func() error, error) {
	return func() (T, func() error, error) {
		// Background, not a test's context: the server outlives the test.
		srv, err := start(context.Background())
		if err != nil {
			var zero T
			return zero, nil, err
		}
		return srv, srv.Close, nil
	}
}

// SharedServer is Shared for a server started by start.
func SharedServer[T Closer](t testing.TB, name string, start func(context.Context) (T, error), fatal func(testing.TB, error)) T {
	t.Helper()
	return Shared(t, name, shareCloser(start), fatal)
}
