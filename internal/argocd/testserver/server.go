package testserver

import (
	"hl.dev/hl/internal/testharness"

	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// The components: each is the ARGOCD_BINARY_NAME of its process and the
// name of its Deployment or StatefulSet (and container) in install.yaml.
const (
	repoServer       = "argocd-repo-server"
	appController    = "argocd-application-controller"
	appSetController = "argocd-applicationset-controller"
	apiServer        = "argocd-server"
	cmpServer        = "argocd-cmp-server"
)

// Options tunes Start. Kubeconfig is required.
type Options struct {
	// Kubeconfig is the path of an admin kubeconfig of the API server Argo
	// CD manages and runs against, e.g. the Kubeconfig of the control-plane
	// harness (internal/kube/testserver). Its cluster is Argo CD's
	// in-cluster destination https://kubernetes.default.svc.
	Kubeconfig string
	// Namespace is Argo CD's namespace; default "argocd". It is created
	// when missing.
	Namespace string
	// InstallCRDs applies the module's manifests/crds (server-side, field
	// manager "hl-argocd-testserver") and waits until they are Established.
	// Leave it off when the test applies Argo CD's CRDs itself.
	InstallCRDs bool
	// Plugins are Config Management Plugins, each run as an
	// argocd-cmp-server "sidecar" that repo-server reaches over its socket.
	Plugins []Plugin
	// ExtraPATH lists folders searched before the harness's own PATH by
	// repo-server and the tools it runs (e.g. a ksops for kustomize's exec
	// plugins).
	ExtraPATH []string
	// RepoServerEnv adds KEY=value entries to repo-server's environment,
	// after everything else (e.g. SOPS_AGE_KEY_FILE).
	RepoServerEnv []string
	// LogLevel, when set, is passed as --loglevel to every component (e.g.
	// "debug"); otherwise argocd-cmd-params-cm decides, as in a cluster.
	LogLevel string
	// Binaries default to FindBinaries().
	Binaries *Binaries
	// RedisServer is the redis-server executable; default from PATH.
	RedisServer string
	// StartTimeout bounds start-up; default 3m.
	StartTimeout time.Duration
	// Hosts maps host names to addresses for every component, as a
	// cluster's DNS would resolve Service names (e.g. the in-cluster
	// forge's gitea-http.gitea.svc to a loopback address where a test
	// forwards its port). Each component then runs in a mount namespace of
	// its own whose /etc/hosts is the host's plus these lines (needs root;
	// util-linux's unshare).
	Hosts map[string]string
}

// Plugin is one Config Management Plugin sidecar.
type Plugin struct {
	// Config is the content of its plugin.yaml (kind ConfigManagementPlugin).
	Config string
	// PATH lists folders with the plugin's tools, searched before the
	// harness's own PATH.
	PATH []string
	// Env adds KEY=value entries to the sidecar's environment.
	Env []string
}

// Server is a running Argo CD that owns a temporary folder.
type Server struct {
	// URL is argocd-server's base URL (plain HTTP on loopback), e.g.
	// http://127.0.0.1:40123.
	URL string
	// WebhookURL is where forges deliver push events: URL + "/api/webhook".
	WebhookURL string
	// Namespace is Argo CD's namespace.
	Namespace string
	// Kubeconfig is the kubeconfig the components use: Options.Kubeconfig
	// with Namespace as its context's namespace.
	Kubeconfig string
	// RepoServerAddr and RedisAddr are host:port on loopback.
	RepoServerAddr, RedisAddr string
	// Dir holds each component's log (<component>.log), home, temp and data
	// folders, the plugin sockets and redis's configuration.
	Dir string

	kube      kubernetes.Interface
	dyn       dynamic.Interface
	bins      Binaries
	opts      Options
	baseEnv   []string
	envs      map[string][]string // install.yaml env, resolved, by component
	mu        sync.Mutex
	procs     []*proc
	closeOnce sync.Once
	closeErr  error
}

// Start runs Argo CD against the API server of opts.Kubeconfig and returns
// once every component answers its health check. ctx bounds start-up only;
// the processes live until Close.
func Start(ctx context.Context, opts Options) (_ *Server, err error) {
	if opts.Kubeconfig == "" {
		return nil, errors.New("argocd testserver: Options.Kubeconfig is required")
	}
	if opts.Namespace == "" {
		opts.Namespace = "argocd"
	}
	if opts.StartTimeout == 0 {
		opts.StartTimeout = 3 * time.Minute
	}
	if opts.Binaries == nil {
		b, err := FindBinaries()
		if err != nil {
			return nil, err
		}
		opts.Binaries = &b
	}
	if opts.RedisServer == "" {
		if opts.RedisServer, err = exec.LookPath("redis-server"); err != nil {
			return nil, fmt.Errorf("redis-server not found (Debian package redis-server; .ci/run installs it): %w", err)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, opts.StartTimeout)
	defer cancel()

	dir, err := os.MkdirTemp("", "hl-argocd-*")
	if err != nil {
		return nil, fmt.Errorf("argocd temp dir: %w", err)
	}
	s := &Server{Dir: dir, Namespace: opts.Namespace, bins: *opts.Binaries, opts: opts}
	defer func() {
		if err != nil {
			if tails := s.LogTails(); tails != "" {
				err = fmt.Errorf("%w\n%s", err, tails)
			}
			_ = s.Close()
		}
	}()
	if err := s.prepare(ctx); err != nil {
		return nil, err
	}
	if err := s.startRedis(ctx); err != nil {
		return nil, err
	}
	for i, p := range opts.Plugins {
		if err := s.startPlugin(ctx, i, p); err != nil {
			return nil, err
		}
	}
	if err := s.startRepoServer(ctx); err != nil {
		return nil, err
	}
	// argocd-server first: it completes argocd-secret (server.secretkey,
	// the admin password), without which the applicationset-controller
	// starts without its webhook handler, as a pod would that won the race
	// against argocd-server's first start.
	if err := s.startAPIServer(ctx); err != nil {
		return nil, err
	}
	// The controllers only dial repo-server and redis: they start together.
	starts := []func(context.Context) error{s.startController, s.startAppSetController}
	errs := make([]error, len(starts))
	var wg sync.WaitGroup
	for i, start := range starts {
		wg.Go(func() { errs[i] = start(ctx) })
	}
	wg.Wait()
	return s, errors.Join(errs...)
}

// prepare makes the folders, the namespaced kubeconfig and the clients,
// and brings the namespace to what an applied install.yaml holds.
func (s *Server) prepare(ctx context.Context) error {
	for _, d := range []string{"bin", "plugins", "data/tls", "data/ssh", "data/gpg/source", "data/gpg/keys", "helm", "kubecache", "redis"} {
		// 0700: repo-server refuses a world-readable plugin socket folder
		// no more than a pod would have one; the rest holds credentials.
		if err := os.MkdirAll(s.path(d), 0o700); err != nil {
			return fmt.Errorf("argocd dirs: %w", err)
		}
	}
	// GIT_ASKPASS=argocd: repo-server's git calls the multi-call binary back
	// by that name on PATH; helm and kustomize are looked up the same way.
	for name, target := range map[string]string{"argocd": s.bins.Argocd, "helm": s.bins.Helm, "kustomize": s.bins.Kustomize} {
		if err := os.Symlink(target, s.path("bin", name)); err != nil {
			return fmt.Errorf("argocd tools: %w", err)
		}
	}
	if err := s.writeKubeconfig(); err != nil {
		return err
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", s.Kubeconfig)
	if err != nil {
		return fmt.Errorf("load %s: %w", s.Kubeconfig, err)
	}
	cfg.QPS = -1 // no client-side rate limit: polling tests would crawl
	if s.kube, err = kubernetes.NewForConfig(cfg); err != nil {
		return fmt.Errorf("kube client: %w", err)
	}
	if s.dyn, err = dynamic.NewForConfig(cfg); err != nil {
		return fmt.Errorf("dynamic client: %w", err)
	}

	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: s.Namespace}}
	if _, err := s.kube.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create namespace %s: %w", s.Namespace, err)
	}
	if s.opts.InstallCRDs {
		if err := s.installCRDs(ctx); err != nil {
			return err
		}
	}
	in, err := readInstall(s.bins.SourceDir)
	if err != nil {
		return err
	}
	if err := in.ensureConfig(ctx, s.kube, s.Namespace); err != nil {
		return err
	}
	s.baseEnv = s.baseEnvironment()
	// The install's init container does this: it creates the Secret
	// argocd-redis (key auth) unless it exists.
	out, err := s.cli(ctx, "admin", "redis-initial-password").CombinedOutput()
	if err != nil {
		return fmt.Errorf("argocd admin redis-initial-password: %w\n%s", err, out)
	}
	r := newEnvResolver(s.kube, s.Namespace)
	s.envs = map[string][]string{}
	for _, c := range []string{repoServer, appController, appSetController, apiServer} {
		if s.envs[c], err = r.resolve(ctx, c, in.env[c]); err != nil {
			return err
		}
	}
	return nil
}

