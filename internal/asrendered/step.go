package asrendered

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// WorkspaceBase is where Woodpecker mounts a workflow's workspace volume
// in every step (pipeline/frontend/yaml/compiler: DefaultWorkspaceBase).
const WorkspaceBase = "/woodpecker"

// WoodpeckerStep is one step of a pipeline file, the fields a run uses.
type WoodpeckerStep struct {
	Name        string         `json:"name"`
	Image       string         `json:"image"`
	Commands    []string       `json:"commands"`
	Entrypoint  []string       `json:"entrypoint"`
	Environment map[string]any `json:"environment"`
	Directory   string         `json:"directory"`
	// BackendOptions are what the step asks of the agent's backend.
	BackendOptions BackendOptions `json:"backend_options"`
}

// BackendOptions are a step's backend_options (the Kubernetes part;
// pipeline/backend/kubernetes/backend_options.go).
type BackendOptions struct {
	Kubernetes KubeOptions `json:"kubernetes"`
}

// KubeOptions are the Kubernetes backend's options a run uses.
type KubeOptions struct {
	ServiceAccountName string          `json:"serviceAccountName"`
	Secrets            []KubeSecretRef `json:"secrets"`
}

// KubeSecretRef is a native Kubernetes secret reference: a whole Secret
// as environment variables (name only), or one key as one variable
// (target.env) or one file (target.file).
type KubeSecretRef struct {
	Name   string `json:"name"`
	Key    string `json:"key"`
	Target struct {
		Env  string `json:"env"`
		File string `json:"file"`
	} `json:"target"`
}

// StepKube is the cluster side of a step the Kubernetes backend runs:
// what the agent's settings and the API server give its pod besides the
// step itself (pipeline/backend/kubernetes: mkPod, the native secrets
// processor; the kubelet's service environment and token volume).
type StepKube struct {
	// Namespace the agent creates pipeline pods in.
	Namespace string
	// NativeSecrets is the agent's WOODPECKER_BACKEND_K8S_ALLOW_NATIVE_SECRETS:
	// without it the agent ignores backend_options secrets.
	NativeSecrets bool
	// ServiceAccountFromStep is the agent's
	// WOODPECKER_BACKEND_K8S_SERVICE_ACCOUNT_NAME_ALLOW_FROM_STEP: without
	// it the pod runs as the namespace's default account.
	ServiceAccountFromStep bool
	// Secrets are Namespace's Secrets as the API server holds them.
	Secrets []corev1.Secret
	// Tokens are the service account tokens the kubelet would mount, by
	// account name ("default" for a step naming none); an account without
	// one mounts nothing.
	Tokens map[string]*ServiceAccount
	// ServiceEnv is what the kubelet derives from Services
	// (KUBERNETES_SERVICE_HOST, ...).
	ServiceEnv map[string]string
}

// Steps reads the steps of a Woodpecker pipeline file, in order (the list
// form; the map form keyed by name is ordered by name, as YAML maps carry
// no order once decoded).
func Steps(pipeline []byte) ([]WoodpeckerStep, error) {
	var doc struct {
		Steps any `json:"steps"`
	}
	if err := yaml.Unmarshal(pipeline, &doc); err != nil {
		return nil, fmt.Errorf("pipeline: %w", err)
	}
	raw, err := yaml.Marshal(doc.Steps)
	if err != nil {
		return nil, err
	}
	var list []WoodpeckerStep
	switch doc.Steps.(type) {
	case []any:
		if err := yaml.UnmarshalStrict(raw, &list); err != nil {
			return nil, fmt.Errorf("pipeline steps: %w", err)
		}
	case map[string]any:
		var byName map[string]WoodpeckerStep
		if err := yaml.UnmarshalStrict(raw, &byName); err != nil {
			return nil, fmt.Errorf("pipeline steps: %w", err)
		}
		names := make([]string, 0, len(byName))
		for n := range byName {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			s := byName[n]
			s.Name = n
			list = append(list, s)
		}
	default:
		return nil, fmt.Errorf("pipeline: no steps")
	}
	return list, nil
}

