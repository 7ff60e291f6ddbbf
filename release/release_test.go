package release_test

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	corev1 "k8s.io/api/core/v1"

	"hl.dev/hl/internal/asrendered"
	"hl.dev/hl/internal/testharness"
	"hl.dev/hl/release"
)

const testVersion = "v0.0.0-test.1"

var created = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

var built struct {
	once sync.Once
	dir  string
	bin  string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
	os.Exit(code)
}

// hlBinary is hl built for the host's architecture exactly as a release
// builds it (BuildBinary), once per test binary.
func hlBinary(t testing.TB) string {
	t.Helper()
	built.once.Do(func() {
		built.dir, built.err = os.MkdirTemp("", "release-test-*")
		if built.err != nil {
			return
		}
		repo, err := testharness.RepoRoot()
		if err != nil {
			built.err = err
			return
		}
		built.bin = filepath.Join(built.dir, "hl")
		built.err = release.BuildBinary(context.Background(), repo, runtime.GOARCH, testVersion, built.bin)
	})
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built.bin
}

// baseRootfs is the cached base of scripts/build-image-base.sh (make
// image-base); missing, the test fails saying so.
func baseRootfs(t testing.TB, arch string) string {
	t.Helper()
	root, err := testharness.CacheRoot("HL_IMAGE_BASE_CACHE", "image-base")
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(root, "current", arch, "rootfs")
	testharness.AwaitBuild(filepath.Join(p, "bin", "sh"))
	if _, err := os.Stat(filepath.Join(p, "bin", "sh")); err != nil {
		t.Fatalf("no image base for %s at %s: run `make image-base` (scripts/build-image-base.sh %s) as root: %v", arch, p, arch, err)
	}
	return p
}

var img struct {
	once sync.Once
	opts release.ImageOptions
	idx  v1.ImageIndex
	err  error
}

// sharedImage is the image of imageOptions, built once per test binary
// (an image build compresses the whole base: tens of seconds).
func sharedImage(t testing.TB) (release.ImageOptions, v1.ImageIndex) {
	t.Helper()
	o := imageOptions(t)
	img.once.Do(func() {
		img.opts = o
		img.opts.WorkDir = filepath.Join(built.dir, "work")
		img.idx, img.err = release.BuildImage(context.Background(), img.opts)
	})
	if img.err != nil {
		t.Fatal(img.err)
	}
	return img.opts, img.idx
}

func imageOptions(t testing.TB) release.ImageOptions {
	return release.ImageOptions{
		Version:  testVersion,
		Revision: "0123456789abcdef0123456789abcdef01234567",
		Source:   release.DefaultSource,
		Licenses: "NOASSERTION",
		Created:  created,
		Platforms: []release.Platform{{
			Arch: runtime.GOARCH, Base: baseRootfs(t, runtime.GOARCH), Binary: hlBinary(t),
		}},
		WorkDir: t.TempDir(),
	}
}

func buildLayout(t *testing.T, o release.ImageOptions) (string, v1.Hash) {
	t.Helper()
	idx, err := release.BuildImage(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	return writeLayout(t, o, idx)
}

func writeLayout(t *testing.T, o release.ImageOptions, idx v1.ImageIndex) (string, v1.Hash) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "layout")
	if err := release.WriteLayout(dir, idx, release.Repository+":"+o.Version); err != nil {
		t.Fatal(err)
	}
	d, err := idx.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return dir, d
}

