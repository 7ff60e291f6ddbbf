package e2e_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"hl.dev/hl/e2e"
	"hl.dev/hl/internal/asrendered"
	"hl.dev/hl/internal/testcharts"
	"hl.dev/hl/secrets"
)

// pipeline is what every step test gets: the rendered repo, committed as
// the forge's main branch, and the hl image.
type pipeline struct {
	lab    *e2e.Homelab
	origin string
	img    *asrendered.Image
}

// stepTests run the rendered Woodpecker steps whose image is hl, by
// "file/step". TestPipelineSteps runs each as a subtest and fails for a
// rendered hl step that has none (and for an entry the render lost).
var stepTests = map[string]func(*testing.T, *pipeline, e2e.PipelineStep){
	"validate.yaml/validate":   testValidateStep,
	"metal.yaml/metal-rollout": testMetalStep,
}

// TestPipelineSteps runs every Woodpecker step of the rendered full
// fixture whose image is hl, as Woodpecker's Kubernetes backend would run
// it (asrendered.StepRun: the commands as one script through the image's
// /bin/sh, as the image's user, the clone mounted as the workspace, the
// CI_* metadata and netrc of a pull request or push).
//
// validate.yaml: on a pull request that changes nothing the step passes
// (hl validate pulls every chart through hl.yaml's spec.mirrors from the
// Helm repositories and OCI registry internal/testcharts serves, then hl
// render --check finds the repo equal to a fresh render); a pull request
// adding a plaintext Secret fails at hl validate, one editing hl.yaml
// without re-rendering fails at hl render --check.
//
// Seams: the clone is a local `git clone` of the rendered repo into the
// workspace (no clone step, no Gitea behind it; the netrc is written but
// nothing reads it); the forge host in CI_REPO_URL resolves nowhere and is
// not needed by these steps; charts come from the test servers named in
// hl.yaml's mirrors (the real upstream repositories are unreachable
// here); internal/testcharts' stand-ins replace the charts no Go module
// ships (its package doc says which).
func TestPipelineSteps(t *testing.T) {
	asrendered.RequireRoot(t)
	img := hlImage(t)
	set := testcharts.Catalog(t)
	set.Charts = append(set.Charts, bumpedChart(t, set, bumpChart, bumpChartTo))
	repos := set.Serve(t)
	lab := render(t, "full", e2e.RenderOptions{ChartMirrors: repos.Mirrors})
	hlRef := renderedHLImage(t, lab.Dir)

	steps, err := e2e.PipelineSteps(lab.Dir)
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]e2e.PipelineStep{}
	for _, s := range steps {
		if s.Image != hlRef {
			continue
		}
		byID[s.ID()] = s
		if stepTests[s.ID()] == nil {
			t.Errorf("rendered step %s runs %s and no test runs it: add it to stepTests and run it", s.ID(), hlRef)
		}
	}
	for id := range stepTests {
		if _, ok := byID[id]; !ok {
			t.Errorf("stepTests names %s, which the render no longer has (or no longer runs in %s)", id, hlRef)
		}
	}

	origin := filepath.Join(t.TempDir(), "origin")
	copyTree(t, lab.Dir, origin)
	if _, err := e2e.CommitAll(origin, "hl render"); err != nil {
		t.Fatal(err)
	}

	p := &pipeline{lab: lab, origin: origin, img: img}
	for _, id := range slices.Sorted(maps.Keys(stepTests)) {
		step, ok := byID[id]
		if !ok {
			continue
		}
		t.Run(id, func(t *testing.T) { stepTests[id](t, p, step) })
	}
}

