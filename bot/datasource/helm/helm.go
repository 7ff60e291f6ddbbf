// Package helm is the datasource of charts in HTTP Helm repositories: it
// reads <repo>/index.yaml once per repository per run, streaming it line
// by line so a 50 MB index never sits in memory, keeps only the charts the
// run asks about, and revalidates it next run with ETag/If-Modified-Since.
package helm

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"hl.dev/hl/bot"
	"hl.dev/hl/bot/datasource/internal/weburl"
)

// Name of the datasource.
const Name = "helm"

// Store keeps parsed indexes with their validators across runs. With Dir
// set it also persists them, so a CronJob's next run is conditional too.
type Store struct {
	Dir string

	mu sync.Mutex
	m  map[string]*Stored
	// Revalidated counts 304 answers.
	Revalidated atomic.Int64
}

// Stored is one repository's parsed index.
type Stored struct {
	ETag         string                   `json:"etag,omitempty"`
	LastModified string                   `json:"lastModified,omitempty"`
	Kept         map[string]bool          `json:"kept,omitempty"` // nil: every chart
	Charts       map[string][]bot.Release `json:"charts"`
}

// NewStore returns an in-memory store.
func NewStore() *Store { return &Store{m: map[string]*Stored{}} }

func (s *Store) file(repo string) string {
	h := sha256.Sum256([]byte(repo))
	return filepath.Join(s.Dir, "helm-"+hex.EncodeToString(h[:12])+".json")
}

func (s *Store) get(repo string) *Stored {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[string]*Stored{}
	}
	if st, ok := s.m[repo]; ok {
		return st
	}
	if s.Dir == "" {
		return nil
	}
	b, err := os.ReadFile(s.file(repo))
	if err != nil {
		return nil
	}
	var st Stored
	if json.Unmarshal(b, &st) != nil {
		return nil
	}
	s.m[repo] = &st
	return &st
}

func (s *Store) put(repo string, st *Stored) {
	s.mu.Lock()
	if s.m == nil {
		s.m = map[string]*Stored{}
	}
	s.m[repo] = st
	s.mu.Unlock()
	if s.Dir == "" || (st.ETag == "" && st.LastModified == "") {
		return
	}
	if b, err := json.Marshal(st); err == nil && os.MkdirAll(s.Dir, 0o700) == nil {
		tmp := s.file(repo) + ".tmp"
		if os.WriteFile(tmp, b, 0o600) == nil {
			_ = os.Rename(tmp, s.file(repo))
		}
	}
}

// Datasource reads HTTP Helm repositories.
type Datasource struct {
	client *http.Client
	store  *Store

	mu     sync.Mutex
	wanted map[string]map[string]bool
	runs   map[string]*fetch

	// Fetches counts index.yaml requests sent (conditional or not).
	Fetches atomic.Int64
}

type fetch struct {
	done   chan struct{}
	charts map[string][]bot.Release
	kept   map[string]bool
	err    error
}

// New returns the datasource for one run; store may be shared by runs.
func New(client *http.Client, store *Store) *Datasource {
	if store == nil {
		store = NewStore()
	}
	return &Datasource{client: client, store: store, wanted: map[string]map[string]bool{}, runs: map[string]*fetch{}}
}

// Name returns "helm".
func (*Datasource) Name() string { return Name }

// Prepare records which charts the run needs from each repository.
func (d *Datasource) Prepare(deps []bot.Dependency) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, dep := range deps {
		repo := normalise(dep.RegistryURL)
		if d.wanted[repo] == nil {
			d.wanted[repo] = map[string]bool{}
		}
		d.wanted[repo][dep.Package] = true
	}
}

func normalise(repo string) string { return strings.TrimSuffix(repo, "/") }

