package main

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"hl.dev/hl/internal/testharness"
)

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// TestBotServeProcess runs the real hl binary as `hl bot serve`, checks its
// HTTP endpoints and that SIGTERM stops it cleanly with exit status 0.
func TestBotServeProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the hl binary")
	}
	if runtime.GOOS == "windows" {
		t.Skip("needs SIGTERM")
	}
	tmp := t.TempDir()
	bin := filepath.Join(tmp, "hl")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	repo := filepath.Join(tmp, "repo")
	if err := os.MkdirAll(repo, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg, err := os.ReadFile("../../testdata/config/valid/minimal.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// Point the forge at a closed local port so the dry-run passes fail
	// fast instead of waiting on DNS.
	cfg = bytes.Replace(cfg, []byte("url: https://git.home.example.com"), []byte("url: http://127.0.0.1:1"), 1)
	if err := os.WriteFile(filepath.Join(repo, "hl.yaml"), cfg, 0o644); err != nil {
		t.Fatal(err)
	}

	addr := freePort(t)
	cmd := exec.Command(bin, "bot", "serve",
		"--config", filepath.Join(repo, "hl.yaml"),
		"--listen", addr,
		"--schedule", "@every 1s", "--schedule-seconds",
		"--lock-file", filepath.Join(tmp, "bot.lock"),
		"--shutdown-timeout", "5s",
		"--dry-run")
	cmd.Dir = repo
	cmd.Env = append(os.Environ(), "HL_FORGE_TOKEN=dummy", "HL_WEBHOOK_SECRET=s3cret", "HOME="+tmp)
	var logs testharness.SyncBuffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitErr := make(chan error, 1)
	go func() { waitErr <- cmd.Wait() }()
	exited := false
	t.Cleanup(func() {
		if !exited {
			cmd.Process.Kill()
			<-waitErr
		}
		if t.Failed() {
			t.Logf("hl bot serve output:\n%s", logs.String())
		}
	})

	base := "http://" + addr
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := client.Get(base + "/healthz")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case err := <-waitErr:
			exited = true
			t.Fatalf("hl bot serve exited before /healthz was up: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("/healthz not 200 within 20s (last err %v)", err)
		}
		time.Sleep(50 * time.Millisecond)
	}

	resp, err := client.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %d", resp.StatusCode)
	}
	var names []string
	for _, l := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(l, "# TYPE hl_") {
			names = append(names, strings.Fields(l)[2])
		}
	}
	if len(names) == 0 || !strings.Contains(string(body), "hl_bot_webhooks_total") {
		t.Fatalf("/metrics has no hl_ metrics (want hl_bot_webhooks_total):\n%s", body)
	}
	t.Logf("metrics: %v", names)

	req, _ := http.NewRequest(http.MethodPost, base+"/webhook", strings.NewReader(`{"action":"closed"}`))
	req.Header.Set("X-Gitea-Event", "pull_request")
	req.Header.Set("X-Gitea-Signature", "deadbeef")
	req.Header.Set("Content-Type", "application/json")
	resp, err = client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("webhook with bad signature: %d, want 401", resp.StatusCode)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-waitErr:
		exited = true
		if err != nil {
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				t.Fatalf("exit status %d after SIGTERM, want 0", ee.ExitCode())
			}
			t.Fatal(err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("hl bot serve did not exit within 15s of SIGTERM")
	}
	out := logs.String()
	for _, want := range []string{"shutting down", "stopped"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q", want)
		}
	}
	if !strings.Contains(out, "webhook rejected: bad signature") {
		t.Errorf("log lacks the rejected webhook")
	}
	if !strings.Contains(out, "stopped cleanly") && !strings.Contains(out, "stopped: run abandoned") {
		t.Errorf("log shows no clean stop")
	}
}
