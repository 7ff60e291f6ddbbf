// Package pr owns what the bot writes into a repository and onto a forge,
// independent of any forge: byte-exact edits of pinned versions, the
// grouping of updates into deterministic branches, PR titles, bodies and
// labels, the hidden machine-readable marker, and the rendered Helm diff.
package pr

import (
	"cmp"
	"fmt"
	"path"
	"regexp"
	"slices"
	"strings"

	"hl.dev/hl/bot"
	"hl.dev/hl/bot/engine"
	"hl.dev/hl/bot/lookup"
	"hl.dev/hl/internal/config"
)

// Labels every bot PR carries, besides the update type.
const (
	LabelUpgrade = "upgrade"
	LabelMetal   = "metal"
)

// Branch is one planned PR: the updates it carries and how it is named.
type Branch struct {
	Name  string // hl-bot/<dep>-<major>.x or hl-bot/group-<name>
	Group string // group name, "" for a single dependency
	// Updates, one per dependency occurrence, ordered by file then offset.
	Updates []bot.Update
	// Type is the highest update type in the branch.
	Type string
	// Major is the new major for single-dependency branches.
	Major     string
	Automerge bool
}

var nonSlug = regexp.MustCompile(`[^a-z0-9.]+`)

// Slug turns a package name into a branch-name part: a URL's scheme and
// the registry or forge host are dropped and everything but [a-z0-9.]
// becomes a dash ("https://github.com/actions/checkout" → "actions-checkout").
func Slug(pkg string) string {
	if _, rest, ok := strings.Cut(pkg, "://"); ok {
		pkg = strings.TrimSuffix(rest, ".git")
	}
	if i := strings.Index(pkg, "/"); i > 0 {
		first := pkg[:i]
		if strings.ContainsAny(first, ".:") || first == "localhost" {
			pkg = pkg[i+1:]
		}
	}
	s := nonSlug.ReplaceAllString(strings.ToLower(pkg), "-")
	return strings.Trim(s, "-.")
}

// Major is the leading number of a version ("v2.3.1" → "2", "1.29.3+k3s1" → "1").
func Major(v string) string {
	v = strings.TrimPrefix(strings.TrimLeft(v, "^~=<> "), "v")
	i := 0
	for i < len(v) && v[i] >= '0' && v[i] <= '9' {
		i++
	}
	if i == 0 {
		return "0"
	}
	return v[:i]
}

// MajorMinor is the leading "N.M" of a version ("v1.2.3" → "1.2"), or
// its major when it has no minor.
func MajorMinor(v string) string {
	m := Major(v)
	rest := strings.TrimPrefix(strings.TrimPrefix(strings.TrimLeft(v, "^~=<> "), "v"), m)
	i := 0
	if strings.HasPrefix(rest, ".") {
		i = 1
		for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
			i++
		}
	}
	if i <= 1 {
		return m
	}
	return m + rest[:i]
}

// DepName is the human name of a dependency.
func DepName(d bot.Dependency) string {
	if d.Name != "" {
		return d.Name
	}
	return d.Package
}

var typeRank = map[string]int{bot.UpdateDigest: 0, bot.UpdatePatch: 1, bot.UpdateMinor: 2, bot.UpdateMajor: 3}

func matchGroup(g config.Group, u bot.Update) bool {
	if len(g.UpdateTypes) > 0 && !slices.Contains(g.UpdateTypes, u.Type) {
		return false
	}
	if len(g.Packages) == 0 {
		return true
	}
	for _, p := range g.Packages {
		re := lookup.Glob(p)
		if re.MatchString(u.Dependency.Package) || re.MatchString(DepName(u.Dependency)) {
			return true
		}
	}
	return false
}

