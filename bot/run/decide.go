package run

import (
	"fmt"

	"hl.dev/hl/bot"
	"hl.dev/hl/bot/forge"
	"hl.dev/hl/bot/lookup"
	"hl.dev/hl/bot/pr"
)

// The decide phase: from the local clone and the listed PRs, settle what
// each planned branch needs, before any body is rendered or anything is
// written.

// decide does what needs no PR body: it settles branches a human closed,
// merged or took over, the rate limits, and whether an open PR's branch
// must be rebuilt. It reads the local clone, so it runs one branch at a
// time. A new PR reserves its place under the limits here, in branch
// order, so the limits hold however the forge calls interleave later.
func (r *runner) decide(j *job) {
	b := j.b
	want := pr.MarkerOf(b)
	history := r.repo.History(r.prs, b.Name)
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
	j.tip = r.repo.BranchTip(b.Name)
	rebase := r.requests.Rebase[b.Name]
	if r.repo.Human(j.tip) && !rebase {
		// A human pushed: the branch is theirs now.
		pn := 0
		if j.open != nil {
			pn = j.open.Number
		}
		j.act(Action{Branch: b.Name, Verb: "human-edited", PR: pn, Detail: "last commit by " + j.tip.Author.Email})
		j.cancel = true
		return
	}
	var err error
	if j.files, err = r.content(b); err != nil {
		j.fail(err)
		return
	}
	j.title = b.Title()

	if j.open == nil {
		if reason := r.limited(); reason != "" && !r.requests.Retry[b.Name] {
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
	case rebase:
		// Asked on the dashboard (a branch a human edited is taken back).
		j.verb = "rebase"
	default:
		conflict, err := r.repo.BaseChanged(tip, b.Files())
		if err != nil {
			j.fail(err)
			return
		}
		if conflict {
			j.verb = "rebase"
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
	if j.open != nil && j.verb == "unchanged" && (j.open.Title != j.title || j.open.Body != j.body && !j.notesFailed) {
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
	h, err := r.repo.Commit(j.files, b.CommitMessage())
	if err != nil {
		j.fail(err)
		return
	}
	j.hash = h
}

// content builds the branch's files from the base tip.
func (r *runner) content(b pr.Branch) (map[string][]byte, error) {
	out := map[string][]byte{}
	for _, file := range b.Files() {
		old, err := r.repo.ReadFile(file)
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
		if r.repo.Human(r.repo.BranchTip(p.Head)) {
			skip = true
		}
		if !skip {
			out = append(out, p)
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
