package config

import "strings"

// RewritePrefix applies spec.mirrors: the mirror whose From is the longest
// prefix of s, on a path boundary ("https://charts.example.com" matches
// ".../x" but not "...comx"), has that prefix replaced by its To. It is the
// one implementation every reader of mirrors (render, validate, bot) uses.
func RewritePrefix(s string, mirrors []Mirror) (string, bool) {
	best, to := -1, ""
	for _, m := range mirrors {
		from := strings.TrimSuffix(m.From, "/")
		if from == "" {
			continue
		}
		if (s == from || strings.HasPrefix(s, from+"/")) && len(from) > best {
			best, to = len(from), strings.TrimSuffix(m.To, "/")+s[len(from):]
		}
	}
	return to, best >= 0
}

// NormaliseImage expands Docker Hub short names (nginx →
// docker.io/library/nginx, grafana/loki → docker.io/grafana/loki) so
// registry mirrors keyed by docker.io apply; other references are
// returned unchanged.
func NormaliseImage(ref string) string {
	first, _, hasSlash := strings.Cut(ref, "/")
	if hasSlash && (strings.ContainsAny(first, ".:") || first == "localhost") {
		return ref
	}
	if !hasSlash {
		return "docker.io/library/" + ref
	}
	return "docker.io/" + ref
}
