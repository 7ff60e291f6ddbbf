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
	baseRef string
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

func (r *runner) act(a Action) {
	r.log.Info("bot", "branch", a.Branch, "action", a.Verb, "pr", a.PR, "detail", a.Detail)
	r.res.Actions = append(r.res.Actions, a)
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

	r.log.Debug("repo ready", "base", r.base.Hash.String())
	updates, warnings, err := r.FindUpdates(ctx, dir, r.Lookup)
	r.log.Debug("updates found", "n", len(updates))
	if err != nil {
		return fmt.Errorf("find updates: %w", err)
	}
	for _, w := range warnings {
		r.res.Warnings = append(r.res.Warnings, w.String())
	}
	branches := pr.Plan(updates, r.Bot)

	if r.prs, err = f.ListPRs(ctx, forge.ListOptions{HeadPrefix: pr.BranchPrefix}); err != nil {
		return err
	}
	hourAgo := r.Now().Add(-time.Hour)
	for _, p := range r.prs {
		if p.State == forge.StateOpen {
			r.open++
		}
		if p.Created.After(hourAgo) {
			r.hour++
		}
	}
	if !r.DryRun {
		if err := f.EnsureLabels(ctx, []string{pr.LabelUpgrade}); err != nil {
			return err
		}
	}

	wanted := map[string]bool{}
	for _, b := range branches {
		wanted[b.Name] = true
		if err := r.branch(ctx, b); err != nil {
			if ctx.Err() != nil {
				return err
			}
			r.act(Action{Branch: b.Name, Verb: "error", Detail: err.Error()})
		}
	}
	r.supersede(ctx, wanted, warnings)
	return r.dashboard(ctx, branches)
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

func (r *runner) body(ctx context.Context, b pr.Branch) string {
	diffs := map[int]*pr.ChartDiff{}
	if !r.NoChartDiff {
		for i, u := range b.Updates {
			d := u.Dependency
			if d.Manager != "helm-chart" || d.Datasource != "helm" {
				continue
			}
			vals := map[string]any{}
			if raw, err := readFile(r.base, path.Join(path.Dir(d.File), "values.yaml")); err == nil {
				var all map[string]any
				if yaml.Unmarshal(raw, &all) == nil {
					if sub, ok := all[path.Base(d.Package)].(map[string]any); ok {
						vals = sub
					}
				}
			}
			cd, err := r.charts.Diff(ctx, d.RegistryURL, path.Base(d.Package), d.Current, u.NewValue, vals)
			if err != nil {
				cd = &pr.ChartDiff{Summary: "rendered diff unavailable: " + err.Error()}
			}
			diffs[i] = cd
		}
	}
	return pr.Body(b, diffs)
}

func (r *runner) branch(ctx context.Context, b pr.Branch) error {
	f := r.Forge
	want := pr.MarkerOf(b)
	history := r.prsFor(b.Name)
	var open *forge.PR
	for i, p := range history {
		if p.State == forge.StateOpen {
			open = &history[i]
			break
		}
		m, _ := pr.ParseMarker(p.Body)
		if p.State == forge.StateClosed && !m.Superseded {
			// A human closed it: never reopen. Majors are ignored whole.
			if (b.Type == bot.UpdateMajor && b.Group == "") || m.SameVersions(want) {
				r.act(Action{Branch: b.Name, Verb: "ignored", PR: p.Number, Detail: "closed without merging"})
				return nil
			}
		}
		if p.State == forge.StateMerged && m.SameVersions(want) {
			r.act(Action{Branch: b.Name, Verb: "unchanged", PR: p.Number, Detail: "already merged"})
			return nil
		}
	}
	tip := r.remoteTip(b.Name)
	if tip != nil && tip.Author.Email != r.AuthorEmail {
		// A human pushed: the branch is theirs now.
		pn := 0
		if open != nil {
			pn = open.Number
		}
		r.act(Action{Branch: b.Name, Verb: "human-edited", PR: pn, Detail: "last commit by " + tip.Author.Email})
		return nil
	}

	files, err := r.content(b)
	if err != nil {
		return err
	}
	title, body := b.Title(), r.body(ctx, b)

	if open == nil {
		if reason := r.limited(); reason != "" {
			r.act(Action{Branch: b.Name, Verb: "rate-limited", Detail: reason})
			return nil
		}
		if r.DryRun {
			r.act(Action{Branch: b.Name, Verb: "create", Detail: title})
			return nil
		}
		h, err := commitOn(r.repo, r.base, files, b.CommitMessage(), r.AuthorName, r.AuthorEmail)
		if err != nil {
			return err
		}
		if tip == nil || tip.Hash != h {
			if err := push(ctx, r.repo, f.Auth(), b.Name, h); err != nil {
				return err
			}
		}
		p, err := f.CreatePR(ctx, forge.NewPR{Title: title, Body: body, Head: b.Name, Base: r.Base, Labels: b.Labels()})
		if err != nil {
			return err
		}
		r.created++
		r.open++
		r.hour++
		r.prs = append(r.prs, *p)
		r.act(Action{Branch: b.Name, Verb: "create", PR: p.Number, Detail: title})
		p.HeadSHA = h.String()
		return r.automerge(ctx, b, p, true)
	}

	// An open PR: rebuild the branch when the versions changed, the branch
	// is gone, or the base changed a file the branch edits (a conflict).
	have, _ := pr.ParseMarker(open.Body)
	verb := ""
	switch {
	case tip == nil:
		verb = "update"
	case !have.SameVersions(want):
		verb = "update"
	case len(tip.ParentHashes) == 0 || tip.ParentHashes[0] != r.base.Hash:
		parent, err := r.repo.CommitObject(tip.ParentHashes[0])
		if err != nil {
			return err
		}
		changed, err := changedFiles(parent, r.base)
		if err != nil {
			return err
		}
		for _, file := range b.Files() {
			if changed[file] {
				verb = "rebase"
			}
		}
	}
	if verb == "" && open.Title == title && open.Body == body {
		r.act(Action{Branch: b.Name, Verb: "unchanged", PR: open.Number})
		return r.automerge(ctx, b, open, false)
	}
	if verb == "" {
		verb = "update"
	}
	if r.DryRun {
		r.act(Action{Branch: b.Name, Verb: verb, PR: open.Number, Detail: title})
		return nil
	}
	pushed := false
	if verb == "rebase" || !have.SameVersions(want) || tip == nil {
		h, err := commitOn(r.repo, r.base, files, b.CommitMessage(), r.AuthorName, r.AuthorEmail)
		if err != nil {
			return err
		}
		if tip == nil || tip.Hash != h {
			if err := push(ctx, r.repo, f.Auth(), b.Name, h); err != nil {
				return err
			}
			open.HeadSHA = h.String()
			pushed = true
		}
	}
	if open.Title != title || open.Body != body {
		if err := f.UpdatePR(ctx, open.Number, title, body); err != nil {
			return err
		}
	}
	if missing := missingLabels(open.Labels, b.Labels()); len(missing) > 0 {
		if err := f.AddLabels(ctx, open.Number, missing); err != nil {
			return err
		}
	}
	r.act(Action{Branch: b.Name, Verb: verb, PR: open.Number, Detail: title})
	return r.automerge(ctx, b, open, pushed)
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
func (r *runner) automerge(ctx context.Context, b pr.Branch, p *forge.PR, pushed bool) error {
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
			r.act(Action{Branch: b.Name, Verb: "automerge-waiting", PR: p.Number, Detail: err.Error()})
			return nil
		}
		r.act(Action{Branch: b.Name, Verb: "merge", PR: p.Number})
		return nil
	}
	// Only once CI has reported: Gitea merges a PR without any status
	// right away, which would skip CI entirely.
	if st == forge.StatusPending && (pushed || !r.scheduled[p.Number]) {
		if err := r.Forge.Merge(ctx, p.Number, forge.MergeOptions{WhenChecksSucceed: true, Style: "merge", DeleteBranch: true}); err != nil {
			// Already scheduled is fine; anything else is reported.
			r.act(Action{Branch: b.Name, Verb: "automerge-waiting", PR: p.Number, Detail: err.Error()})
			return nil
		}
		if r.scheduled == nil {
			r.scheduled = map[int]bool{}
		}
		r.scheduled[p.Number] = true
		r.act(Action{Branch: b.Name, Verb: "automerge-scheduled", PR: p.Number})
	}
	return nil
}

// supersede closes open bot PRs no planned branch wants any more, unless a
// human took the branch over or a lookup of their packages failed.
func (r *runner) supersede(ctx context.Context, wanted map[string]bool, warnings []lookup.Warning) {
	failed := map[string]bool{}
	for _, w := range warnings {
		if w.Package != "" {
			failed[w.Package] = true
		}
	}
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
		if skip {
			continue
		}
		if r.DryRun {
			r.act(Action{Branch: p.Head, Verb: "close", PR: p.Number, Detail: "superseded"})
			continue
		}
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

func (r *runner) dashboard(ctx context.Context, branches []pr.Branch) error {
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
	is, err := r.Forge.FindIssue(ctx, DashboardTitle)
	switch {
	case errors.Is(err, forge.ErrNotFound):
		is, err = r.Forge.CreateIssue(ctx, DashboardTitle, body)
		if err != nil {
			return err
		}
	case err != nil:
		return err
	case is.Body != body:
		if err := r.Forge.UpdateIssue(ctx, is.Number, DashboardTitle, body); err != nil {
			return err
		}
	}
	r.res.Dashboard = is.Number
	return nil
}