// TestImage builds the image into an OCI layout, reads it back, checks
// its config and layers, then extracts it and runs its binaries chrooted
// as its user (internal/asrendered): the shell, git, the CA bundle,
// tzdata, hl itself.
func TestImage(t *testing.T) {
	o, idx := sharedImage(t)
	dir, digest := writeLayout(t, o, idx)

	lp, err := layout.FromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	outer, err := lp.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	om, err := outer.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(om.Manifests) != 1 || om.Manifests[0].Digest != digest || !om.Manifests[0].MediaType.IsIndex() {
		t.Fatalf("layout index.json: %+v, want one image index %s", om.Manifests, digest)
	}
	if got := om.Manifests[0].Annotations["org.opencontainers.image.ref.name"]; got != release.Repository+":"+testVersion {
		t.Errorf("layout ref name = %q", got)
	}
	idx, err = outer.ImageIndex(digest)
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) != 1 || im.Manifests[0].Platform == nil ||
		im.Manifests[0].Platform.OS != "linux" || im.Manifests[0].Platform.Architecture != runtime.GOARCH {
		t.Fatalf("index manifests: %+v", im.Manifests)
	}
	img, err := idx.Image(im.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cf.Config.Entrypoint, []string{"/usr/local/bin/hl"}) {
		t.Errorf("entrypoint = %q", cf.Config.Entrypoint)
	}
	if cf.Config.User != "65532:65532" {
		t.Errorf("user = %q", cf.Config.User)
	}
	if !cf.Created.Time.Equal(created) {
		t.Errorf("created = %v, want %v", cf.Created.Time, created)
	}
	wantLabels := map[string]string{
		"org.opencontainers.image.source":   "https://github.com/hl-dev/hl",
		"org.opencontainers.image.version":  testVersion,
		"org.opencontainers.image.revision": o.Revision,
		"org.opencontainers.image.licenses": "NOASSERTION",
		"org.opencontainers.image.title":    "hl",
		"org.opencontainers.image.created":  "2026-11-01T12:00:00Z",
	}
	for k, v := range wantLabels {
		if got := cf.Config.Labels[k]; got != v {
			t.Errorf("label %s = %q, want %q", k, got, v)
		}
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if len(layers) != 2 {
		t.Fatalf("%d layers, want base and hl", len(layers))
	}
	// Every entry of both layers carries the source date and numeric
	// owners only: what makes the layers reproducible.
	for i, l := range layers {
		names := layerEntries(t, l, func(h *tar.Header) error {
			if !h.ModTime.Equal(created) || h.Uname != "" || h.Gname != "" {
				return fmt.Errorf("%s: mtime %v uname %q gname %q", h.Name, h.ModTime, h.Uname, h.Gname)
			}
			if h.Mode&0o6000 != 0 && h.Typeflag == tar.TypeReg {
				return fmt.Errorf("%s: set-user/group-ID bit in a non-root image", h.Name)
			}
			if strings.HasPrefix(h.Name, "usr/share/man/") || strings.HasPrefix(h.Name, "var/lib/apt/lists/") && !strings.HasSuffix(h.Name, "/") {
				return fmt.Errorf("%s: should have been trimmed", h.Name)
			}
			return nil
		})
		if i == 1 && !slices.Equal(names, []string{"usr/", "usr/local/", "usr/local/bin/", "usr/local/bin/hl"}) {
			t.Errorf("hl layer entries = %q", names)
		}
	}

	asrendered.RequireRoot(t)
	ext, err := asrendered.ImageFromLayout(dir, runtime.GOARCH, filepath.Join(t.TempDir(), "rootfs"))
	if err != nil {
		t.Fatal(err)
	}
	const ref = release.Repository + ":" + testVersion
	for _, tc := range []struct {
		name    string
		command []string // empty: the image's entrypoint
		args    []string
		want    string
	}{
		{"hl version", nil, []string{"version"}, testVersion},
		{"shell", []string{"/bin/sh", "-c"}, []string{"echo shell $((6*7))"}, "shell 42"},
		{"user and home", []string{"/bin/sh", "-c"}, []string{`echo "$(id -u):$(id -g) $HOME $PWD" && touch "$HOME/w" && echo writable`}, "65532:65532 /home/hl /home/hl\nwritable"},
		{"git", []string{"git", "--version"}, nil, "git version 2."},
		{"ca bundle", []string{"/bin/sh", "-c"}, []string{"grep -c 'BEGIN CERTIFICATE' /etc/ssl/certs/ca-certificates.crt"}, ""},
		{"tzdata", []string{"/bin/sh", "-c"}, []string{"TZ=Europe/Berlin date -d @0 +%Z; TZ=America/New_York date -d @0 +%Z"}, "CET\nEST"},
		{"woodpecker's decoder", []string{"/bin/sh", "-c"}, []string{"echo ZWNobyBiYXNlNjQgb2sK | base64 -d | /bin/sh -e"}, "base64 ok"},
		{"locale", []string{"/bin/sh", "-c"}, []string{`echo "$LANG"; test -d /usr/lib/locale/C.utf8 && echo present`}, "C.UTF-8\npresent"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &asrendered.PodRun{
				Spec:    corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: ref, Command: tc.command, Args: tc.args}}},
				PodName: "image-test", Namespace: "test",
				Images: map[string]*asrendered.Image{ref: ext},
			}
			res, err := r.Run(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if res.ExitCode != 0 {
				t.Fatalf("exit %d: %s%s", res.ExitCode, res.Stdout, res.Stderr)
			}
			if !strings.Contains(res.Stdout, tc.want) {
				t.Errorf("stdout %q does not contain %q", res.Stdout, tc.want)
			}
			if tc.name == "ca bundle" {
				var n int
				if _, err := fmt.Sscan(res.Stdout, &n); err != nil || n < 100 {
					t.Errorf("CA bundle holds %q certificates, want over 100", res.Stdout)
				}
			}
		})
	}
}

func layerEntries(t *testing.T, l v1.Layer, check func(*tar.Header) error) []string {
	t.Helper()
	rc, err := l.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	var names []string
	bad := 0
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return names
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
		if err := check(h); err != nil && bad < 5 {
			bad++
			t.Error(err)
		}
	}
}