// writeKubeconfig copies Options.Kubeconfig with the namespace set on its
// current context: the components take their namespace from there, as a
// pod takes it from its service account.
func (s *Server) writeKubeconfig() error {
	cfg, err := clientcmd.LoadFromFile(s.opts.Kubeconfig)
	if err != nil {
		return fmt.Errorf("load kubeconfig %s: %w", s.opts.Kubeconfig, err)
	}
	if err := clientcmd.ResolveLocalPaths(cfg); err != nil {
		return fmt.Errorf("kubeconfig %s: %w", s.opts.Kubeconfig, err)
	}
	kctx, ok := cfg.Contexts[cfg.CurrentContext]
	if !ok {
		return fmt.Errorf("kubeconfig %s: current context %q not found", s.opts.Kubeconfig, cfg.CurrentContext)
	}
	kctx.Namespace = s.Namespace
	s.Kubeconfig = s.path("kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, s.Kubeconfig); err != nil {
		return fmt.Errorf("write kubeconfig: %w", err)
	}
	return nil
}

// baseEnvironment is what every component gets before install.yaml's env:
// the parent's environment without anything that would silently change
// Argo CD, helm, git or redis, plus what a pod's surroundings provide.
func (s *Server) baseEnvironment() []string {
	drop := []string{"ARGOCD_", "REDIS", "HELM_", "KUBECONFIG=", "KUBECACHEDIR=", "HOME=", "TMPDIR=", "XDG_", "GNUPGHOME=", "SOPS_", "GIT_", "PATH="}
	var env []string
	for _, kv := range os.Environ() {
		keep := true
		for _, p := range drop {
			if strings.HasPrefix(kv, p) {
				keep = false
				break
			}
		}
		if keep {
			env = append(env, kv)
		}
	}
	return append(env,
		"KUBECONFIG="+s.Kubeconfig,
		// The in-cluster destination https://kubernetes.default.svc is the
		// KUBECONFIG's cluster (as in Argo CD's Procfile).
		"ARGOCD_FAKE_IN_CLUSTER=true",
		// Mounted from argocd-tls-certs-cm, argocd-ssh-known-hosts-cm and
		// argocd-gpg-keys-cm in a pod; empty here.
		"ARGOCD_TLS_DATA_PATH="+s.path("data", "tls"),
		"ARGOCD_SSH_DATA_PATH="+s.path("data", "ssh"),
		"ARGOCD_GPG_DATA_PATH="+s.path("data", "gpg", "source"),
		"ARGOCD_GNUPGHOME="+s.path("data", "gpg", "keys"),
		// Off as in the Procfile: commit signature verification is not
		// tested here and would need a GnuPG agent per repo-server.
		"ARGOCD_GPG_ENABLED=false",
		"ARGOCD_PLUGINSOCKFILEPATH="+s.path("plugins"),
		"PATH="+s.searchPath(nil),
	)
}

