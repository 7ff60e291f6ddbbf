// Package weburl reads a project's web address from what a chart index or
// an image label says of its source.
package weburl

import "strings"

// Of is s when it is an http(s) URL, without a fragment (docker-library's
// "…git#<commit>:<dir>"), a trailing "/" or ".git"; "" otherwise (an
// ssh address, text).
func Of(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "#")
	if !strings.HasPrefix(s, "https://") && !strings.HasPrefix(s, "http://") || strings.ContainsAny(s, " \t\n\"<>") {
		return ""
	}
	return strings.TrimSuffix(strings.TrimSuffix(s, "/"), ".git")
}
