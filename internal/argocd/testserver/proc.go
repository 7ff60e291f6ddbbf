package testserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"time"

	"hl.dev/hl/internal/testharness"
)

// proc is one component process whose output goes to <Dir>/<name>.log.
type proc struct {
	name, log string
	cmd       *exec.Cmd
	exited    chan struct{} // closed once the process is reaped
	err       error         // Wait's result, set before exited closes
}

func startProc(name, log, dir, bin string, args, env []string) (*proc, error) {
	out, err := os.OpenFile(log, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("%s log: %w", name, err)
	}
	defer out.Close() // the child holds its own descriptor
	p := &proc{name: name, log: log, exited: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Dir = dir
	p.cmd.Env = env
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

func (p *proc) kill() {
	testharness.KillGroup(p.cmd.Process)
	<-p.exited
}

// logTail is the last n bytes of the process's log, cut at a line start.
func (p *proc) logTail(n int64) string {
	f, err := os.Open(p.log)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err.Error()
	}
	from := max(0, fi.Size()-n)
	b, err := io.ReadAll(io.NewSectionReader(f, from, fi.Size()-from))
	if err != nil {
		return err.Error()
	}
	s := string(b)
	if from > 0 {
		if i := strings.IndexByte(s, '\n'); i >= 0 {
			s = s[i+1:]
		}
	}
	return s
}

// errPortInUse marks a start that lost its free port to another process
// between picking and binding it; only that case is worth another try.
var errPortInUse = errors.New("port in use")

// waitReady polls ready until it succeeds, the process exits or ctx ends.
// The error carries the end of the process's log.
func (p *proc) waitReady(ctx context.Context, ready func(context.Context) error) error {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		if last = ready(ctx); last == nil {
			return nil
		}
		select {
		case <-p.exited:
			tail := p.logTail(4 << 10)
			if strings.Contains(tail, "address already in use") {
				return fmt.Errorf("%s: %w", p.name, errPortInUse)
			}
			return fmt.Errorf("%s exited before it was ready (%v)\n--- %s ---\n%s", p.name, p.err, p.log, tail)
		case <-ctx.Done():
			return fmt.Errorf("%s not ready: %w (last check: %v)\n--- %s ---\n%s", p.name, ctx.Err(), last, p.log, p.logTail(4<<10))
		case <-tick.C:
		}
	}
}

// retryPortInUse runs start up to 5 times while it fails for a lost port.
func retryPortInUse(start func() error) error {
	for i := 1; ; i++ {
		err := start()
		if err == nil || i == 5 || !errors.Is(err, errPortInUse) {
			return err
		}
	}
}

// freePorts picks n distinct free loopback ports.
func freePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	seen := map[int]bool{}
	for len(ports) < n {
		p, err := testharness.FreePort()
		if err != nil {
			return nil, err
		}
		if !seen[p] {
			seen[p] = true
			ports = append(ports, p)
		}
	}
	return ports, nil
}

// httpOK is a readiness check: GET url answers 200.
func httpOK(url string) func(context.Context) error {
	client := &http.Client{Timeout: 2 * time.Second}
	return func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: HTTP %d", url, resp.StatusCode)
		}
		return nil
	}
}

// tcpOpen is a readiness check: addr accepts connections.
func tcpOpen(addr string) func(context.Context) error {
	return func(ctx context.Context) error {
		var d net.Dialer
		ctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return err
		}
		return c.Close()
	}
}
