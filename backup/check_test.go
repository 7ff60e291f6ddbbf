package backup

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"hl.dev/hl/secrets"
)

// TestResticCheckJob runs the rendered weekly check of the local target
// (CronJob restic-check-local's container command, env and Secret items)
// against a real restic REST server holding one healthy repository, one
// missing (not copied yet) and, after a pack file is deleted, one broken:
// the Job reports ok and skipped and succeeds, then names the broken
// repository and fails, which BackupCheckFailed alerts on.
//
// Seam: the container runs here as a /bin/sh process with the Debian
// restic instead of the restic image in a pod; the Secret's items, mounted
// at /repositories in the pod, are files in a temp folder that REPOSITORIES
// points to.
func TestResticCheckJob(t *testing.T) {
	base := restServer(t)
	r := renderFull(t, "rest:"+base)
	ids := identities(t)

	var job map[string]any
	for _, m := range r.manifests {
		if str(m.Object, "kind") == "CronJob" && str(m.Object, "metadata", "name") == "restic-check-local" {
			job = m.Object
		}
	}
	if job == nil {
		t.Fatal("no CronJob restic-check-local rendered")
	}
	if s := str(job, "spec", "schedule"); s == "" {
		t.Fatal("restic-check-local has no schedule")
	}
	pod := job["spec"].(map[string]any)["jobTemplate"].(map[string]any)["spec"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)
	ctr := pod["containers"].([]any)[0].(map[string]any)
	cmd := toStrings(ctr["command"])
	args := toStrings(ctr["args"])
	if len(cmd) != 2 || cmd[0] != "/bin/sh" || len(args) != 1 {
		t.Fatalf("command %v args %d: want /bin/sh -c and one script", cmd, len(args))
	}

	// The target Secret, decrypted as Argo CD's plugin hands it over.
	plain, err := secrets.Decrypt(mustRead(t, filepath.Join(r.dir, filepath.FromSlash(SecretsDir), "restic-local.sops.yaml")), ids...)
	if err != nil {
		t.Fatal(err)
	}
	sec, err := secrets.ReadSecret(plain)
	if err != nil {
		t.Fatal(err)
	}
	repos := t.TempDir()
	for _, v := range pod["volumes"].([]any) {
		vm := v.(map[string]any)
		if vm["name"] != "repositories" {
			continue
		}
		for _, it := range vm["secret"].(map[string]any)["items"].([]any) {
			im := it.(map[string]any)
			val, ok := sec.Values[im["key"].(string)]
			if !ok {
				t.Fatalf("item %s is not in Secret restic-local", im["key"])
			}
			if err := os.WriteFile(filepath.Join(repos, im["path"].(string)), []byte(val), 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	env := map[string]string{}
	for _, e := range ctr["env"].([]any) {
		em := e.(map[string]any)
		name := em["name"].(string)
		if v, ok := em["value"].(string); ok {
			env[name] = v
			continue
		}
		ref := em["valueFrom"].(map[string]any)["secretKeyRef"].(map[string]any)
		if ref["name"] != "restic-local" {
			t.Fatalf("env %s from Secret %v, want restic-local", name, ref["name"])
		}
		env[name] = sec.Values[ref["key"].(string)]
	}
	if env["REPOSITORIES"] != "/repositories" || env["RESTIC_PASSWORD"] == "" {
		t.Fatalf("env REPOSITORIES=%q, RESTIC_PASSWORD set: %v", env["REPOSITORIES"], env["RESTIC_PASSWORD"] != "")
	}
	env["REPOSITORIES"], env["RESTIC_CACHE_DIR"] = repos, t.TempDir()

	// One repository with a backup, as the paperless-data mover makes it.
	_, venv := paperlessData(t, r)
	if venv["RESTIC_PASSWORD"] != env["RESTIC_PASSWORD"] {
		t.Fatal("the volume's Secret and the target's differ in RESTIC_PASSWORD")
	}
	data := t.TempDir()
	write(t, data, "a", random(t, 256<<10), 0o644)
	runRestic(t, data, venv, "init")
	runRestic(t, data, venv, "backup", "--host", "volsync", ".")

	run := func() (string, error) {
		c := exec.CommandContext(t.Context(), cmd[0], cmd[1], args[0])
		c.Env = environ([]string{"HOME=" + t.TempDir(), "PATH=" + os.Getenv("PATH")}, env)
		var out bytes.Buffer
		c.Stdout, c.Stderr = &out, &out
		err := c.Run()
		return out.String(), err
	}
	out, err := run()
	if err != nil {
		t.Fatalf("check failed on healthy repositories: %v\n%s", err, out)
	}
	for _, want := range []string{"ok: paperless.paperless-data", "skipped: gitea.gitea-shared-storage has no repository yet"} {
		if !strings.Contains(out, want) {
			t.Errorf("check output lacks %q:\n%s", want, out)
		}
	}

	// Bit rot on the server (every pack's bytes flipped, sizes kept): the
	// check must fail and name the repository.
	packs, err := filepath.Glob(filepath.Join(restDir(t, base), "paperless", "paperless-data", "data", "*", "*"))
	if err != nil || len(packs) == 0 {
		t.Fatalf("no pack files in the REST server's repository: %v", err)
	}
	for _, p := range packs {
		b := mustRead(t, p)
		for i := range b {
			b[i] ^= 0xff
		}
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	out, err = run()
	if err == nil {
		t.Fatalf("check passed with the repository's packs rotten:\n%s", out)
	}
	if !strings.Contains(out, "FAILED: paperless.paperless-data") || !strings.Contains(out, "restic check failed for: paperless.paperless-data") {
		t.Errorf("the failure does not name the repository:\n%s", out)
	}
	t.Logf("check output after the damage:\n%s", out)
}

func toStrings(v any) []string {
	var out []string
	for _, x := range v.([]any) {
		out = append(out, x.(string))
	}
	return out
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
