package bench

import (
	"os"
	"syscall"
)

// PeakRSS returns a finished child's peak resident set size in bytes
// (ru_maxrss, which Linux reports in KiB).
func PeakRSS(ps *os.ProcessState) (int64, bool) {
	ru, ok := ps.SysUsage().(*syscall.Rusage)
	if !ok {
		return 0, false
	}
	return ru.Maxrss * 1024, true
}
