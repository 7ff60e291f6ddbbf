//go:build !linux

package bench

import "os"

// PeakRSS is only implemented on Linux.
func PeakRSS(*os.ProcessState) (int64, bool) { return 0, false }