// Releases lists the chart's versions from its repository's index.
func (d *Datasource) Releases(ctx context.Context, dep bot.Dependency) ([]bot.Release, error) {
	repo := normalise(dep.RegistryURL)
	if !strings.HasPrefix(repo, "http://") && !strings.HasPrefix(repo, "https://") {
		return nil, fmt.Errorf("helm repository %q is not an http(s) URL", dep.RegistryURL)
	}
	f := d.index(ctx, repo)
	if f.err != nil {
		return nil, f.err
	}
	rels, ok := f.charts[dep.Package]
	if !ok {
		if f.kept != nil && !f.kept[dep.Package] {
			return nil, fmt.Errorf("chart %q was not prepared for this run", dep.Package)
		}
		return nil, fmt.Errorf("chart %q is not in %s/index.yaml", dep.Package, repo)
	}
	return rels, nil
}

// index fetches a repository's index once per run.
func (d *Datasource) index(ctx context.Context, repo string) *fetch {
	d.mu.Lock()
	f, ok := d.runs[repo]
	if !ok {
		f = &fetch{done: make(chan struct{})}
		d.runs[repo] = f
		if w := d.wanted[repo]; w != nil {
			f.kept = maps.Clone(w)
		}
	}
	d.mu.Unlock()
	if ok {
		select {
		case <-f.done:
		case <-ctx.Done():
			return &fetch{err: ctx.Err()}
		}
		return f
	}
	defer close(f.done)
	f.charts, f.err = d.load(ctx, repo, f.kept)
	return f
}

func covers(have, want map[string]bool) bool {
	if have == nil {
		return true
	}
	if want == nil {
		return false
	}
	for k := range want {
		if !have[k] {
			return false
		}
	}
	return true
}

func (d *Datasource) load(ctx context.Context, repo string, kept map[string]bool) (map[string][]bot.Release, error) {
	u := repo + "/index.yaml"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	prev := d.store.get(repo)
	if prev != nil && covers(prev.Kept, kept) {
		if prev.ETag != "" {
			req.Header.Set("If-None-Match", prev.ETag)
		}
		if prev.LastModified != "" {
			req.Header.Set("If-Modified-Since", prev.LastModified)
		}
	}
	d.Fetches.Add(1)
	resp, err := d.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotModified && prev != nil:
		d.store.Revalidated.Add(1)
		return prev.Charts, nil
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	var keep func(string) bool
	if kept != nil {
		keep = func(name string) bool { return kept[name] }
	}
	charts, err := ParseIndex(resp.Body, keep)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", u, err)
	}
	d.store.put(repo, &Stored{ETag: resp.Header.Get("ETag"), LastModified: resp.Header.Get("Last-Modified"), Kept: kept, Charts: charts})
	return charts, nil
}

// ErrMalformed wraps every index parse error.
var ErrMalformed = errors.New("malformed index.yaml")

// maxLine bounds one line of an index (descriptions can be long; a
// megabyte is not a line of YAML anyone wrote).
const maxLine = 1 << 20

// ParseIndex reads a Helm repository index from r in one pass and returns
// the releases of every chart keep accepts (nil keep: all). It reads the
// block-style YAML every index generator writes (helm repo index,
// chart-releaser, ChartMuseum, Harbor) and JSON indexes; anything else is
// ErrMalformed.
func ParseIndex(r io.Reader, keep func(string) bool) (map[string][]bot.Release, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		b, err := br.Peek(1)
		if err != nil {
			return nil, fmt.Errorf("%w: empty", ErrMalformed)
		}
		if b[0] == ' ' || b[0] == '\n' || b[0] == '\r' || b[0] == '\t' {
			_, _ = br.ReadByte()
			continue
		}
		if b[0] == '{' {
			return parseJSON(br, keep)
		}
		break
	}
	p := &parser{keep: keep, out: map[string][]bot.Release{}, chartIndent: -1}
	sc := bufio.NewScanner(br)
	sc.Buffer(make([]byte, 0, 64<<10), maxLine)
	for sc.Scan() {
		p.line++
		if err := p.feed(sc.Bytes()); err != nil {
			return nil, fmt.Errorf("%w: line %d: %v", ErrMalformed, p.line, err)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: line %d: %v", ErrMalformed, p.line+1, err)
	}
	p.flush()
	if !p.sawAPIVersion {
		return nil, fmt.Errorf("%w: no apiVersion (not a Helm repository index)", ErrMalformed)
	}
	if !p.sawEntries {
		return nil, fmt.Errorf("%w: no entries", ErrMalformed)
	}
	return p.out, nil
}