// searchPath is extra, then the harness's tools (argocd, helm, kustomize),
// then the parent's PATH (git and the Debian tools).
func (s *Server) searchPath(extra []string) string {
	parts := append(append([]string{}, extra...), s.path("bin"))
	if p := os.Getenv("PATH"); p != "" {
		parts = append(parts, p)
	}
	return strings.Join(parts, string(os.PathListSeparator))
}

// componentEnv layers, last wins: the base, install.yaml's env resolved
// against the namespace, then the per-process folders a pod would have
// (HOME, TMPDIR, helm's homes, the controller's kube cache) and extra.
func (s *Server) componentEnv(name, binaryName string, extra ...string) ([]string, error) {
	home, tmp := s.path("home", name), s.path("tmp", name)
	for _, d := range []string{home, tmp} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("%s dirs: %w", name, err)
		}
	}
	env := append(append([]string{}, s.baseEnv...), s.envs[binaryName]...)
	env = append(env,
		"ARGOCD_BINARY_NAME="+binaryName,
		"HOME="+home,
		"TMPDIR="+tmp,
		"HELM_CACHE_HOME="+s.path("helm"),
		"HELM_CONFIG_HOME="+s.path("helm"),
		"HELM_DATA_HOME="+s.path("helm"),
		"KUBECACHEDIR="+s.path("kubecache"),
	)
	return append(env, extra...), nil
}

