#!/usr/bin/env bash
# Builds the Argo CD used by internal/argocd/testserver from the
# github.com/argoproj/argo-cd/v3 Go module, plus the helm and kustomize
# binaries its repo-server runs, and caches them, keyed by Argo CD version.
#
#   HL_ARGOCD_CACHE  cache root (default: <repo>/.cache/argocd)
#
# Output in $HL_ARGOCD_CACHE/v$VERSION/:
#   argocd      the multi-call binary (the component is picked by
#               ARGOCD_BINARY_NAME, as in Argo CD's own Procfile)
#   helm        helm v3 at the version hl's go.mod names (built in hl's module)
#   kustomize   kustomize v5 at the version hl's go.mod names (likewise)
#   source-dir  the module source folder (manifests/crds, manifests/install.yaml)
#
# Why v3.2.x and not a newer minor: from v3.3.0 on, Argo CD's go.mod replaces
# gitops-engine by ./gitops-engine, a nested module that the module zip leaves
# out, so `go build ./cmd` cannot resolve it. Using the placeholder version
# it requires instead would build a different gitops-engine than the release
# ships; v3.6.x also needs Go >= 1.27. v3.2.12, the newest v3.2 release
# served, does not compile (controller/cache/info.go calls
# settings.ValidateExternalURL, which no file of that release defines), so
# the harness stays on v3.2.11; the catalog's argo-cd chart (9.1.x) ships
# Argo CD v3.2.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# The harness's Version constant is the one place the release is written.
VERSION="$(sed -n 's/^const Version = "\(.*\)"$/\1/p' "$root/internal/argocd/testserver/binary.go")"
if [[ -z "$VERSION" ]]; then
	echo "build-argocd: no Version in internal/argocd/testserver/binary.go" >&2
	exit 1
fi
# helm and kustomize are built inside hl's own module, at the versions its
# go.mod names (tool directives keep their commands in the module graph):
# hl's tests and `go vet` have compiled their packages already, so the two
# commands link from the build cache in seconds instead of compiling the
# Kubernetes client stack a second time at other versions (about 7 minutes
# on a cold 2-core machine). Argo CD v3.2.11's hack/tool-versions.sh names
# helm 3.18.4 and kustomize 5.7.0; the repo-server only runs `helm
# template`, `helm dependency build`, `kustomize build` and `version`,
# which the newer v3 and v5 releases keep.
modversion() { (cd "$root" && GOFLAGS= go list -m -f '{{.Version}}' "$1"); }
HELM_VERSION="$(modversion helm.sh/helm/v3)"
HELM_VERSION="${HELM_VERSION#v}"
KUSTOMIZE_VERSION="$(modversion sigs.k8s.io/kustomize/kustomize/v5)"
KUSTOMIZE_VERSION="${KUSTOMIZE_VERSION#v}"
if [[ -z "$HELM_VERSION" || -z "$KUSTOMIZE_VERSION" ]]; then
	echo "build-argocd: hl's go.mod names no helm.sh/helm/v3 or sigs.k8s.io/kustomize/kustomize/v5" >&2
	exit 1
fi

cache="${HL_ARGOCD_CACHE:-$root/.cache/argocd}"
outdir="$cache/v$VERSION"
mkdir -p "$outdir"

# modfield prints one field of `go mod download -json module@version`.
modfield() {
	(cd / && GOFLAGS= GOTOOLCHAIN=local go mod download -json "$1") |
		sed -n 's/^[[:space:]]*"'"$2"'": "\(.*\)",\{0,1\}$/\1/p'
}

# moddir prints the read-only module cache folder of module@version.
moddir() {
	local dir
	dir="$(modfield "$1" Dir)"
	if [[ -z "$dir" || ! -f "$dir/go.mod" ]]; then
		echo "build-argocd: cannot find source of $1" >&2
		return 1
	fi
	printf '%s\n' "$dir"
}

