package testserver

import (
	"hl.dev/hl/internal/testharness"

	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// Options tunes Start. The zero value is ready to use.
type Options struct {
	// APIServerBinary is the kube-apiserver executable; default APIServerBinary().
	APIServerBinary string
	// EtcdBinary is the etcd executable; default EtcdBinary().
	EtcdBinary string
	// ExtraTokens are users of the static token file besides the admin.
	// kube-apiserver reads that file once, at start, so every such user
	// must be known here; a Token with an empty Value gets a random one.
	ExtraTokens []Token
	// APIServerArgs are appended to kube-apiserver's flags (a repeated
	// flag takes the last value), e.g. "--feature-gates=...".
	APIServerArgs []string
	// StartTimeout bounds start-up, /readyz included; default 2m.
	StartTimeout time.Duration
}

// Server is a running etcd and kube-apiserver that own a temporary folder.
type Server struct {
	// URL is the API server's base URL, e.g. https://127.0.0.1:40123.
	URL string
	// Token is the admin's bearer token (user AdminUser in system:masters).
	Token string
	// Kubeconfig is the path of an admin kubeconfig (mode 0600) whose
	// cluster entry trusts the CA that signed the serving certificate.
	Kubeconfig string
	// CAData is that CA in PEM; nil only when kube-apiserver wrote no CA,
	// in which case the kubeconfig skips TLS verification instead.
	CAData []byte
	// EtcdURL is etcd's client URL, e.g. http://127.0.0.1:40124.
	EtcdURL string
	// Dir holds the etcd data, certificates, keys, token file, kubeconfig
	// and the logs (etcd.log, kube-apiserver.log).
	Dir string

	apiBin, etcdBin string
	apiPort         int
	apiArgs         []string
	tokens          []Token
	startTimeout    time.Duration
	// started is set once Start returns; CAData is fixed from then on.
	started bool

	mu        sync.Mutex // guards api against concurrent Kill/Start
	api       *proc
	etcd      *proc
	closeOnce sync.Once
	closeErr  error
	names     atomic.Int64
}

// AdminUser is the user name of Server.Token.
const AdminUser = "hl-admin"

// ServiceAccountIssuer is the issuer (and default audience) of the
// service-account tokens the server signs.
const ServiceAccountIssuer = "https://kubernetes.default.svc.cluster.local"

// serviceCIDR is k3s's default, so rendered Services that pin a cluster IP
// (CoreDNS's 10.43.0.10) are accepted. The addresses are only allocated in
// etcd; nothing routes or sends to them.
const serviceCIDR = "10.43.0.0/16"

var errPortInUse = errors.New("port in use")

// Start runs a fresh etcd and kube-apiserver and returns once /readyz
// answers ok and the default namespaces exist. ctx bounds start-up only;
// the processes live until Close.
func Start(ctx context.Context, opts Options) (_ *Server, err error) {
	if opts.APIServerBinary == "" {
		if opts.APIServerBinary, err = APIServerBinary(); err != nil {
			return nil, err
		}
	}
	if opts.EtcdBinary == "" {
		if opts.EtcdBinary, err = EtcdBinary(); err != nil {
			return nil, err
		}
	}
	if opts.StartTimeout == 0 {
		opts.StartTimeout = 2 * time.Minute
	}
	tokens, err := completeTokens(opts.ExtraTokens)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, opts.StartTimeout)
	defer cancel()

	dir, err := os.MkdirTemp("", "hl-kube-*")
	if err != nil {
		return nil, fmt.Errorf("kube test server temp dir: %w", err)
	}
	s := &Server{
		Dir:          dir,
		Token:        tokens[0].Value,
		apiBin:       opts.APIServerBinary,
		etcdBin:      opts.EtcdBinary,
		apiArgs:      append([]string(nil), opts.APIServerArgs...),
		tokens:       tokens,
		startTimeout: opts.StartTimeout,
	}
	defer func() {
		if err != nil {
			_ = s.Close()
		}
	}()
	if err := writeServiceAccountKeys(s.path(saKeyFile), s.path(saPubFile)); err != nil {
		return nil, err
	}
	if err := os.WriteFile(s.path(tokenFile), tokenCSV(tokens), 0o600); err != nil {
		return nil, fmt.Errorf("write token file: %w", err)
	}

	// A port is free when picked but may be taken before the server binds
	// it; only that case is worth another try.
	if err := retryPortInUse(func() error { return s.startEtcd(ctx) }); err != nil {
		return nil, err
	}
	err = retryPortInUse(func() error {
		port, err := testharness.FreePort()
		if err != nil {
			return err
		}
		s.apiPort = port
		s.URL = "https://127.0.0.1:" + strconv.Itoa(port)
		return s.startAPIServer(ctx)
	})
	if err != nil {
		return nil, err
	}
	s.Kubeconfig = s.path("kubeconfig")
	if err := s.WriteKubeconfig(s.Kubeconfig, s.Token); err != nil {
		return nil, err
	}
	s.started = true
	return s, nil
}

