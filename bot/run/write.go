package run

import (
	"context"
	"slices"

	"hl.dev/hl/bot/engine"
	"hl.dev/hl/bot/forge"
	"hl.dev/hl/bot/pr"
)

// The write phase: push the built branches in one push, then bring each
// branch's PR in line on the forge, one after another in branch order.

// pushAll pushes every branch whose commit is not on the forge yet, in one
// push; a branch that cannot be pushed fails alone.
func (r *runner) pushAll(ctx context.Context, jobs []*job) {
	var todo []*job
	var heads []engine.Head
	for _, j := range jobs {
		if j.verb == "" || !j.rebuild || (j.tip != nil && j.tip.Hash == j.hash) {
			continue
		}
		todo = append(todo, j)
		heads = append(heads, engine.Head{Branch: j.b.Name, Hash: j.hash})
	}
	if len(todo) == 0 {
		return
	}
	// A merge scheduled for an open PR's old head is cancelled before the
	// branch moves: Gitea would merge the new head at once (it has no
	// status yet, and no status counts as passing), bytes nobody judged.
	// What the branch holds now is judged again when its PR is written.
	for i, j := range todo {
		if j.open == nil {
			continue
		}
		if err := r.Forge.CancelAutoMerge(ctx, j.open.Number); err != nil {
			j.fail(err)
			todo[i], heads[i] = nil, engine.Head{}
		}
	}
	todo = slices.DeleteFunc(todo, func(j *job) bool { return j == nil })
	heads = slices.DeleteFunc(heads, func(h engine.Head) bool { return h.Branch == "" })
	if len(todo) == 0 {
		return
	}
	errs := r.repo.Push(ctx, heads)
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
	b := j.b
	if j.open != nil && j.verb == "unchanged" {
		j.act(Action{Branch: b.Name, Verb: "unchanged", PR: j.open.Number})
		if err := r.automerge(ctx, j, j.open, false); err != nil {
			j.fail(err)
		}
		return
	}
	p, created, err := r.repo.EnsurePR(ctx, j.open, forge.NewPR{Title: j.title, Body: j.body, Head: b.Name, Labels: b.Labels()})
	if err != nil {
		j.fail(err)
		return
	}
	verb := j.verb
	if created {
		j.created, verb = p, "create"
	}

	if j.pushed || created {
		p.HeadSHA = j.hash.String()
	}
	j.act(Action{Branch: b.Name, Verb: verb, PR: p.Number, Detail: j.title})
	if err := r.automerge(ctx, j, p, j.pushed || created); err != nil {
		j.fail(err)
	}
}

// cancelAutomerge cancels the merge scheduled on the PR of a branch a
// human pushed to: they did not ask for it, the bot did, for other bytes.
func (r *runner) cancelAutomerge(ctx context.Context, j *job) {
	if j.open == nil || r.DryRun {
		return
	}
	if err := r.Forge.CancelAutoMerge(ctx, j.open.Number); err != nil {
		j.fail(err)
	}
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
		if err := r.Forge.Merge(ctx, p.Number, forge.MergeOptions{DeleteBranch: true}); err != nil {
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
		if required, err := r.requiresChecks(ctx); err != nil {
			return err
		} else if !required {
			j.act(Action{Branch: b.Name, Verb: "automerge-waiting", PR: p.Number, Detail: "merged by the bot once its checks succeed: " + r.Base + " requires no status check, so a merge scheduled on the forge would run at once"})
			return nil
		}
		if err := r.Forge.Merge(ctx, p.Number, forge.MergeOptions{WhenChecksSucceed: true, DeleteBranch: true}); err != nil {
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

// requiresChecks asks once a run whether the base requires checks.
func (r *runner) requiresChecks(ctx context.Context) (bool, error) {
	if r.checksRequired == nil {
		req, err := r.Forge.RequiresChecks(ctx, r.Base)
		if err != nil {
			return false, err
		}
		r.checksRequired = &req
	}
	return *r.checksRequired, nil
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
