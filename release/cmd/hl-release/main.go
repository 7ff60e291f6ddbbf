// Command hl-release builds what a tag of hl publishes (package release):
// the linux binaries, their archives and SHA256SUMS, and the image as an
// OCI layout, pushed when --push names a reference. `make image` and the
// release pipeline (.woodpecker/release.yaml) run it.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"time"

	"hl.dev/hl/release"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "hl-release:", err)
		os.Exit(1)
	}
}

func run() error {
	var o release.Options
	var arches, epoch string
	flag.StringVar(&o.Version, "version", "", "version to link in and tag (required), e.g. v0.1.0")
	flag.StringVar(&o.Revision, "revision", "", "source revision (default: git rev-parse HEAD)")
	flag.StringVar(&epoch, "source-date-epoch", os.Getenv("SOURCE_DATE_EPOCH"), "source date, Unix seconds (default: $SOURCE_DATE_EPOCH, else the commit time)")
	flag.StringVar(&o.Source, "source", release.DefaultSource, "org.opencontainers.image.source")
	flag.StringVar(&o.Licenses, "licenses", "NOASSERTION", "org.opencontainers.image.licenses (SPDX expression)")
	flag.StringVar(&arches, "arch", "amd64,arm64", "architectures, comma-separated")
	flag.StringVar(&o.BaseDir, "base", ".cache/image-base/current", "folder with <arch>/rootfs from scripts/build-image-base.sh")
	flag.StringVar(&o.OutDir, "out", ".cache/release", "output folder (must be empty or missing)")
	flag.StringVar(&o.Push, "push", "", "push the image to this reference, e.g. "+release.Repository+":v0.1.0")
	flag.Parse()
	if o.Version == "" {
		return fmt.Errorf("--version is required")
	}
	o.SrcDir = "."
	o.Arches = strings.Split(arches, ",")
	if o.Revision == "" {
		out, err := exec.Command("git", "rev-parse", "HEAD").Output()
		if err != nil {
			return fmt.Errorf("--revision not given and git rev-parse HEAD failed: %w", err)
		}
		o.Revision = strings.TrimSpace(string(out))
	}
	if epoch == "" {
		out, err := exec.Command("git", "log", "-1", "--format=%ct").Output()
		if err != nil {
			return fmt.Errorf("--source-date-epoch not given and git log failed: %w", err)
		}
		epoch = strings.TrimSpace(string(out))
	}
	sec, err := strconv.ParseInt(epoch, 10, 64)
	if err != nil {
		return fmt.Errorf("source date epoch %q: %w", epoch, err)
	}
	o.SourceDate = time.Unix(sec, 0).UTC()
	o.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	res, err := release.Run(ctx, o)
	if err != nil {
		return err
	}
	fmt.Println(res.Digest.String())
	return nil
}
