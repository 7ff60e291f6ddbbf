package asrendered

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// ErrNotRoot is returned when a run is asked for without root: the
// overlay, the mount namespace, chroot and the switch to the image's user
// all need it. CI runs the tests as root.
var ErrNotRoot = errors.New("asrendered: running an image's files as its process needs root (mount namespace, overlay, chroot, setuid); run the tests as root, as CI does")

func requireRoot() error {
	if os.Geteuid() != 0 {
		return ErrNotRoot
	}
	return nil
}

// mount is one bind mount into the container's file system.
type mount struct {
	Source   string `json:"source"`
	Target   string `json:"target"`
	ReadOnly bool   `json:"readOnly"`
}

// file is a file the runtime writes into the container (/etc/hosts, ...).
type file struct {
	Path    string `json:"path"`
	Content string `json:"content"`
	Mode    uint32 `json:"mode"`
}

// spec is what the child (this test binary, re-executed) needs to become
// the container's process.
type spec struct {
	Lower        string   `json:"lower"`
	Scratch      string   `json:"scratch"`
	ReadOnlyRoot bool     `json:"readOnlyRoot"`
	Mounts       []mount  `json:"mounts"`
	Files        []file   `json:"files"`
	UID          uint32   `json:"uid"`
	GID          uint32   `json:"gid"`
	Groups       []uint32 `json:"groups"`
	NoNewPrivs   bool     `json:"noNewPrivs"`
	Env          []string `json:"env"`
	Dir          string   `json:"dir"`
	Argv         []string `json:"argv"`
}

const childEnv = "HL_ASRENDERED_CHILD_SPEC"

// Process is a started container process.
type Process struct {
	cmd     *exec.Cmd
	scratch string
	status  *os.File
	done    chan struct{}
	waitErr error
	once    sync.Once
	// cleanup runs after the process ended (the volumes a Pod laid out).
	cleanup []func()
}

// start launches s: the test binary re-executed in a new mount namespace
// (see child), which mounts, chroots, drops to the user and execs argv.
// The process gets a group of its own and dies with the test binary.
func start(ctx context.Context, s spec, stdin io.Reader, stdout, stderr io.Writer) (*Process, error) {
	if err := requireRoot(); err != nil {
		return nil, err
	}
	if len(s.Argv) == 0 {
		return nil, fmt.Errorf("asrendered: nothing to run (no command, no entrypoint)")
	}
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	if s.Scratch, err = os.MkdirTemp("", "asrendered-*"); err != nil {
		return nil, err
	}
	js, err := json.Marshal(s)
	if err != nil {
		return nil, err
	}
	statusR, statusW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self)
	cmd.Env = []string{childEnv + "=" + string(js)}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, stdout, stderr
	cmd.ExtraFiles = []*os.File{statusW}
	// A daemon the process left may hold its output open: Wait returns
	// anyway, and Process.Wait ends the group.
	cmd.WaitDelay = 5 * time.Second
	cmd.SysProcAttr = &syscall.SysProcAttr{
		// Go makes / private (recursively) after the unshare, so nothing
		// mounted for the container reaches the host's namespace.
		Unshareflags: syscall.CLONE_NEWNS,
		Setpgid:      true,
		Pdeathsig:    syscall.SIGKILL,
	}
	if err := cmd.Start(); err != nil {
		statusR.Close()
		statusW.Close()
		os.RemoveAll(s.Scratch)
		return nil, fmt.Errorf("asrendered: start: %w", err)
	}
	statusW.Close()
	p := &Process{cmd: cmd, scratch: s.Scratch, status: statusR, done: make(chan struct{})}
	// The status pipe is close-on-exec in the child: EOF with nothing read
	// means the exec happened; anything else is the setup's error.
	msg, _ := io.ReadAll(statusR)
	statusR.Close()
	if len(msg) > 0 {
		_ = cmd.Wait()
		os.RemoveAll(s.Scratch)
		return nil, fmt.Errorf("asrendered: %s", strings.TrimSpace(string(msg)))
	}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.done)
	}()
	go func() {
		select {
		case <-ctx.Done():
			p.Kill()
		case <-p.done:
		}
	}()
	return p, nil
}

// Wait waits for the process and returns its exit code (-1 and an error
// when it was killed by a signal), then removes its writable layer.
func (p *Process) Wait() (int, error) {
	<-p.done
	p.once.Do(func() {
		// The process group may have left children: end them so the
		// scratch folder (and its mounts, gone with the namespace) can go.
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		os.RemoveAll(p.scratch)
		for _, f := range p.cleanup {
			f()
		}
	})
	var ee *exec.ExitError
	if errors.As(p.waitErr, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return -1, fmt.Errorf("asrendered: process killed by %v", ws.Signal())
		}
		return ee.ExitCode(), nil
	}
	if p.waitErr != nil {
		return -1, p.waitErr
	}
	return 0, nil
}

// Signal sends sig to the process (as a kubelet's stop sends SIGTERM).
func (p *Process) Signal(sig syscall.Signal) error {
	return p.cmd.Process.Signal(sig)
}

// Stop is a kubelet's stop: SIGTERM, then SIGKILL to the group after
// grace; it returns the exit code.
func (p *Process) Stop(grace time.Duration) (int, error) {
	_ = p.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		p.Kill()
	}
	return p.Wait()
}

// Kill ends the process group at once.
func (p *Process) Kill() {
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
}

// Pid is the process id (in the host's namespace: runs share its PID and
// network namespaces).
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// run starts s and waits for it, collecting its output.
func run(ctx context.Context, s spec, stdout, stderr io.Writer) (int, error) {
	p, err := start(ctx, s, nil, stdout, stderr)
	if err != nil {
		return -1, err
	}
	return p.Wait()
}

// Result is a finished run.
type Result struct {
	ExitCode int
	Stdout   string
	Stderr   string
}

func collect(ctx context.Context, s spec, stdout, stderr io.Writer) (Result, error) {
	var out, errb bytes.Buffer
	code, err := run(ctx, s, tee(&out, stdout), tee(&errb, stderr))
	return Result{ExitCode: code, Stdout: out.String(), Stderr: errb.String()}, err
}

func tee(b *bytes.Buffer, w io.Writer) io.Writer {
	if w == nil {
		return b
	}
	return io.MultiWriter(b, w)
}

// RequireRoot fails t (never skips it) when the test binary is not root.
func RequireRoot(t testing.TB) {
	t.Helper()
	if err := requireRoot(); err != nil {
		t.Fatal(err)
	}
}
