// Package dockerfile extracts the base images of Dockerfiles and
// Containerfiles: FROM lines, and the defaults of global ARGs a FROM
// names (ARG TAG=1.2.3 with FROM app:${TAG}, or ARG BASE=app:1.2.3 with
// FROM ${BASE}), where the bot edits the ARG's default.
//
// A FROM that builds its reference from pieces the bot cannot edit as one
// version (${V}-alpine, ${REGISTRY}/app:1.2) is left alone.
package dockerfile

import (
	"bytes"
	"path"
	"regexp"
	"strings"

	"hl.dev/hl/bot"
	"hl.dev/hl/bot/extract/internal/image"
)

// Extractor reads Dockerfiles.
type Extractor struct{}

// Name is the manager name.
func (Extractor) Name() string { return "dockerfile" }

// Match selects Dockerfile, Containerfile, Dockerfile.<x> and
// <x>.Dockerfile.
func (Extractor) Match(p string) bool {
	b := path.Base(p)
	for _, n := range []string{"Dockerfile", "Containerfile"} {
		if b == n || strings.HasPrefix(b, n+".") || strings.HasSuffix(b, "."+n) {
			return true
		}
	}
	return false
}

// arg is a global ARG's default and where its value sits in the file.
type arg struct {
	value      string
	start, end int
	used       bool
}

var (
	instrRe = regexp.MustCompile(`^[ \t]*([A-Za-z]+)[ \t]+`)
	// A whole-reference variable: $NAME or ${NAME}.
	wholeVarRe = regexp.MustCompile(`^\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?$`)
	// A tag that is one variable: repo:$NAME or repo:${NAME}.
	tagVarRe = regexp.MustCompile(`^([^:@$]+):\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?$`)
)

// Extract returns one dependency per tagged base image.
func (e Extractor) Extract(p string, content []byte) ([]bot.Dependency, error) {
	var (
		out      []bot.Dependency
		args     = map[string]*arg{}
		stages   = map[string]bool{}
		seenFrom bool
	)
	off := 0
	for _, line := range bytes.SplitAfter(content, []byte("\n")) {
		lineStart := off
		off += len(line)
		s := strings.TrimRight(string(line), "\r\n")
		m := instrRe.FindStringSubmatchIndex(s)
		if m == nil {
			continue
		}
		instr := strings.ToUpper(s[m[2]:m[3]])
		rest, restAt := s[m[1]:], lineStart+m[1]
		switch instr {
		case "ARG":
			if !seenFrom {
				globalArgs(rest, restAt, args)
			}
		case "FROM":
			seenFrom = true
			if d, ok := e.from(p, rest, restAt, args, stages); ok {
				out = append(out, d)
			}
		}
	}
	return out, nil
}

// globalArgs records ARG NAME=value pairs (quotes stripped) with the
// offsets of their values.
func globalArgs(rest string, at int, args map[string]*arg) {
	i := 0
	for _, f := range strings.Fields(rest) {
		j := strings.Index(rest[i:], f) + i
		i = j + len(f)
		name, val, ok := strings.Cut(f, "=")
		if !ok {
			continue
		}
		start := at + j + len(name) + 1
		if len(val) >= 2 && (val[0] == '"' || val[0] == '\'') && val[len(val)-1] == val[0] {
			val, start = val[1:len(val)-1], start+1
		}
		args[name] = &arg{value: val, start: start, end: start + len(val)}
	}
}

// from reads "[--flag=x]... ref [AS name]".
func (e Extractor) from(p, rest string, at int, args map[string]*arg, stages map[string]bool) (bot.Dependency, bool) {
	fields := strings.Fields(rest)
	i := 0
	for i < len(fields) && strings.HasPrefix(fields[i], "--") {
		i++
	}
	if i >= len(fields) {
		return bot.Dependency{}, false
	}
	ref := fields[i]
	refAt := at + indexField(rest, fields, i)
	if i+2 < len(fields) && strings.EqualFold(fields[i+1], "AS") {
		defer func() { stages[strings.ToLower(fields[i+2])] = true }()
	}
	if ref == "scratch" || stages[strings.ToLower(ref)] {
		return bot.Dependency{}, false
	}
	if m := wholeVarRe.FindStringSubmatch(ref); m != nil {
		a := args[m[1]]
		if a == nil || a.used {
			return bot.Dependency{}, false
		}
		r, ok := image.Parse(a.value)
		if !ok || r.Tag == "" || r.Digest != "" {
			return bot.Dependency{}, false
		}
		a.used = true
		return image.New(p, e.Name(), r.Repository, r.Tag, bot.Range{Start: a.start + r.TagStart, End: a.start + r.TagStart + len(r.Tag)}), true
	}
	if m := tagVarRe.FindStringSubmatch(ref); m != nil {
		a := args[m[2]]
		if a == nil || a.used {
			return bot.Dependency{}, false
		}
		r, ok := image.Parse(m[1] + ":" + a.value)
		if !ok || r.Tag != a.value || r.Digest != "" {
			return bot.Dependency{}, false
		}
		a.used = true
		return image.New(p, e.Name(), r.Repository, r.Tag, bot.Range{Start: a.start, End: a.end}), true
	}
	r, ok := image.Parse(ref)
	if !ok || r.Tag == "" {
		return bot.Dependency{}, false
	}
	d := image.New(p, e.Name(), r.Repository, r.Tag, bot.Range{Start: refAt + r.TagStart, End: refAt + r.TagStart + len(r.Tag)})
	if r.Digest != "" {
		d.Related = map[string]bot.Range{"digest": {Start: refAt + r.DigestAt, End: refAt + r.DigestAt + len(r.Digest)}}
	}
	return d, true
}

// indexField is the offset of fields[n] in s.
func indexField(s string, fields []string, n int) int {
	i := 0
	for k := 0; k <= n; k++ {
		j := strings.Index(s[i:], fields[k]) + i
		if k == n {
			return j
		}
		i = j + len(fields[k])
	}
	return i
}
