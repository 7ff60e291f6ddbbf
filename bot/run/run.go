// Package run owns one pass of the bot over a repository: find updates,
// plan branches, and bring the forge in line — push branches, open or
// update PRs, close superseded ones, automerge, and keep the dependency
// dashboard issue current. A pass is idempotent: branch names are
// deterministic, PRs are looked up by head before one is created, and a PR
// is only opened after its branch is pushed, so a run killed at any point
// can simply be run again.
package run

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"

	"hl.dev/hl/bot"
	"hl.dev/hl/bot/datasource"
	"hl.dev/hl/bot/datasource/oci"
	"hl.dev/hl/bot/engine"
	"hl.dev/hl/bot/forge"
	"hl.dev/hl/bot/lookup"
	"hl.dev/hl/bot/pr"
	"hl.dev/hl/internal/config"
	"hl.dev/hl/internal/httpx"
)

// DashboardTitle is the title of the dependency dashboard issue.
const DashboardTitle = "Dependency Dashboard"

// Options configure Run.
type Options struct {
	Forge forge.Forge
	// Base branch (default: the forge's default branch).
	Base string
	// Dir is a local clone to work in; empty clones into a temp folder.
	Dir string
	Bot config.Bot
	// Lookup configures lookup.FindUpdates.
	Lookup lookup.Config
	// FindUpdates overrides lookup.FindUpdates (tests).
	FindUpdates func(ctx context.Context, dir string, cfg lookup.Config) ([]bot.Update, []lookup.Warning, error)
	DryRun      bool
	// Concurrency bounds the PR bodies (rendered Helm diffs) made at once
	// (default 4).
	Concurrency int
	// NoChartDiff skips rendered diffs.
	NoChartDiff bool
	// NoReleaseNotes skips embedding release notes.
	NoReleaseNotes bool
	Now            func() time.Time
	Logger         *slog.Logger
}

// Action is one thing the run did (or, dry, would do) to a branch.
type Action struct {
	Branch string `json:"branch"`
	// Verb: create, update, rebase, unchanged, close, merge,
	// automerge-scheduled, rate-limited, ignored, human-edited, error.
	Verb   string `json:"verb"`
	PR     int    `json:"pr,omitempty"`
	Detail string `json:"detail,omitempty"`
}

// Result is what a run did.
type Result struct {
	Actions  []Action `json:"actions"`
	Warnings []string `json:"warnings,omitempty"`
	// Held are updates the minimum release age keeps back, and why.
	Held []string `json:"held,omitempty"`
	// Dashboard is the dashboard issue number (0 in dry runs).
	Dashboard int `json:"dashboard,omitempty"`
}

// Count returns how many actions have verb.
func (r *Result) Count(verb string) int {
	n := 0
	for _, a := range r.Actions {
		if a.Verb == verb {
			n++
		}
	}
	return n
}

// Failed lists the errors.
func (r *Result) Failed() []Action {
	var out []Action
	for _, a := range r.Actions {
		if a.Verb == "error" {
			out = append(out, a)
		}
	}
	return out
}

type runner struct {
	Options
	res     *Result
	repo    *engine.Repo
	prs     []forge.PR // every bot PR, oldest first
	created int
	open    int
	hour    int
	// scheduled remembers automerges requested in this run.
	scheduled map[int]bool
	// heldKeys are the package@version of each of res.Held.
	heldKeys []string
	// requests are the boxes ticked on the dashboard.
	requests Requests
	// checksRequired: whether the base requires status checks (nil: not
	// asked yet this run).
	checksRequired *bool
	// notes reads the release notes of PR bodies (nil: NoReleaseNotes).
	notes *pr.NotesFetcher
	// images reads images' source labels for the notes.
	images *oci.Lister
	// charts renders the Helm diffs of PR bodies (nil: NoChartDiff).
	charts *pr.ChartRenderer
	log    *slog.Logger
}

