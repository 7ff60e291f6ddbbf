// Package lookup owns the bot's "what can be updated" answer: scan a repo,
// ask the datasources (deduplicated, bounded, through spec.mirrors), order
// the releases with each dependency's versioning scheme, drop what policy
// forbids (spec.bot ignore rules, minimum release age, pre-releases unless
// the current version is one) and return, per dependency, the newest
// eligible update and the newest within the current major, so the PR side
// can offer a major PR and a minor/patch PR the way Renovate does.
package lookup

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"

	msv "github.com/Masterminds/semver/v3"
	"github.com/google/go-containerregistry/pkg/authn"

	"hl.dev/hl/bot"
	"hl.dev/hl/bot/datasource"
	"hl.dev/hl/bot/extract"
	"hl.dev/hl/bot/versioning"
	"hl.dev/hl/internal/config"
)

// Config is everything one lookup run needs. The zero value works:
// public registries, no mirrors, no policy.
type Config struct {
	// Policy (spec.mirrors, spec.bot).
	Mirrors           config.Mirrors
	MinimumReleaseAge time.Duration
	Ignore            []config.Ignore
	// Rules set a package's versioning (spec.bot.rules: the first rule
	// whose glob matches wins over the extractor's guess).
	Rules []config.Rule
	// HelmRepositories resolve Chart.yaml repositories named by alias
	// ("@name", "alias:name") to their URLs.
	HelmRepositories map[string]string

	// Extractors overrides extract.All().
	Extractors []extract.Extractor
	// Datasources overrides datasource.All(the options below).
	Datasources []datasource.Datasource

	// Datasource options (see datasource.Options).
	Transport          http.RoundTripper
	Cache              *datasource.Cache
	Retries            int
	Backoff            time.Duration
	MaxBytes           int64
	GitHubToken        string
	GitHubAPIURL       string
	GiteaURL           string
	GiteaToken         string
	K3sChannelURL      string
	Keychain           authn.Keychain
	InsecureRegistries []string

	// Concurrency bounds parallel lookups (default 8).
	Concurrency int
	// Now is the clock for the minimum release age (default time.Now).
	Now    func() time.Time
	Logger *slog.Logger
}

// LookupConfig is Config under the name the PR side was promised.
type LookupConfig = Config

// ConfigFromHomelab fills base's policy from hl.yaml: mirrors, minimum
// release age, ignore rules, versioning rules, chart repository aliases,
// and the Gitea forge for gitea-releases.
func ConfigFromHomelab(h *config.Homelab, base Config) Config {
	if h == nil {
		return base
	}
	base.Mirrors = h.Spec.Mirrors
	base.Ignore = h.Spec.Bot.Ignore
	base.Rules = h.Spec.Bot.Rules
	base.HelmRepositories = h.Spec.Bot.HelmRepositories
	if d, err := h.Spec.Bot.MinimumReleaseAge.Parse(); err == nil {
		base.MinimumReleaseAge = d
	}
	if h.Spec.Forge.Type == config.ForgeGitea && base.GiteaURL == "" {
		base.GiteaURL = h.Spec.Forge.URL
	}
	return base
}

// DatasourceOptions are the options of the datasources c builds.
func (c Config) DatasourceOptions() datasource.Options {
	return datasource.Options{
		Transport: c.Transport, Cache: c.Cache, Retries: c.Retries, Backoff: c.Backoff, MaxBytes: c.MaxBytes,
		GitHubToken: c.GitHubToken, GitHubAPIURL: c.GitHubAPIURL, GiteaURL: c.GiteaURL, GiteaToken: c.GiteaToken,
		K3sChannelURL: c.K3sChannelURL, Keychain: c.Keychain, InsecureRegistries: c.InsecureRegistries,
		Now: c.Now, Logger: c.Logger,
	}
}

// Warning is a dependency (or file) the run skipped, and why.
type Warning struct {
	File       string `json:"file,omitempty"`
	Manager    string `json:"manager,omitempty"`
	Datasource string `json:"datasource,omitempty"`
	Package    string `json:"package,omitempty"`
	Message    string `json:"message"`
}

