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

// approveMarker tags a held update's checkbox with what it approves.
func approveMarker(key string) string { return "<!-- hl-approve: " + key + " -->" }

var approvedRe = regexp.MustCompile(`(?m)^- \[[xX]\] <!-- hl-approve: (\S+) -->`)

// Approved reads the ticked approval boxes of a dashboard body: the
// package@version keys a human let through the minimum release age.
func Approved(body string) map[string]bool {
	out := map[string]bool{}
	for _, m := range approvedRe.FindAllStringSubmatch(body, -1) {
		out[m[1]] = true
	}
	return out
}
