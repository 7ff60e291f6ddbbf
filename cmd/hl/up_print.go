package main

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"sync"

	"hl.dev/hl/up"
)

// upPrinter is hl up's progress view. On a terminal the running step is
// one pending line that its result replaces, and what a step logs is
// printed above it; otherwise every event and log line is a plain line,
// for a log file or CI.
type upPrinter struct {
	mu      sync.Mutex
	out     io.Writer
	tty     bool
	pending string
	partial []byte
}

func newUpPrinter(out io.Writer, tty bool) *upPrinter {
	return &upPrinter{out: out, tty: tty}
}

var upMarks = map[up.Status]string{
	up.StatusDone:    "+",
	up.StatusHolds:   "=",
	up.StatusSkipped: "-",
	up.StatusFailed:  "!",
}

func (p *upPrinter) event(e up.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if e.Status == up.StatusRunning {
		what := e.Detail
		if what == "" {
			what = "running"
		}
		if e.Redo {
			what = "no longer holds (" + e.Detail + "): running again"
		}
		line := fmt.Sprintf("  %-11s %s ...", e.Step, what)
		if p.tty {
			p.clear()
			p.pending = line
			fmt.Fprint(p.out, line)
		} else {
			fmt.Fprintln(p.out, strings.TrimSuffix(line, " ..."))
		}
		return
	}
	p.clear()
	p.pending = ""
	detail := e.Detail
	if e.Err != nil {
		detail = strings.TrimSpace(detail + " " + e.Err.Error())
	}
	fmt.Fprintf(p.out, "%s %-11s %-7s %s\n", upMarks[e.Status], e.Step, e.Status, detail)
}

// clear removes the pending line (terminal only).
func (p *upPrinter) clear() {
	if p.tty && p.pending != "" {
		fmt.Fprint(p.out, "\r\033[K")
	}
}

// Write takes what a step logs, line by line.
func (p *upPrinter) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.partial = append(p.partial, b...)
	for {
		i := bytes.IndexByte(p.partial, '\n')
		if i < 0 {
			break
		}
		line := string(p.partial[:i])
		p.partial = p.partial[i+1:]
		p.clear()
		fmt.Fprintf(p.out, "      %s\n", line)
		if p.tty && p.pending != "" {
			fmt.Fprint(p.out, p.pending)
		}
	}
	return len(b), nil
}

func (p *upPrinter) logf(format string, args ...any) {
	fmt.Fprintf(p, format+"\n", args...)
}
