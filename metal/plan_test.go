package metal

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func mustTree(t *testing.T, dir string) Tree {
	t.Helper()
	tr, err := ReadTree(dir)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func editFile(t *testing.T, path, old, new string) {
	t.Helper()
	s := readFile(t, path)
	if !strings.Contains(s, old) {
		t.Fatalf("%s does not contain %q", path, old)
	}
	writeFile(t, path, strings.ReplaceAll(s, old, new))
}

// osPin is the rendered repo's netboot image pin.
func osPin(t *testing.T, dir string) *OSPin {
	t.Helper()
	pin, err := LoadOSPin(dir)
	if err != nil || pin.Kernel.SHA256 == "" || pin.Initrd.SHA256 == "" {
		t.Fatalf("os pin of %s: %+v %v", dir, pin, err)
	}
	return pin
}

func TestPlanOSPinChangeReinstallsEveryNodeServersFirst(t *testing.T) {
	base := renderedRepo(t, "valid/ha")
	head := t.TempDir()
	copyTree(t, base, head)
	// The bot bumps the netboot image pin.
	editFile(t, filepath.Join(head, OSFile), osPin(t, base).Kernel.SHA256, strings.Repeat("a", 64))
	// List an agent first in the index: servers still go first.
	idx := readFile(t, filepath.Join(head, IndexFile))
	i := strings.Index(idx, `  "52:54:00:10:00:11":`)
	j := strings.Index(idx, `  "52:54:00:10:00:12":`)
	agent := idx[i:j]
	idx = strings.Replace(idx, agent, "", 1)
	idx = strings.Replace(idx, "nodes:\n", "nodes:\n"+agent, 1)
	writeFile(t, filepath.Join(head, IndexFile), idx)

	plan, err := PlanRollout(mustTree(t, base), mustTree(t, head))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(plan.Names(), ","); got != "cp1,cp2,cp3,worker1,worker2" {
		t.Fatalf("order %s", got)
	}
	for _, n := range plan.Nodes {
		if len(n.Reasons) != 1 || !strings.Contains(n.Reasons[0], "netboot image re-pinned") {
			t.Errorf("%s: %v", n.Name, n.Reasons)
		}
	}
}

func TestPlanK3sOnlyBumpIsLeftToPlans(t *testing.T) {
	base := renderedRepo(t, "valid/ha")
	head := t.TempDir()
	copyTree(t, base, head)
	idx, _ := LoadIndex(base)
	err := filepath.WalkDir(filepath.Join(head, "metal"), func(p string, e os.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		if s := readFile(t, p); strings.Contains(s, idx.K3s) {
			writeFile(t, p, strings.ReplaceAll(s, idx.K3s, "v1.34.1+k3s1"))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	plan, err := PlanRollout(mustTree(t, base), mustTree(t, head))
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Nodes) != 0 || plan.K3s != "v1.34.1+k3s1" || len(plan.Notes) != 1 || !strings.Contains(plan.Notes[0], "system-upgrade-controller Plans") {
		t.Fatalf("plan %+v", plan)
	}
}

func TestPlanOneNodeChanged(t *testing.T) {
	base := renderedRepo(t, "valid/ha")
	head := t.TempDir()
	copyTree(t, base, head)
	editFile(t, filepath.Join(head, "metal/nodes/cp2/preseed.cfg"), "partman-auto/disk string /dev/sda", "partman-auto/disk string /dev/sdb")
	// Shared files (dnsmasq, boot.ipxe) reinstall nothing.
	editFile(t, filepath.Join(head, DnsmasqConf), "log-dhcp", "log-dhcp\nlog-queries")
	// A new node installs on its first boot.
	editFile(t, filepath.Join(head, IndexFile), "nodes:\n", "nodes:\n  \"52:54:00:10:00:99\":\n    name: new1\n    role: agent\n    ip: 172.16.10.99\n    installConfig: preseed.cfg\n")
	plan, err := PlanRollout(mustTree(t, base), mustTree(t, head))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(plan.Names(), ","); got != "cp2" || !strings.Contains(plan.Nodes[0].Reasons[0], "preseed.cfg") {
		t.Fatalf("plan %+v", plan)
	}
	if len(plan.Notes) != 1 || !strings.Contains(plan.Notes[0], "new1 is new") {
		t.Fatalf("notes %v", plan.Notes)
	}
}

// TestPlanFromGitRevision reads the base from git history (what the
// pipeline's --base HEAD~1 does).
func TestPlanFromGitRevision(t *testing.T) {
	dir := renderedRepo(t, "valid/ha")
	git := func(args ...string) {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"}, args...)...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	git("init", "-q", "-b", "main")
	git("add", "-A")
	git("commit", "-q", "-m", "render")
	editFile(t, filepath.Join(dir, OSFile), osPin(t, dir).Initrd.SHA256, strings.Repeat("b", 64))
	git("commit", "-q", "-am", "bump initrd")
	base, err := ReadTreeAt(dir, "HEAD~1")
	if err != nil {
		t.Fatal(err)
	}
	plan, err := PlanRollout(base, mustTree(t, dir))
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Nodes) != 5 {
		t.Fatalf("plan %v", plan.Names())
	}
	if _, err := ReadTreeAt(dir, "HEAD~5"); err == nil {
		t.Fatal("a missing revision must fail")
	}
}
