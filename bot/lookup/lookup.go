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
	"slices"
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
	// Approved are package@version keys a human approved on the dashboard:
	// the minimum release age does not hold them.
	Approved map[string]bool
	// SeparateMinorPatch proposes the newest patch of the current minor
	// as well as the newest minor (set when either may automerge).
	SeparateMinorPatch bool
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
	base.SeparateMinorPatch = SeparateMinorPatch(h.Spec.Bot.Automerge)
	base.HelmRepositories = h.Spec.Bot.HelmRepositories
	if d, err := h.Spec.Bot.MinimumReleaseAge.Parse(); err == nil {
		base.MinimumReleaseAge = d
	}
	if h.Spec.Forge.Type == config.ForgeGitea && base.GiteaURL == "" {
		base.GiteaURL = h.Spec.Forge.URL
	}
	return base
}

// SeparateMinorPatch reports whether automerge lists patch or minor:
// then a patch must not share a branch with a minor, or merging the one
// (scheduled when the branch was a patch) would carry the other in.
func SeparateMinorPatch(automerge []string) bool {
	return slices.Contains(automerge, bot.UpdatePatch) || slices.Contains(automerge, bot.UpdateMinor)
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
	// Held is the version the minimum release age holds back ("" for
	// other warnings): the dashboard lists these apart.
	Held string `json:"held,omitempty"`
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
	if pol.minAge > 0 {
		timestamp(ctx, l, todo, results, pol)
	}

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
		ups, held, err := choose(d, res.Releases, pol)
		if err != nil {
			warn(d, "skipped: %v", err)
			continue
		}
		updates = append(updates, ups...)
		if held != nil {
			w := Warning{File: d.File, Manager: d.Manager, Datasource: d.Datasource, Package: d.Package, Held: held.Release.Version}
			if held.Until.IsZero() {
				w.Message = fmt.Sprintf("update to %s held: its release time is unknown, so the minimum release age (%s) cannot be shown to have passed", held.Release.Version, days(pol.minAge))
			} else {
				w.Message = fmt.Sprintf("update to %s held until %s (minimum release age %s)", held.Release.Version, held.Until.UTC().Format("2006-01-02 15:04 MST"), days(pol.minAge))
			}
			warnings = append(warnings, w)
		}
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

// maxTimestamps bounds the release times asked for one dependency: each
// costs a registry round trip or two.
const maxTimestamps = 6

// timestamp asks datasources that can tell a version's release time (OCI
// registries) for the candidates the minimum release age must check,
// newest first, until the newest old-enough update and the newest
// old-enough one within the current major are known. Older candidates
// keep no time and stay held; they would not be proposed anyway.
func timestamp(ctx context.Context, l *datasource.Lookup, deps []bot.Dependency, results []datasource.Result, pol *Policy) {
	var wg sync.WaitGroup
	for i, d := range deps {
		if results[i].Err != nil || !l.CanTimestamp(d) {
			continue
		}
		c, err := newChooser(d, pol)
		if err != nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			rels := slices.Clone(results[i].Releases) // shared by every dependency of the key
			var idx []int
			for j, r := range rels {
				if _, ok := c.candidate(r); ok && r.ReleasedAt.IsZero() {
					idx = append(idx, j)
				}
			}
			slices.SortFunc(idx, func(a, b int) int { return c.s.Compare(rels[b].Version, rels[a].Version) })
			var found, inMajor bool
			for n, j := range idx {
				if n == maxTimestamps || (found && inMajor) {
					break
				}
				t, err := l.ReleasedAt(ctx, d, rels[j].Version)
				if err != nil {
					break // the rest stay held; the next run asks again
				}
				rels[j].ReleasedAt = t
				if c.aged(rels[j]) {
					found = true
					inMajor = inMajor || c.s.UpdateType(c.cur, rels[j].Version) != bot.UpdateMajor
				}
			}
			results[i].Releases = rels
		}()
	}
	wg.Wait()
}

// days formats a duration in days when it is whole days.
func days(d time.Duration) string {
	if d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	}
	return d.String()
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
	approved map[string]bool
	// separatePatch: patches get their own update (and branch) beside the
	// newest minor, so an automerged patch never carries a minor along.
	separatePatch bool
	minAge        time.Duration
	now           time.Time
	ignore        []ignoreRule
	rules         []versioningRule
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
	p := &Policy{minAge: cfg.MinimumReleaseAge, now: now, separatePatch: cfg.SeparateMinorPatch, approved: cfg.Approved}
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
// as well, and, when minor and patch updates go separately, the newest
// patch of the current minor (newest first). No eligible release gives no
// updates.
func Choose(dep bot.Dependency, releases []bot.Release, p *Policy) ([]bot.Update, error) {
	ups, _, err := choose(dep, releases, p)
	return ups, err
}