func (w Warning) String() string {
	var b strings.Builder
	if w.File != "" {
		b.WriteString(w.File + ": ")
	}
	if w.Package != "" {
		b.WriteString(w.Package + ": ")
	}
	b.WriteString(w.Message)
	return b.String()
}

// FindUpdates scans repoDir and returns the updates to propose: for each
// dependency the newest eligible release and, when that is a major update,
// also the newest eligible release within the current major. Failures of
// single files or lookups are warnings; the error is for a repo that
// cannot be scanned at all.
func FindUpdates(ctx context.Context, repoDir string, cfg Config) ([]bot.Update, []Warning, error) {
	deps, problems, err := extract.Scan(ctx, repoDir, extract.Options{Extractors: cfg.Extractors})
	if err != nil {
		return nil, nil, err
	}
	var warnings []Warning
	for _, p := range problems {
		warnings = append(warnings, Warning{File: p.File, Manager: p.Manager, Message: p.Message})
	}
	ups, ws := Updates(ctx, deps, cfg)
	return ups, append(warnings, ws...), ctx.Err()
}

// Updates is FindUpdates on dependencies already extracted.
func Updates(ctx context.Context, deps []bot.Dependency, cfg Config) ([]bot.Update, []Warning) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	ds := cfg.Datasources
	if ds == nil {
		ds = datasource.All(cfg.DatasourceOptions())
	}
	l := datasource.NewLookup(ds, cfg.Concurrency, cfg.Mirrors)
	pol := newPolicy(cfg)

	var warnings []Warning
	warn := func(d bot.Dependency, format string, args ...any) {
		warnings = append(warnings, Warning{File: d.File, Manager: d.Manager, Datasource: d.Datasource, Package: d.Package, Message: fmt.Sprintf(format, args...)})
	}
	// Dependencies whose current value is no version (latest, a hash) and
	// whole packages ignored by policy are not looked up at all.
	var todo []bot.Dependency
	for _, d := range deps {
		if pol.ignoresPackage(d) {
			continue
		}
		d.Versioning = pol.versioning(d)
		if msg := resolveAlias(&d, cfg.HelmRepositories); msg != "" {
			warn(d, "skipped: %s", msg)
			continue
		}
		s := versioning.For(d.Versioning, d.Datasource)
		if _, ok := base(s, d.Current); !ok {
			cfg.Logger.Debug("not a version, skipped", "file", d.File, "package", d.Package, "current", d.Current)
			continue
		}
		todo = append(todo, d)
	}
	results := l.ReleasesAll(ctx, todo)

	var updates []bot.Update
	reported := map[string]bool{}
	for i, d := range todo {
		res := results[i]
		if res.Err != nil {
			key := d.File + "\x00" + res.Err.Error()
			if !reported[key] {
				reported[key] = true
				warn(d, "skipped: %v", res.Err)
			}
			continue
		}
		ups, err := Choose(d, res.Releases, pol)
		if err != nil {
			warn(d, "skipped: %v", err)
			continue
		}
		updates = append(updates, ups...)
	}

	// Related ranges: the version itself, or pins from the datasource.
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		drop = map[int]string{}
	)
	for i := range updates {
		u := &updates[i]
		if len(u.Dependency.Related) == 0 {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if msg := fillRelated(ctx, l, u); msg != "" {
				mu.Lock()
				drop[i] = msg
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(drop) > 0 {
		kept := updates[:0]
		for i, u := range updates {
			if msg, ok := drop[i]; ok {
				warn(u.Dependency, "update to %s skipped: %s", u.NewValue, msg)
				continue
			}
			kept = append(kept, u)
		}
		updates = kept
	}
	return updates, warnings
}

// resolveAlias replaces a Chart.yaml repository named by alias (the
// extractor keeps "@name" or "alias:name" as the registry URL) by the
// URL spec.bot.helmRepositories gives it.
func resolveAlias(d *bot.Dependency, repos map[string]string) string {
	name, ok := AliasName(d.RegistryURL)
	if !ok {
		return ""
	}
	u, ok := repos[name]
	if !ok {
		return fmt.Sprintf("chart repository %q is an alias: add its URL as spec.bot.helmRepositories.%s", d.RegistryURL, name)
	}
	d.RegistryURL = strings.TrimSuffix(u, "/")
	return ""
}

// AliasName returns the repository name of "@name" or "alias:name".
func AliasName(repo string) (string, bool) {
	if n, ok := strings.CutPrefix(repo, "@"); ok && n != "" {
		return n, true
	}
	if n, ok := strings.CutPrefix(repo, "alias:"); ok && n != "" {
		return n, true
	}
	return "", false
}

func fillRelated(ctx context.Context, l *datasource.Lookup, u *bot.Update) string {
	u.Related = map[string]string{}
	needPins := false
	for role := range u.Dependency.Related {
		if strings.HasPrefix(role, "version@") {
			u.Related[role] = u.NewValue
		} else {
			needPins = true
		}
	}
	if !needPins {
		return ""
	}
	pins, err := l.Pins(ctx, u.Dependency, u.New.Version)
	if err != nil {
		return err.Error()
	}
	for role := range u.Dependency.Related {
		if strings.HasPrefix(role, "version@") {
			continue
		}
		v, ok := pins[role]
		if !ok || v == "" {
			return fmt.Sprintf("no new value for %s", role)
		}
		u.Related[role] = v
	}
	if d, ok := pins["digest"]; ok {
		u.New.Digest = d
	}
	for role, v := range pins {
		if strings.HasPrefix(role, "sha256:") && u.New.Checksum == "" {
			u.New.Checksum = v
		}
	}
	return ""
}

// Policy is the filter half of a lookup, exposed for the PR side's
// re-checks.
type Policy struct {
	minAge time.Duration
	now    time.Time
	ignore []ignoreRule
	rules  []versioningRule
}

type versioningRule struct {
	pkgs       []*regexp.Regexp
	versioning string
}

type ignoreRule struct {
	pkg        *regexp.Regexp
	types      map[string]bool
	versions   *msv.Constraints
	allVersion bool
}

// NewPolicy builds the filter from cfg (ignore rules, minimum release
// age at cfg.Now).
func NewPolicy(cfg Config) *Policy { return newPolicy(cfg) }

func newPolicy(cfg Config) *Policy {
	now := time.Now()
	if cfg.Now != nil {
		now = cfg.Now()
	}
	p := &Policy{minAge: cfg.MinimumReleaseAge, now: now}
	for _, ig := range cfg.Ignore {
		r := ignoreRule{pkg: Glob(ig.Package), types: map[string]bool{}}
		for _, t := range ig.UpdateTypes {
			r.types[t] = true
		}
		if ig.Versions != "" {
			if c, err := msv.NewConstraint(ig.Versions); err == nil {
				r.versions = c
			}
		}
		r.allVersion = len(r.types) == 0 && r.versions == nil
		p.ignore = append(p.ignore, r)
	}
	for _, r := range cfg.Rules {
		if r.Versioning == "" {
			continue
		}
		vr := versioningRule{versioning: r.Versioning}
		for _, g := range r.Packages {
			vr.pkgs = append(vr.pkgs, Glob(g))
		}
		p.rules = append(p.rules, vr)
	}
	return p
}

// versioning is the scheme name d should use: the first rule matching
// its package (or chart alias), else the extractor's choice. A rule
// naming no valid scheme was refused by hl.yaml's validation; here it
// leaves the extractor's choice.
func (p *Policy) versioning(d bot.Dependency) string {
	for _, r := range p.rules {
		for _, g := range r.pkgs {
			if g.MatchString(d.Package) || (d.Name != "" && g.MatchString(d.Name)) {
				if _, ok := versioning.Get(r.versioning); ok {
					return r.versioning
				}
				return d.Versioning
			}
		}
	}
	return d.Versioning
}

// Glob compiles a package glob: * matches any run of characters
// (slashes included), ? one character.
func Glob(pattern string) *regexp.Regexp {
	var b strings.Builder
	b.WriteString("^")
	for _, r := range pattern {
		switch r {
		case '*':
			b.WriteString(".*")
		case '?':
			b.WriteString(".")
		default:
			b.WriteString(regexp.QuoteMeta(string(r)))
		}
	}
	b.WriteString("$")
	return regexp.MustCompile(b.String())
}

func (r ignoreRule) matchesPackage(d bot.Dependency) bool {
	return r.pkg.MatchString(d.Package) || (d.Name != "" && r.pkg.MatchString(d.Name))
}

func (p *Policy) ignoresPackage(d bot.Dependency) bool {
	for _, r := range p.ignore {
		if r.allVersion && r.matchesPackage(d) {
			return true
		}
	}
	return false
}

func (p *Policy) ignores(d bot.Dependency, version, updateType string) bool {
	for _, r := range p.ignore {
		if !r.matchesPackage(d) {
			continue
		}
		typeOK := len(r.types) == 0 || r.types[updateType]
		verOK := r.versions == nil
		if r.versions != nil {
			if sv, err := msv.NewVersion(version); err == nil && r.versions.Check(sv) {
				verOK = true
			}
		}
		if typeOK && verOK {
			return true
		}
	}
	return false
}

// base returns the version current stands for: itself, or a range's floor.
func base(s versioning.Scheme, current string) (string, bool) {
	if s.Valid(current) {
		return current, true
	}
	if rs, ok := s.(versioning.Ranges); ok && rs.IsRange(current) {
		return rs.Floor(current)
	}
	return "", false
}

// Choose picks dep's updates from releases: the newest eligible one and,
// if that is a major update, the newest eligible one of the current major
// as well (newest first). No eligible release gives no updates.
func Choose(dep bot.Dependency, releases []bot.Release, p *Policy) ([]bot.Update, error) {
	if p == nil {
		p = &Policy{now: time.Now()}
	}
	s := versioning.For(dep.Versioning, dep.Datasource)
	cur, ok := base(s, dep.Current)
	if !ok {
		return nil, fmt.Errorf("%q is not a %s version", dep.Current, s.Name())
	}
	rs, _ := s.(versioning.Ranges)
	step, _ := s.(versioning.Stepwise)
	isRange := rs != nil && !s.Valid(dep.Current)
	curPre := s.IsPrerelease(cur)

	var best, bestMinor *bot.Release
	for i := range releases {
		r := &releases[i]
		v := r.Version
		if !s.Valid(v) || !s.Compatible(cur, v) || s.Compare(v, cur) <= 0 {
			continue
		}
		if (s.IsPrerelease(v) || r.Prerelease) && !curPre {
			continue
		}
		if isRange && rs.Matches(v, dep.Current) {
			continue // the range already allows it
		}
		if step != nil && !step.Reachable(cur, v) {
			continue // the next run proposes the next step
		}
		typ := s.UpdateType(cur, v)
		if p.ignores(dep, v, typ) {
			continue
		}
		if p.minAge > 0 && !r.ReleasedAt.IsZero() && p.now.Sub(r.ReleasedAt) < p.minAge {
			continue
		}
		if best == nil || s.Compare(v, best.Version) > 0 {
			best = r
		}
		if typ != bot.UpdateMajor && (bestMinor == nil || s.Compare(v, bestMinor.Version) > 0) {
			bestMinor = r
		}
	}
	var out []bot.Update
	for _, r := range []*bot.Release{best, bestMinor} {
		if r == nil || (len(out) == 1 && out[0].New.Version == r.Version) {
			continue
		}
		nv := r.Version
		if isRange {
			var err error
			if nv, err = rs.Replace(dep.Current, r.Version); err != nil {
				return nil, err
			}
		}
		out = append(out, bot.Update{Dependency: dep, New: *r, Type: s.UpdateType(cur, r.Version), NewValue: nv})
	}
	return out, nil
}
