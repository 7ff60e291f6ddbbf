package up

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// fakeStep is a step whose result is a flag the test controls: Run sets
// it, Check reads it. It stands for nothing outside the step machine,
// whose resume logic is what these tests are about; the real steps are
// tested in dayone_test.go against the real servers.
type fakeStep struct {
	name  string
	holds bool
	fail  error
	runs  int
	check int
}

func (f *fakeStep) step() Step {
	return Step{
		Name: f.name,
		Check: func(context.Context) (bool, string, error) {
			f.check++
			return f.holds, "", nil
		},
		Run: func(context.Context) (string, error) {
			f.runs++
			if f.fail != nil {
				return "", f.fail
			}
			f.holds = true
			return "ran", nil
		},
	}
}

func steps(fs ...*fakeStep) []Step {
	var out []Step
	for _, f := range fs {
		out = append(out, f.step())
	}
	return out
}

func events(list *[]string) func(Event) {
	return func(e Event) {
		if e.Status != StatusRunning {
			*list = append(*list, e.Step+":"+string(e.Status))
		}
	}
}

// A run stopped at step N resumes there: the steps before are checked,
// not run again; the failed one and the rest run; each finished step is
// recorded the moment it finishes. A recorded step whose result is gone
// runs again, and is forgotten before it does.
func TestRunResumes(t *testing.T) {
	for _, stopAt := range []int{0, 1, 2, 3} {
		t.Run(string(rune('a'+stopAt)), func(t *testing.T) {
			dir := t.TempDir()
			fs := []*fakeStep{{name: "images"}, {name: "nodes"}, {name: "kubeconfig"}, {name: "cluster"}}
			boom := errors.New("node2 did not call back")
			fs[stopAt].fail = boom
			var got []string
			err := Run(t.Context(), dir, steps(fs...), events(&got))
			if !errors.Is(err, boom) || !strings.HasPrefix(err.Error(), fs[stopAt].name+": ") {
				t.Fatalf("first run: %v", err)
			}
			st, err := LoadState(dir)
			if err != nil {
				t.Fatal(err)
			}
			var want []string
			for _, f := range fs[:stopAt] {
				want = append(want, f.name)
			}
			if !slices.Equal(st.Done, want) {
				t.Fatalf("recorded %v after a stop at %s, want %v", st.Done, fs[stopAt].name, want)
			}
			for i, f := range fs {
				if wantRuns := map[bool]int{true: 1, false: 0}[i <= stopAt]; f.runs != wantRuns || f.check != 0 {
					t.Errorf("first run: %s ran %d times, checked %d", f.name, f.runs, f.check)
				}
			}

			fs[stopAt].fail = nil
			got = nil
			if err := Run(t.Context(), dir, steps(fs...), events(&got)); err != nil {
				t.Fatalf("second run: %v", err)
			}
			for i, f := range fs {
				wantRuns, wantChecks := 1, 1
				if i >= stopAt {
					wantRuns, wantChecks = 1+map[bool]int{true: 1, false: 0}[i == stopAt], 0
				}
				if f.runs != wantRuns || f.check != wantChecks {
					t.Errorf("second run: %s ran %d times (want %d), checked %d (want %d)", f.name, f.runs, wantRuns, f.check, wantChecks)
				}
				wantEvent := f.name + ":holds"
				if i >= stopAt {
					wantEvent = f.name + ":done"
				}
				if got[i] != wantEvent {
					t.Errorf("second run event %d: %s, want %s", i, got[i], wantEvent)
				}
			}
			if st, _ := LoadState(dir); len(st.Done) != len(fs) {
				t.Errorf("recorded %v after a full run", st.Done)
			}
		})
	}
}

func TestRunRedoesWhatNoLongerHolds(t *testing.T) {
	dir := t.TempDir()
	fs := []*fakeStep{{name: "images"}, {name: "nodes"}, {name: "sync"}}
	if err := Run(t.Context(), dir, steps(fs...), nil); err != nil {
		t.Fatal(err)
	}
	// node2 is being reinstalled: its step no longer holds, and running
	// it again fails this time. It must not stay recorded.
	fs[1].holds, fs[1].fail = false, errors.New("still installing")
	var redo []string
	err := Run(t.Context(), dir, steps(fs...), func(e Event) {
		if e.Redo {
			redo = append(redo, e.Step)
		}
	})
	if err == nil || fs[1].runs != 2 || fs[2].runs != 1 || fs[0].runs != 1 {
		t.Fatalf("err %v; runs images %d nodes %d sync %d", err, fs[0].runs, fs[1].runs, fs[2].runs)
	}
	if !slices.Equal(redo, []string{"nodes"}) {
		t.Errorf("redo events %v", redo)
	}
	st, _ := LoadState(dir)
	if !slices.Equal(st.Done, []string{"images", "sync"}) {
		t.Errorf("recorded %v: nodes should be forgotten", st.Done)
	}
}

func TestRunSkipsAndStops(t *testing.T) {
	dir := t.TempDir()
	ran := false
	list := []Step{
		{Name: "forge", Skip: "the cluster's own Gitea", Run: func(context.Context) (string, error) { ran = true; return "", nil }},
		{Name: "sync", Run: func(ctx context.Context) (string, error) { <-ctx.Done(); return "", nil }},
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	var got []string
	err := Run(ctx, dir, list, events(&got))
	if !errors.Is(err, context.Canceled) || ran {
		t.Fatalf("err %v, skipped step ran %t", err, ran)
	}
	if !slices.Equal(got, []string{"forge:skipped", "sync:failed"}) {
		t.Errorf("events %v", got)
	}
	if st, _ := LoadState(dir); len(st.Done) != 0 {
		t.Errorf("a skipped or stopped step was recorded: %v", st.Done)
	}
}

func TestLoadStateRefusesGarbage(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ content, want string }{
		{"{", "delete it to start day one over"},
		{`{"version": 2, "done": []}`, "version 2"},
	} {
		if err := os.WriteFile(filepath.Join(dir, StateFile), []byte(tc.content), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadState(dir); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v", tc.content, err)
		}
	}
}