// cli runs the multi-call binary as the argocd CLI with the base
// environment, so admin commands act on Namespace.
func (s *Server) cli(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, s.bins.Argocd, args...)
	cmd.Env = append(append([]string{}, s.baseEnv...), "ARGOCD_BINARY_NAME=argocd", "HOME="+s.path("home"))
	cmd.Dir = s.Dir
	return cmd
}

// launch starts one process (bin; for the multi-call binary binaryName is
// the component) with its log in Dir and waits until ready succeeds,
// retrying with new ports while it loses a port it was given. build makes
// the arguments, extra environment and readiness check for the ports.
func (s *Server) launch(ctx context.Context, name, bin, binaryName string, nports int, build func(ports []int) (args, extraEnv []string, ready func(context.Context) error)) error {
	return retryPortInUse(func() error {
		ports, err := freePorts(nports)
		if err != nil {
			return err
		}
		args, extra, ready := build(ports)
		env, err := s.componentEnv(name, binaryName, extra...)
		if err != nil {
			return err
		}
		env = testharness.NoProxy(env, s.opts.Hosts)
		if s.opts.LogLevel != "" && binaryName != "" {
			args = append(args, "--loglevel", s.opts.LogLevel)
		}
		bin, args, err := testharness.WithHosts(s.Dir, s.opts.Hosts, bin, args)
		if err != nil {
			return err
		}
		p, err := startProc(name, s.path(name+".log"), s.Dir, bin, args, env)
		if err != nil {
			return err
		}
		if err := p.waitReady(ctx, ready); err != nil {
			// The error holds the end of its log; Close need not see it.
			p.kill()
			return err
		}
		s.mu.Lock()
		s.procs = append(s.procs, p)
		s.mu.Unlock()
		return nil
	})
}