// testValidateStep: on a pull request that changes nothing the step
// passes, and on one that bumps a chart as the bot's upgrade PRs do (the
// newer chart served, the user's edit kept by render's 3-way merge); one adding a plaintext Secret fails at hl validate (and never
// shows the value); one editing hl.yaml without re-rendering fails at hl
// render --check.
func testValidateStep(t *testing.T, p *pipeline, step e2e.PipelineStep) {
	for _, tc := range []struct {
		name string
		// change is the pull request's change to the clone.
		change func(t *testing.T, dir string)
		exit   int
		// want are lines of the step's output, in order.
		want []string
		// notWant must not appear in the output.
		notWant []string
	}{
		{name: "unchanged", want: []string{"+ hl validate", "+ hl render --check"}},
		{
			// What the bot's upgrade PRs change: the pin, in place.
			name: "chart bumped as the bot bumps it",
			change: func(t *testing.T, dir string) {
				p := filepath.Join(dir, "system", bumpChart, "Chart.yaml")
				data := readFile(t, p)
				edited := strings.Replace(data, "version: "+bumpChartFrom, "version: "+bumpChartTo, 1)
				if edited == data {
					t.Fatalf("%s does not pin %s", p, bumpChartFrom)
				}
				writeFile(t, p, edited)
			},
			want: []string{"+ hl validate", "+ hl render --check"},
		},
		{
			name: "plaintext secret",
			change: func(t *testing.T, dir string) {
				writeFile(t, filepath.Join(dir, "apps", "homepage", "leaked.yaml"),
					"apiVersion: v1\nkind: Secret\nmetadata:\n  name: leaked\n  namespace: homepage\nstringData:\n  password: hunter2-plain\n")
			},
			exit: 1, want: []string{"+ hl validate", "apps/homepage/leaked.yaml"}, notWant: []string{"+ hl render --check", "hunter2-plain"},
		},
		{
			name: "hl.yaml changed, not rendered",
			change: func(t *testing.T, dir string) {
				p := filepath.Join(dir, "hl.yaml")
				data := readFile(t, p)
				edited := strings.Replace(data, "timezone: Europe/London", "timezone: Europe/Paris", 1)
				if edited == data {
					t.Fatal("hl.yaml has no timezone: Europe/London to change")
				}
				writeFile(t, p, edited)
			},
			exit: 1, want: []string{"+ hl validate", "+ hl render --check", "differs from a fresh render"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ws := clone(t, p.origin)
			if tc.change != nil {
				if _, err := e2e.Git(ws, nil, "checkout", "-q", "-b", "change"); err != nil {
					t.Fatal(err)
				}
				tc.change(t, ws)
				if _, err := e2e.CommitAll(ws, "a change"); err != nil {
					t.Fatal(err)
				}
			}
			sha, err := e2e.Git(ws, nil, "rev-parse", "HEAD")
			if err != nil {
				t.Fatal(err)
			}
			pr := e2e.PullRequest{
				ForgeURL: "https://git.home.example.com", Owner: "homelab", Repo: "cluster",
				Number: 7, Source: "change", Target: "main", SHA: sha,
				NetrcUser: "woodpecker", NetrcPassword: "netrc-secret",
			}
			res, err := (&asrendered.StepRun{Image: p.img, Step: step.WoodpeckerStep, Workspace: ws, CI: pr.CI()}).Run(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			out := res.Stdout + res.Stderr
			if res.ExitCode != tc.exit {
				t.Errorf("exit %d, want %d:\n%s", res.ExitCode, tc.exit, out)
			}
			inOrder(t, out, tc.want)
			for _, nw := range tc.notWant {
				if strings.Contains(out, nw) {
					t.Errorf("output has %q:\n%s", nw, out)
				}
			}
		})
	}
}

// clone is Woodpecker's clone step's result: the repository cloned into a
// workspace folder owned by root (the clone runs as root, the steps as
// the image's user).
func clone(t *testing.T, origin string) string {
	t.Helper()
	ws := filepath.Join(t.TempDir(), "ws")
	if _, err := e2e.Git(filepath.Dir(ws), nil, "clone", "-q", origin, ws); err != nil {
		t.Fatal(err)
	}
	if err := e2e.OpenPath(ws); err != nil {
		t.Fatal(err)
	}
	return ws
}

// inOrder checks that want's strings appear in out in that order.
func inOrder(t *testing.T, out string, want []string) {
	t.Helper()
	rest := out
	for _, w := range want {
		i := strings.Index(rest, w)
		if i < 0 {
			t.Errorf("output lacks %q (after the previous expected lines):\n%s", w, out)
			return
		}
		rest = rest[i+len(w):]
	}
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func writeFile(t *testing.T, p, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

// testMetalStep runs metal.yaml's step on a push to main, with the three
// Woodpecker secrets it names injected as the repository's secrets would
// be: hl_metal_api_token decrypted from metal/secrets/metal-api-token, an
// SSH key, a kubeconfig.
//
// A push whose metal/ change needs no reinstall ends after the plan. A
// push changing one node's install file plans that node's reinstall and
// then stops at the first step that needs the cluster.
//
// Seam (what cannot run here): no nodes, no `hl metal serve` at the
// rendered address (metal/nodes.yaml's server on the home network) and
// no API server behind the kubeconfig (it names a closed loopback port):
// the reinstall itself — cordon, drain, reboot over SSH, wait Ready — is
// proved by metal's rollout tests against a real sshd and by the PXE
// end-to-end test, not here; this test proves the step starts as
// rendered, reads the pushed change and its injected credentials, and
// fails clearly without the cluster.
func testMetalStep(t *testing.T, p *pipeline, step e2e.PipelineStep) {
	token := decryptValue(t, p.lab, "metal/secrets/metal-api-token.sops.yaml")
	sshKey := sshPrivateKey(t)
	kubeconfig := "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {server: \"https://127.0.0.1:1\", insecure-skip-tls-verify: true}\nusers:\n- name: u\n  user: {token: not-a-token}\ncontexts:\n- name: c\n  context: {cluster: c, user: u}\ncurrent-context: c\n"
	wpSecrets := map[string]string{"hl_metal_api_token": token, "hl_metal_ssh_key": sshKey, "hl_kubeconfig": kubeconfig}
	for _, tc := range []struct {
		name   string
		change func(t *testing.T, dir string)
		exit   int
		want   []string
	}{
		{
			name: "a new file in metal/, no reinstall",
			change: func(t *testing.T, dir string) {
				appendFile(t, filepath.Join(dir, "metal", "README.md"), "\nA note.\n")
			},
			want: []string{"+ hl metal rollout --base HEAD~1", "metal rollout: HEAD~1", "no node needs a reinstall"},
		},
		{
			name: "install file of worker1 changed",
			change: func(t *testing.T, dir string) {
				appendFile(t, filepath.Join(dir, "metal", "nodes", "worker1", "preseed.cfg"), "\n# a change\n")
			},
			exit: 1,
			want: []string{"+ hl metal rollout --base HEAD~1", "1. worker1", "install files changed: preseed.cfg", "rollout stopped: worker1: preflight", "127.0.0.1:1"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ws := clone(t, p.origin)
			tc.change(t, ws)
			sha, err := e2e.CommitAll(ws, "a metal change")
			if err != nil {
				t.Fatal(err)
			}
			push := e2e.PullRequest{
				ForgeURL: "https://git.home.example.com", Owner: "homelab", Repo: "cluster",
				Target: "main", SHA: sha, NetrcUser: "woodpecker", NetrcPassword: "netrc-secret",
			}
			res, err := (&asrendered.StepRun{Image: p.img, Step: step.WoodpeckerStep, Workspace: ws, CI: push.CI(), Secrets: wpSecrets}).Run(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			out := res.Stdout + res.Stderr
			if res.ExitCode != tc.exit {
				t.Errorf("exit %d, want %d:\n%s", res.ExitCode, tc.exit, out)
			}
			inOrder(t, out, tc.want)
			t.Logf("step output:\n%s", out)
			for _, v := range []string{token, "not-a-token"} {
				if strings.Contains(out, v) {
					t.Errorf("output shows a credential:\n%s", out)
				}
			}
		})
	}
}

// decryptValue is the only value of a repo's SOPS Secret file.
func decryptValue(t *testing.T, lab *e2e.Homelab, rel string) string {
	t.Helper()
	plain, err := secrets.Decrypt([]byte(readFile(t, filepath.Join(lab.Dir, rel))), lab.Identities...)
	if err != nil {
		t.Fatal(err)
	}
	ex, err := secrets.ReadSecret(plain)
	if err != nil {
		t.Fatal(err)
	}
	if len(ex.Values) != 1 {
		t.Fatalf("%s has %d values, want 1", rel, len(ex.Values))
	}
	for _, v := range ex.Values {
		return v
	}
	return ""
}

func sshPrivateKey(t *testing.T) string {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(block))
}

func appendFile(t *testing.T, p, data string) {
	t.Helper()
	f, err := os.OpenFile(p, os.O_APPEND|os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(data); err != nil {
		t.Fatal(err)
	}
}
