package metal

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

var sha256Hex = regexp.MustCompile(`^[0-9a-f]{64}$`)

// CachePath is where the image cache keeps content with the given sha256:
// <cache>/sha256/<hex>. The name is the content's hash, so a file in the
// cache is always the file that was pinned.
func CachePath(cacheDir, sum string) (string, error) {
	sum = strings.ToLower(sum)
	if !sha256Hex.MatchString(sum) {
		return "", fmt.Errorf("%q is not a sha256 checksum", sum)
	}
	return filepath.Join(cacheDir, "sha256", sum), nil
}

// Mirror rewrites URLs starting with From to start with To (e.g. a local
// Debian mirror, or file:///usr/lib/debian-installer/... for the netboot
// files of the Debian package debian-installer-12-netboot-amd64).
type Mirror struct {
	From string `json:"from"`
	To   string `json:"to"`
}

// ParseMirror parses "FROM=TO".
func ParseMirror(s string) (Mirror, error) {
	from, to, ok := strings.Cut(s, "=")
	if !ok || from == "" || to == "" {
		return Mirror{}, fmt.Errorf("mirror %q: want FROM=TO (URL prefixes)", s)
	}
	return Mirror{From: from, To: to}, nil
}

// Rewrite applies the longest matching mirror to u.
func Rewrite(u string, mirrors []Mirror) string {
	best, out := -1, u
	for _, m := range mirrors {
		from := strings.TrimSuffix(m.From, "/")
		if (u == from || strings.HasPrefix(u, from+"/")) && len(from) > best {
			best, out = len(from), strings.TrimSuffix(m.To, "/")+u[len(from):]
		}
	}
	return out
}

// Defaults of hl metal images pull: a netboot kernel is ~10 MiB and an
// initrd 40 to 150 MiB; anything near a GiB is not a netboot image.
const (
	DefaultPullTimeout = 30 * time.Minute
	DefaultPullMaxSize = 1 << 30
)

// PullOptions configure hl metal images pull.
type PullOptions struct {
	// Dir is the repo root (metal/images.yaml names the pins).
	Dir      string
	CacheDir string
	Mirrors  []Mirror
	Client   *http.Client
	// Timeout bounds the whole pull (DefaultPullTimeout when zero).
	Timeout time.Duration
	// MaxSize caps each file in bytes (DefaultPullMaxSize when zero): a
	// bigger one is refused and nothing of it stays in the cache.
	MaxSize int64
}

// ErrTooLarge is returned (wrapped) when a download exceeds MaxSize.
var ErrTooLarge = errors.New("larger than the size cap")

// PullResult is what happened to one pinned file.
type PullResult struct {
	Name   string `json:"name"`
	URL    string `json:"url"`
	From   string `json:"from"`
	SHA256 string `json:"sha256"`
	Path   string `json:"path"`
	Size   int64  `json:"size"`
	// Cached is true when the file was already in the cache.
	Cached bool `json:"cached"`
}

// ErrChecksum is returned (wrapped) when a download does not match its pin.
var ErrChecksum = errors.New("checksum mismatch")

// Pull downloads the kernel and initrd pinned in metal/images.yaml into the
// content-addressed cache, verifying each against its sha256 while it
// streams. A file without a pinned checksum is refused, and a mismatch
// leaves nothing in the cache.
func Pull(ctx context.Context, opts PullOptions) ([]PullResult, error) {
	pin, err := LoadOSPin(opts.Dir)
	if err != nil {
		return nil, err
	}
	if opts.Client == nil {
		opts.Client = http.DefaultClient
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultPullTimeout
	}
	if opts.MaxSize <= 0 {
		opts.MaxSize = DefaultPullMaxSize
	}
	ctx, cancel := context.WithTimeoutCause(ctx, opts.Timeout, fmt.Errorf("hl metal images pull: timed out after %s", opts.Timeout))
	defer cancel()
	var out []PullResult
	for _, f := range []struct {
		name string
		a    Artifact
	}{{"kernel", pin.Kernel}, {"initrd", pin.Initrd}} {
		res, err := pullOne(ctx, opts, pin.Ref().String()+" "+f.name, f.a)
		if err != nil {
			return out, err
		}
		res.Name = f.name
		out = append(out, res)
	}
	return out, nil
}

