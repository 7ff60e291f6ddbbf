// Package bot owns hl's companion bot: the shared vocabulary of its plug-in
// families, modelled on Renovate's modules. Each family is one small
// interface with one sub-package per implementation, registered in a list:
//
//	bot/extract/<manager>     find dependencies in files (Extractor)
//	bot/datasource/<source>   list a package's releases (Datasource)
//	bot/versioning/<scheme>   order versions, classify updates (Versioning)
//	bot/forge/<forge>         branches, pull requests, issues (Forge)
//	bot/pr                    branch names, bodies, markers, dedupe
//	bot/rotate, bot/schedule  secret rotation and the daemon
//
// Adding a datasource or an extractor means adding one folder and one line
// in its registry.
package bot

import "time"

// Range is a half-open byte range [Start, End) in a file.
type Range struct {
	Start int `json:"start"`
	End   int `json:"end"`
}

// Dependency is one pinned version found in a file: editing the bytes at
// Range to a new version is the whole update.
type Dependency struct {
	// File is repo-relative, slash-separated.
	File string `json:"file"`
	// Manager is the extractor that found it (helm-chart, argocd-app,
	// helm-values, kubernetes, kustomize, k3s, os-image, ...).
	Manager string `json:"manager"`
	// Datasource says where releases come from (helm, oci, docker,
	// github-releases, gitea-releases, k3s-channel, debian-netboot, ...).
	Datasource string `json:"datasource"`
	// Package is the datasource's name for it: a chart name, an image
	// repository, owner/repo.
	Package string `json:"package"`
	// RegistryURL is the chart repository (https:// or oci://) or the
	// image registry, when the datasource needs one.
	RegistryURL string `json:"registryUrl,omitempty"`
	// Current is the version as written (the bytes at Range).
	Current string `json:"current"`
	Range   Range  `json:"range"`
	// Line is the 1-based line of Range.Start (set by extract.Scan), for
	// people: file:line is how editors and reviewers find a pin.
	Line int `json:"line,omitempty"`
	// Versioning names the scheme that orders this package's versions
	// (semver, docker, k3s, ...).
	Versioning string `json:"versioning,omitempty"`
	// Related are other byte ranges that must change together with the
	// version (e.g. an OS image checksum, a digest), keyed by role. Roles
	// "version@<label>" take the new version itself (the same version
	// written elsewhere in the file); every other role's new text comes
	// from the datasource (see bot/datasource.Pinner): "digest",
	// "sha256:<path>", "snapshot@<label>".
	Related map[string]Range `json:"related,omitempty"`
	// Name is a human label for PR titles (defaults to Package).
	Name string `json:"name,omitempty"`
}

// Release is one published version of a package.
type Release struct {
	Version    string    `json:"version"`
	ReleasedAt time.Time `json:"releasedAt,omitzero"`
	// Digest, Checksum: content pins that travel with the version.
	Digest   string `json:"digest,omitempty"`
	Checksum string `json:"checksum,omitempty"`
	// Links for PR bodies.
	ReleaseNotesURL string `json:"releaseNotesUrl,omitempty"`
	SourceURL       string `json:"sourceUrl,omitempty"`
	// Prerelease is set when the source itself marks the release as one
	// (GitHub/Gitea flag), on top of what the versioning scheme sees.
	Prerelease bool `json:"prerelease,omitempty"`
}

// Update types.
const (
	UpdateMajor  = "major"
	UpdateMinor  = "minor"
	UpdatePatch  = "patch"
	UpdateDigest = "digest"
)

// Update is a proposed change of one dependency.
type Update struct {
	Dependency Dependency `json:"dependency"`
	New        Release    `json:"new"`
	// Type is major, minor, patch or digest.
	Type string `json:"type"`
	// NewValue is the text to write at Dependency.Range: New.Version, or a
	// range rewritten around it when the file pins a range (^1.2.0 → ^2.0.0).
	NewValue string `json:"newValue"`
	// Related is the text to write at each of Dependency.Related's ranges
	// (same keys): the new checksum, the version inside a URL, a digest.
	Related map[string]string `json:"related,omitempty"`
}
