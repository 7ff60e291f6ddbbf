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
	"net/http"
	"os"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"sigs.k8s.io/yaml"

	"hl.dev/hl/bot"
	"hl.dev/hl/bot/forge"
	"hl.dev/hl/bot/lookup"
	"hl.dev/hl/bot/pr"
	"hl.dev/hl/internal/config"
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
	// AuthorName/AuthorEmail sign the bot's commits; a branch whose tip
	// has another author email belongs to a human.
	AuthorName, AuthorEmail string
	// HTTPClient fetches charts for rendered diffs.
	HTTPClient *http.Client
	// NoChartDiff skips rendered diffs.
	NoChartDiff bool
	Now         func() time.Time
	Logger      *slog.Logger
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
	repo    *git.Repository
	base    *object.Commit
	prs     []forge.PR // every bot PR, oldest first
	created int
	open    int
	hour    int
	// scheduled remembers automerges requested in this run.
	scheduled map[int]bool
	charts    *pr.ChartRenderer
	log       *slog.Logger
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
	if o.AuthorName == "" {
		o.AuthorName = "hl-bot"
	}
	if o.AuthorEmail == "" {
		o.AuthorEmail = "hl-bot@noreply.localhost"
	}
	if o.FindUpdates == nil {
		o.FindUpdates = lookup.FindUpdates
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 4
	}
	r := &runner{Options: o, res: &Result{}, log: o.Logger, charts: &pr.ChartRenderer{Client: o.HTTPClient}}
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
	// (by index in b.Updates), for its rendered diff.
	values map[int]map[string]any
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
	f := r.Forge
	if r.Base == "" {
		b, err := f.DefaultBranch(ctx)
		if err != nil {
			return err
		}
		r.Base = b
	}
	dir, clone := r.Dir, r.Dir == ""
	if clone {
		tmp, err := os.MkdirTemp("", "hl-bot-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	}
	start := time.Now()
	repo, err := openRepo(ctx, dir, f.CloneURL(), r.Base, f.Auth(), clone)
	if err != nil {
		return err
	}
	r.repo = repo
	ref, err := repo.Reference(plumbing.ReferenceName("refs/remotes/origin/"+r.Base), true)
	if err != nil {
		return fmt.Errorf("base %s: %w", r.Base, err)
	}
	if r.base, err = repo.CommitObject(ref.Hash()); err != nil {
		return err
	}
	r.log.Debug("repo ready", "base", r.base.Hash.String(), "took", time.Since(start))

	// The bot's PRs are listed while the datasources are asked.
	start = time.Now()
	var listErr error
	listed := make(chan struct{})
	go func() {
		defer close(listed)
		r.prs, listErr = f.ListPRs(ctx, forge.ListOptions{HeadPrefix: pr.BranchPrefix})
	}()
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
		if j.verb != "" && !r.NoChartDiff {
			j.values = map[int]map[string]any{}
			for i, u := range j.b.Updates {
				if isChart(u.Dependency) {
					j.values[i] = r.chartValues(u.Dependency)
				}
			}
		}
	}
	each(r, jobs, func(j *job) {
		if j.verb != "" {
			j.body = r.body(ctx, j)
		}
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
	var (
		dash    *forge.Issue
		dashErr error
	)
	found := make(chan struct{})
	go func() {
		defer close(found)
		dash, dashErr = f.FindIssue(ctx, DashboardTitle)
	}()
	for _, j := range jobs {
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

// prsFor returns the PRs of head into base, newest first.
func (r *runner) prsFor(head string) []forge.PR {
	var out []forge.PR
	for _, p := range r.prs {
		if p.Head == head && p.Base == r.Base {
			out = append(out, p)
		}
	}
	slices.Reverse(out)
	return out
}

func (r *runner) remoteTip(branch string) *object.Commit {
	ref, err := r.repo.Reference(plumbing.ReferenceName(botRefs+strings.TrimPrefix(branch, pr.BranchPrefix)), true)
	if err != nil {
		return nil
	}
	c, err := r.repo.CommitObject(ref.Hash())
	if err != nil {
		return nil
	}
	return c
}

// content builds the branch's files from the base tip.
func (r *runner) content(b pr.Branch) (map[string][]byte, error) {
	out := map[string][]byte{}
	for _, file := range b.Files() {
		old, err := readFile(r.base, file)
		if err != nil {
			return nil, err
		}
		edits, err := pr.EditsFor(b.Updates, file)
		if err != nil {
			return nil, err
		}
		if out[file], err = pr.Apply(old, edits); err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
	}
	return out, nil
}

// chartValues are the wrapper chart's values for the subchart of d, read
// from the base (empty when there are none).
func (r *runner) chartValues(d bot.Dependency) map[string]any {
	vals := map[string]any{}
	if raw, err := readFile(r.base, path.Join(path.Dir(d.File), "values.yaml")); err == nil {
		var all map[string]any
		if yaml.Unmarshal(raw, &all) == nil {
			if sub, ok := all[path.Base(d.Package)].(map[string]any); ok {
				vals = sub
			}
		}
	}
	return vals
}

func isChart(d bot.Dependency) bool { return d.Manager == "helm-chart" && d.Datasource == "helm" }

// body is the PR body, with the rendered diff of each Helm chart update.
// It reads nothing from the local clone, so bodies render concurrently.
func (r *runner) body(ctx context.Context, j *job) string {
	diffs := map[int]*pr.ChartDiff{}
	if !r.NoChartDiff {
		for i, u := range j.b.Updates {
			d := u.Dependency
			if !isChart(d) {
				continue
			}
			cd, err := r.charts.Diff(ctx, d.RegistryURL, path.Base(d.Package), d.Current, u.NewValue, j.values[i])
			if err != nil {
				cd = &pr.ChartDiff{Summary: "rendered diff unavailable: " + err.Error()}
			}
			diffs[i] = cd
		}
	}
	return pr.Body(j.b, diffs)
}

// decide does what needs no PR body: it settles branches a human closed,
// merged or took over, the rate limits, and whether an open PR's branch
// must be rebuilt. It reads the local clone, so it runs one branch at a
// time. A new PR reserves its place under the limits here, in branch
// order, so the limits hold however the forge calls interleave later.
func (r *runner) decide(j *job) {
	b := j.b
	want := pr.MarkerOf(b)
	history := r.prsFor(b.Name)
	for i, p := range history {
		if p.State == forge.StateOpen {
			j.open = &history[i]
			break
		}
		m, _ := pr.ParseMarker(p.Body)
		if p.State == forge.StateClosed && !m.Superseded {
			// A human closed it: never reopen. Majors are ignored whole.
			if (b.Type == bot.UpdateMajor && b.Group == "") || m.SameVersions(want) {
				j.act(Action{Branch: b.Name, Verb: "ignored", PR: p.Number, Detail: "closed without merging"})
				return
			}
		}
		if p.State == forge.StateMerged && m.SameVersions(want) {
			j.act(Action{Branch: b.Name, Verb: "unchanged", PR: p.Number, Detail: "already merged"})
			return
		}
	}
	j.tip = r.remoteTip(b.Name)
	if j.tip != nil && j.tip.Author.Email != r.AuthorEmail {
		// A human pushed: the branch is theirs now.
		pn := 0
		if j.open != nil {
			pn = j.open.Number
		}
		j.act(Action{Branch: b.Name, Verb: "human-edited", PR: pn, Detail: "last commit by " + j.tip.Author.Email})
		return
	}
	var err error
	if j.files, err = r.content(b); err != nil {
		j.fail(err)
		return
	}
	j.title = b.Title()

	if j.open == nil {
		if reason := r.limited(); reason != "" {
			j.act(Action{Branch: b.Name, Verb: "rate-limited", Detail: reason})
			return
		}
		if r.DryRun {
			j.act(Action{Branch: b.Name, Verb: "create", Detail: j.title})
			return
		}
		r.created++
		r.open++
		r.hour++
		j.verb, j.rebuild = "create", true
		return
	}

	// An open PR: rebuild the branch when the versions changed, the branch
	// is gone, or the base changed a file the branch edits (a conflict).
	have, _ := pr.ParseMarker(j.open.Body)
	tip := j.tip
	switch {
	case tip == nil:
		j.verb = "update"
	case !have.SameVersions(want):
		j.verb = "update"
	case len(tip.ParentHashes) == 0 || tip.ParentHashes[0] != r.base.Hash:
		parent, err := r.repo.CommitObject(tip.ParentHashes[0])
		if err != nil {
			j.fail(err)
			return
		}
		changed, err := changedFiles(parent, r.base)
		if err != nil {
			j.fail(err)
			return
		}
		for _, file := range b.Files() {
			if changed[file] {
				j.verb = "rebase"
			}
		}
	}
	j.rebuild = j.verb == "rebase" || !have.SameVersions(want) || tip == nil
	if j.verb == "" {
		j.verb = "unchanged" // unless the title or body changed
	}
}

// finish settles open PRs now that the body is known and builds the
// branch commits; it writes to the local clone, one branch at a time.
func (r *runner) finish(j *job) {
	if j.verb == "" {
		return
	}
	b := j.b
	if j.open != nil && j.verb == "unchanged" && (j.open.Title != j.title || j.open.Body != j.body) {
		j.verb = "update"
	}
	if r.DryRun {
		if j.open != nil {
			if j.verb == "unchanged" {
				j.act(Action{Branch: b.Name, Verb: "unchanged", PR: j.open.Number})
			} else {
				j.act(Action{Branch: b.Name, Verb: j.verb, PR: j.open.Number, Detail: j.title})
			}
		}
		j.verb = ""
		return
	}
	if !j.rebuild {
		return
	}
	h, err := commitOn(r.repo, r.base, j.files, b.CommitMessage(), r.AuthorName, r.AuthorEmail)
	if err != nil {
		j.fail(err)
		return
	}
	j.hash = h
}

// pushAll pushes every branch whose commit is not on the forge yet, in one
// push; a branch that cannot be pushed fails alone.
func (r *runner) pushAll(ctx context.Context, jobs []*job) {
	var todo []*job
	var heads []head
	for _, j := range jobs {
		if j.verb == "" || !j.rebuild || (j.tip != nil && j.tip.Hash == j.hash) {
			continue
		}
		todo = append(todo, j)
		heads = append(heads, head{branch: j.b.Name, hash: j.hash})
	}
	if len(todo) == 0 {
		return
	}
	errs := pushBranches(ctx, r.repo, r.Forge.Auth(), heads)
	for i, j := range todo {
		if errs[i] != nil {
			j.fail(errs[i])
			continue
		}
		j.pushed = true
	}
}

// write brings the branch's PR in line on the forge.
func (r *runner) write(ctx context.Context, j *job) {
	f, b := r.Forge, j.b
	if j.open == nil {
		p, err := f.CreatePR(ctx, forge.NewPR{Title: j.title, Body: j.body, Head: b.Name, Base: r.Base, Labels: b.Labels()})
		if err != nil {
			j.fail(err)
			return
		}
		j.created = p
		j.act(Action{Branch: b.Name, Verb: "create", PR: p.Number, Detail: j.title})
		p.HeadSHA = j.hash.String()
		if err := r.automerge(ctx, j, p, true); err != nil {
			j.fail(err)
		}
		return
	}
	open := j.open
	if j.verb == "unchanged" {
		j.act(Action{Branch: b.Name, Verb: "unchanged", PR: open.Number})
		if err := r.automerge(ctx, j, open, false); err != nil {
			j.fail(err)
		}
		return
	}
	if j.pushed {
		open.HeadSHA = j.hash.String()
	}
	if open.Title != j.title || open.Body != j.body {
		if err := f.UpdatePR(ctx, open.Number, j.title, j.body); err != nil {
			j.fail(err)
			return
		}
	}
	if missing := missingLabels(open.Labels, b.Labels()); len(missing) > 0 {
		if err := f.AddLabels(ctx, open.Number, missing); err != nil {
			j.fail(err)
			return
		}
	}
	j.act(Action{Branch: b.Name, Verb: j.verb, PR: open.Number, Detail: j.title})
	if err := r.automerge(ctx, j, open, j.pushed); err != nil {
		j.fail(err)
	}
}

func missingLabels(have, want []string) []string {
	var out []string
	for _, w := range want {
		if !slices.Contains(have, w) {
			out = append(out, w)
		}
	}
	return out
}

func (r *runner) limited() string {
	l := r.Bot.Limits
	switch {
	case l.MaxOpenPRs > 0 && r.open >= l.MaxOpenPRs:
		return fmt.Sprintf("max %d open PRs", l.MaxOpenPRs)
	case l.MaxPRsPerRun > 0 && r.created >= l.MaxPRsPerRun:
		return fmt.Sprintf("max %d new PRs per run", l.MaxPRsPerRun)
	case l.MaxPRsPerHour > 0 && r.hour >= l.MaxPRsPerHour:
		return fmt.Sprintf("max %d new PRs per hour", l.MaxPRsPerHour)
	}
	return ""
}

// automerge schedules Gitea's "merge when checks succeed" when a branch
// is (re)pushed, and merges directly when the head is already green (the
// scheduled merge may not have fired).
func (r *runner) automerge(ctx context.Context, j *job, p *forge.PR, pushed bool) error {
	b := j.b
	if !b.Automerge || r.DryRun {
		return nil
	}
	st := forge.StatusNone
	if p.HeadSHA != "" {
		var err error
		if st, err = r.Forge.CommitStatus(ctx, p.HeadSHA); err != nil {
			return err
		}
	}
	if st == forge.StatusSuccess {
		if err := r.Forge.Merge(ctx, p.Number, forge.MergeOptions{Style: "merge", DeleteBranch: true}); err != nil {
			// Refused (still checking mergeability): the next run retries.
			j.act(Action{Branch: b.Name, Verb: "automerge-waiting", PR: p.Number, Detail: err.Error()})
			return nil
		}
		j.act(Action{Branch: b.Name, Verb: "merge", PR: p.Number})
		return nil
	}
	// Only once CI has reported: Gitea merges a PR without any status
	// right away, which would skip CI entirely.
	if st == forge.StatusPending && (pushed || !r.scheduled[p.Number]) {
		if err := r.Forge.Merge(ctx, p.Number, forge.MergeOptions{WhenChecksSucceed: true, Style: "merge", DeleteBranch: true}); err != nil {
			// Already scheduled is fine; anything else is reported.
			j.act(Action{Branch: b.Name, Verb: "automerge-waiting", PR: p.Number, Detail: err.Error()})
			return nil
		}
		if r.scheduled == nil {
			r.scheduled = map[int]bool{}
		}
		r.scheduled[p.Number] = true
		j.act(Action{Branch: b.Name, Verb: "automerge-scheduled", PR: p.Number})
	}
	return nil
}

// superseded lists the open bot PRs no planned branch wants any more,
// unless a human took the branch over or a lookup of their packages
// failed.
func (r *runner) superseded(wanted map[string]bool, warnings []lookup.Warning) []forge.PR {
	failed := map[string]bool{}
	for _, w := range warnings {
		if w.Package != "" {
			failed[w.Package] = true
		}
	}
	var out []forge.PR
	for _, p := range r.prs {
		if p.State != forge.StateOpen || wanted[p.Head] || p.Base != r.Base {
			continue
		}
		m, ok := pr.ParseMarker(p.Body)
		if !ok {
			continue
		}
		skip := false
		for _, d := range m.Deps {
			skip = skip || failed[d.Package]
		}
		if tip := r.remoteTip(p.Head); tip != nil && tip.Author.Email != r.AuthorEmail {
			skip = true
		}
		if !skip {
			out = append(out, p)
		}
	}
	return out
}

// supersede marks the superseded PRs as such and closes them.
func (r *runner) supersede(ctx context.Context, prs []forge.PR) {
	for _, p := range prs {
		if r.DryRun {
			r.act(Action{Branch: p.Head, Verb: "close", PR: p.Number, Detail: "superseded"})
			continue
		}
		m, _ := pr.ParseMarker(p.Body)
		m.Superseded = true
		err := r.Forge.UpdatePR(ctx, p.Number, p.Title, pr.WithMarker(p.Body, m))
		if err == nil {
			err = r.Forge.ClosePR(ctx, p.Number, "Superseded: this update is no longer needed or a newer one replaces it. `hl bot` closed it.")
		}
		if err != nil {
			r.act(Action{Branch: p.Head, Verb: "error", PR: p.Number, Detail: err.Error()})
			continue
		}
		r.act(Action{Branch: p.Head, Verb: "close", PR: p.Number, Detail: "superseded"})
	}
}

// dashboard writes the dashboard issue; is is the issue found earlier in
// the run (nil: none yet).
func (r *runner) dashboard(ctx context.Context, branches []pr.Branch, is *forge.Issue) error {
	titles := map[string]string{}
	for _, b := range branches {
		titles[b.Name] = b.Title()
	}
	var s strings.Builder
	s.WriteString("This issue lists the updates `hl bot` knows about. It is rewritten on every run.\n")
	section := func(name string, verbs ...string) {
		var lines []string
		for _, a := range r.res.Actions {
			if !slices.Contains(verbs, a.Verb) {
				continue
			}
			line := "- `" + a.Branch + "`"
			if t := titles[a.Branch]; t != "" {
				line += " " + t
			}
			if a.PR != 0 {
				line += fmt.Sprintf(" (#%d)", a.PR)
			}
			if a.Detail != "" && a.Detail != titles[a.Branch] {
				line += ": " + a.Detail
			}
			lines = append(lines, line)
		}
		if len(lines) == 0 {
			lines = []string{"- none"}
		}
		s.WriteString("\n## " + name + "\n\n" + strings.Join(lines, "\n") + "\n")
	}
	section("Open", "create", "update", "rebase", "unchanged", "automerge-scheduled", "automerge-waiting")
	section("Rate-limited", "rate-limited")
	section("Ignored (closed by a human, or edited by one)", "ignored", "human-edited")
	section("Errored", "error")
	if len(r.res.Warnings) > 0 {
		s.WriteString("\n## Lookup warnings\n\n")
		for _, w := range r.res.Warnings {
			s.WriteString("- " + w + "\n")
		}
	}
	s.WriteString("\n<!-- hl-bot-dashboard -->\n")
	body := s.String()
	if r.DryRun {
		return nil
	}
	switch {
	case is == nil:
		var err error
		if is, err = r.Forge.CreateIssue(ctx, DashboardTitle, body); err != nil {
			return err
		}
	case is.Body != body:
		if err := r.Forge.UpdateIssue(ctx, is.Number, DashboardTitle, body); err != nil {
			return err
		}
	}
	r.res.Dashboard = is.Number
	return nil
}
