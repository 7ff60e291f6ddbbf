// Package image owns the parsing of container image references as written
// in files ("registry:5000/org/app:1.2.3@sha256:…") into the parts the bot
// edits: the tag's offset inside the string and the digest that travels
// with it.
package image

import (
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"

	"hl.dev/hl/bot"
	"hl.dev/hl/bot/extract/internal/yamlpos"
)

// Datasource and versioning every image dependency uses.
const (
	Datasource = "docker"
	Versioning = "docker"
)

// Ref is a parsed image reference; offsets index the original string.
type Ref struct {
	Repository string
	Tag        string
	TagStart   int
	Digest     string
	DigestAt   int
}

var (
	repoRe = regexp.MustCompile(`^[a-z0-9]+(?:[._-][a-z0-9]+)*(?::[0-9]+)?(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$`)
	tagRe  = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)
	digRe  = regexp.MustCompile(`^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-fA-F0-9]{32,}$`)
)

// Parse splits s; ok is false for anything that is not a plain reference
// (templates, variables, URLs).
func Parse(s string) (Ref, bool) {
	if s == "" || strings.ContainsAny(s, " \t{}$") || strings.Contains(s, "://") {
		return Ref{}, false
	}
	r := Ref{DigestAt: -1, TagStart: -1}
	name := s
	if i := strings.IndexByte(s, '@'); i >= 0 {
		r.Digest, r.DigestAt, name = s[i+1:], i+1, s[:i]
		if !digRe.MatchString(r.Digest) {
			return Ref{}, false
		}
	}
	if j := strings.LastIndexByte(name, ':'); j > strings.LastIndexByte(name, '/') {
		r.Tag, r.TagStart, name = name[j+1:], j+1, name[:j]
		if !tagRe.MatchString(r.Tag) {
			return Ref{}, false
		}
	}
	if !repoRe.MatchString(name) {
		return Ref{}, false
	}
	r.Repository = name
	return r, true
}

// FromScalar builds a dependency from a "repo:tag" scalar. Untagged and
// digest-only references are not versions and give nothing.
func FromScalar(f *yamlpos.File, file, manager string, n *yaml.Node) (bot.Dependency, bool) {
	s, ok := yamlpos.Str(n)
	if !ok {
		return bot.Dependency{}, false
	}
	r, ok := Parse(s)
	if !ok || r.Tag == "" {
		return bot.Dependency{}, false
	}
	rng, ok := f.SubRange(n, r.TagStart, r.TagStart+len(r.Tag))
	if !ok {
		return bot.Dependency{}, false
	}
	d := New(file, manager, r.Repository, r.Tag, rng)
	if r.Digest != "" {
		if dr, ok := f.SubRange(n, r.DigestAt, r.DigestAt+len(r.Digest)); ok {
			d.Related = map[string]bot.Range{"digest": dr}
		}
	}
	return d, true
}

// New is an image dependency.
func New(file, manager, repository, tag string, rng bot.Range) bot.Dependency {
	return bot.Dependency{
		File: file, Manager: manager, Datasource: Datasource, Versioning: Versioning,
		Package: repository, Current: tag, Range: rng,
	}
}
