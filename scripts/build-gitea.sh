#!/usr/bin/env bash
# Builds the Gitea server used by internal/gitea/testserver from the
# code.gitea.io/gitea Go module and caches the binary, keyed by version.
#
#   HL_GITEA_CACHE  cache root (default: <repo>/.cache/gitea)
#
# Output: $HL_GITEA_CACHE/v$VERSION/gitea and, beside it, source-dir holding
# the module source folder (the harness points STATIC_ROOT_PATH at it, since
# this is a non-bindata build).
set -euo pipefail

VERSION=1.26.0
TAGS="sqlite sqlite_unlock_notify"

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="${HL_GITEA_CACHE:-$root/.cache/gitea}"
outdir="$cache/v$VERSION"
bin="$outdir/gitea"

# Read the module source folder first: it is cheap when cached and must be
# recorded even when the binary is already there.
src="$(GOFLAGS= go mod download -json "code.gitea.io/gitea@v$VERSION" |
	sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')"
if [[ -z "$src" || ! -f "$src/go.mod" ]]; then
	echo "build-gitea: cannot find source of code.gitea.io/gitea@v$VERSION" >&2
	exit 1
fi
mkdir -p "$outdir"
printf '%s\n' "$src" >"$outdir/source-dir"

if [[ -x "$bin" ]] && "$bin" --version 2>/dev/null | grep -q "version $VERSION "; then
	echo "build-gitea: $bin is already Gitea $VERSION"
	exit 0
fi

echo "build-gitea: building Gitea $VERSION from $src (takes minutes on a cold cache)"
start=$(date +%s)
tmp="$bin.tmp.$$"
trap 'rm -f "$tmp"' EXIT
# The module cache is read-only but go build only writes to -o and GOCACHE,
# so building in place works; -buildvcs=false because the folder is no repo.
(
	cd "$src"
	CGO_ENABLED=1 GOTOOLCHAIN=local GOFLAGS="-buildvcs=false -mod=readonly" \
		go build -trimpath -tags "$TAGS" \
		-ldflags "-s -w -X main.Version=$VERSION -X 'main.Tags=$TAGS'" \
		-o "$tmp" .
)
mv "$tmp" "$bin"
echo "build-gitea: built $bin in $(($(date +%s) - start))s"
"$bin" --version