func pullOne(ctx context.Context, opts PullOptions, what string, a Artifact) (PullResult, error) {
	res := PullResult{URL: a.URL, SHA256: strings.ToLower(a.SHA256)}
	if a.SHA256 == "" {
		return res, fmt.Errorf("%s: no sha256 pinned in %s for %s: refusing to download an unverifiable image (pin it first)", what, OSFile, a.URL)
	}
	dst, err := CachePath(opts.CacheDir, a.SHA256)
	if err != nil {
		return res, fmt.Errorf("%s: %w", what, err)
	}
	res.Path = dst
	res.From = Rewrite(a.URL, opts.Mirrors)
	if info, err := os.Stat(dst); err == nil {
		res.Cached, res.Size = true, info.Size()
		return res, nil
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return res, err
	}
	body, size, err := open(ctx, opts.Client, res.From)
	if err != nil {
		return res, fmt.Errorf("%s: %w", what, withCause(ctx, err))
	}
	defer body.Close()
	if size > opts.MaxSize {
		return res, fmt.Errorf("%s: %w: %s is %d bytes, the cap is %d; nothing was cached", what, ErrTooLarge, res.From, size, opts.MaxSize)
	}
	tmp, err := os.CreateTemp(filepath.Dir(dst), ".pull-*")
	if err != nil {
		return res, err
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	h := sha256.New()
	// One byte past the cap tells a file at the cap from a bigger one
	// whose size the server did not announce.
	n, err := io.Copy(io.MultiWriter(tmp, h), io.LimitReader(ctxReader{ctx, body}, opts.MaxSize+1))
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return res, fmt.Errorf("%s: downloading %s: %w", what, res.From, withCause(ctx, err))
	}
	if n > opts.MaxSize {
		return res, fmt.Errorf("%s: %w: %s is more than %d bytes; nothing was cached", what, ErrTooLarge, res.From, opts.MaxSize)
	}
	got := hex.EncodeToString(h.Sum(nil))
	if got != res.SHA256 {
		return res, fmt.Errorf("%s: %w: %s has sha256 %s, %s pins %s; nothing was cached", what, ErrChecksum, res.From, got, OSFile, res.SHA256)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return res, err
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return res, err
	}
	res.Size = n
	return res, nil
}

// open returns the body of an http(s) or file URL and its size (-1 when
// the server does not say).
func open(ctx context.Context, c *http.Client, raw string) (io.ReadCloser, int64, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, 0, err
	}
	switch u.Scheme {
	case "file":
		f, err := os.Open(filepath.FromSlash(u.Path))
		if errors.Is(err, fs.ErrNotExist) {
			return nil, 0, fmt.Errorf("%s does not exist", u.Path)
		}
		if err != nil {
			return nil, 0, err
		}
		info, err := f.Stat()
		if err != nil {
			f.Close()
			return nil, 0, err
		}
		return f, info.Size(), nil
	case "http", "https":
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, raw, nil)
		if err != nil {
			return nil, 0, err
		}
		resp, err := c.Do(req)
		if err != nil {
			return nil, 0, err
		}
		if resp.StatusCode != http.StatusOK {
			resp.Body.Close()
			return nil, 0, fmt.Errorf("GET %s: %s", raw, resp.Status)
		}
		return resp.Body, resp.ContentLength, nil
	default:
		return nil, 0, fmt.Errorf("%s: unsupported URL scheme %q", raw, u.Scheme)
	}
}

// ctxReader stops reading when ctx is done: a file:// source (a stalled
// NFS mount) ignores the context otherwise.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// withCause names the timeout when ctx ran out, instead of a bare
// "context deadline exceeded".
func withCause(ctx context.Context, err error) error {
	if cause := context.Cause(ctx); cause != nil && ctx.Err() != nil && !errors.Is(err, cause) {
		return fmt.Errorf("%w (%w)", cause, err)
	}
	return err
}