type parser struct {
	keep func(string) bool
	out  map[string][]bot.Release
	line int

	sawAPIVersion, sawEntries, inEntries bool

	chartIndent int
	chart       string
	keepChart   bool
	dashCol     int
	fieldCol    int
	// cur is the version being read; reused, so charts the run does not
	// want cost no allocations.
	cur    bot.Release
	inItem bool
	// home is the version's home; inSources: the lines that follow are
	// its sources list (the first http(s) one becomes SourceURL).
	home      string
	inSources bool
}

func (p *parser) flush() {
	if p.inItem && p.keepChart && p.cur.Version != "" {
		if p.cur.SourceURL == "" {
			p.cur.SourceURL = p.home
		}
		p.out[p.chart] = append(p.out[p.chart], p.cur)
	}
	p.cur, p.inItem, p.home, p.inSources = bot.Release{}, false, "", false
}

// source takes one item of a version's sources list.
func (p *parser) source(item []byte) error {
	if !p.keepChart || p.cur.SourceURL != "" {
		return nil
	}
	// A link is a nicety: one YAML this parser does not read is skipped,
	// never a reason to fail the index.
	if v, err := scalar(strings.TrimSpace(string(item))); err == nil {
		p.cur.SourceURL = weburl.Of(v)
	}
	return nil
}

func (p *parser) feed(line []byte) error {
	line = bytes.TrimRight(line, "\r")
	ind := 0
	for ind < len(line) && line[ind] == ' ' {
		ind++
	}
	rest := line[ind:]
	if len(rest) == 0 || rest[0] == '#' {
		return nil
	}
	if rest[0] == '\t' {
		return errors.New("tab in indentation")
	}
	if ind == 0 {
		p.flush()
		p.chart = ""
		if bytes.HasPrefix(rest, []byte("---")) || bytes.HasPrefix(rest, []byte("...")) {
			return nil
		}
		key, val, err := splitKey(rest)
		if err != nil {
			return err
		}
		p.inEntries = false
		switch key {
		case "apiVersion":
			p.sawAPIVersion = true
		case "entries":
			p.sawEntries = true
			switch val {
			case "":
				p.inEntries = true
			case "{}":
			default:
				return errors.New("flow-style entries")
			}
		}
		return nil
	}
	if !p.inEntries {
		return nil
	}
	if p.chartIndent < 0 {
		p.chartIndent = ind
	}
	isDash := rest[0] == '-' && (len(rest) == 1 || rest[1] == ' ')
	switch {
	case ind < p.chartIndent:
		return errors.New("bad indentation under entries")
	case ind == p.chartIndent && !isDash:
		p.flush()
		key, val, err := splitKey(rest)
		if err != nil {
			return err
		}
		if val != "" && val != "[]" {
			return fmt.Errorf("chart %s: flow-style list", key)
		}
		p.chart, p.keepChart, p.dashCol, p.fieldCol = key, p.keep == nil || p.keep(key), -1, -1
		return nil
	case p.chart == "":
		return errors.New("chart version outside a chart")
	case isDash:
		if p.dashCol < 0 {
			p.dashCol = ind
		}
		if ind != p.dashCol {
			// A list inside a version (maintainers, dependencies, sources).
			if p.inSources && p.inItem && ind >= p.fieldCol {
				return p.source(rest[1:])
			}
			return nil
		}
		p.flush()
		p.inItem = true
		after := rest[1:]
		sp := 0
		for sp < len(after) && after[sp] == ' ' {
			sp++
		}
		p.fieldCol = ind + 1 + sp
		if sp < len(after) {
			return p.field(after[sp:])
		}
		return nil
	case p.inItem && ind == p.fieldCol:
		p.inSources = false
		return p.field(rest)
	}
	return nil
}