// Run does one pass. The error is non-nil when anything failed (the
// Result says what); work that succeeded stays done.
//
// A pass works in phases, so that the forge does each expensive thing
// once: list the bot's PRs while the datasources are asked; decide every
// branch from the local clone; render the PR bodies (Helm diffs)
// concurrently; build the branch commits; push every new or moved branch
// in one push (the forge runs its git hooks once, not once a branch) while
// the labels are made sure of; then open, update, label and automerge the
// PRs one after another in branch order, close the superseded ones, and
// write the dashboard. A PR is still only opened after its branch is
// pushed.
func Run(ctx context.Context, o Options) (*Result, error) {
	if o.Forge == nil {
		return nil, errors.New("run: no forge")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.FindUpdates == nil {
		o.FindUpdates = lookup.FindUpdates
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 4
	}
	o.Lookup.SeparateMinorPatch = o.Lookup.SeparateMinorPatch || lookup.SeparateMinorPatch(o.Bot.Automerge)
	r := &runner{Options: o, res: &Result{}, log: o.Logger}
	do := o.Lookup.DatasourceOptions()
	if o.Lookup.Cache == nil {
		do.Cache = datasource.NewCache() // one for the PR side of this run
	}
	ol := datasource.OCILister(do)
	if !o.NoChartDiff {
		r.charts = &pr.ChartRenderer{Client: datasource.ChartClient(do), Mirrors: o.Lookup.Mirrors,
			OCI: ol, Archives: ol.Blobs, Repo: o.Forge.CloneURL()}
	}
	if !o.NoReleaseNotes {
		r.notes = &pr.NotesFetcher{Client: datasource.ConditionalClient(do), GitHubAPIURL: do.GitHubAPIURL, GitHubToken: do.GitHubToken,
			GiteaURL: do.GiteaURL, GiteaToken: do.GiteaToken}
		r.images = ol
	}
	if err := r.run(ctx); err != nil {
		return r.res, err
	}
	if f := r.res.Failed(); len(f) > 0 {
		var msgs []string
		for _, a := range f {
			msgs = append(msgs, a.Branch+": "+a.Detail)
		}
		return r.res, fmt.Errorf("%d failures: %s", len(f), strings.Join(msgs, "; "))
	}
	return r.res, nil
}

// job is one planned branch on its way through a pass.
type job struct {
	b     pr.Branch
	open  *forge.PR // the open PR of the branch, nil: create one
	tip   *object.Commit
	files map[string][]byte
	// values are the wrapper chart's values of each Helm chart update
	// (by index in b.Updates), for its rendered diff (pr.ChartRenderer).
	values map[int]pr.ChartInput
	title  string
	body   string
	// verb is create, update, rebase or unchanged once decided; "" when
	// the branch needs nothing more (its action is recorded).
	verb string
	// rebuild: the branch commit is (re)built on the base.
	rebuild bool
	hash    plumbing.Hash
	// pushed: the branch moved to hash in this run.
	pushed bool
	// cancel: a human took the branch over; a merge the bot scheduled
	// is cancelled.
	cancel bool
	// notesFailed: a release-notes fetch went wrong, so a body that
	// differs only by that does not replace the open PR's.
	notesFailed bool
	// created is the PR opened in this run.
	created *forge.PR
	acts    []Action
	log     *slog.Logger
}

func (j *job) act(a Action) {
	j.log.Info("bot", "branch", a.Branch, "action", a.Verb, "pr", a.PR, "detail", a.Detail)
	j.acts = append(j.acts, a)
}

// fail records err as the branch's error and stops it.
func (j *job) fail(err error) {
	j.act(Action{Branch: j.b.Name, Verb: "error", Detail: err.Error()})
	j.verb = ""
}

func (r *runner) act(a Action) {
	r.log.Info("bot", "branch", a.Branch, "action", a.Verb, "pr", a.PR, "detail", a.Detail)
	r.res.Actions = append(r.res.Actions, a)
}

// each runs fn for every element of xs, at most r.Concurrency at a time.
func each[T any](r *runner, xs []T, fn func(T)) {
	sem := make(chan struct{}, r.Concurrency)
	var wg sync.WaitGroup
	for _, x := range xs {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			fn(x)
		}()
	}
	wg.Wait()
}

