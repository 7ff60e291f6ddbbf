package pr

import (
	"fmt"
	"net/url"
	"strings"

	"hl.dev/hl/bot"
)

// tagged are the datasources whose versions are the source repository's
// git tags, so a compare view between two of them exists.
var tagged = map[string]bool{"github-releases": true, "gitea-releases": true, "git-tags": true}

// CompareURL is the forge's compare view between the current and the new
// tag (GitHub and Gitea/Forgejo both serve <repo>/compare/<a>...<b>), ""
// when the versions are not tags of the source repository.
func CompareURL(u bot.Update) string {
	src := strings.TrimSuffix(u.New.SourceURL, "/")
	if !tagged[u.Dependency.Datasource] || src == "" || u.Dependency.Current == "" || u.NewValue == "" {
		return ""
	}
	if p, err := url.Parse(src); err != nil || (p.Scheme != "https" && p.Scheme != "http") {
		return ""
	}
	return src + "/compare/" + url.PathEscape(u.Dependency.Current) + "..." + url.PathEscape(u.NewValue)
}

// Body is the PR description: a table of updates, release-note links,
// rendered chart diffs (by dependency index), the automerge note and the
// hidden marker.
func Body(b Branch, diffs map[int]*ChartDiff) string {
	var s strings.Builder
	s.WriteString("This PR was opened by `hl bot`. It updates:\n\n")
	s.WriteString("| Package | Type | File | Change |\n|---|---|---|---|\n")
	for _, u := range b.Updates {
		fmt.Fprintf(&s, "| `%s` | %s | `%s` | `%s` → `%s` |\n", DepName(u.Dependency), u.Type, u.Dependency.File, u.Dependency.Current, u.NewValue)
	}
	var notes []string
	for _, u := range b.Updates {
		var links []string
		if u.New.ReleaseNotesURL != "" {
			links = append(links, fmt.Sprintf("[release notes](%s)", u.New.ReleaseNotesURL))
		}
		if u.New.SourceURL != "" {
			links = append(links, fmt.Sprintf("[source / changelog](%s)", u.New.SourceURL))
		}
		if c := CompareURL(u); c != "" {
			links = append(links, fmt.Sprintf("[compare `%s...%s`](%s)", u.Dependency.Current, u.NewValue, c))
		}
		if len(links) > 0 {
			notes = append(notes, fmt.Sprintf("- `%s` %s: %s", DepName(u.Dependency), u.NewValue, strings.Join(links, ", ")))
		}
	}
	if len(notes) > 0 {
		s.WriteString("\n### Release notes\n\n" + strings.Join(notes, "\n") + "\n")
	}
	if len(diffs) > 0 {
		s.WriteString("\n### Rendered diff (`helm template` with this repo's values)\n")
		for i, u := range b.Updates {
			d := diffs[i]
			if d == nil {
				continue
			}
			fmt.Fprintf(&s, "\n**%s** `%s` → `%s` (%s): %s\n", DepName(u.Dependency), u.Dependency.Current, u.NewValue, u.Dependency.File, d.Summary)
			if d.Full != "" {
				s.WriteString("\n<details><summary>Full rendered diff</summary>\n\n```diff\n" + d.Full + "\n```\n\n</details>\n")
			}
		}
	}
	s.WriteString("\n---\n")
	if b.Automerge {
		s.WriteString("**Automerge:** on — merged when checks succeed.\n")
	} else {
		s.WriteString("**Automerge:** off — merge by hand.\n")
	}
	s.WriteString("Closing this PR without merging ignores this version")
	if b.Type == "major" && b.Group == "" {
		s.WriteString(" (and the whole major " + b.Major + ")")
	}
	s.WriteString("; pushing a commit to the branch stops the bot from touching it.\n\n")
	s.WriteString(MarkerOf(b).Render() + "\n")
	return s.String()
}