// Held is an update the minimum release age keeps back.
type Held struct {
	Release bot.Release
	// Until is when it becomes eligible; zero: its release time is
	// unknown, so it waits until the datasource tells one.
	Until time.Time
}

// chooser holds what filtering one dependency's releases needs.
type chooser struct {
	dep     bot.Dependency
	p       *Policy
	s       versioning.Scheme
	rs      versioning.Ranges
	step    versioning.Stepwise
	isRange bool
	cur     string
	curPre  bool
}

func newChooser(dep bot.Dependency, p *Policy) (*chooser, error) {
	if p == nil {
		p = &Policy{now: time.Now()}
	}
	c := &chooser{dep: dep, p: p, s: versioning.For(dep.Versioning, dep.Datasource)}
	cur, ok := base(c.s, dep.Current)
	if !ok {
		return nil, fmt.Errorf("%q is not a %s version", dep.Current, c.s.Name())
	}
	c.cur, c.curPre = cur, c.s.IsPrerelease(cur)
	c.rs, _ = c.s.(versioning.Ranges)
	c.step, _ = c.s.(versioning.Stepwise)
	c.isRange = c.rs != nil && !c.s.Valid(dep.Current)
	return c, nil
}

// candidate reports whether r is an update policy allows, age aside, and
// its type.
func (c *chooser) candidate(r bot.Release) (string, bool) {
	s, v := c.s, r.Version
	switch {
	case !s.Valid(v) || !s.Compatible(c.cur, v) || s.Compare(v, c.cur) <= 0:
		return "", false
	case (s.IsPrerelease(v) || r.Prerelease) && !c.curPre:
		return "", false
	case c.isRange && c.rs.Matches(v, c.dep.Current):
		return "", false // the range already allows it
	case c.step != nil && !c.step.Reachable(c.cur, v):
		return "", false // the next run proposes the next step
	}
	typ := s.UpdateType(c.cur, v)
	return typ, !c.p.ignores(c.dep, v, typ)
}

// aged reports whether r passed the minimum release age. A release with
// no known time has not: with no date, "old enough" cannot be shown.
func (c *chooser) aged(r bot.Release) bool {
	return c.p.minAge <= 0 || c.p.approved[c.dep.Package+"@"+r.Version] || (!r.ReleasedAt.IsZero() && c.p.now.Sub(r.ReleasedAt) >= c.p.minAge)
}

// choose is Choose, also returning the newest candidate the minimum
// release age holds back when it is newer than every update proposed.
func choose(dep bot.Dependency, releases []bot.Release, p *Policy) ([]bot.Update, *Held, error) {
	c, err := newChooser(dep, p)
	if err != nil {
		return nil, nil, err
	}
	s := c.s
	newer := func(r, than *bot.Release) bool { return than == nil || s.Compare(r.Version, than.Version) > 0 }
	var best, bestMinor, bestPatch, held *bot.Release
	for i := range releases {
		r := &releases[i]
		typ, ok := c.candidate(*r)
		if !ok {
			continue
		}
		if !c.aged(*r) {
			if newer(r, held) {
				held = r
			}
			continue
		}
		if newer(r, best) {
			best = r
		}
		if typ != bot.UpdateMajor && newer(r, bestMinor) {
			bestMinor = r
		}
		if typ == bot.UpdatePatch && newer(r, bestPatch) {
			bestPatch = r
		}
	}
	picks := []*bot.Release{best, bestMinor}
	if c.p.separatePatch {
		picks = append(picks, bestPatch)
	}
	var out []bot.Update
	for _, r := range picks {
		if r == nil || slices.ContainsFunc(out, func(u bot.Update) bool { return u.New.Version == r.Version }) {
			continue
		}
		nv := r.Version
		if c.isRange {
			if nv, err = c.rs.Replace(dep.Current, r.Version); err != nil {
				return nil, nil, err
			}
		}
		out = append(out, bot.Update{Dependency: dep, New: *r, Type: s.UpdateType(c.cur, r.Version), NewValue: nv})
	}
	if held == nil || !newer(held, best) {
		return out, nil, nil
	}
	h := &Held{Release: *held}
	if !held.ReleasedAt.IsZero() {
		h.Until = held.ReleasedAt.Add(c.p.minAge)
	}
	return out, h, nil
}
