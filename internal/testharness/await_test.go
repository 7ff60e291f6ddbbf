package testharness

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// A test that needs a binary `make test` is still building waits until
// the file is there; with no build running (no pid file, or its process
// gone) it does not wait at all.
func TestAwaitBuild(t *testing.T) {
	dir := t.TempDir()
	pidfile := filepath.Join(dir, "harness-build.pid")
	bin := filepath.Join(dir, "gitea")

	// No build: at once.
	done := make(chan struct{})
	go func() { awaitBuild(pidfile, bin, 10*time.Millisecond); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("waited with no build running")
	}

	// A build running (a live process stands in for it): waits for the file.
	builder := exec.Command("sleep", "60")
	if err := builder.Start(); err != nil {
		t.Fatal(err)
	}
	defer builder.Process.Kill()
	if err := os.WriteFile(pidfile, []byte(strconv.Itoa(builder.Process.Pid)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	done = make(chan struct{})
	go func() { awaitBuild(pidfile, bin, 10*time.Millisecond); close(done) }()
	select {
	case <-done:
		t.Fatal("returned while the build runs and the binary is missing")
	case <-time.After(300 * time.Millisecond):
	}
	if err := os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("still waiting after the binary appeared")
	}

	// The build dies without making the file: the wait ends.
	os.Remove(bin)
	done = make(chan struct{})
	go func() { awaitBuild(pidfile, bin, 10*time.Millisecond); close(done) }()
	builder.Process.Kill()
	builder.Wait()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("still waiting after the build ended")
	}
}