func (r *runner) run(ctx context.Context) error {
	start := time.Now()
	// The dashboard is read while the repository is opened: its ticked
	// boxes approve held updates for this run's lookup.
	var (
		dash    *forge.Issue
		dashErr error
	)
	found := make(chan struct{})
	go func() {
		defer close(found)
		dash, dashErr = r.Forge.FindIssue(ctx, DashboardTitle)
	}()
	defer func() { <-found }()
	repo, err := engine.Open(ctx, engine.Options{Forge: r.Forge, Base: r.Base, Dir: r.Dir})
	if err != nil {
		return err
	}
	defer repo.Close()
	r.repo, r.Base = repo, repo.Base
	dir := repo.Dir
	f := r.Forge
	r.log.Debug("repo ready", "base", repo.Tip.Hash.String(), "took", time.Since(start))

	// The bot's PRs are listed while the datasources are asked.
	start = time.Now()
	var listErr error
	listed := make(chan struct{})
	go func() {
		defer close(listed)
		r.prs, listErr = repo.PRs(ctx)
		// The rotation pass's PRs are its own business.
		r.prs = slices.DeleteFunc(r.prs, func(p forge.PR) bool { return strings.HasPrefix(p.Head, engine.RotationPrefix) })
	}()
	<-found
	if dashErr == nil {
		r.requests = ReadRequests(dash.Body)
		r.Lookup.Approved = r.requests.Approved
	}
	updates, warnings, err := r.FindUpdates(ctx, dir, r.Lookup)
	<-listed
	r.log.Debug("updates found", "n", len(updates), "prs", len(r.prs), "took", time.Since(start))
	if err != nil {
		return fmt.Errorf("find updates: %w", err)
	}
	if listErr != nil {
		return listErr
	}
	for _, w := range warnings {
		if w.Held != "" {
			r.res.Held = append(r.res.Held, w.String())
			r.heldKeys = append(r.heldKeys, w.Package+"@"+w.Held)
			continue
		}
		r.res.Warnings = append(r.res.Warnings, w.String())
	}
	branches := pr.Plan(updates, r.Bot)

	hourAgo := r.Now().Add(-time.Hour)
	for _, p := range r.prs {
		if p.State == forge.StateOpen {
			r.open++
		}
		if p.Created.After(hourAgo) {
			r.hour++
		}
	}

	jobs := make([]*job, len(branches))
	wanted := map[string]bool{}
	for i, b := range branches {
		wanted[b.Name] = true
		jobs[i] = &job{b: b, log: r.log}
	}
	// The actions reach the Result in branch order, whatever happens.
	flush := func() {
		for _, j := range jobs {
			r.res.Actions = append(r.res.Actions, j.acts...)
			j.acts = nil
		}
	}
	defer flush()

	start = time.Now()
	for _, j := range jobs {
		r.decide(j)
		if j.verb != "" && r.charts != nil {
			j.values = r.charts.Values(j.b, repo.ReadFile)
		}
	}
	// Bodies read nothing from the clone, so they render concurrently.
	each(r, jobs, func(j *job) {
		if j.verb == "" {
			return
		}
		var diffs map[int]*pr.ChartDiff
		if r.charts != nil {
			diffs = r.charts.Diffs(ctx, j.b, j.values)
		}
		var notes map[int]*pr.Notes
		notes, j.notesFailed = r.releaseNotes(ctx, &j.b)
		j.body = pr.Body(j.b, diffs, notes)
	})
	if err := ctx.Err(); err != nil {
		return err
	}
	var labels []string
	for _, j := range jobs {
		r.finish(j)
		if j.verb == "create" || j.verb == "update" || j.verb == "rebase" {
			for _, l := range j.b.Labels() {
				if !slices.Contains(labels, l) {
					labels = append(labels, l)
				}
			}
		}
	}
	closes := r.superseded(wanted, warnings)
	r.log.Debug("branches planned", "n", len(jobs), "took", time.Since(start))
	if r.DryRun {
		flush()
		r.supersede(ctx, closes)
		return r.dashboard(ctx, branches, nil)
	}

	// Labels are made sure of while the branches are pushed.
	start = time.Now()
	var labelErr error
	labelled := make(chan struct{})
	go func() {
		defer close(labelled)
		labelErr = f.EnsureLabels(ctx, append([]string{pr.LabelUpgrade}, labels...))
	}()
	r.pushAll(ctx, jobs)
	<-labelled
	r.log.Debug("branches pushed", "took", time.Since(start))
	if labelErr != nil {
		return labelErr
	}
	if err := ctx.Err(); err != nil {
		return err
	}

	// The forge writes go one at a time in branch order: PR numbers follow
	// the branch names, and forges serialise them anyway (Gitea opens a PR
	// in one database transaction that includes its own push of the head;
	// GitHub asks for content-creating requests one after another). The
	// dashboard issue is looked up meanwhile.
	start = time.Now()
	for _, j := range jobs {
		if j.cancel {
			r.cancelAutomerge(ctx, j)
		}
		if j.verb == "" {
			continue
		}
		r.write(ctx, j)
		if err := ctx.Err(); err != nil {
			<-found
			return err
		}
		if j.created != nil {
			r.prs = append(r.prs, *j.created)
		}
	}
	flush()
	r.supersede(ctx, closes)
	<-found
	r.log.Debug("forge written", "took", time.Since(start))
	if dashErr != nil && !errors.Is(dashErr, forge.ErrNotFound) {
		return dashErr
	}
	if dashErr != nil {
		dash = nil
	}
	return r.dashboard(ctx, branches, dash)
}

