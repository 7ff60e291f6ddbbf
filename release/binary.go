package release

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// VersionSymbol is the variable the version is linked into.
const VersionSymbol = "hl.dev/hl/internal/version.Version"

// BuildBinary builds ./cmd/hl of the module in srcDir for linux/arch into
// out: cgo off (the image has no C library hl needs, and a static binary
// runs on any base), -trimpath (no build paths in the binary, so two
// checkouts build the same bytes), symbols stripped, the version linked.
func BuildBinary(ctx context.Context, srcDir, arch, version, out string) error {
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath",
		"-ldflags", "-s -w -X "+VersionSymbol+"="+version,
		"-o", out, "./cmd/hl")
	cmd.Dir = srcDir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch, "GOFLAGS=")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build linux/%s: %w: %s", arch, err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

// ArchiveName is the release archive of one platform's binary, the
// version without its leading v as release tools name them.
func ArchiveName(version, arch string) string {
	return fmt.Sprintf("hl_%s_linux_%s.tar.gz", strings.TrimPrefix(version, "v"), arch)
}

// Archive writes hl (the binary at bin, mode 0755, owned by root, mtime
// the source date) as a tar.gz at path.
func Archive(bin, path string, modTime time.Time) error {
	return FilesLayer([]File{{Path: "hl", Source: bin, Mode: 0o755}}, path, modTime)
}

// WriteChecksums writes SHA256SUMS in dir for files (names in dir), in
// sha256sum's format and name order, so `sha256sum -c SHA256SUMS` checks
// them.
func WriteChecksums(dir string, files []string) error {
	names := append([]string(nil), files...)
	sort.Strings(names)
	var b strings.Builder
	for _, n := range names {
		sum, err := fileSHA256(filepath.Join(dir, n))
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "%s  %s\n", sum, n)
	}
	return os.WriteFile(filepath.Join(dir, "SHA256SUMS"), []byte(b.String()), 0o644)
}

func fileSHA256(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("%s: %w", p, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
