package run

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"hl.dev/hl/bot/engine"
	"hl.dev/hl/bot/forge"
	"hl.dev/hl/bot/pr"
)

// dashboard writes the dashboard issue; is is the issue found earlier in
// the run (nil: none yet).
func (r *runner) dashboard(ctx context.Context, branches []pr.Branch, is *forge.Issue) error {
	titles := map[string]string{}
	for _, b := range branches {
		titles[b.Name] = b.Title()
	}
	var s strings.Builder
	s.WriteString("This issue lists the updates `hl bot` knows about. It is rewritten on every run, which clears the boxes it acted on.\n\n")
	s.WriteString("- [ ] " + runNowMarker + " Run now: `hl bot serve` starts a run when this box is ticked (run as a CronJob, the next run reads it).\n")
	// section lists the actions of verbs; box, when set, gives the
	// checkbox marker of a line (empty: no box).
	section := func(name, help string, box func(Action) string, verbs ...string) {
		var lines []string
		boxed := map[string]bool{} // one box per branch
		for _, a := range r.res.Actions {
			if !slices.Contains(verbs, a.Verb) {
				continue
			}
			line := "- `" + a.Branch + "`"
			if m := boxFor(box, a); m != "" && !boxed[a.Branch] {
				boxed[a.Branch] = true
				line = "- [ ] " + m + " `" + a.Branch + "`"
			}
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
		} else if help != "" {
			lines = append([]string{help, ""}, lines...)
		}
		s.WriteString("\n## " + name + "\n\n" + strings.Join(lines, "\n") + "\n")
	}
	rebase := func(a Action) string {
		if a.PR == 0 {
			return ""
		}
		return rebaseMarker(a.Branch)
	}
	retry := func(a Action) string { return retryMarker(a.Branch) }
	section("Open", "Tick a box to rebuild that branch from the base on the next run.", rebase,
		"create", "update", "rebase", "unchanged", "automerge-scheduled", "automerge-waiting")
	section("Rate-limited", "Tick a box to open that PR on the next run despite the limits.", retry, "rate-limited")
	section("Edited by a human", "The bot leaves these branches alone. Tick a box to take the branch back: the next run rebuilds it and drops the human's commits.", rebase, "human-edited")
	section("Ignored (closed by a human)", "", nil, "ignored")
	section("Errored", "Every run tries these again; tick Run now above to try at once.", nil, "error")
	if len(r.res.Held) > 0 {
		s.WriteString("\n## Held by the minimum release age\n\nTick a box to approve that update now: the next run proposes it.\n\n")
		for i, h := range r.res.Held {
			s.WriteString("- [ ] " + approveMarker(r.heldKeys[i]) + " " + h + "\n")
		}
	}
	if len(r.res.Warnings) > 0 {
		s.WriteString("\n## Lookup warnings\n\n")
		for _, w := range r.res.Warnings {
			s.WriteString("- " + w + "\n")
		}
	}
	s.WriteString("\n" + engine.DashboardMarker + "\n")
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

func boxFor(box func(Action) string, a Action) string {
	if box == nil {
		return ""
	}
	return box(a)
}

// The dashboard's checkbox markers: each box says what ticking it asks.
func approveMarker(key string) string   { return "<!-- hl-approve: " + key + " -->" }
func rebaseMarker(branch string) string { return "<!-- hl-rebase: " + branch + " -->" }
func retryMarker(branch string) string  { return "<!-- hl-retry: " + branch + " -->" }

const runNowMarker = "<!-- hl-run-now -->"

var tickedRe = regexp.MustCompile(`(?m)^- \[[xX]\] <!-- hl-(approve|rebase|retry|run-now)(?:: (\S+))? -->`)

// Requests are the boxes a human ticked on the dashboard.
type Requests struct {
	// Approved are package@version keys let through the minimum release
	// age.
	Approved map[string]bool
	// Rebase are branches to rebuild from the base (taking a branch a
	// human edited back).
	Rebase map[string]bool
	// Retry are branches to open despite the rate limits.
	Retry map[string]bool
	// RunNow: the run-now box (serve starts a run on the edit).
	RunNow bool
}

// ReadRequests reads the ticked boxes of a dashboard body; a box without
// a marker, or one not at the start of a line, asks nothing.
func ReadRequests(body string) Requests {
	r := Requests{Approved: map[string]bool{}, Rebase: map[string]bool{}, Retry: map[string]bool{}}
	for _, m := range tickedRe.FindAllStringSubmatch(body, -1) {
		switch m[1] {
		case "approve":
			if m[2] != "" {
				r.Approved[m[2]] = true
			}
		case "rebase":
			if m[2] != "" {
				r.Rebase[m[2]] = true
			}
		case "retry":
			if m[2] != "" {
				r.Retry[m[2]] = true
			}
		case "run-now":
			r.RunNow = true
		}
	}
	return r
}

// Approved reads the ticked approval boxes of a dashboard body: the
// package@version keys a human let through the minimum release age.
func Approved(body string) map[string]bool { return ReadRequests(body).Approved }