// ociArtifact is the registry repository and tag of version of d when d
// is an image or a chart in an OCI registry.
func ociArtifact(d bot.Dependency, version string) (repo, tag string, ok bool) {
	switch d.Datasource {
	case "docker":
		return d.Package, version, true
	case "oci":
		return oci.ChartRepository(d.RegistryURL, path.Base(d.Package)), oci.VersionToTag(version), true
	}
	return "", "", false
}

// releaseNotes fetches the notes of each update of b whose source is
// known (by update index): an image's or OCI chart's source is read from
// its org.opencontainers.image.source label or annotation first (helm
// push writes the chart's first source there), and kept in b for the
// body's links. failed says a fetch went wrong (not "no release"), so a
// body without those notes must not replace one with them.
func (r *runner) releaseNotes(ctx context.Context, b *pr.Branch) (map[int]*pr.Notes, bool) {
	if r.notes == nil {
		return nil, false
	}
	out := map[int]*pr.Notes{}
	failed := false
	b.Updates = slices.Clone(b.Updates)
	for i := range b.Updates {
		u := &b.Updates[i]
		if repo, tag, ok := ociArtifact(datasource.Mirror(u.Dependency, r.Lookup.Mirrors), u.New.Version); ok && u.New.SourceURL == "" && r.images != nil {
			src, err := r.images.Source(ctx, repo, tag)
			if err != nil {
				r.log.Debug("source label not read", "repository", repo, "tag", tag, "error", httpx.RedactErr(err))
				failed = true
				continue
			}
			u.New.SourceURL = src
		}
		if u.New.SourceURL == "" {
			continue
		}
		name := ""
		if pr.IsChart(u.Dependency) {
			name = path.Base(u.Dependency.Package) // monorepo tags: <chart>-<version>
		}
		n, err := r.notes.Fetch(ctx, u.New.SourceURL, name, u.New.Version)
		if err != nil {
			r.log.Debug("release notes not read", "package", u.Dependency.Package, "version", u.New.Version, "error", err)
			failed = true
			continue
		}
		if n != nil {
			out[i] = n
		}
	}
	return out, failed
}
