package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"hl.dev/hl/bootstrap"
	"hl.dev/hl/internal/gitea/testserver"
	"hl.dev/hl/internal/iostreams"
)

// hlIn runs the CLI with stdin and a TTY setting.
func hlIn(t *testing.T, stdin string, tty bool, args ...string) (string, string, int) {
	t.Helper()
	ios, in, out, errOut := iostreams.Test()
	in.WriteString(stdin)
	ios.SetTTY(false, tty)
	code := run(ios, args)
	return out.String(), errOut.String(), code
}

// renderSmall renders testdata/bootstrap/small.yaml with the test age key
// into a new folder and returns the folder and the key file.
func renderSmall(t *testing.T) (dir, key string) {
	t.Helper()
	key, _ = filepath.Abs("../../testdata/age/test-key.txt")
	dir = t.TempDir()
	cfg, err := os.ReadFile("../../testdata/bootstrap/small.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "hl.yaml"), cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := hl(t, "render", "--config", filepath.Join(dir, "hl.yaml"), "--age-key", key); code != 0 {
		t.Fatalf("render: exit %d\n%s", code, errOut)
	}
	return dir, key
}

func TestBootstrapGitea(t *testing.T) {
	// A server of its own: this package has no TestMain sharing one.
	srv := testserver.New(t, testserver.Options{})
	dir, key := renderSmall(t)
	t.Setenv(envGiteaToken, srv.AdminToken)
	args := []string{"bootstrap", "gitea", "--dir", dir, "--url", srv.URL, "--owner", "lab", "--repo", "cluster", "--bot-user", "cli-bot", "--age-key", key}
	noSecrets := func(t *testing.T, outs ...string) {
		t.Helper()
		for _, o := range outs {
			if strings.Contains(o, srv.AdminToken) {
				t.Error("the token was printed")
			}
		}
	}

	t.Run("dry run prints the plan", func(t *testing.T) {
		out, errOut, code := hlIn(t, "", false, append(args, "--dry-run")...)
		if code != 0 {
			t.Fatalf("exit %d\n%s%s", code, out, errOut)
		}
		if !strings.Contains(out, "? repo                would     create private repository lab/cluster") || !strings.Contains(errOut, "nothing was changed") {
			t.Errorf("plan:\n%s%s", out, errOut)
		}
		noSecrets(t, out, errOut)
	})

	t.Run("json result", func(t *testing.T) {
		out, errOut, code := hlIn(t, "", false, append(args, "-o", "json")...)
		if code != 0 {
			t.Fatalf("exit %d\n%s%s", code, out, errOut)
		}
		var res bootstrap.Result
		if err := json.Unmarshal([]byte(out), &res); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		if !res.Changed || len(res.Steps) != 16 {
			t.Errorf("changed=%v, %d steps", res.Changed, len(res.Steps))
		}
		for _, s := range res.Steps {
			if s.Status == bootstrap.StatusFailed || s.Status == bootstrap.StatusPlanned {
				t.Errorf("step %s: %s", s.Name, s.Status)
			}
		}
		noSecrets(t, out, errOut)
	})

	t.Run("second run says unchanged per step", func(t *testing.T) {
		out, errOut, code := hlIn(t, "", false, args...)
		if code != 0 {
			t.Fatalf("exit %d\n%s%s", code, out, errOut)
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 16 {
			t.Fatalf("%d lines, want one per step:\n%s", len(lines), out)
		}
		for _, l := range lines {
			if !strings.Contains(l, " unchanged ") {
				t.Errorf("not unchanged: %s", l)
			}
		}
		if !strings.Contains(errOut, "0 created, 0 updated, 16 unchanged") {
			t.Errorf("summary: %s", errOut)
		}
		noSecrets(t, out, errOut)
	})

	t.Run("progress on a terminal", func(t *testing.T) {
		out, _, code := hlIn(t, "", true, args...)
		if code != 0 || !strings.Contains(out, "  owner               ...\r\033[K= owner ") {
			t.Errorf("exit %d, no live progress:\n%q", code, out)
		}
	})

	t.Run("token from stdin", func(t *testing.T) {
		t.Setenv(envGiteaToken, "")
		out, errOut, code := hlIn(t, srv.AdminToken+"\n", false, append(args, "--token-file", "-")...)
		if code != 0 {
			t.Fatalf("exit %d\n%s%s", code, out, errOut)
		}
		noSecrets(t, out, errOut)
	})

	t.Run("no token", func(t *testing.T) {
		t.Setenv(envGiteaToken, "")
		_, errOut, code := hlIn(t, "", false, args...)
		if code != 2 || !strings.Contains(errOut, envGiteaToken) {
			t.Errorf("exit %d: %s", code, errOut)
		}
	})

	t.Run("wrong token", func(t *testing.T) {
		bad := strings.Repeat("f", 40)
		t.Setenv(envGiteaToken, bad)
		out, errOut, code := hlIn(t, "", false, append(args, "--owner", "other")...)
		if code != 1 || !strings.Contains(errOut, "rejected the token") || strings.Contains(out+errOut, bad) {
			t.Errorf("exit %d:\n%s%s", code, out, errOut)
		}
	})
}