func (s *Server) startRepoServer(ctx context.Context) error {
	return s.launch(ctx, repoServer, s.bins.Argocd, repoServer, 2, func(ports []int) ([]string, []string, func(context.Context) error) {
		s.RepoServerAddr = "127.0.0.1:" + strconv.Itoa(ports[0])
		args := []string{
			"--address", "127.0.0.1", "--port", strconv.Itoa(ports[0]),
			"--metrics-address", "127.0.0.1", "--metrics-port", strconv.Itoa(ports[1]),
			"--redis", s.RedisAddr,
		}
		extra := []string{
			"PATH=" + s.searchPath(s.opts.ExtraPATH),
			// Default /tmp/reposerver-ask-pass.sock would be shared by every
			// harness on the machine.
			"ARGOCD_ASK_PASS_SOCK=" + s.path("askpass.sock"),
		}
		extra = append(extra, s.opts.RepoServerEnv...)
		// full=true: the check dials the gRPC port as the controller will.
		return args, extra, httpOK("http://127.0.0.1:" + strconv.Itoa(ports[1]) + "/healthz?full=true")
	})
}

func (s *Server) startController(ctx context.Context) error {
	return s.launch(ctx, appController, s.bins.Argocd, appController, 1, func(ports []int) ([]string, []string, func(context.Context) error) {
		args := []string{
			"--metrics-port", strconv.Itoa(ports[0]),
			"--redis", s.RedisAddr,
			"--repo-server", s.RepoServerAddr,
		}
		// A StatefulSet pod's hostname: the controller infers its shard
		// from the ordinal.
		return args, []string{"HOSTNAME=" + appController + "-0"}, httpOK("http://127.0.0.1:" + strconv.Itoa(ports[0]) + "/healthz")
	})
}

func (s *Server) startAppSetController(ctx context.Context) error {
	return s.launch(ctx, appSetController, s.bins.Argocd, appSetController, 3, func(ports []int) ([]string, []string, func(context.Context) error) {
		args := []string{
			"--metrics-addr", "127.0.0.1:" + strconv.Itoa(ports[0]),
			"--probe-addr", "127.0.0.1:" + strconv.Itoa(ports[1]),
			"--webhook-addr", "127.0.0.1:" + strconv.Itoa(ports[2]),
			"--argocd-repo-server", s.RepoServerAddr,
		}
		// Its probe server answers 404 (no checks are registered); metrics
		// are served once the manager runs.
		return args, nil, httpOK("http://127.0.0.1:" + strconv.Itoa(ports[0]) + "/metrics")
	})
}

func (s *Server) startAPIServer(ctx context.Context) error {
	return s.launch(ctx, apiServer, s.bins.Argocd, apiServer, 2, func(ports []int) ([]string, []string, func(context.Context) error) {
		s.URL = "http://127.0.0.1:" + strconv.Itoa(ports[0])
		s.WebhookURL = s.URL + "/api/webhook"
		args := []string{
			// Plain HTTP: tests post webhooks without TLS, as Traefik
			// does when it ends TLS (hl renders server.insecure: true).
			"--insecure",
			"--address", "127.0.0.1", "--port", strconv.Itoa(ports[0]),
			"--metrics-address", "127.0.0.1", "--metrics-port", strconv.Itoa(ports[1]),
			"--redis", s.RedisAddr,
			"--repo-server", s.RepoServerAddr,
		}
		return args, nil, httpOK(s.URL + "/healthz")
	})
}

func (s *Server) path(elem ...string) string {
	return filepath.Join(append([]string{s.Dir}, elem...)...)
}

// LogTails is the end of every component's log, for a failing test.
func (s *Server) LogTails() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var b strings.Builder
	for _, p := range s.procs {
		fmt.Fprintf(&b, "--- %s (%s) ---\n%s\n", p.name, p.log, p.logTail(3<<10))
	}
	return b.String()
}

// Close kills every component's process group, reaps them and removes Dir.
// It is safe to call twice.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		procs := s.procs
		s.mu.Unlock()
		// Also when the leader has exited: its group may hold git children.
		for i := len(procs) - 1; i >= 0; i-- {
			procs[i].kill()
		}
		s.closeErr = os.RemoveAll(s.Dir)
	})
	return s.closeErr
}
