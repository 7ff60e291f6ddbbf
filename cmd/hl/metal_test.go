package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"hl.dev/hl/internal/config"
	"hl.dev/hl/templates"
)

// renderHA renders testdata's ha.yaml into a fresh folder.
func renderHA(t *testing.T) string {
	t.Helper()
	key, _ := filepath.Abs("../../testdata/age/test-key.txt")
	t.Setenv("SOPS_AGE_KEY_FILE", key)
	dir := t.TempDir()
	if _, errOut, code := hl(t, "render", "--config", "../../testdata/config/valid/ha.yaml", "--out", dir); code != 0 {
		t.Fatalf("render: %d\n%s", code, errOut)
	}
	return dir
}

func gitIn(t *testing.T, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"}, args...)...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
}

// TestMetalRolloutDryRunOSPin: a commit that changes the OS pin lists
// every node, servers first, and touches nothing.
func TestMetalRolloutDryRunOSPin(t *testing.T) {
	dir := renderHA(t)
	gitIn(t, dir, "init", "-q", "-b", "main")
	gitIn(t, dir, "add", "-A")
	gitIn(t, dir, "commit", "-q", "-m", "render")
	osFile := filepath.Join(dir, "metal", "images.yaml")
	b, _ := os.ReadFile(osFile)
	// The next installer build of the pinned Debian: another folder and
	// another kernel checksum.
	pin, ok := templates.MustCatalog().OSImage(config.DefaultOSName, config.DefaultDebianVersion)
	build := path.Base(strings.TrimSuffix(pin.Kernel.URL, "/images/netboot/debian-installer/amd64/linux"))
	if !ok || !strings.Contains(string(b), "/"+build+"/") || !strings.Contains(string(b), pin.Kernel.SHA256) {
		t.Fatalf("%s does not pin the catalog's %s (%s):\n%s", osFile, pin.Kernel.URL, build, b)
	}
	bumped := strings.ReplaceAll(string(b), "/"+build+"/", "/"+build+"+1/")
	bumped = strings.Replace(bumped, pin.Kernel.SHA256, strings.Repeat("1", 64), 1)
	if err := os.WriteFile(osFile, []byte(bumped), 0o644); err != nil {
		t.Fatal(err)
	}
	gitIn(t, dir, "commit", "-q", "-am", "bump the debian netboot image")

	out, errOut, code := hl(t, "metal", "rollout", "--dry-run", "--dir", dir)
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	var order []string
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) > 1 && strings.HasSuffix(f[0], ".") {
			order = append(order, f[1])
		}
	}
	if strings.Join(order, " ") != "cp1 cp2 cp3 worker1 worker2" || !strings.Contains(out, "netboot image re-pinned") {
		t.Fatalf("plan:\n%s", out)
	}

	out, _, code = hl(t, "metal", "rollout", "--dry-run", "--dir", dir, "-o", "json")
	var plan struct {
		Nodes []struct{ Name string } `json:"nodes"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &plan) != nil || len(plan.Nodes) != 5 {
		t.Fatalf("json plan %d:\n%s", code, out)
	}
}

// TestMetalImagesPullMismatch: a wrong checksum fails loudly and leaves no
// file in the cache; the right one is cached under its sha256.
func TestMetalImagesPullMismatch(t *testing.T) {
	dir := t.TempDir()
	kernel, initrd := []byte("fake kernel\n"), []byte("fake initrd\n")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/linux":
			w.Write(kernel)
		case "/initrd.gz":
			w.Write(initrd)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	sum := func(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }
	write := func(kernelSum string) {
		y := "name: debian\nversion: \"12\"\nrepo: http://deb.example\nkernel:\n  url: http://upstream.example/linux\n  sha256: " + kernelSum +
			"\ninitrd:\n  url: http://upstream.example/initrd.gz\n  sha256: " + sum(initrd) + "\n"
		os.MkdirAll(filepath.Join(dir, "metal"), 0o755)
		if err := os.WriteFile(filepath.Join(dir, "metal", "images.yaml"), []byte(y), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cache := filepath.Join(t.TempDir(), "cache")
	write(sum([]byte("something else")))
	_, errOut, code := hl(t, "metal", "images", "pull", "--dir", dir, "--cache", cache, "--mirror", "http://upstream.example="+srv.URL)
	if code != 1 || !strings.Contains(errOut, "checksum mismatch") {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	filepath.Walk(cache, func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			t.Errorf("left in the cache: %s", p)
		}
		return nil
	})

	// Issue 15, finding 9: --max-size refuses a bigger file, --timeout
	// parses (the stall itself is tested in the metal package).
	write(sum(kernel))
	_, errOut, code = hl(t, "metal", "images", "pull", "--dir", dir, "--cache", cache, "--mirror", "http://upstream.example="+srv.URL, "--max-size", "4", "--timeout", "1m")
	if code != 1 || !strings.Contains(errOut, "larger than the size cap") {
		t.Fatalf("--max-size 4: exit %d: %s", code, errOut)
	}
	if _, errOut, code = hl(t, "metal", "images", "pull", "--dir", dir, "--max-size", "lots"); code == 0 || !strings.Contains(errOut, "max-size") {
		t.Fatalf("--max-size lots: exit %d: %s", code, errOut)
	}
	out, errOut, code := hl(t, "metal", "images", "pull", "--dir", dir, "--cache", cache, "--mirror", "http://upstream.example="+srv.URL, "--max-size", "1Ki")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if b, err := os.ReadFile(filepath.Join(cache, "sha256", sum(kernel))); err != nil || string(b) != string(kernel) {
		t.Fatalf("cached kernel: %v %q\n%s", err, b, out)
	}
}

func TestMetalReprovisionAndStatus(t *testing.T) {
	dir := renderHA(t)
	state := filepath.Join(t.TempDir(), "state.json")
	out, _, code := hl(t, "metal", "status", "--dir", dir, "--state", state)
	if code != 0 || !strings.Contains(out, "cp1") || !strings.Contains(out, "install") {
		t.Fatalf("status %d:\n%s", code, out)
	}
	if _, errOut, code := hl(t, "metal", "reprovision", "nope", "--dir", dir, "--state", state); code != 1 || !strings.Contains(errOut, "no node") {
		t.Fatalf("unknown node: %d %s", code, errOut)
	}
	if _, _, code := hl(t, "metal", "reprovision", "worker1", "--dir", dir, "--state", state); code != 0 {
		t.Fatalf("reprovision: %d", code)
	}
	out, _, _ = hl(t, "metal", "status", "--dir", dir, "--state", state, "-o", "json")
	if !strings.Contains(out, `"name": "worker1"`) {
		t.Fatalf("json status:\n%s", out)
	}
}
