#!/usr/bin/env bash
# Builds the Alertmanager used by internal/alertmanager/testserver from the
# github.com/prometheus/alertmanager Go module and caches the binary, keyed
# by version.
#
#   HL_ALERTMANAGER_CACHE  cache root (default: <repo>/.cache/alertmanager)
#
# Output: $HL_ALERTMANAGER_CACHE/v$VERSION/alertmanager.
#
# The module zip lacks the web UI's build output (ui/app/dist, made by npm
# and the Elm compiler in a release build), which ui/web.go embeds. The
# source is copied to a writable folder and the two embedded roots get a
# placeholder page: the API, routing and notifiers the tests use are
# compiled from the module as released; only the browser UI is missing.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# The harness's Version constant is the one place the release is written.
VERSION="$(sed -n 's/^const Version = "\(.*\)"$/\1/p' "$root/internal/alertmanager/testserver/binary.go")"
if [[ -z "$VERSION" ]]; then
	echo "build-alertmanager: no Version in internal/alertmanager/testserver/binary.go" >&2
	exit 1
fi
module=github.com/prometheus/alertmanager
cache="${HL_ALERTMANAGER_CACHE:-$root/.cache/alertmanager}"
outdir="$cache/v$VERSION"
bin="$outdir/alertmanager"

if [[ -x "$bin" ]] && "$bin" --version 2>&1 | grep -q "version $VERSION "; then
	echo "build-alertmanager: $bin is already Alertmanager $VERSION"
	exit 0
fi

src="$( (cd / && GOFLAGS= GOTOOLCHAIN=local go mod download -json "$module@v$VERSION") |
	sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')"
if [[ -z "$src" || ! -f "$src/go.mod" ]]; then
	echo "build-alertmanager: cannot find source of $module@v$VERSION" >&2
	exit 1
fi

echo "build-alertmanager: building Alertmanager $VERSION from $src (minutes on a cold cache)"
start=$(date +%s)
mkdir -p "$outdir"
work="$outdir/src.tmp.$$"
tmp="$bin.tmp.$$"
trap 'rm -rf "$work" "$tmp"' EXIT
cp -r "$src" "$work"
chmod -R u+w "$work"
for ui in elm mantine; do
	mkdir -p "$work/ui/app/dist/$ui"
	printf '<!doctype html><title>Alertmanager</title><p>Built by hl without the web UI; the API is at /api/v2.\n' \
		>"$work/ui/app/dist/$ui/index.html"
done
# Release builds stamp the version through prometheus/common/version.
ldflags="-s -w"
for kv in "Version=$VERSION" "Revision=v$VERSION" "Branch=HEAD" "BuildUser=hl" "BuildDate=19700101-00:00:00"; do
	ldflags="$ldflags -X github.com/prometheus/common/version.$kv"
done
(
	cd "$work"
	CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS="-buildvcs=false -mod=readonly" \
		nice -n 19 go build -trimpath -ldflags "$ldflags" -o "$tmp" ./cmd/alertmanager
)
mv "$tmp" "$bin"
echo "build-alertmanager: built $bin in $(($(date +%s) - start))s"
"$bin" --version
