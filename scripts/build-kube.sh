#!/usr/bin/env bash
# Builds the etcd and kube-apiserver used by internal/kube/testserver from
# their Go modules and caches the binaries, keyed by version.
#
#   build-kube.sh [etcd] [kube-apiserver]   (default: both)
#   HL_KUBE_CACHE  cache root (default: <repo>/.cache/kube)
#
# Output: $HL_KUBE_CACHE/etcd-v$ETCD/etcd and
# $HL_KUBE_CACHE/kube-apiserver-v$KUBE/kube-apiserver; beside each, wrapper/
# holds the throw-away module it was built from.
#
# The versions are read from internal/kube/testserver/binary.go, the one
# place they are written.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
versions="$root/internal/kube/testserver/binary.go"
const() {
	local v
	v="$(sed -n "s/^[[:space:]]*$1[[:space:]]*=[[:space:]]*\"\([0-9][0-9.]*\)\".*/\1/p" "$versions")"
	if [[ -z "$v" ]]; then
		echo "build-kube: no $1 constant in $versions" >&2
		exit 1
	fi
	printf '%s\n' "$v"
}
KUBE="$(const KubernetesVersion)"
ETCD="$(const EtcdVersion)"
# The staging modules (k8s.io/api, ...) are tagged v0.<minor>.<patch>.
STAGING="v0.${KUBE#*.}"

cache="${HL_KUBE_CACHE:-$root/.cache/kube}"
mkdir -p "$cache"
# Outside any workspace, with the local toolchain; -buildvcs=false because
# the wrapper folders are no repositories.
export GOWORK=off GOTOOLCHAIN=local GOFLAGS=-buildvcs=false CGO_ENABLED=0

# fresh BIN WANT: BIN exists and a line of its --version output is WANT.
fresh() {
	local out
	# Not piped into grep -q: with pipefail, the binary's SIGPIPE when grep
	# stops reading early would read as "not fresh".
	[[ -x "$1" ]] && out="$("$1" --version 2>/dev/null)" && grep -qxF "$2" <<<"$out"
}

# cached NAME BIN WANT: true when BIN is WANT already. Otherwise it takes
# the lock of BIN's folder first (held on fd 9 until the next call or the
# end), so two `make kube` at once do not build twice or race on the
# wrapper folder: the second waits and then finds the binary built.
cached() {
	if fresh "$2" "$3"; then
		echo "build-kube: $2 is already $1 ${3##* }"
		return 0
	fi
	if command -v flock >/dev/null; then
		mkdir -p "$(dirname "$2")"
		exec 9>"$(dirname "$2")/.lock"
		flock 9
		if fresh "$2" "$3"; then
			echo "build-kube: $2 was built meanwhile"
			return 0
		fi
	fi
	return 1
}

# build NAME BIN WRAPPER PKG LDFLAGS: go build PKG inside the wrapper module
# (go.mod and sources already written) into BIN, atomically.
build() {
	local name="$1" bin="$2" wrapper="$3" pkg="$4" ldflags="$5"
	echo "build-kube: resolving $name's modules in $wrapper"
	(cd "$wrapper" && go mod tidy)
	local note=""
	[[ "$name" != kube-apiserver ]] || note=" (tens of minutes with a cold Go build cache)"
	echo "build-kube: building $name$note"
	local start tmp="$bin.tmp.$$"
	start=$(date +%s)
	trap "rm -f '$tmp'" EXIT
	(cd "$wrapper" && nice go build -mod=readonly -trimpath -ldflags "-s -w $ldflags" -o "$tmp" "$pkg")
	mv "$tmp" "$bin"
	trap - EXIT
	echo "build-kube: built $bin in $(($(date +%s) - start))s"
	"$bin" --version
}

build_etcd() {
	local out="$cache/etcd-v$ETCD" bin
	bin="$out/etcd"
	cached etcd "$bin" "etcd Version: $ETCD" && return
	local w="$out/wrapper"
	rm -rf "$w" && mkdir -p "$w"
	cat >"$w/go.mod" <<-EOF
		module hlbuild/etcd

		go 1.26.0

		require go.etcd.io/etcd/server/v3 v$ETCD
	EOF
	cat >"$w/main.go" <<-'EOF'
		// Command etcd is etcd's own main, built from its server module.
		package main

		import (
			"os"

			"go.etcd.io/etcd/server/v3/etcdmain"
		)

		func main() { etcdmain.Main(os.Args) }
	EOF
	build etcd "$bin" "$w" . ""
}

build_apiserver() {
	local out="$cache/kube-apiserver-v$KUBE" bin
	bin="$out/kube-apiserver"
	cached kube-apiserver "$bin" "Kubernetes v$KUBE" && return
	# k8s.io/kubernetes replaces its staging modules by folders its module
	# zip lacks; the wrapper replaces the same modules by their releases.
	local gomod
	gomod="$(go mod download -json "k8s.io/kubernetes@v$KUBE" |
		sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p')"
	if [[ -z "$gomod" || ! -f "$gomod" ]]; then
		echo "build-kube: cannot find go.mod of k8s.io/kubernetes@v$KUBE" >&2
		exit 1
	fi
	local replaces
	replaces="$(sed -n 's|^[[:space:]]*\(k8s\.io/[^[:space:]]*\)[[:space:]]*=>[[:space:]]*\./staging/src/\1[[:space:]]*$|\t\1 => \1 '"$STAGING"'|p' "$gomod")"
	if [[ -z "$replaces" ]]; then
		echo "build-kube: no staging replace lines in $gomod" >&2
		exit 1
	fi
	local w="$out/wrapper"
	rm -rf "$w" && mkdir -p "$w"
	# Same go and godebug lines as kubernetes' own module: the main module
	# decides the GODEBUG defaults the binary runs with.
	{
		echo "module hlbuild/kube-apiserver"
		echo
		grep -E '^(go|godebug) ' "$gomod"
		echo
		echo "tool k8s.io/kubernetes/cmd/kube-apiserver"
		echo
		echo "require k8s.io/kubernetes v$KUBE"
		echo
		echo "replace ("
		printf '%s\n' "$replaces"
		echo ")"
	} >"$w/go.mod"
	# What hack/lib/version.sh sets, so --version and /version report the
	# release instead of v0.0.0-master; no build date or commit, which
	# would make every build differ.
	local major="${KUBE%%.*}" minor="${KUBE#*.}"
	minor="${minor%%.*}"
	local ld="" pkg
	for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
		ld+=" -X $pkg.gitVersion=v$KUBE -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
	done
	build kube-apiserver "$bin" "$w" k8s.io/kubernetes/cmd/kube-apiserver "$ld"
}

targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=(etcd kube-apiserver)
for t in "${targets[@]}"; do
	case "$t" in
	etcd) build_etcd ;;
	kube-apiserver) build_apiserver ;;
	*)
		echo "build-kube: unknown target $t (want etcd or kube-apiserver)" >&2
		exit 2
		;;
	esac
done
