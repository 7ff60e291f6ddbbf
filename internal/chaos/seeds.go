package chaos

import (
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"
)

// The variables that steer how long a chaos test runs.
const (
	// EnvSeed replays one seed.
	EnvSeed = "CHAOS_SEED"
	// EnvRuns runs that many seeds (EnvBase+1 ...) instead of the fixed
	// set.
	EnvRuns = "CHAOS_RUNS"
	// EnvBase shifts the seeds of EnvRuns (default 1000), to explore new
	// ones.
	EnvBase = "CHAOS_BASE"
	// EnvDuration keeps drawing seeds after EnvRuns until this long
	// (a time.Duration) has passed.
	EnvDuration = "CHAOS_DURATION"
)

// ForEach runs f as one subtest per seed, one after the other: the fixed
// seeds (what `make test` runs), or what the variables above ask for.
// Every failing seed is logged with the variable that replays it, and
// the tally is logged at the end.
func ForEach(t *testing.T, fixed []uint64, f func(t *testing.T, seed uint64)) {
	t.Helper()
	seeds, more, err := plan(fixed)
	if err != nil {
		t.Fatal(err)
	}
	var failed []uint64
	runs := 0
	one := func(seed uint64) {
		runs++
		ok := t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			t.Cleanup(func() {
				if t.Failed() {
					t.Logf("replay: %s=%d", EnvSeed, seed)
				}
			})
			f(t, seed)
		})
		if !ok {
			failed = append(failed, seed)
		}
	}
	for _, s := range seeds {
		one(s)
	}
	if more != nil {
		next := seeds[len(seeds)-1]
		for more() {
			next++
			one(next)
		}
	}
	t.Logf("chaos: %d of %d seeds passed", runs-len(failed), runs)
	if len(failed) > 0 {
		t.Logf("chaos: failing seeds %v (replay one with %s=N)", failed, EnvSeed)
	}
}

// plan reads the variables: the seeds to run, and whether to keep going.
func plan(fixed []uint64) ([]uint64, func() bool, error) {
	if v := os.Getenv(EnvSeed); v != "" {
		s, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return nil, nil, fmt.Errorf("%s=%q: %w", EnvSeed, v, err)
		}
		return []uint64{s}, nil, nil
	}
	runs, base := 0, uint64(1000)
	if v := os.Getenv(EnvBase); v != "" {
		b, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return nil, nil, fmt.Errorf("%s=%q: %w", EnvBase, v, err)
		}
		base = b
	}
	if v := os.Getenv(EnvRuns); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return nil, nil, fmt.Errorf("%s=%q: want a count of at least 1", EnvRuns, v)
		}
		runs = n
	}
	var more func() bool
	if v := os.Getenv(EnvDuration); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			return nil, nil, fmt.Errorf("%s=%q: %w", EnvDuration, v, err)
		}
		end := time.Now().Add(d)
		more = func() bool { return time.Now().Before(end) }
		if runs == 0 {
			runs = 1
		}
	}
	if runs == 0 {
		return fixed, nil, nil
	}
	seeds := make([]uint64, runs)
	for i := range seeds {
		seeds[i] = base + uint64(i) + 1
	}
	return seeds, more, nil
}