// StepRun runs one Woodpecker step as Woodpecker 3's Kubernetes backend
// has it run (pipeline/backend/kubernetes/pod.go with
// pipeline/backend/common/script.go):
//
//   - the commands become one script, base64 in $CI_SCRIPT, run by
//     `/bin/sh -c 'echo $CI_SCRIPT | base64 -d | /bin/sh -e'` from the
//     image's own file system (so the image needs sh and base64); the
//     script writes the netrc when asked, unsets CI_NETRC_*, cd's into the
//     step's folder and echoes each command before running it;
//   - the environment is the image's, then the CI_* variables the test
//     gives (what the server's metadata would set), CI_WORKSPACE, then the
//     step's environment: (from_secret resolved from Secrets), then
//     CI_SCRIPT and SHELL; HOME from the user's passwd entry when unset;
//   - the process runs as the image's user, working directory the
//     workspace base, with Workspace mounted at
//     /woodpecker/<WorkspacePath> (read-write);
//   - with Kube, what the pod gets from the cluster: the kubelet's
//     service variables first, backend_options' native secrets (a key as
//     a variable or a file, or a whole Secret as variables) when the
//     agent allows them, and the token of the step's serviceAccountName
//     (when the agent allows naming one; else the default account's) at
//     /var/run/secrets/kubernetes.io/serviceaccount.
//
// Seams (what differs from Woodpecker): no clone step (Workspace is what
// the clone would have left, owned as the test made it; Woodpecker's
// volume is mounted at /woodpecker and holds the clone below it, here the
// clone's folder is bind-mounted at its path directly); the host's network
// and PID namespaces (a step reaches test servers on loopback, named by
// Hosts); no resource limits, no service containers, no secrets masking in
// logs.
type StepRun struct {
	Image *Image
	Step  WoodpeckerStep
	// Workspace is the host folder holding the clone.
	Workspace string
	// WorkspacePath is the clone's path under the workspace base; empty:
	// WorkspacePathFor(CI["CI_REPO_URL"]).
	WorkspacePath string
	// CI is the metadata environment a server would give (CI_REPO,
	// CI_COMMIT_SHA, CI_PIPELINE_EVENT, ...).
	CI map[string]string
	// Secrets are the repository's Woodpecker secrets, by name, for
	// from_secret.
	Secrets map[string]string
	// Hosts are extra /etc/hosts entries (name -> address).
	Hosts map[string]string
	// Kube, when set, adds what the Kubernetes backend gives the pod:
	// backend_options' native secrets and service account.
	Kube *StepKube
	// Stdout and Stderr also receive the output as it comes, if set.
	Stdout, Stderr io.Writer
}

// WorkspacePathFor is Woodpecker's workspace path for a repository URL:
// src/<host>/<path> (compiler.WithWorkspaceFromURL).
func WorkspacePathFor(repoURL string) string {
	host, p := repoURL, ""
	if i := strings.Index(host, "://"); i >= 0 {
		host = host[i+3:]
	}
	if i := strings.IndexByte(host, '/'); i >= 0 {
		host, p = host[:i], host[i:]
	}
	if i := strings.LastIndexByte(host, '@'); i >= 0 {
		host = host[i+1:]
	}
	if h, _, ok := strings.Cut(host, ":"); ok {
		host = h
	}
	return path.Join("src", host, p)
}

// Script is the shell script Woodpecker generates for commands run in
// workDir (common.generateScriptPosix).
func Script(commands []string, workDir string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `
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
mkdir -p "%s"
cd "%s"
`, workDir, workDir)
	for _, c := range commands {
		fmt.Fprintf(&b, "\necho + %s\n%s\n", shellQuote(c), c)
	}
	return b.String()
}

var shellSafe = regexp.MustCompile(`^[\w@%+=:,./-]+$`)

