package generator

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"hl.dev/hl/internal/chaos"
	"hl.dev/hl/internal/testharness"
	"hl.dev/hl/secrets"
)

func TestMain(m *testing.M) { testharness.Main(m) }

// hl render after a change of domain (most of the full fixture's files
// change), run as the real hl binary and SIGKILLed at a seeded moment
// within the time a render takes here (measured first: loading, planning,
// secrets, the journaled commit), killed again at another seeded moment
// of the re-run, then run to the end: it succeeds, a further render converges (assertConverged: the same
// files as a render into an empty folder, byte for byte but for secret
// values, nothing kept as a user edit, no staging left) and every secret
// file still decrypts. `make test` runs the fixed seeds; CHAOS_RUNS more.
func TestRenderKilledAnywhere(t *testing.T) {
	bin := chaos.Binary(t, "hl.dev/hl/cmd/hl")
	key := filepath.Join(repoRoot, "testdata", "age", "test-key.txt")
	runner := func(dir, cfg string) chaos.Runner {
		return chaos.Runner{Command: func(ctx context.Context) *exec.Cmd {
			return exec.CommandContext(ctx, bin, "render", "--config", cfg, "--out", dir, "--age-key", key)
		}}
	}
	// How long the render takes here (the fastest of three, as a loaded
	// machine slows some): the kills fall inside it.
	var took time.Duration
	for range 3 {
		probeDir, probeCfg := renderedThenRedomained(t)
		start := time.Now()
		if o := runner(probeDir, probeCfg).Run(t.Context()); o.Err != nil {
			t.Fatalf("a render: %v\n%s", o.Err, o.Output())
		}
		if d := time.Since(start); took == 0 || d < took {
			took = d
		}
	}
	t.Logf("a render of the changed domain takes %v here", took)
	chaos.ForEach(t, []uint64{1, 2, 3}, func(t *testing.T, seed uint64) {
		kills := []time.Duration{chaos.Moment(seed, 5*time.Millisecond, took*9/10), chaos.Moment(seed^0xfeed, 5*time.Millisecond, took*9/10)}
		var dir, cfg string
		var outs []chaos.Outcome
		// A render that ends before its kill (the machine got faster than
		// the probe) proves nothing: start over from the same state with
		// the seed's moment halved, a few times.
		for try := 0; ; try++ {
			dir, cfg = renderedThenRedomained(t)
			outs = runner(dir, cfg).KillThenRun(t.Context(), kills)
			if outs[0].Killed {
				break
			}
			if try == 4 {
				t.Fatalf("the first run was not killed in %d tries, the last at %v (%v): the seed proves nothing", try+1, kills[0], outs[0])
			}
			t.Logf("the render ended before the kill at %v; again from the start at half that", kills[0])
			kills[0] /= 2
		}
		for i, o := range outs {
			t.Logf("run %d: %v", i+1, o)
			if out := o.Output(); strings.Contains(out, "goroutine ") || strings.Contains(out, "panic:") {
				t.Errorf("run %d crashed:\n%s", i+1, out)
			}
		}
		if last := outs[len(outs)-1]; last.Err != nil {
			t.Fatalf("the render after the kills failed: %v\n%s", last.Err, last.Output())
		}
		assertConverged(t, dir, cfg, mustRender(t, cfg, dir, nil))
		n := 0
		for p, b := range snapshot(t, dir) {
			if !isSecretPath(p) {
				continue
			}
			n++
			if _, err := secrets.Decrypt(b, testIdentities(t)...); err != nil {
				t.Errorf("%s does not decrypt after the kills: %v", p, err)
			}
		}
		if n == 0 {
			t.Fatal("no secret file found: the decrypt check proves nothing")
		}
	})
}
