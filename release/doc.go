// Package release owns what a tag of hl publishes: the hl binaries for
// each platform (built with cgo off, -trimpath and the version linked in),
// their tar.gz archives and SHA256SUMS, and the container image the
// rendered repo runs (the bot's Deployment, every Woodpecker step whose
// image is hl).
//
// The image is assembled here with go-containerregistry, not by a
// container engine: a Debian root filesystem made by
// scripts/build-image-base.sh (debootstrap, trimmed, user hl 65532) is one
// layer, hl at /usr/local/bin/hl the other. Both layers are tar streams
// written from sorted entries with one modification time (the source
// date), numeric owners only and no extended attributes, gzip-compressed
// at a fixed level with no header time: the same base folder, binary and
// metadata give the same bytes, so the same image digest, on any machine.
// What varies is kept out of the inputs instead (the base is cached by its
// recipe; the creation time is the commit's, not the clock's).
package release