func retryPortInUse(start func() error) error {
	const attempts = 5
	for i := 1; ; i++ {
		err := start()
		if err == nil || i == attempts || !errors.Is(err, errPortInUse) {
			return err
		}
	}
}

const (
	certDir   = "pki"
	saKeyFile = "sa.key"
	saPubFile = "sa.pub"
	tokenFile = "tokens.csv"
)

func (s *Server) path(name string) string { return filepath.Join(s.Dir, name) }

func (s *Server) startEtcd(ctx context.Context) error {
	client, err := testharness.FreePort()
	if err != nil {
		return err
	}
	peer, err := testharness.FreePort()
	if err != nil {
		return err
	}
	s.EtcdURL = "http://127.0.0.1:" + strconv.Itoa(client)
	peerURL := "http://127.0.0.1:" + strconv.Itoa(peer)
	data := s.path("etcd")
	// A failed attempt may have initialised the data folder with its ports.
	if err := os.RemoveAll(data); err != nil {
		return fmt.Errorf("reset etcd data dir: %w", err)
	}
	p, err := startProc("etcd", s.etcdBin, s.Dir, s.path("etcd.log"),
		"--name=hl-test",
		"--data-dir="+data,
		"--listen-client-urls="+s.EtcdURL,
		"--advertise-client-urls="+s.EtcdURL,
		"--listen-peer-urls="+peerURL,
		"--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=hl-test="+peerURL,
		"--initial-cluster-state=new",
		// The data dies with the test; fsync only makes a busy disk the
		// bottleneck of every write.
		"--unsafe-no-fsync",
		"--log-level=warn",
	)
	if err != nil {
		return err
	}
	s.etcd = p
	if err := waitHTTP(ctx, p, &http.Client{Timeout: 2 * time.Second}, s.EtcdURL+"/health", "", `"health":"true"`); err != nil {
		return s.failStart(p, err)
	}
	return nil
}

// startAPIServer starts kube-apiserver on s.apiPort and waits until it is
// ready. The cert dir is kept between starts, so a restarted server
// serves the same certificate and old kubeconfigs stay valid.
func (s *Server) startAPIServer(ctx context.Context) error {
	args := append([]string{
		"--etcd-servers=" + s.EtcdURL,
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(s.apiPort),
		"--cert-dir=" + s.path(certDir),
		"--token-auth-file=" + s.path(tokenFile),
		"--authorization-mode=RBAC",
		"--service-account-issuer=" + ServiceAccountIssuer,
		"--service-account-key-file=" + s.path(saPubFile),
		"--service-account-signing-key-file=" + s.path(saKeyFile),
		"--service-cluster-ip-range=" + serviceCIDR,
		// The reconciler would publish 127.0.0.1 as the kubernetes
		// Service's endpoint, which validation rejects (loopback).
		"--endpoint-reconciler-type=none",
		// As k3s: privileged workloads (CNI, storage) must be admissible.
		"--allow-privileged=true",
		// As k3s: admission and conversion webhooks and aggregated APIs
		// are called at an endpoint of their Service (its EndpointSlices),
		// not at its cluster IP, which nothing routes here.
		"--enable-aggregator-routing=true",
		"--profiling=false",
	}, s.apiArgs...)
	p, err := startProc("kube-apiserver", s.apiBin, s.Dir, s.path("kube-apiserver.log"), args...)
	if err != nil {
		return err
	}
	s.api = p
	if err := s.waitAPIServer(ctx, p); err != nil {
		s.api = nil
		return s.failStart(p, err)
	}
	return nil
}