// TestImageReproducible builds the image again from the same inputs in
// another folder: same digest. Another source date gives another one.
func TestImageReproducible(t *testing.T) {
	o, idx := sharedImage(t)
	first, err := idx.Digest()
	if err != nil {
		t.Fatal(err)
	}
	again := o
	again.WorkDir = t.TempDir()
	if _, second := buildLayout(t, again); first != second {
		t.Fatalf("same inputs, digests %s and %s", first, second)
	}
	later := o
	later.WorkDir, later.Created = t.TempDir(), created.Add(time.Second)
	if _, d := buildLayout(t, later); d == first {
		t.Errorf("another source date gave the same digest %s", d)
	}
}

// TestPushPullByDigest pushes the index to an in-process registry and
// pulls it back by digest: same index, same images, same layers.
func TestPushPullByDigest(t *testing.T) {
	_, idx := sharedImage(t)
	srv := httptest.NewServer(registry.New())
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	pushed, err := release.Push(t.Context(), host+"/hl-dev/hl:"+testVersion, idx)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := idx.Digest()
	ref, err := name.ParseReference(host + "/hl-dev/hl@" + want.String())
	if err != nil {
		t.Fatal(err)
	}
	if pushed.String() != ref.String() {
		t.Errorf("Push returned %s, want %s", pushed, ref)
	}
	got, err := remote.Index(ref, remote.WithContext(t.Context()))
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := got.Digest(); d != want {
		t.Fatalf("pulled index %s, pushed %s", d, want)
	}
	// By tag too: the tag names the same index.
	tagRef, err := name.ParseReference(host + "/hl-dev/hl:" + testVersion)
	if err != nil {
		t.Fatal(err)
	}
	tagged, err := remote.Index(tagRef, remote.WithContext(t.Context()))
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := tagged.Digest(); d != want {
		t.Errorf("tag resolves to %s, want %s", d, want)
	}
	im, err := got.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	for _, desc := range im.Manifests {
		img, err := remote.Image(ref.Context().Digest(desc.Digest.String()), remote.WithContext(t.Context()))
		if err != nil {
			t.Fatal(err)
		}
		local, err := idx.Image(desc.Digest)
		if err != nil {
			t.Fatal(err)
		}
		rl, _ := img.Layers()
		ll, _ := local.Layers()
		if len(rl) != len(ll) {
			t.Fatalf("%d layers pulled, %d built", len(rl), len(ll))
		}
		for i := range rl {
			rd, _ := rl[i].Digest()
			ld, _ := ll[i].Digest()
			if rd != ld {
				t.Errorf("layer %d: pulled %s, built %s", i, rd, ld)
			}
			// Pull the blob for real: the registry serves what was pushed.
			rc, err := rl[i].Compressed()
			if err != nil {
				t.Fatal(err)
			}
			n, err := io.Copy(io.Discard, rc)
			rc.Close()
			if size, _ := ll[i].Size(); err != nil || n != size {
				t.Errorf("layer %d: read %d bytes (%v), want %d", i, n, err, size)
			}
		}
	}
}

// TestArchiveAndChecksums: the archive holds hl alone (mode 0755, root,
// the source date) and sha256sum -c accepts SHA256SUMS, and refuses it
// once an archive changed.
func TestArchiveAndChecksums(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "hl-bin")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\necho hl\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, arch := range []string{"amd64", "arm64"} {
		n := release.ArchiveName("v1.2.3", arch)
		names = append(names, n)
		if err := release.Archive(bin, filepath.Join(dir, n), created); err != nil {
			t.Fatal(err)
		}
	}
	if names[0] != "hl_1.2.3_linux_amd64.tar.gz" {
		t.Errorf("archive name %q", names[0])
	}
	f, err := os.Open(filepath.Join(dir, names[0]))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	h, err := tr.Next()
	if err != nil {
		t.Fatal(err)
	}
	if h.Name != "hl" || h.Mode != 0o755 || h.Uid != 0 || !h.ModTime.Equal(created) {
		t.Errorf("entry %s mode %o uid %d mtime %v", h.Name, h.Mode, h.Uid, h.ModTime)
	}
	if _, err := tr.Next(); !errors.Is(err, io.EOF) {
		t.Errorf("more than one entry: %v", err)
	}
	if err := release.WriteChecksums(dir, names); err != nil {
		t.Fatal(err)
	}
	check := func() error {
		cmd := exec.Command("sha256sum", "--strict", "-c", "SHA256SUMS")
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		return nil
	}
	if err := check(); err != nil {
		t.Fatalf("sha256sum -c: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, names[1]), []byte("tampered"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := check(); err == nil {
		t.Error("sha256sum -c accepted a changed archive")
	}
}

func BenchmarkBuildImage(b *testing.B) {
	o := imageOptions(b)
	for b.Loop() {
		o.WorkDir = b.TempDir()
		idx, err := release.BuildImage(b.Context(), o)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := idx.Digest(); err != nil {
			b.Fatal(err)
		}
	}
}