func (p *parser) field(b []byte) error {
	if !p.keepChart {
		return nil
	}
	key, val, err := splitKey(b)
	if err != nil {
		return err
	}
	switch key {
	case "version", "created", "digest":
	case "home":
		if v, err := scalar(val); err == nil {
			p.home = weburl.Of(v)
		}
		return nil
	case "sources":
		if val == "" {
			p.inSources = true
			return nil
		}
		// Flow style: [a, b].
		if first, _, _ := strings.Cut(strings.Trim(val, "[]"), ","); first != "" {
			return p.source([]byte(first))
		}
		return nil
	default:
		return nil
	}
	v, err := scalar(val)
	if err != nil {
		return fmt.Errorf("%s: %v", key, err)
	}
	switch key {
	case "version":
		p.cur.Version = v
	case "created":
		if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
			p.cur.ReleasedAt = t
		}
	case "digest":
		p.cur.Digest = v
	}
	return nil
}

// splitKey splits "key: value" (key possibly quoted).
func splitKey(b []byte) (string, string, error) {
	if b[0] == '"' || b[0] == '\'' {
		end := bytes.IndexByte(b[1:], b[0])
		if end < 0 {
			return "", "", errors.New("unterminated quoted key")
		}
		key := string(b[1 : end+1])
		rest := b[end+2:]
		if len(rest) == 0 || rest[0] != ':' {
			return "", "", fmt.Errorf("key %q without ':'", key)
		}
		return key, strings.TrimSpace(string(rest[1:])), nil
	}
	for i := 0; i < len(b); i++ {
		if b[i] == ':' && (i+1 == len(b) || b[i+1] == ' ') {
			return string(b[:i]), strings.TrimSpace(string(b[i+1:])), nil
		}
	}
	return "", "", fmt.Errorf("%q is not a key", truncate(b))
}

func truncate(b []byte) string {
	if len(b) > 40 {
		return string(b[:40]) + "…"
	}
	return string(b)
}

// scalar decodes a one-line YAML scalar.
func scalar(s string) (string, error) {
	if s == "" {
		return "", nil
	}
	switch s[0] {
	case '"':
		if len(s) < 2 || s[len(s)-1] != '"' {
			return "", errors.New("unterminated double-quoted string")
		}
		v, err := strconv.Unquote(s)
		if err != nil {
			return s[1 : len(s)-1], nil
		}
		return v, nil
	case '\'':
		if len(s) < 2 || s[len(s)-1] != '\'' {
			return "", errors.New("unterminated single-quoted string")
		}
		return strings.ReplaceAll(s[1:len(s)-1], "''", "'"), nil
	case '[', '{', '|', '>', '&', '*', '!', '@', '`':
		return "", fmt.Errorf("unexpected %q", s)
	}
	if i := strings.Index(s, " #"); i >= 0 {
		s = strings.TrimSpace(s[:i])
	}
	return s, nil
}

func parseJSON(r io.Reader, keep func(string) bool) (map[string][]bot.Release, error) {
	var idx struct {
		APIVersion string `json:"apiVersion"`
		Entries    map[string][]struct {
			Version string    `json:"version"`
			Created time.Time `json:"created"`
			Digest  string    `json:"digest"`
			Home    string    `json:"home"`
			Sources []string  `json:"sources"`
		} `json:"entries"`
	}
	if err := json.NewDecoder(r).Decode(&idx); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if idx.APIVersion == "" {
		return nil, fmt.Errorf("%w: no apiVersion (not a Helm repository index)", ErrMalformed)
	}
	out := map[string][]bot.Release{}
	for name, vs := range idx.Entries {
		if keep != nil && !keep(name) {
			continue
		}
		for _, v := range vs {
			if v.Version != "" {
				src := ""
				for _, u := range v.Sources {
					if src = weburl.Of(u); src != "" {
						break
					}
				}
				if src == "" {
					src = weburl.Of(v.Home)
				}
				out[name] = append(out[name], bot.Release{Version: v.Version, ReleasedAt: v.Created, Digest: v.Digest, SourceURL: src})
			}
		}
	}
	return out, nil
}
