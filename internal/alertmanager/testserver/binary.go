package testserver

import (
	"errors"
	"fmt"

	"hl.dev/hl/internal/testharness"
)

// Version is the Alertmanager release the harness builds and runs. It is
// the version of github.com/prometheus/alertmanager in go.mod too, whose
// config package `hl validate` loads the rendered configuration with, so
// the test runs the same parser the check does.
const Version = "0.35.0"

const (
	// EnvBinary names an alertmanager binary to use instead of the cached
	// build.
	EnvBinary = "HL_ALERTMANAGER_BIN"
	// EnvCache overrides the cache root used by
	// scripts/build-alertmanager.sh.
	EnvCache = "HL_ALERTMANAGER_CACHE"
)

// ErrNoBinary is returned (wrapped) when no alertmanager binary can be
// found.
var ErrNoBinary = errors.New("alertmanager binary not found; run `make alertmanager` (scripts/build-alertmanager.sh) to build it")

// Binary returns the alertmanager binary to run: $HL_ALERTMANAGER_BIN if
// set, else $HL_ALERTMANAGER_CACHE/v<Version>/alertmanager, else
// <repo root>/.cache/alertmanager/v<Version>/alertmanager.
func Binary() (string, error) {
	p, err := testharness.Binary(EnvBinary, EnvCache, "alertmanager", "v"+Version+"/alertmanager")
	if errors.Is(err, testharness.ErrNoBinary) {
		return "", fmt.Errorf("%w: %v", ErrNoBinary, err)
	}
	return p, err
}
