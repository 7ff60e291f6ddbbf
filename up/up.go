// Package up owns hl up: day one as one resumable run of steps (netboot
// images, the PXE install of every node, the kubeconfig, the forge and
// cluster bootstrap, the wait for Argo CD) and the file that remembers
// which steps finished.
//
// The steps are the existing commands' Go functions (metal.Pull, the
// metal server, metal.Kubeconfig, bootstrap.Run, bootstrap.Cluster), not
// new implementations: hl up only orders them, shows progress and keeps
// the state. A finished step is recorded in .hl-up.json in the repo
// (the rendered .gitignore keeps it out of git). A re-run does not trust
// the record alone: it asks each recorded step whether its result still
// holds (the images still hash to their pins, every node is still
// installed, the kubeconfig still reaches the API server, a dry-run
// bootstrap would change nothing, the Applications are still synced) and
// runs again the steps whose result is gone.
package up

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"hl.dev/hl/internal/fsutil"
)

// StateFile is hl up's record of finished steps, in the repo's root.
const StateFile = ".hl-up.json"

// Step is one step of day one.
type Step struct {
	Name string
	// Skip, when set, says why the step does not apply to this homelab;
	// it is neither run nor recorded.
	Skip string
	// Check reports whether a recorded step's result still holds (and a
	// detail to show). Nil: the record is enough.
	Check func(ctx context.Context) (bool, string, error)
	// Run does the step and returns a detail to show.
	Run func(ctx context.Context) (string, error)
}

// Status is what happened to a step.
type Status string

const (
	StatusRunning Status = "running"
	// StatusDone: the step ran now.
	StatusDone Status = "done"
	// StatusHolds: recorded earlier and checked: still true, not run.
	StatusHolds Status = "holds"
	// StatusSkipped: the step does not apply.
	StatusSkipped Status = "skipped"
	StatusFailed  Status = "failed"
)

// Event reports a step's progress.
type Event struct {
	Step   string
	Status Status
	Detail string
	// Redo is set on a running step that was recorded but whose result
	// no longer holds (Detail says why).
	Redo bool
	Err  error
}

// State is the content of StateFile.
type State struct {
	Version int `json:"version"`
	// Done lists the finished steps, in the order they finished.
	Done []string `json:"done"`
}

// LoadState reads dir's state (empty when there is none yet).
func LoadState(dir string) (*State, error) {
	p := filepath.Join(dir, StateFile)
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return &State{Version: 1}, nil
	}
	if err != nil {
		return nil, err
	}
	var st State
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("%s: %w (delete it to start day one over)", p, err)
	}
	if st.Version != 1 {
		return nil, fmt.Errorf("%s: version %d, this hl knows 1", p, st.Version)
	}
	return &st, nil
}

func (st *State) save(dir string) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	return fsutil.WriteFileAtomic(filepath.Join(dir, StateFile), append(b, '\n'), 0o644)
}

func (st *State) set(name string, done bool) {
	st.Done = slices.DeleteFunc(st.Done, func(s string) bool { return s == name })
	if done {
		st.Done = append(st.Done, name)
	}
}

// Run runs the steps in order. A step dir's state records as done is
// checked instead of run, and run when its result no longer holds. Each
// step that finishes is recorded at once, so a run stopped anywhere (an
// error, ctx cancelled) resumes after the last finished step. The first
// failure stops the run.
func Run(ctx context.Context, dir string, steps []Step, progress func(Event)) error {
	if progress == nil {
		progress = func(Event) {}
	}
	st, err := LoadState(dir)
	if err != nil {
		return err
	}
	for _, s := range steps {
		if s.Skip != "" {
			progress(Event{Step: s.Name, Status: StatusSkipped, Detail: s.Skip})
			continue
		}
		redo, why := false, ""
		if slices.Contains(st.Done, s.Name) {
			holds, detail := true, "recorded in "+StateFile
			if s.Check != nil {
				progress(Event{Step: s.Name, Status: StatusRunning, Detail: "checking"})
				var err error
				if holds, detail, err = s.Check(ctx); err != nil {
					holds = false
					detail = err.Error()
				}
			}
			if holds {
				progress(Event{Step: s.Name, Status: StatusHolds, Detail: detail})
				continue
			}
			// The result is gone (a node reinstalling, a kubeconfig moved):
			// forget it before running again, so a stop now does not
			// leave it recorded.
			redo, why = true, detail
			st.set(s.Name, false)
			if err := st.save(dir); err != nil {
				return err
			}
		}
		progress(Event{Step: s.Name, Status: StatusRunning, Redo: redo, Detail: why})
		detail, err := s.Run(ctx)
		if err == nil {
			err = ctx.Err()
		}
		if err != nil {
			progress(Event{Step: s.Name, Status: StatusFailed, Detail: detail, Err: err})
			return fmt.Errorf("%s: %w", s.Name, err)
		}
		st.set(s.Name, true)
		if err := st.save(dir); err != nil {
			return err
		}
		progress(Event{Step: s.Name, Status: StatusDone, Detail: detail})
	}
	return nil
}