# build <name> <module dir> <package> <ldflags> [GOFLAGS]: builds into
# $outdir/<name> atomically, at low priority, and prints how long it took.
# Building inside the read-only module folder works: go build writes only to
# -o and GOCACHE (-buildvcs=false because the folder is no repository).
build() {
	local name="$1" dir="$2" pkg="$3" ldflags="$4" goflags="${5:--mod=readonly}"
	local tmp="$outdir/$name.tmp.$$" start
	echo "build-argocd: building $name from $dir (minutes on a cold cache)"
	start=$(date +%s)
	(
		cd "$dir"
		CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS="-buildvcs=false $goflags" \
			nice -n 19 go build -trimpath -ldflags "-s -w $ldflags" -o "$tmp" "$pkg"
	) || {
		rm -f "$tmp"
		return 1
	}
	mv "$tmp" "$outdir/$name"
	echo "build-argocd: built $name in $(($(date +%s) - start))s"
}

# reports <binary> <version string> [args...]: the cached binary prints the
# expected version, so a cache from another version or a broken file rebuilds.
reports() {
	local bin="$1" want="$2"
	shift 2
	[[ -x "$bin" ]] && "$bin" "$@" 2>/dev/null | grep -qF "$want"
}

total=$(date +%s)

src="$(moddir "github.com/argoproj/argo-cd/v3@v$VERSION")"
printf '%s\n' "$src" >"$outdir/source-dir"

# hl's own module, with the flags hl's Makefile builds and tests with
# (-trimpath, no cgo), so the build cache entries are shared.
kbin="$outdir/kustomize"
if reports "$kbin" "v$KUSTOMIZE_VERSION" version; then
	echo "build-argocd: $kbin is already kustomize v$KUSTOMIZE_VERSION"
else
	build kustomize "$root" sigs.k8s.io/kustomize/kustomize/v5 \
		"-X sigs.k8s.io/kustomize/api/provenance.version=v$KUSTOMIZE_VERSION -X sigs.k8s.io/kustomize/api/provenance.gitCommit=$KUSTOMIZE_VERSION"
	"$kbin" version
fi

hbin="$outdir/helm"
if reports "$hbin" "v$HELM_VERSION" version --short; then
	echo "build-argocd: $hbin is already helm v$HELM_VERSION"
else
	# Helm's Makefile derives the default Kubernetes version it renders for
	# from its client-go (k8s 1.N from v0.N): do the same with the
	# client-go the build uses (hl's).
	kminor="$(modversion k8s.io/client-go | sed -n 's/^v0\.\([0-9]*\)\..*/\1/p')"
	hv=helm.sh/helm/v3
	build helm "$root" $hv/cmd/helm \
		"-X $hv/internal/version.version=v$HELM_VERSION -X $hv/internal/version.metadata= -X $hv/internal/version.gitTreeState=clean -X $hv/pkg/lint/rules.k8sVersionMajor=1 -X $hv/pkg/lint/rules.k8sVersionMinor=$kminor -X $hv/pkg/chartutil.k8sVersionMajor=1 -X $hv/pkg/chartutil.k8sVersionMinor=$kminor"
	"$hbin" version --short
fi

abin="$outdir/argocd"
if reports "$abin" "v$VERSION" version --client --short; then
	echo "build-argocd: $abin is already Argo CD v$VERSION"
else
	# The ldflags of Argo CD's Makefile, but for gitCommit: the module proxy
	# does not tell the release's commit, so it reports "v$VERSION+unknown"
	# (a clean "v$VERSION" needs gitCommit). The build date is the release's
	# module time, so builds repeat.
	c=github.com/argoproj/argo-cd/v3/common
	kubectl="$(sed -n 's/^[[:space:]]*k8s.io\/client-go => k8s.io\/client-go \(v[^[:space:]]*\).*/\1/p' "$src/go.mod" | head -n1)"
	info="$(modfield "github.com/argoproj/argo-cd/v3@v$VERSION" Info)"
	date="$(sed -n 's/.*"Time":"\([^"]*\)".*/\1/p' "$info" 2>/dev/null || true)"
	build argocd "$src" ./cmd \
		"-X $c.version=$VERSION -X $c.gitTag=v$VERSION -X $c.gitTreeState=clean -X $c.kubectlVersion=$kubectl -X $c.buildDate=${date:-unknown}"
	"$abin" version --client --short
fi

echo "build-argocd: done in $(($(date +%s) - total))s ($outdir)"
