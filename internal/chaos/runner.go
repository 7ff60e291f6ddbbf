package chaos

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"syscall"
	"time"
)

// Runner runs one command as a process, again and again: killed with
// SIGKILL at chosen moments (a power cut, an OOM kill) or to completion.
type Runner struct {
	// Command returns a fresh command for each run (exec.Cmd runs once).
	// Its Stdout and Stderr are set by the Runner.
	Command func(ctx context.Context) *exec.Cmd
}

// Outcome is one run of the command.
type Outcome struct {
	// After is when the kill was due (0: run to completion).
	After time.Duration
	// Killed: the process was still running at After and got SIGKILL.
	Killed bool
	// Err is the run's error: nil for exit 0, an *exec.ExitError
	// otherwise (also for a killed run), or a start failure.
	Err    error
	Stdout []byte
	Stderr []byte
}

// Output is stdout and stderr together, for assertions on everything the
// user saw.
func (o Outcome) Output() string { return string(o.Stdout) + string(o.Stderr) }

func (o Outcome) String() string {
	switch {
	case o.Killed:
		return fmt.Sprintf("killed after %v", o.After)
	case o.After > 0:
		return fmt.Sprintf("finished before the kill at %v (%v)", o.After, o.Err)
	case o.Err != nil:
		return fmt.Sprintf("failed: %v", o.Err)
	}
	return "succeeded"
}

// Kill runs the command and SIGKILLs its process group after d unless it
// finished first.
func (r Runner) Kill(ctx context.Context, d time.Duration) Outcome {
	trigger := make(chan struct{})
	t := time.AfterFunc(d, func() { close(trigger) })
	defer t.Stop()
	return r.run(ctx, d, trigger)
}

// KillOn runs the command and SIGKILLs its process group when trigger is
// closed (or sent on) unless it finished first: a kill at a chosen point
// of the journey (e.g. a Proxy fault's Then), not a chosen time.
func (r Runner) KillOn(ctx context.Context, trigger <-chan struct{}) Outcome {
	return r.run(ctx, 0, trigger)
}

// Run runs the command to completion.
func (r Runner) Run(ctx context.Context) Outcome { return r.run(ctx, 0, nil) }

// KillThenRun kills a run at each of kills in turn, then runs once to
// completion; it returns every outcome, the completed run last.
func (r Runner) KillThenRun(ctx context.Context, kills []time.Duration) []Outcome {
	var out []Outcome
	for _, d := range kills {
		out = append(out, r.Kill(ctx, d))
	}
	return append(out, r.Run(ctx))
}

func (r Runner) run(ctx context.Context, kill time.Duration, trigger <-chan struct{}) Outcome {
	cmd := r.Command(ctx)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	// Its own process group: the kill reaches whatever it started too.
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	o := Outcome{After: kill}
	if err := cmd.Start(); err != nil {
		o.Err = err
		return o
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case o.Err = <-done:
	case <-trigger:
		o.Killed = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) == nil
		o.Err = <-done
		var ee *exec.ExitError
		if o.Killed && errors.As(o.Err, &ee) && ee.Exited() {
			// It exited on its own in the instant before the signal.
			o.Killed = false
		}
	}
	o.Stdout, o.Stderr = stdout.Bytes(), stderr.Bytes()
	return o
}

// Moment is a seeded moment in [lo, hi): the same seed, the same moment.
func Moment(seed uint64, lo, hi time.Duration) time.Duration {
	rng := rand.New(rand.NewPCG(seed, seed^0x2545f4914f6cdd1d))
	return lo + time.Duration(rng.Int64N(int64(hi-lo)))
}
