package testserver

import (
	"bytes"
	"context"
	"encoding/json"
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
	"testing"
	"time"

	"hl.dev/hl/internal/testharness"
)

// Options tunes Start.
type Options struct {
	// Config is the text of alertmanager.yml (required).
	Config string
	// Binary is the alertmanager executable; default Binary().
	Binary string
	// Env is added to the process's environment, e.g. SSL_CERT_FILE for
	// receivers whose certificates a test CA signed.
	Env []string
	// StartTimeout bounds waiting for /-/ready; default 30s.
	StartTimeout time.Duration
}

// Server is a running Alertmanager that owns a temporary folder.
type Server struct {
	// URL is the base URL without a trailing slash.
	URL string
	// Dir holds alertmanager.yml, the storage folder and the log.
	Dir string

	cmd       *exec.Cmd
	exited    chan struct{}
	waitErr   error
	closeOnce sync.Once
	http      *http.Client
}

// Start runs Alertmanager with opts.Config and returns once it is ready.
// ctx bounds start-up only; the process lives until Close.
func Start(ctx context.Context, opts Options) (_ *Server, err error) {
	if opts.Config == "" {
		return nil, errors.New("alertmanager: no configuration")
	}
	if opts.Binary == "" {
		if opts.Binary, err = Binary(); err != nil {
			return nil, err
		}
	}
	if opts.StartTimeout == 0 {
		opts.StartTimeout = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, opts.StartTimeout)
	defer cancel()
	dir, err := os.MkdirTemp("", "hl-alertmanager-*")
	if err != nil {
		return nil, fmt.Errorf("alertmanager temp dir: %w", err)
	}
	s := &Server{Dir: dir, http: &http.Client{Timeout: 10 * time.Second}}
	defer func() {
		if err != nil {
			_ = s.Close()
		}
	}()
	cfg := filepath.Join(dir, "alertmanager.yml")
	if err := os.WriteFile(cfg, []byte(opts.Config), 0o600); err != nil {
		return nil, fmt.Errorf("write alertmanager.yml: %w", err)
	}
	// The port is free when picked but may be taken before Alertmanager
	// binds it: only that is worth another try.
	for i := 1; ; i++ {
		err = s.start(ctx, opts, cfg)
		if err == nil || i == 5 || !errors.Is(err, errPortInUse) {
			return s, err
		}
	}
}

var errPortInUse = errors.New("port in use")

func (s *Server) start(ctx context.Context, opts Options, cfg string) error {
	port, err := testharness.FreePort()
	if err != nil {
		return err
	}
	logFile := filepath.Join(s.Dir, "alertmanager.log")
	out, err := os.Create(logFile)
	if err != nil {
		return fmt.Errorf("alertmanager log: %w", err)
	}
	defer out.Close() // the child holds its own descriptor
	s.URL = "http://127.0.0.1:" + strconv.Itoa(port)
	s.cmd = exec.Command(opts.Binary,
		"--config.file="+cfg,
		"--storage.path="+filepath.Join(s.Dir, "data"),
		"--web.listen-address=127.0.0.1:"+strconv.Itoa(port),
		"--web.external-url="+s.URL,
		// One instance: no gossip port, no waiting for peers to settle.
		"--cluster.listen-address=",
		"--log.level=debug")
	s.cmd.Dir = s.Dir
	s.cmd.Env = append(os.Environ(), opts.Env...)
	s.cmd.Stdout, s.cmd.Stderr = out, out
	s.cmd.SysProcAttr = testharness.SysProcAttr()
	if err := s.cmd.Start(); err != nil {
		return fmt.Errorf("start alertmanager: %w", err)
	}
	s.exited = make(chan struct{})
	go func(cmd *exec.Cmd, exited chan struct{}) {
		s.waitErr = cmd.Wait()
		close(exited)
	}(s.cmd, s.exited)

	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"/-/ready", nil)
		if resp, err := s.http.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-s.exited:
			log := s.Log()
			if strings.Contains(log, "address already in use") {
				return errPortInUse
			}
			return fmt.Errorf("alertmanager exited before it was ready (%v):\n%s", s.waitErr, log)
		case <-ctx.Done():
			return fmt.Errorf("alertmanager not ready at %s: %w\n%s", s.URL, ctx.Err(), s.Log())
		case <-tick.C:
		}
	}
}

// Log is what Alertmanager has written so far.
func (s *Server) Log() string {
	b, _ := os.ReadFile(filepath.Join(s.Dir, "alertmanager.log"))
	return string(b)
}

// Alert is one alert of POST /api/v2/alerts.
type Alert struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations,omitempty"`
	// StartsAt defaults to now in Alertmanager; an alert without EndsAt
	// fires until it is resolved or times out (resolve_timeout).
	StartsAt     time.Time `json:"startsAt,omitzero"`
	EndsAt       time.Time `json:"endsAt,omitzero"`
	GeneratorURL string    `json:"generatorURL,omitempty"`
}

// PostAlerts sends alerts the way Prometheus does.
func (s *Server) PostAlerts(ctx context.Context, alerts ...Alert) error {
	body, err := json.Marshal(alerts)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.URL+"/api/v2/alerts", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.http.Do(req)
	if err != nil {
		return fmt.Errorf("post alerts: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("post alerts: %s: %s", resp.Status, msg)
	}
	return nil
}

// Close stops Alertmanager and removes its folder.
func (s *Server) Close() error {
	var err error
	s.closeOnce.Do(func() {
		if s.cmd != nil && s.cmd.Process != nil && s.exited != nil {
			testharness.KillGroup(s.cmd.Process)
			<-s.exited
		}
		err = os.RemoveAll(s.Dir)
	})
	return err
}

// ForTest starts an Alertmanager for t, closed when t ends; a start error
// (a missing binary included) fails t.
func ForTest(t testing.TB, opts Options) *Server {
	t.Helper()
	return testharness.PerTest(t, "alertmanager", func(ctx context.Context) (*Server, error) {
		return Start(ctx, opts)
	}, func(t testing.TB, err error) {
		t.Helper()
		t.Fatalf("alertmanager: %v", err)
	})
}
