package e2e_test

import (
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/kubernetes"
	sigsyaml "sigs.k8s.io/yaml"

	"hl.dev/hl/e2e"
	"hl.dev/hl/internal/asrendered"
	kubets "hl.dev/hl/internal/kube/testserver"
	"hl.dev/hl/internal/kubeclient"
	"hl.dev/hl/internal/testcharts"
	"hl.dev/hl/validate"
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

// testMetalStep runs metal.yaml's step on a push to main as Woodpecker's
// Kubernetes backend runs it in the rendered cluster, against a real API
// server: the agent settings come from the rendered
// platform/woodpecker/values.yaml (native secrets and service accounts
// from steps allowed, the pipeline namespace); the step's native secrets
// are the rendered Secrets of that namespace, decrypted as the cluster
// gets them (metal-api-token, metal-rollout-ssh); its service account is
// the rendered ServiceAccount with the rendered ClusterRole and binding
// (rendered by validate.Render as Argo CD would, kustomize and Helm
// in-process) applied to the API server, and the token the kubelet would
// mount (a TokenRequest for that account).
//
// A push whose metal/ change needs no reinstall ends after the plan. A
// push changing one node's install file goes, as the rollout
// ServiceAccount, through preflight, cordon, drain and the removal of
// the node's k3s password, then stops at marking the reinstall: the
// account could do each (the node is left cordoned, its password gone,
// another Secret untouched), and it cannot read or delete any Secret.
//
// Seams (what cannot run here): no Woodpecker agent (StepKube does what
// its Kubernetes backend does with backend_options); no kubelet (the
// token a TokenRequest returns is mounted as the projected volume would
// be; the Nodes are objects the test creates Ready); no `hl metal serve`
// at the rendered address (metal/nodes.yaml's server on the home network)
// and no nodes to reboot: that part is proved by metal's rollout tests
// against a real sshd and by the PXE end-to-end test.
func testMetalStep(t *testing.T, p *pipeline, step e2e.PipelineStep) {
	ctx := t.Context()
	agent := woodpeckerAgentEnv(t, p.lab)
	ns := agent["WOODPECKER_BACKEND_K8S_NAMESPACE"]
	if ns == "" {
		t.Fatal("the rendered Woodpecker agent names no pipeline namespace")
	}
	wpSecrets, err := asrendered.DecryptSecrets(ctx, p.img, filepath.Join(p.lab.Dir, "platform", "woodpecker", "secrets"), p.lab.AgeKey)
	if err != nil {
		t.Fatal(err)
	}

	kube := kubets.New(t, kubets.Options{})
	admin, err := kubernetes.NewForConfig(kube.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	_, manifests, err := validate.Render(ctx, validate.Options{Dir: p.lab.Dir, CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	for _, ns := range []string{ns, "kube-system"} {
		if _, err := admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
	}
	account := step.BackendOptions.Kubernetes.ServiceAccountName
	applied := applyRendered(t, kube, manifests, func(kind, namespace, name string) bool {
		switch kind {
		case "ServiceAccount":
			return namespace == ns && name == account
		case "ClusterRole", "ClusterRoleBinding":
			return strings.Contains(name, "metal-rollout")
		}
		return false
	})
	if len(applied) != 3 {
		t.Fatalf("rendered rollout identity: applied %v, want the ServiceAccount %s/%s, its ClusterRole and ClusterRoleBinding", applied, ns, account)
	}
	tr, err := admin.CoreV1().ServiceAccounts(ns).CreateToken(ctx, account, &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	saToken := tr.Status.Token
	u, err := url.Parse(kube.URL)
	if err != nil {
		t.Fatal(err)
	}

	// The cluster the rollout finds: every node of the index Ready, and
	// k3s' node passwords in kube-system (plus one Secret it must leave).
	for _, n := range indexNodes(t, p.lab.Dir) {
		node, err := admin.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		node.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}
		if _, err := admin.CoreV1().Nodes().UpdateStatus(ctx, node, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"worker1.node-password.k3s", "k3s-serving"} {
		sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "kube-system"}, StringData: map[string]string{"v": "x"}}
		if _, err := admin.CoreV1().Secrets("kube-system").Create(ctx, sec, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	stepKube := &asrendered.StepKube{
		Namespace:              ns,
		NativeSecrets:          agent["WOODPECKER_BACKEND_K8S_ALLOW_NATIVE_SECRETS"] == "true",
		ServiceAccountFromStep: agent["WOODPECKER_BACKEND_K8S_SERVICE_ACCOUNT_NAME_ALLOW_FROM_STEP"] == "true",
		Secrets:                wpSecrets,
		Tokens:                 map[string]*asrendered.ServiceAccount{account: {Token: saToken, CACert: kube.CAData}},
		ServiceEnv:             map[string]string{"KUBERNETES_SERVICE_HOST": u.Hostname(), "KUBERNETES_SERVICE_PORT": u.Port()},
	}
	creds := map[string]string{}
	for _, s := range wpSecrets {
		for key, v := range asrendered.SecretValues(s) {
			creds[s.Name+"/"+key] = v
		}
	}
	apiToken, sshKey := creds["metal-api-token/token"], creds["metal-rollout-ssh/ssh-key"]
	if apiToken == "" || sshKey == "" {
		t.Fatal("the rendered platform/woodpecker/secrets lacks metal-api-token's token or metal-rollout-ssh's key")
	}
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
			want: []string{"+ hl metal rollout --base HEAD~1", "1. worker1", "install files changed: preseed.cfg",
				"worker1: preflight", "worker1: cordon", "worker1: drain", "worker1: forget", "worker1: mark-reinstall",
				"rollout stopped: worker1: mark-reinstall"},
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
			res, err := (&asrendered.StepRun{Image: p.img, Step: step.WoodpeckerStep, Workspace: ws, CI: push.CI(), Kube: stepKube}).Run(ctx)
			if err != nil {
				t.Fatal(err)
			}
			out := res.Stdout + res.Stderr
			if res.ExitCode != tc.exit {
				t.Errorf("exit %d, want %d:\n%s", res.ExitCode, tc.exit, out)
			}
			inOrder(t, out, tc.want)
			t.Logf("step output:\n%s", out)
			for _, v := range []string{apiToken, saToken, strings.TrimSpace(sshKey)} {
				if strings.Contains(out, v) {
					t.Errorf("output shows a credential:\n%s", out)
				}
			}
		})
	}

	// What the rollout did as the account, seen by the administrator.
	w1, err := admin.CoreV1().Nodes().Get(ctx, "worker1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !w1.Spec.Unschedulable {
		t.Error("worker1 is not cordoned")
	}
	if _, err := admin.CoreV1().Secrets("kube-system").Get(ctx, "worker1.node-password.k3s", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("worker1's k3s password: %v, want it deleted", err)
	}
	// And what it may not do.
	as, err := kubernetes.NewForConfig(kube.ConfigFor(saToken))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := as.CoreV1().Secrets("kube-system").Get(ctx, "k3s-serving", metav1.GetOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("the rollout account reading a Secret: %v, want forbidden", err)
	}
	if _, err := as.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("the rollout account listing Secrets: %v, want forbidden", err)
	}
	if err := as.CoreV1().Secrets("kube-system").Delete(ctx, "k3s-serving", metav1.DeleteOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("the rollout account deleting another Secret: %v, want forbidden", err)
	}
	if _, err := as.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "x"}, Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "x", Image: "x"}}}}, metav1.CreateOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("the rollout account creating a pod: %v, want forbidden", err)
	}
}

