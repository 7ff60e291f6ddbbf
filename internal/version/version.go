// Package version owns hl's version string: set at link time with
// -ldflags "-X hl.dev/hl/internal/version.Version=v1.2.3", else taken
// from the module build info.
package version

import "runtime/debug"

// Version of this hl build.
var Version = ""

// Get returns the version, "(devel)" for a plain source build.
func Get() string {
	if Version != "" {
		return Version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}