// Plan groups updates into branches: the first hl.yaml group an update
// matches, else one branch per package and new major ("pkg-2.x"). When
// patch or minor updates may automerge, a patch has a branch of its own
// per minor ("pkg-1.4.x", as Renovate's separateMinorPatch): a merge
// scheduled while the branch held a patch must not take in a minor
// pushed onto it later. A branch never
// edits one dependency twice: the newest update of an occurrence wins
// (lookup lists newest first). The result is sorted by branch name.
func Plan(updates []bot.Update, cfg config.Bot) []Branch {
	byName := map[string]*Branch{}
	seen := map[string]bool{} // branch \x00 file \x00 offset
	separate := lookup.SeparateMinorPatch(cfg.Automerge)
	for _, u := range updates {
		var b Branch
		gi := slices.IndexFunc(cfg.Groups, func(g config.Group) bool { return matchGroup(g, u) })
		if gi >= 0 {
			b = Branch{Name: engine.BranchPrefix + "group-" + Slug(cfg.Groups[gi].Name), Group: cfg.Groups[gi].Name}
		} else {
			m := Major(u.NewValue)
			line := m
			if separate && u.Type == bot.UpdatePatch {
				line = MajorMinor(u.NewValue)
			}
			b = Branch{Name: fmt.Sprintf("%s%s-%s.x", engine.BranchPrefix, Slug(u.Dependency.Package), line), Major: m}
		}
		key := fmt.Sprintf("%s\x00%s\x00%d", b.Name, u.Dependency.File, u.Dependency.Range.Start)
		if seen[key] {
			continue
		}
		seen[key] = true
		have := byName[b.Name]
		if have == nil {
			have = &b
			byName[b.Name] = have
		}
		have.Updates = append(have.Updates, u)
	}
	var out []Branch
	for _, b := range byName {
		slices.SortFunc(b.Updates, func(x, y bot.Update) int {
			return cmp.Or(cmp.Compare(x.Dependency.File, y.Dependency.File), cmp.Compare(x.Dependency.Range.Start, y.Dependency.Range.Start))
		})
		b.Automerge = len(cfg.Automerge) > 0
		for _, u := range b.Updates {
			if typeRank[u.Type] >= typeRank[b.Type] || b.Type == "" {
				b.Type = u.Type
			}
			if !slices.Contains(cfg.Automerge, u.Type) {
				b.Automerge = false
			}
		}
		out = append(out, *b)
	}
	slices.SortFunc(out, func(x, y Branch) int { return cmp.Compare(x.Name, y.Name) })
	return out
}

// Title is the PR title; it names the new version so a newer one shows.
func (b Branch) Title() string {
	if b.Group != "" {
		n := len(distinctPackages(b.Updates))
		if n == 1 {
			u := b.Updates[0]
			return fmt.Sprintf("Update %s: %s to %s", b.Group, DepName(u.Dependency), u.NewValue)
		}
		return fmt.Sprintf("Update %s (%d packages)", b.Group, n)
	}
	u := b.Updates[0]
	if b.Type == bot.UpdateMajor {
		return fmt.Sprintf("Update %s to %s (major)", DepName(u.Dependency), u.NewValue)
	}
	return fmt.Sprintf("Update %s to %s", DepName(u.Dependency), u.NewValue)
}

func distinctPackages(us []bot.Update) []string {
	var out []string
	for _, u := range us {
		if !slices.Contains(out, u.Dependency.Package) {
			out = append(out, u.Dependency.Package)
		}
	}
	return out
}

// Labels are upgrade, the update type, and metal when a file under metal/
// changes.
func (b Branch) Labels() []string {
	out := []string{LabelUpgrade, b.Type}
	for _, u := range b.Updates {
		if strings.HasPrefix(u.Dependency.File, "metal/") {
			out = append(out, LabelMetal)
			break
		}
	}
	return out
}

// Files are the repo paths the branch edits.
func (b Branch) Files() []string {
	var out []string
	for _, u := range b.Updates {
		if !slices.Contains(out, u.Dependency.File) {
			out = append(out, u.Dependency.File)
		}
	}
	slices.Sort(out)
	return out
}

// CommitMessage is the message of the branch's single commit.
func (b Branch) CommitMessage() string {
	var s strings.Builder
	s.WriteString(b.Title() + "\n\n")
	for _, u := range b.Updates {
		fmt.Fprintf(&s, "- %s: %s → %s (%s)\n", u.Dependency.File, u.Dependency.Current, u.NewValue, path.Base(u.Dependency.Package))
	}
	return s.String()
}