// shellQuote quotes as al.essio.dev/pkg/shellescape.Quote, which
// Woodpecker uses for the echoed command.
func shellQuote(s string) string {
	if s == "" {
		return "''"
	}
	if shellSafe.MatchString(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'"'"'`) + "'"
}

// stepEntry is the container command of a commands step.
var stepEntry = []string{"/bin/sh", "-c", "echo $CI_SCRIPT | base64 -d | /bin/sh -e"}

// Run runs the step to its end.
func (r *StepRun) Run(ctx context.Context) (Result, error) {
	if r.Image == nil {
		return Result{}, fmt.Errorf("step %s: no image", r.Step.Name)
	}
	if len(r.Step.Commands) == 0 && len(r.Step.Entrypoint) == 0 {
		return Result{}, fmt.Errorf("step %s: no commands and no entrypoint (a plugin step is not run here)", r.Step.Name)
	}
	wsPath := r.WorkspacePath
	if wsPath == "" {
		u := r.CI["CI_REPO_URL"]
		if u == "" {
			return Result{}, fmt.Errorf("step %s: neither WorkspacePath nor CI_REPO_URL given", r.Step.Name)
		}
		wsPath = WorkspacePathFor(u)
	}
	workspace := path.Join(WorkspaceBase, wsPath)
	workDir := workspace
	if path.IsAbs(r.Step.Directory) {
		workDir = r.Step.Directory
	} else if r.Step.Directory != "" {
		workDir = path.Join(workspace, r.Step.Directory)
	}
	uid, gid, home, name, err := r.Image.resolveUser(r.Image.Config.User)
	if err != nil {
		return Result{}, fmt.Errorf("step %s: image user: %w", r.Step.Name, err)
	}
	groups, err := r.Image.memberGroups(name)
	if err != nil {
		return Result{}, err
	}
	env := newEnv(r.Image.Config.Env)
	if r.Kube != nil {
		for _, k := range sortedKeys(r.Kube.ServiceEnv) {
			env.Set(k, r.Kube.ServiceEnv[k])
		}
	}
	for _, k := range sortedKeys(r.CI) {
		env.Set(k, r.CI[k])
	}
	env.Set("CI_WORKSPACE", workspace)
	for _, k := range sortedKeys(r.Step.Environment) {
		v, err := r.envValue(k, r.Step.Environment[k])
		if err != nil {
			return Result{}, fmt.Errorf("step %s: environment %s: %w", r.Step.Name, k, err)
		}
		env.Set(k, v)
	}
	files := runtimeFiles(r.Step.Name, r.Hosts, nil)
	if r.Kube != nil {
		more, err := r.Kube.apply(r.Step.BackendOptions.Kubernetes, env)
		if err != nil {
			return Result{}, fmt.Errorf("step %s: %w", r.Step.Name, err)
		}
		files = append(files, more...)
	}
	env.Set("CI_SCRIPT", base64.StdEncoding.EncodeToString([]byte(Script(r.Step.Commands, workDir))))
	env.Set("SHELL", "/bin/sh")
	env.setHome(home)
	argv := stepEntry
	if len(r.Step.Entrypoint) > 0 {
		argv = r.Step.Entrypoint
	}
	s := spec{
		Lower:  r.Image.Root,
		Mounts: []mount{{Source: r.Workspace, Target: workspace}},
		Files:  files,
		UID:    uid, GID: gid, Groups: groups,
		Env:  env.List(),
		Dir:  WorkspaceBase,
		Argv: argv,
	}
	return collect(ctx, s, r.Stdout, r.Stderr)
}

// apply adds the native secrets and the service account token the
// Kubernetes backend and the kubelet would give the step's pod. A Secret
// or key that is missing fails the run, as the kubelet fails such a
// container (CreateContainerConfigError).
func (k *StepKube) apply(o KubeOptions, env *envList) ([]file, error) {
	var files []file
	if k.NativeSecrets {
		for _, ref := range o.Secrets {
			data, ok := lookupSecret(k.Secrets, k.Namespace, ref.Name)
			if !ok {
				return nil, fmt.Errorf("native secret %q: no such Secret in namespace %s", ref.Name, k.Namespace)
			}
			switch {
			case ref.Key == "" && ref.Target.Env == "" && ref.Target.File == "":
				for _, key := range sortedKeys(data) {
					env.Set(key, data[key])
				}
			case ref.Key != "" && ref.Target.Env != "" && ref.Target.File == "":
				v, ok := data[ref.Key]
				if !ok {
					return nil, fmt.Errorf("native secret %s: no key %q", ref.Name, ref.Key)
				}
				env.Set(ref.Target.Env, v)
			case ref.Key != "" && ref.Target.File != "" && ref.Target.Env == "":
				v, ok := data[ref.Key]
				if !ok {
					return nil, fmt.Errorf("native secret %s: no key %q", ref.Name, ref.Key)
				}
				files = append(files, file{Path: ref.Target.File, Content: v, Mode: 0o644})
			default:
				return nil, fmt.Errorf("native secret %s: give a key with target env or file, or neither (all keys as variables)", ref.Name)
			}
		}
	}
	account := "default"
	if k.ServiceAccountFromStep && o.ServiceAccountName != "" {
		account = o.ServiceAccountName
	}
	if tok := k.Tokens[account]; tok != nil {
		files = append(files,
			file{Path: ServiceAccountPath + "/token", Content: tok.Token, Mode: 0o644},
			file{Path: ServiceAccountPath + "/ca.crt", Content: string(tok.CACert), Mode: 0o644},
			file{Path: ServiceAccountPath + "/namespace", Content: k.Namespace, Mode: 0o644})
	}
	return files, nil
}

// envValue converts one environment: value as Woodpecker's
// settings.ParamsToEnv does for a non-plugin step.
func (r *StepRun) envValue(k string, v any) (string, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case bool:
		return strconv.FormatBool(x), nil
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), nil
	case int, int64:
		return fmt.Sprint(x), nil
	case nil:
		return "", nil
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			s, err := r.envValue(k, e)
			if err != nil {
				return "", err
			}
			parts[i] = s
		}
		return strings.Join(parts, ","), nil
	case map[string]any:
		name, ok := x["from_secret"].(string)
		if !ok || len(x) != 1 {
			return "", fmt.Errorf("a map value must be {from_secret: name}")
		}
		val, ok := r.Secrets[strings.ToLower(name)]
		if !ok {
			val, ok = r.Secrets[name]
		}
		if !ok {
			return "", fmt.Errorf("secret %q not found", name)
		}
		return val, nil
	}
	return "", fmt.Errorf("unsupported value type %T", v)
}

// runtimeFiles are the files a runtime writes into every container:
// /etc/hosts (localhost plus the given names), /etc/hostname, and an
// /etc/resolv.conf with no name server (there is no cluster DNS here:
// names resolve through /etc/hosts).
func runtimeFiles(hostname string, hosts map[string]string, aliases []string) []file {
	var b strings.Builder
	b.WriteString("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n")
	for _, a := range aliases {
		b.WriteString(a + "\n")
	}
	for _, n := range sortedKeys(hosts) {
		fmt.Fprintf(&b, "%s\t%s\n", hosts[n], n)
	}
	return []file{
		{Path: "/etc/hosts", Content: b.String(), Mode: 0o644},
		{Path: "/etc/hostname", Content: hostname + "\n", Mode: 0o644},
		{Path: "/etc/resolv.conf", Content: "# asrendered: no cluster DNS; names resolve through /etc/hosts\n", Mode: 0o644},
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