// woodpeckerAgentEnv is the agent's environment in the rendered
// platform/woodpecker/values.yaml (the umbrella chart's woodpecker.agent.env).
func woodpeckerAgentEnv(t *testing.T, lab *e2e.Homelab) map[string]string {
	t.Helper()
	var values map[string]struct {
		Agent struct {
			Env map[string]string `json:"env"`
		} `json:"agent"`
	}
	if err := sigsyaml.Unmarshal([]byte(readFile(t, filepath.Join(lab.Dir, "platform", "woodpecker", "values.yaml"))), &values); err != nil {
		t.Fatal(err)
	}
	for _, v := range values {
		if v.Agent.Env != nil {
			return v.Agent.Env
		}
	}
	t.Fatal("platform/woodpecker/values.yaml has no agent env")
	return nil
}

// indexNodes are the node names of the rendered metal/nodes.yaml.
func indexNodes(t *testing.T, repo string) []string {
	t.Helper()
	var idx struct {
		Nodes map[string]struct {
			Name string `json:"name"`
		} `json:"nodes"`
	}
	if err := sigsyaml.Unmarshal([]byte(readFile(t, filepath.Join(repo, "metal", "nodes.yaml"))), &idx); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, n := range idx.Nodes {
		names = append(names, n.Name)
	}
	slices.Sort(names)
	return names
}

// applyRendered applies the rendered objects pick selects, as the
// administrator (Argo CD), and returns "Kind namespace/name" of each.
func applyRendered(t *testing.T, kube *kubets.Server, ms []validate.Manifest, pick func(kind, namespace, name string) bool) []string {
	t.Helper()
	ap, err := kubeclient.NewApplier(kube.RESTConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var applied []string
	for _, m := range ms {
		obj := &unstructured.Unstructured{Object: m.Object}
		if m.SOPS || !pick(obj.GetKind(), obj.GetNamespace(), obj.GetName()) {
			continue
		}
		if _, err := ap.Apply(t.Context(), m.Object, false); err != nil {
			t.Fatalf("%s:%d: %v", m.File, m.Line, err)
		}
		applied = append(applied, obj.GetKind()+" "+obj.GetNamespace()+"/"+obj.GetName())
	}
	return applied
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
