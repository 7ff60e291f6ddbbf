package asrendered_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"hl.dev/hl/e2e/hlimage"
	"hl.dev/hl/internal/asrendered"
	"hl.dev/hl/secrets"
)

const (
	imageRef    = hlimage.Ref
	testVersion = hlimage.Version
)

func TestMain(m *testing.M) {
	if os.Getenv(asNobodyEnv) == "1" {
		os.Exit(asNobody())
	}
	os.Exit(m.Run())
}

// hlImage is the real hl image (release.BuildImage over the cached base
// and hl built as a release builds it), extracted once for every test
// binary that needs it (e2e/hlimage).
func hlImage(t *testing.T) *asrendered.Image {
	t.Helper()
	asrendered.RequireRoot(t)
	img, err := hlimage.Get(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// workspace is a clone as Woodpecker's clone step leaves it: a git
// repository owned by root (the clone runs as root, the steps as the
// image's user).
func workspace(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "docs"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{"README": "readme of the clone\n", "docs/page.md": "a page\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, args := range [][]string{
		{"init", "-q", "-b", "main"},
		{"add", "."},
		{"-c", "user.name=t", "-c", "user.email=t@example.org", "commit", "-q", "-m", "first commit"},
	} {
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v: %s", args, err, out)
		}
	}
	// t.TempDir's folders are 0700: open the path to the clone as a
	// volume mount would be.
	openUpTo(t, dir)
	return dir
}

// openUpTo makes dir and its parents below the temp folder 0755 (the
// image's user must reach a mounted folder, as it would a volume).
func openUpTo(t *testing.T, dir string) {
	t.Helper()
	tmp := filepath.Clean(os.TempDir())
	for p := filepath.Clean(dir); p != tmp && strings.HasPrefix(p, tmp+"/"); p = filepath.Dir(p) {
		if err := os.Chmod(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

func pipelineSteps(t *testing.T) map[string]asrendered.WoodpeckerStep {
	t.Helper()
	data, err := os.ReadFile("testdata/pipeline.yaml")
	if err != nil {
		t.Fatal(err)
	}
	steps, err := asrendered.Steps(data)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]asrendered.WoodpeckerStep{}
	for _, s := range steps {
		byName[s.Name] = s
	}
	return byName
}

func TestStep(t *testing.T) {
	img := hlImage(t)
	steps := pipelineSteps(t)
	ws := workspace(t)
	ci := map[string]string{
		"CI":                "woodpecker",
		"CI_REPO":           "owner/repo",
		"CI_REPO_URL":       "https://git.example.org/owner/repo",
		"CI_PIPELINE_EVENT": "pull_request",
		"CI_NETRC_MACHINE":  "git.example.org",
		"CI_NETRC_USERNAME": "bot",
		"CI_NETRC_PASSWORD": "netrc-password",
	}
	secrets := map[string]string{"api_token": "s3cret-value"}
	const wsPath = "/woodpecker/src/git.example.org/owner/repo"
	for _, tc := range []struct {
		step     string
		exit     int
		want     []string
		notWant  []string
		errMatch string
	}{
		{step: "inspect", want: []string{
			"+ echo \"who=$(id -u):$(id -g) home=$HOME pwd=$PWD shell=$SHELL\"\n",
			"who=65532:65532 home=/home/hl pwd=" + wsPath + " shell=/bin/sh\n",
			"plain=a value with spaces number=3 flag=true list=a,b repo=overridden/by-step\n",
			"token-ok\n",
			"ws=" + wsPath + " event=pull_request script=unset netrc=unset\n",
			"readme of the clone\n",
			"first commit\n",
			testVersion,
			"+ echo 'single $QUOTED'\nsingle $QUOTED\n",
		}},
		{step: "stops-at-first-failure", exit: 1, want: []string{"before\n", "+ test 1 = 2\n"}, notWant: []string{"after"}},
		{step: "in-a-folder", want: []string{wsPath + "/docs\n", "a page\n"}},
		{step: "missing-secret", errMatch: `secret "not_defined" not found`},
	} {
		t.Run(tc.step, func(t *testing.T) {
			r := &asrendered.StepRun{Image: img, Step: steps[tc.step], Workspace: ws, CI: ci, Secrets: secrets}
			res, err := r.Run(t.Context())
			if tc.errMatch != "" {
				if err == nil || !strings.Contains(err.Error(), tc.errMatch) {
					t.Fatalf("error %v, want %q", err, tc.errMatch)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if res.ExitCode != tc.exit {
				t.Errorf("exit %d, want %d; stderr: %s", res.ExitCode, tc.exit, res.Stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(res.Stdout, w) {
					t.Errorf("stdout lacks %q:\n%s", w, res.Stdout)
				}
			}
			for _, nw := range tc.notWant {
				if strings.Contains(res.Stdout, nw) {
					t.Errorf("stdout has %q:\n%s", nw, res.Stdout)
				}
			}
		})
	}
	// The netrc the script writes lands in the user's home, inside the
	// run's own layer: the image folder itself stays untouched.
	if _, err := os.Stat(filepath.Join(img.Root, "home", "hl", ".netrc")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a run wrote into the shared image folder: %v", err)
	}
}

// TestScript compares the generated script with the shape Woodpecker's
// common.generateScriptPosix produces.
func TestScript(t *testing.T) {
	got := asrendered.Script([]string{"go test ./...", "echo 'x'"}, "/woodpecker/src/h/o/r")
	want := `
if [ -n "$CI_NETRC_MACHINE" ]; then
cat <<EOF > $HOME/.netrc
machine $CI_NETRC_MACHINE
login $CI_NETRC_USERNAME
password $CI_NETRC_PASSWORD
EOF
chmod 0600 $HOME/.netrc
fi
unset CI_NETRC_USERNAME
unset CI_NETRC_PASSWORD
unset CI_SCRIPT
mkdir -p "/woodpecker/src/h/o/r"
cd "/woodpecker/src/h/o/r"

echo + 'go test ./...'
go test ./...

echo + 'echo '"'"'x'"'"''
echo 'x'
`
	if got != want {
		t.Errorf("script:\n%s\nwant:\n%s", got, want)
	}
}

func TestWorkspacePathFor(t *testing.T) {
	for in, want := range map[string]string{
		"https://git.example.org/owner/repo":        "src/git.example.org/owner/repo",
		"http://gitea.local:3000/homelab/cluster":   "src/gitea.local/homelab/cluster",
		"https://user@forge.example.org/o/r":        "src/forge.example.org/o/r",
		"https://git.example.org/owner/repo.git/..": "src/git.example.org/owner",
	} {
		if got := asrendered.WorkspacePathFor(in); got != want {
			t.Errorf("%s: %s, want %s", in, got, want)
		}
	}
}

func loadPod(t *testing.T) (*asrendered.Objects, asrendered.Workload) {
	t.Helper()
	f, err := os.Open("testdata/pod.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	objs, err := asrendered.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	w, ok := objs.Workloads["Deployment/demo/app"]
	if !ok {
		t.Fatalf("no Deployment/demo/app in %v", objs.Workloads)
	}
	return objs, w
}

func TestPod(t *testing.T) {
	img := hlImage(t)
	objs, w := loadPod(t)
	r := &asrendered.PodRun{
		Spec: w.Template.Spec, PodName: "app-7d9f", Namespace: "demo",
		Images:     map[string]*asrendered.Image{imageRef: img},
		ConfigMaps: objs.ConfigMaps, Secrets: objs.Secrets,
		ServiceEnv: map[string]string{"KUBERNETES_SERVICE_HOST": "127.0.0.1"},
	}
	res, err := r.Run(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if res.ExitCode != 0 {
		t.Fatalf("exit %d: %s%s", res.ExitCode, res.Stdout, res.Stderr)
	}
	for _, want := range []string{
		"argv=hello world escaped=$(GREETING) unknown=$(NOPE)\n",
		// fsGroup joins the image user's groups.
		"who=65532:65532 groups=65532 home=/home/hl pwd=/home/hl\n",
		"env greeting=hello world token=s3cret-token password=from-string-data pod=app-7d9f ns=demo optional=unset\n",
		"envFrom name=world level=debug\n",
		"svc=127.0.0.1\n",
		// defaultMode 0400 plus fsGroup's g+r, group-owned by fsGroup.
		"secret=s3cret-token mode=440 0:65532\n",
		"layout=..2006_01_02_15_04_05.000000000 ..data/nested\n",
		"config=world single=apiVersion: hl.dev/v1alpha1\n",
		"secret-read-only\n",
		"root-read-only\n",
		"tmp-writable 2777\n",
		"127.0.0.9\taliased.example\n",
		"hostname=app-7d9f\n",
	} {
		if !strings.Contains(res.Stdout, want) {
			t.Errorf("stdout lacks %q:\n%s\nstderr: %s", want, res.Stdout, res.Stderr)
		}
	}
}

func TestPodRefusals(t *testing.T) {
	img := hlImage(t)
	objs, w := loadPod(t)
	root := int64(0)
	for _, tc := range []struct {
		name   string
		mutate func(*asrendered.PodRun)
		want   string
	}{
		{"runAsNonRoot as root", func(r *asrendered.PodRun) { r.Spec.SecurityContext.RunAsUser = &root },
			"container has runAsNonRoot and image will run as root"},
		{"missing secret", func(r *asrendered.PodRun) { r.Secrets = nil }, `secret "app-secret" not found`},
		{"missing key", func(r *asrendered.PodRun) {
			r.Spec.Containers[0].Env[0].ValueFrom.ConfigMapKeyRef.Key = "absent"
		}, "couldn't find key absent in configmap app-config"},
		{"no image", func(r *asrendered.PodRun) { r.Images = nil }, "no image given for"},
		{"unknown volume type", func(r *asrendered.PodRun) {
			r.Spec.Volumes[2] = corev1.Volume{Name: "tmp", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "x"}}}
		}, "give its folder in HostVolumes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &asrendered.PodRun{
				Spec: *w.Template.Spec.DeepCopy(), PodName: "p", Namespace: "demo",
				Images:     map[string]*asrendered.Image{imageRef: img},
				ConfigMaps: objs.ConfigMaps, Secrets: objs.Secrets,
			}
			tc.mutate(r)
			_, err := r.Run(t.Context())
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Errorf("error quotes a secret value: %v", err)
			}
		})
	}
}

// TestPodServer starts a long-running container and stops it as a kubelet
// does (SIGTERM, then SIGKILL after the grace period).
func TestPodServer(t *testing.T) {
	img := hlImage(t)
	var out bytes.Buffer
	var mu sync.Mutex
	r := &asrendered.PodRun{
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "srv", Image: imageRef, Command: []string{"/bin/sh", "-c"},
			Args: []string{"trap 'echo got-term; exit 3' TERM; echo started; while :; do sleep 0.1; done"},
		}}},
		PodName: "srv", Namespace: "demo",
		Images: map[string]*asrendered.Image{imageRef: img},
		Stdout: writerFunc(func(p []byte) (int, error) { mu.Lock(); defer mu.Unlock(); return out.Write(p) }),
	}
	p, err := r.Start(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		ok := strings.Contains(out.String(), "started")
		mu.Unlock()
		if ok {
			break
		}
		if time.Now().After(deadline) {
			p.Kill()
			t.Fatal("server never started")
		}
		time.Sleep(20 * time.Millisecond)
	}
	code, err := p.Stop(10 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if code != 3 || !strings.Contains(out.String(), "got-term") {
		t.Errorf("exit %d, output %q: want the TERM trap's exit 3", code, out.String())
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// TestDecryptSecrets encrypts a Secret with SOPS/age as the repo holds it
// and decrypts it as the cluster does (the image's hl secrets manifests);
// the in-process secrets.Manifests agrees.
func TestDecryptSecrets(t *testing.T) {
	img := hlImage(t)
	var key bytes.Buffer
	recipient, err := secrets.GenerateIdentity(&key)
	if err != nil {
		t.Fatal(err)
	}
	plain := []byte("apiVersion: v1\nkind: Secret\nmetadata:\n  name: bot-token\n  namespace: hl-bot\ntype: Opaque\nstringData:\n  token: tok-123\n")
	cipher, err := secrets.Encrypt(plain, []string{recipient})
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(cipher, []byte("tok-123")) {
		t.Fatal("cipher text holds the value")
	}
	dir := t.TempDir()
	openUpTo(t, dir)
	if err := os.WriteFile(filepath.Join(dir, "bot-token.sops.yaml"), cipher, 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := asrendered.DecryptSecrets(t.Context(), img, dir, key.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Name != "bot-token" || got[0].StringData["token"] != "tok-123" {
		t.Fatalf("decrypted %+v", got)
	}
	ids, err := secrets.ParseIdentities(key.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	var inproc bytes.Buffer
	if err := secrets.Manifests(dir, ids, &inproc); err != nil {
		t.Fatal(err)
	}
	want, err := asrendered.DecodeSecrets(&inproc)
	if err != nil {
		t.Fatal(err)
	}
	if len(want) != 1 || want[0].StringData["token"] != got[0].StringData["token"] {
		t.Errorf("in-process %+v, image %+v", want, got)
	}
	// A wrong key fails with the plugin's error, not an empty stream.
	var other bytes.Buffer
	if _, err := secrets.GenerateIdentity(&other); err != nil {
		t.Fatal(err)
	}
	if _, err := asrendered.DecryptSecrets(t.Context(), img, dir, other.Bytes()); err == nil {
		t.Error("decrypted with a key that is no recipient")
	}
}

// TestNotRoot runs this test binary as nobody (TestMain's asNobody
// branch): a run must fail with ErrNotRoot's message, never skip.
func TestNotRoot(t *testing.T) {
	asrendered.RequireRoot(t)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	openUpTo(t, dir)
	bin := filepath.Join(dir, "asrendered.test")
	data, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), asNobodyEnv+"=1")
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 3 {
		t.Fatalf("as nobody: %v, want exit 3 (a run refused): %s", err, out)
	}
	if !strings.Contains(string(out), "needs root") || !strings.Contains(string(out), "run the tests as root") {
		t.Errorf("output lacks the clear message:\n%s", out)
	}
}

const asNobodyEnv = "ASRENDERED_TEST_AS_NOBODY"

// asNobody is TestNotRoot's child: a step run without root; exit 3 when
// it was refused with ErrNotRoot, 1 otherwise.
func asNobody() int {
	img := &asrendered.Image{Root: "/nonexistent"}
	r := &asrendered.StepRun{Image: img, Step: asrendered.WoodpeckerStep{Name: "s", Commands: []string{"true"}}, Workspace: "/", WorkspacePath: "src/x"}
	_, err := r.Run(context.Background())
	os.Stderr.WriteString(fmt.Sprintf("uid %d: %v\n", os.Geteuid(), err))
	if errors.Is(err, asrendered.ErrNotRoot) {
		return 3
	}
	return 1
}
