package pr

import (
	"fmt"
	"html"
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

// Body is the PR description: a table of updates, release-note links and
// the notes themselves (by update index, sanitised), rendered chart diffs
// (by update index), the automerge note and the hidden marker.
func Body(b Branch, diffs map[int]*ChartDiff, notes map[int]*Notes) string {
	var s strings.Builder
	s.WriteString("This PR was opened by `hl bot`. It updates:\n\n")
	s.WriteString("| Package | Type | File | Change |\n|---|---|---|---|\n")
	for _, u := range b.Updates {
		fmt.Fprintf(&s, "| `%s` | %s | `%s` | `%s` → `%s` |\n", DepName(u.Dependency), u.Type, u.Dependency.File, u.Dependency.Current, u.NewValue)
	}
	var lines []string
	for i, u := range b.Updates {
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
		n := notes[i]
		if n != nil && n.URL != "" && n.URL != u.New.ReleaseNotesURL {
			links = append(links, fmt.Sprintf("[release %s](%s)", n.Tag, n.URL))
		}
		if len(links) > 0 || n != nil {
			lines = append(lines, fmt.Sprintf("- `%s` %s: %s", DepName(u.Dependency), u.NewValue, strings.Join(links, ", ")))
		}
		if n != nil && strings.TrimSpace(n.Body) != "" {
			title := n.Title
			if title == "" {
				title = n.Tag
			}
			lines = append(lines, "", "<details><summary>"+html.EscapeString(title)+"</summary>", "",
				SanitizeNotes(n.Body, n.Repo, n.URL), "", "</details>", "")
		}
	}
	if len(lines) > 0 {
		s.WriteString("\n### Release notes\n\n" + strings.TrimRight(strings.Join(lines, "\n"), "\n") + "\n")
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
	s.WriteString("; pushing a commit to the branch stops the bot from touching it (its box on the dependency dashboard hands it back).\n\n")
	s.WriteString(MarkerOf(b).Render() + "\n")
	return s.String()
}