// failStart kills a process that did not get ready and says why, with the
// end of its log; a bind failure becomes errPortInUse.
func (s *Server) failStart(p *proc, err error) error {
	p.kill()
	logs := p.logTail()
	if strings.Contains(logs, "address already in use") {
		return fmt.Errorf("%s: %w", p.name, errPortInUse)
	}
	return fmt.Errorf("%s: %w\n--- %s (%s) ---\n%s", p.name, err, filepath.Base(p.log), s.Dir, logs)
}

// waitAPIServer reads the CA once kube-apiserver has written its serving
// certificate (on the first start only: a restart reuses the cert dir),
// then polls /readyz with the admin token, then waits for the namespaces
// its bootstrap controllers create, which tests take for granted.
func (s *Server) waitAPIServer(ctx context.Context, p *proc) error {
	if !s.started {
		if err := s.waitServingCA(ctx, p); err != nil {
			return err
		}
	}
	client, err := httpClient(s.CAData)
	if err != nil {
		return err
	}
	defer client.CloseIdleConnections()
	for _, path := range []string{"/readyz", "/api/v1/namespaces/default", "/api/v1/namespaces/kube-system"} {
		if err := waitHTTP(ctx, p, client, s.URL+path, s.Token, ""); err != nil {
			return err
		}
	}
	return nil
}

func (s *Server) waitServingCA(ctx context.Context, p *proc) error {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		ca, ok, err := readServingCA(s.path(certDir))
		if err != nil {
			return err
		}
		if ok {
			s.CAData = ca
			return nil
		}
		select {
		case <-p.exited:
			return fmt.Errorf("exited before writing its serving certificate: %v", p.err)
		case <-ctx.Done():
			return fmt.Errorf("no serving certificate in %s: %w", s.path(certDir), ctx.Err())
		case <-tick.C:
		}
	}
}

// readServingCA returns the CA certificate(s) of the pair kube-apiserver
// generates in its cert dir (apiserver.crt holds the serving certificate
// followed by the CA that signed it). ok is false until the pair is
// complete: the key is written after the certificate. With a complete pair
// but no CA in it, ok is true and ca nil: the caller falls back to skipping
// verification.
func readServingCA(dir string) (ca []byte, ok bool, err error) {
	if _, err := os.Stat(filepath.Join(dir, "apiserver.key")); err != nil {
		return nil, false, nil
	}
	data, err := os.ReadFile(filepath.Join(dir, "apiserver.crt"))
	if err != nil {
		return nil, false, fmt.Errorf("read serving certificate: %w", err)
	}
	certs, err := parseCerts(data)
	if err != nil {
		return nil, false, fmt.Errorf("%s: %w", filepath.Join(dir, "apiserver.crt"), err)
	}
	var out bytes.Buffer
	for _, c := range certs {
		if c.IsCA {
			_ = pemEncode(&out, "CERTIFICATE", c.Raw)
		}
	}
	if out.Len() == 0 {
		return nil, true, nil
	}
	return out.Bytes(), true, nil
}

func httpClient(ca []byte) (*http.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	if ca == nil {
		tr.TLSClientConfig.InsecureSkipVerify = true
	} else {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(ca) {
			return nil, errors.New("serving CA: no certificate in PEM")
		}
		tr.TLSClientConfig.RootCAs = pool
	}
	return &http.Client{Transport: tr, Timeout: 5 * time.Second}, nil
}

// waitHTTP polls url until it answers 200 (and, if want is set, with a body
// containing want), the process exits, or ctx ends.
func waitHTTP(ctx context.Context, p *proc, client *http.Client, url, token, want string) error {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		last = get(ctx, client, url, token, want)
		if last == nil {
			return nil
		}
		select {
		case <-p.exited:
			return fmt.Errorf("exited before it was ready: %v", p.err)
		case <-ctx.Done():
			return fmt.Errorf("not ready: %w (last: %v)", ctx.Err(), last)
		case <-tick.C:
		}
	}
}

func get(ctx context.Context, client *http.Client, url, token, want string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK || !bytes.Contains(body, []byte(want)) {
		return fmt.Errorf("GET %s: HTTP %d: %.200s", url, resp.StatusCode, bytes.TrimSpace(body))
	}
	return nil
}

// UniqueName returns prefix with a suffix not handed out before by this
// server, so tests sharing one control plane (also under -count=N) do not
// collide on namespaces or cluster-scoped names.
func (s *Server) UniqueName(prefix string) string {
	return prefix + "-" + strconv.FormatInt(s.names.Add(1), 10)
}

