package generator

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// renderedThenRedomained renders the full fixture into a new repo and
// changes spec.domain in the repo's hl.yaml, so that the next render of
// that hl.yaml updates dozens of files (and .hl/ after them). It returns
// the repo and its hl.yaml.
func renderedThenRedomained(t *testing.T) (dir, cfg string) {
	t.Helper()
	dir = t.TempDir()
	mustRender(t, fixture("full"), dir, nil)
	cfg = filepath.Join(dir, "hl.yaml")
	b, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	changed := bytes.ReplaceAll(b, []byte("domain: home.example.com"), []byte("domain: lab.example.org"))
	if bytes.Equal(changed, b) {
		t.Fatal("the fixture's domain is not home.example.com any more")
	}
	if err := os.WriteFile(cfg, changed, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, cfg
}

// assertConverged checks a render's result and the repo against a render
// of the same hl.yaml into an empty folder: no file kept or conflicting,
// the same files, every non-secret one and the merge base byte for byte
// the same (secret files keep their values, so their ciphertext and the
// state file's sums differ), no staging left.
func assertConverged(t *testing.T, dir, cfg string, res *Result) {
	t.Helper()
	for _, f := range res.Files {
		if f.Action == ActionKeep || f.Action == ActionConflict {
			t.Errorf("%s: %s (%s)", f.Path, f.Action, f.Note)
		}
	}
	fresh := filepath.Join(t.TempDir(), "fresh")
	mustRender(t, cfg, fresh, nil)
	want, got := snapshot(t, fresh), snapshot(t, dir)
	for _, tree := range []map[string][]byte{want, got} {
		for p := range tree {
			if isSecretPath(p) || p == stateFile {
				tree[p] = nil // present, content not comparable
			}
		}
	}
	diffSnapshots(t, want, got)
	if l := stagingLeftovers(t, dir); len(l) > 0 {
		t.Errorf("staging left behind: %v", l)
	}
}

// setBeforeOp installs the commit's failure seam for one test.
func setBeforeOp(t *testing.T, fn func(string) error) {
	t.Helper()
	beforeOp = fn
	t.Cleanup(func() { beforeOp = nil })
}

// The acceptance test of issue 15, finding 4: a file that cannot be
// replaced midway (its move fails through the commit's beforeOp seam, the
// way an immutable file or a permission error fails os.Rename) must leave
// the previous tree, merge base included; the next render then writes
// every file, none of them counted as a user edit.
func TestFailedMoveLeavesPreviousTreeAndNextRenderCompletes(t *testing.T) {
	dir, cfg := renderedThenRedomained(t)
	before := snapshot(t, dir)
	const victim = "system/monitoring/values.yaml"
	moved := 0
	setBeforeOp(t, func(p string) error {
		if p == victim {
			return fs.ErrPermission
		}
		moved++
		return nil
	})
	_, err := render(t, cfg, dir, nil)
	if err == nil || !strings.Contains(err.Error(), victim) || !strings.Contains(err.Error(), "rolled back") {
		t.Fatalf("want an error naming %s and the roll-back, got %v", victim, err)
	}
	if moved < 10 {
		t.Fatalf("only %d files moved before %s: the failure was not midway", moved, victim)
	}
	t.Logf("%d files moved before %s failed", moved, victim)
	diffSnapshots(t, before, snapshot(t, dir))
	if l := stagingLeftovers(t, dir); len(l) > 0 {
		t.Errorf("staging left behind: %v", l)
	}

	beforeOp = nil
	res := mustRender(t, cfg, dir, nil)
	updated := 0
	for _, f := range res.Files {
		if f.Action == ActionUpdate {
			updated++
		}
	}
	if updated < moved {
		t.Errorf("the next render updated %d files, the failed one had moved %d", updated, moved)
	}
	assertConverged(t, dir, cfg, res)
}

// killAtEnv makes TestKilledRenderIsRolledBackByTheNextRender's child
// process render the repo in killDirEnv and die at a step of the commit:
// "N" before the Nth move or delete, or a repo path before its move.
const (
	killAtEnv  = "HL_TEST_KILL_RENDER_AT"
	killDirEnv = "HL_TEST_KILL_RENDER_DIR"
)

// A render killed while moving its files into place is rolled back by
// the next render, which then converges. The child is this test binary,
// rendering for real; the commit's beforeOp seam kills it (SIGKILL: no
// deferred cleanup runs, the kernel drops its lock) after N steps.
func TestKilledRenderIsRolledBackByTheNextRender(t *testing.T) {
	if at := os.Getenv(killAtEnv); at != "" {
		killedRender(t, at, os.Getenv(killDirEnv))
		return
	}
	for _, at := range []string{"1", "25", stateFile} {
		t.Run(strings.ReplaceAll(at, "/", "_"), func(t *testing.T) {
			dir, cfg := renderedThenRedomained(t)
			killRender(t, dir, at)
			if _, err := render(t, cfg, dir, func(o *Options) { o.DryRun = true }); err == nil || !strings.Contains(err.Error(), "interrupted") {
				t.Errorf("a dry run on top of the interrupted render: want an error, got %v", err)
			}
			res := mustRender(t, cfg, dir, nil)
			if len(res.Warnings) == 0 || !strings.Contains(res.Warnings[0], "rolled back") {
				t.Errorf("warnings do not tell about the roll-back: %q", res.Warnings)
			}
			assertConverged(t, dir, cfg, res)
		})
	}
}

// killRender runs a render of dir's hl.yaml in a child process that dies
// at step at (see killAtEnv), and checks that it died midway.
func killRender(t *testing.T, dir, at string) {
	t.Helper()
	before := snapshot(t, dir)
	cmd := exec.Command(os.Args[0], "-test.run=^TestKilledRenderIsRolledBackByTheNextRender$", "-test.count=1")
	cmd.Env = append(os.Environ(), killAtEnv+"="+at, killDirEnv+"="+dir)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Exited() {
		t.Fatalf("the render was not killed (%v):\n%s", err, out)
	}
	changed := 0
	for p, b := range snapshot(t, dir) {
		if old, ok := before[p]; !isState(p) && (!ok || !bytes.Equal(old, b)) {
			changed++
		}
	}
	if changed == 0 {
		t.Fatal("the killed render changed no file: the test proves nothing")
	}
	t.Logf("killed at step %s with %d files changed", at, changed)
}

// killedRender is the child of TestKilledRenderIsRolledBackByTheNextRender.
func killedRender(t *testing.T, at, dir string) {
	n, numeric := strconv.Atoi(at)
	steps := 0
	beforeOp = func(p string) error {
		steps++
		if numeric == nil && steps > n || numeric != nil && p == at {
			self, err := os.FindProcess(os.Getpid())
			if err == nil {
				err = self.Kill()
			}
			fmt.Fprintf(os.Stderr, "kill at %s: %v\n", p, err)
			select {} // the kill arrives
		}
		return nil
	}
	_, err := render(t, filepath.Join(dir, "hl.yaml"), dir, nil)
	t.Fatalf("render finished (%v) without reaching step %s", err, at)
}

// A file changed after the render that replaced it died is kept by the
// roll-back and named in a warning, not overwritten with its old content.
func TestRollBackKeepsAFileChangedSinceTheInterruption(t *testing.T) {
	dir, cfg := renderedThenRedomained(t)
	const victim = "system/monitoring/values.yaml"
	killRender(t, dir, stateFile)
	p := filepath.Join(dir, filepath.FromSlash(victim))
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte("lab.example.org")) {
		t.Fatalf("%s was not moved before the kill", victim)
	}
	edited := append(b, "# mine\n"...)
	if err := os.WriteFile(p, edited, 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := render(t, cfg, dir, func(o *Options) { o.AllowConflicts = true })
	if err != nil {
		t.Fatal(err)
	}
	warned := false
	for _, w := range res.Warnings {
		warned = warned || strings.Contains(w, victim) && strings.Contains(w, "kept")
	}
	if !warned {
		t.Errorf("no warning names %s: %q", victim, res.Warnings)
	}
	if got, _ := os.ReadFile(p); !bytes.Contains(got, []byte("# mine")) {
		t.Errorf("the edit to %s was lost", victim)
	}
}

// treeNoFollow reads every file under dir without following links: a
// link is recorded as "-> target".
func treeNoFollow(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if e.Type()&fs.ModeSymlink != 0 {
			target, err := os.Readlink(p)
			out[filepath.ToSlash(rel)] = "-> " + target
			return err
		}
		b, err := os.ReadFile(p)
		out[filepath.ToSlash(rel)] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func sameTree(t *testing.T, what string, before, after map[string]string) {
	t.Helper()
	for p, b := range before {
		if a, ok := after[p]; !ok {
			t.Errorf("%s: %s removed", what, p)
		} else if a != b {
			t.Errorf("%s: %s changed", what, p)
		}
	}
	for p := range after {
		if _, ok := before[p]; !ok {
			t.Errorf("%s: %s added", what, p)
		}
	}
}

// Issue 15, finding 6: a render never reads or writes through a symbolic
// link inside the output folder. It refuses before writing anything,
// naming the link; the link, the repo and the folder it points to stay as
// they were. Each case changes a template below the link, so a render
// that followed it would write there.
func TestRenderRefusesSymlinksInsideTheOutputFolder(t *testing.T) {
	for _, tc := range []struct {
		name, link string
		// inside points the link at a copy inside the repo instead of
		// one outside it.
		inside bool
		edit   string
	}{
		{name: "folder out of the repo", link: "apps/homepage", edit: "apps/homepage/networkpolicy.yaml"},
		{name: "folder in the repo", link: "apps/homepage", inside: true, edit: "apps/homepage/networkpolicy.yaml"},
		{name: "file out of the repo", link: "README.md", edit: "README.md.tmpl"},
		{name: "render state", link: ".hl", edit: "README.md.tmpl"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			mustRender(t, fixture("minimal"), dir, nil)
			elsewhere := filepath.Join(t.TempDir(), "elsewhere")
			if tc.inside {
				elsewhere = filepath.Join(dir, "moved-by-me")
			}
			link := filepath.Join(dir, filepath.FromSlash(tc.link))
			if err := os.Rename(link, elsewhere); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(elsewhere, link); err != nil {
				t.Fatal(err)
			}
			repoBefore, targetBefore := treeNoFollow(t, dir), treeNoFollow(t, filepath.Dir(elsewhere))
			tree := overlay(t, map[string]func(string) string{
				tc.edit: func(s string) string { return s + "\n# changed by the templates\n" },
			})
			_, err := render(t, fixture("minimal"), dir, func(o *Options) { o.Templates = tree })
			if err == nil || !strings.Contains(err.Error(), tc.link+" is a symbolic link") {
				t.Fatalf("want an error naming the link %s, got %v", tc.link, err)
			}
			if outside := strings.Contains(err.Error(), "outside the output folder"); outside == tc.inside {
				t.Errorf("error says outside=%v for a link inside=%v: %v", outside, tc.inside, err)
			}
			sameTree(t, "repo", repoBefore, treeNoFollow(t, dir))
			sameTree(t, "link target", targetBefore, treeNoFollow(t, filepath.Dir(elsewhere)))
		})
	}
}

// --out itself may be a link (the user named it): the render lands in the
// link's target and the link stays.
func TestOutputFolderMayBeALink(t *testing.T) {
	target := filepath.Join(t.TempDir(), "real")
	if err := os.Mkdir(target, 0o755); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "homelab")
	if err := os.Symlink(target, out); err != nil {
		t.Fatal(err)
	}
	mustRender(t, fixture("minimal"), out, nil)
	if fi, err := os.Lstat(out); err != nil || fi.Mode()&fs.ModeSymlink == 0 {
		t.Fatalf("the --out link was replaced (%v)", err)
	}
	if _, err := os.Stat(filepath.Join(target, stateFile)); err != nil {
		t.Errorf("render did not land in the link's target: %v", err)
	}
	res := mustRender(t, fixture("minimal"), out, nil)
	if res.Changed() {
		t.Error("a second render through the --out link changed files")
	}
}

// BenchmarkChangedRerenderFull re-renders the full fixture with spec.domain
// switched back and forth: each render moves 47 of 253 files (and .hl/)
// into place under the journal (hard link, rename) after fsyncing them.
func BenchmarkChangedRerenderFull(b *testing.B) {
	ids := testIdentities(b)
	dir := b.TempDir()
	opts := Options{ConfigPath: fixture("full"), OutDir: dir, Identities: ids, Now: fixedNow}
	if _, err := Render(context.Background(), opts); err != nil {
		b.Fatal(err)
	}
	cfg := filepath.Join(dir, "hl.yaml")
	a, err := os.ReadFile(cfg)
	if err != nil {
		b.Fatal(err)
	}
	other := bytes.ReplaceAll(a, []byte("domain: home.example.com"), []byte("domain: lab.example.org"))
	opts.ConfigPath = cfg
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		next := a
		if i%2 == 0 {
			next = other
		}
		if err := os.WriteFile(cfg, next, 0o644); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		res, err := Render(context.Background(), opts)
		if err != nil || !res.Changed() {
			b.Fatal(err, "nothing changed")
		}
	}
}