// RESTConfig returns a new client config for the admin, without client-side
// rate limiting (client-go's default of 5 requests a second only slows
// tests down).
func (s *Server) RESTConfig() *rest.Config { return s.ConfigFor(s.Token) }

// ConfigFor returns a new client config that authenticates with the bearer
// token, e.g. an ExtraTokens value or a ServiceAccountToken.
func (s *Server) ConfigFor(token string) *rest.Config {
	return &rest.Config{
		Host:        s.URL,
		BearerToken: token,
		TLSClientConfig: rest.TLSClientConfig{
			CAData:   bytes.Clone(s.CAData),
			Insecure: s.CAData == nil,
		},
		QPS: -1,
	}
}

// WriteKubeconfig writes a kubeconfig (mode 0600) that authenticates with
// the bearer token, for code under test that takes --kubeconfig.
func (s *Server) WriteKubeconfig(path, token string) error {
	const name = "hl-test"
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters[name] = &clientcmdapi.Cluster{
		Server:                   s.URL,
		CertificateAuthorityData: s.CAData,
		InsecureSkipTLSVerify:    s.CAData == nil,
	}
	cfg.AuthInfos[name] = &clientcmdapi.AuthInfo{Token: token}
	cfg.Contexts[name] = &clientcmdapi.Context{Cluster: name, AuthInfo: name, Namespace: "default"}
	cfg.CurrentContext = name
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		return fmt.Errorf("write kubeconfig: %w", err)
	}
	return nil
}

// KillAPIServer stops kube-apiserver with SIGKILL (it lingers for a while
// on SIGTERM) and reaps it; etcd and the data stay. It is a no-op when the
// API server is not running.
func (s *Server) KillAPIServer() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.api != nil {
		s.api.kill()
		s.api = nil
	}
}

// StartAPIServer starts kube-apiserver again on the same etcd, port,
// certificates and tokens, and waits until it is ready; ctx bounds the
// wait, as does Options.StartTimeout.
func (s *Server) StartAPIServer(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.api != nil {
		return errors.New("kube-apiserver is already running")
	}
	ctx, cancel := context.WithTimeout(ctx, s.startTimeout)
	defer cancel()
	return s.startAPIServer(ctx)
}

// Restart kills kube-apiserver and starts it again (see StartAPIServer).
func (s *Server) Restart(ctx context.Context) error {
	s.KillAPIServer()
	return s.StartAPIServer(ctx)
}

// Close kills kube-apiserver, then etcd, and removes Dir. It is safe to
// call twice.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.KillAPIServer()
		if s.etcd != nil {
			s.etcd.kill()
		}
		s.closeErr = os.RemoveAll(s.Dir)
	})
	return s.closeErr
}

// proc is one child process whose output goes to a log file in Dir.
type proc struct {
	name, log string
	logStart  int64 // the log's size when this process started
	cmd       *exec.Cmd
	exited    chan struct{} // closed once the process is reaped
	err       error         // Wait's result, set before exited closes
}

func startProc(name, bin, dir, log string, args ...string) (*proc, error) {
	// Appended to, so a restarted kube-apiserver keeps the earlier log.
	out, err := os.OpenFile(log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("%s log: %w", name, err)
	}
	defer out.Close() // the child holds its own descriptor
	fi, err := out.Stat()
	if err != nil {
		return nil, fmt.Errorf("%s log: %w", name, err)
	}
	p := &proc{name: name, log: log, logStart: fi.Size(), exited: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Dir = dir
	p.cmd.Env = childEnv()
	p.cmd.Stdout = out
	p.cmd.Stderr = out
	p.cmd.SysProcAttr = testharness.SysProcAttr()
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

// childEnv is the parent's environment without what would silently change
// the servers' configuration: etcd reads every ETCD_* variable as a flag.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ETCD_") {
			env = append(env, kv)
		}
	}
	return env
}

func (p *proc) kill() {
	testharness.KillGroup(p.cmd.Process)
	<-p.exited
}

// logTail is the end of what this process wrote to its log.
func (p *proc) logTail() string {
	f, err := os.Open(p.log)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	const tail = 8 << 10
	fi, err := f.Stat()
	if err != nil {
		return err.Error()
	}
	from := max(p.logStart, fi.Size()-tail)
	b, err := io.ReadAll(io.NewSectionReader(f, from, fi.Size()-from))
	if err != nil {
		return err.Error()
	}
	return string(b)
}
