#!/usr/bin/env bash
# Builds the Debian root filesystems hl's container image is layered on
# (release/ puts hl on top), one per architecture, with debootstrap from
# Debian's packages, and caches them keyed by this script's own hash: any
# change to the recipe below builds anew, an unchanged recipe never does.
#
#   build-image-base.sh [ARCH...]      default: amd64 arm64
#   HL_IMAGE_BASE_CACHE  cache root (default: <repo>/.cache/image-base)
#   HL_DEBIAN_MIRROR     Debian mirror URL (default: debootstrap's own)
#   SOURCE_DATE_EPOCH    clamps the account-change dates written here
#                        (default: the suite's Release date)
#
# Output: $HL_IMAGE_BASE_CACHE/<suite>-<recipe>/<arch>/rootfs, beside it
# packages.txt (package, version, architecture per line: what the base
# holds) and done; the folder current (a symlink) names the newest recipe.
#
# What the image's users need and why it is here:
#   /bin/sh, coreutils  Woodpecker runs a step as
#                       sh -c 'echo $CI_SCRIPT | base64 -d | /bin/sh -e'
#   git                 the bot and the steps clone and diff
#   ca-certificates     TLS to forges, registries and chart repositories
#   tzdata              the bot's cron schedule has a time zone
#   user hl 65532:65532 the image runs as non-root, numeric so that
#                       runAsNonRoot can be verified; HOME=/home/hl
#
# Foreign architectures (arm64 on an amd64 host) run the packages'
# maintainer scripts under qemu-user: needs Debian's qemu-user-static and
# root to register its binfmt handler (done here when missing).
set -euo pipefail

SUITE=trixie
INCLUDE=git,ca-certificates,tzdata
HL_ID=65532

die() {
	echo "build-image-base: $*" >&2
	exit 1
}

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="${HL_IMAGE_BASE_CACHE:-$root/.cache/image-base}"
recipe="$(sha256sum "${BASH_SOURCE[0]}" | cut -c1-12)"
key="$SUITE-$recipe"
archs=("$@")
[[ ${#archs[@]} -gt 0 ]] || archs=(amd64 arm64)

[[ "$(id -u)" == 0 ]] || die "needs root (debootstrap and chroot); run it as root"
command -v debootstrap >/dev/null || die "debootstrap is not installed (Debian package debootstrap)"

host_arch="$(dpkg --print-architecture)"

# qemu_arch maps a Debian architecture to qemu-user's name for it.
qemu_arch() {
	case "$1" in
	amd64) echo x86_64 ;;
	arm64) echo aarch64 ;;
	*) die "unsupported architecture $1 (amd64, arm64)" ;;
	esac
}

# ensure_binfmt makes the kernel run $1's binaries through qemu-user, with
# the F flag so the interpreter works inside the chroot too.
ensure_binfmt() {
	local q conf
	q="$(qemu_arch "$1")"
	conf="/usr/lib/binfmt.d/qemu-$q.conf"
	[[ -f "$conf" ]] || die "building $1 on $host_arch needs Debian's qemu-user-static ($conf is missing)"
	if [[ ! -e /proc/sys/fs/binfmt_misc/register ]]; then
		mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc ||
			die "cannot mount binfmt_misc to run $1 binaries"
	fi
	if [[ ! -e "/proc/sys/fs/binfmt_misc/qemu-$q" ]]; then
		grep -v '^#' "$conf" >/proc/sys/fs/binfmt_misc/register ||
			die "cannot register qemu-$q with binfmt_misc"
	fi
}

# unmount_under unmounts whatever is mounted under $1, deepest first:
# debootstrap can leave the target's /proc mounted (seen for arm64 under
# qemu-user), and neither a layer nor rm -rf may walk into it.
unmount_under() {
	local m
	for m in $(awk -v p="$1" '$2 == p || index($2, p "/") == 1 { print $2 }' /proc/mounts | sort -r); do
		umount "$m" 2>/dev/null || umount -l "$m" || die "cannot unmount $m"
	done
}

# trim removes what a container never reads: package lists and caches,
# documentation but the copyright files, manual pages, translations, logs,
# device nodes (the runtime mounts /dev), the host's resolver files, and
# the set-user-ID bits (a non-root image has no use for su or mount).
trim() {
	local r="$1"
	rm -rf "$r"/var/lib/apt/lists/* "$r"/var/cache/apt/* "$r"/var/cache/debconf/*-old \
		"$r"/var/lib/dpkg/*-old "$r"/var/cache/ldconfig/aux-cache "$r"/var/log/* \
		"$r"/usr/share/man "$r"/usr/share/info "$r"/usr/share/lintian "$r"/usr/share/linda \
		"$r"/dev/* "$r"/run/* "$r"/tmp/* "$r"/var/tmp/* "$r"/root/.bash_history
	find "$r/usr/share/doc" -mindepth 1 ! -type d ! -name copyright -delete
	find "$r/usr/share/doc" -mindepth 1 -type d -empty -delete
	find "$r/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +
	rm -f "$r/etc/resolv.conf" "$r/etc/hostname" "$r/etc/machine-id"
	find "$r" -xdev -type f -perm /6000 -exec chmod ug-s {} +
	# Later apt-get installs in images built on this one stay trimmed too.
	cat >"$r/etc/dpkg/dpkg.cfg.d/hl-image" <<'EOF'
path-exclude=/usr/share/doc/*
path-include=/usr/share/doc/*/copyright
path-exclude=/usr/share/man/*
path-exclude=/usr/share/info/*
path-exclude=/usr/share/locale/*
path-include=/usr/share/locale/locale.alias
path-exclude=/usr/share/lintian/*
EOF
}

# add_user writes the hl account directly (no useradd: its date fields
# would follow the build day).
add_user() {
	local r="$1"
	grep -q "^hl:" "$r/etc/passwd" && return
	echo "hl:x:$HL_ID:$HL_ID:hl:/home/hl:/bin/sh" >>"$r/etc/passwd"
	echo "hl:x:$HL_ID:" >>"$r/etc/group"
	echo "hl:!:::::::" >>"$r/etc/shadow"
	echo "hl:!::" >>"$r/etc/gshadow"
	install -d -m 0755 -o "$HL_ID" -g "$HL_ID" "$r/home/hl"
	# A Woodpecker workspace is cloned by another user than the step's:
	# git refuses such a repository unless it is declared safe.
	cat >"$r/etc/gitconfig" <<'EOF'
[safe]
	directory = /woodpecker/*
EOF
}

# clamp_shadow sets the last-change day of every account to the source
# date, so the base does not depend on the day it was built.
clamp_shadow() {
	local r="$1" day
	day=$((SOURCE_DATE_EPOCH / 86400))
	awk -F: -v OFS=: -v d="$day" '$3 != "" { $3 = d } { print }' "$r/etc/shadow" >"$r/etc/shadow.new"
	cat "$r/etc/shadow.new" >"$r/etc/shadow"
	rm -f "$r/etc/shadow.new"
}

mkdir -p "$cache"
for arch in "${archs[@]}"; do
	qemu_arch "$arch" >/dev/null
	out="$cache/$key/$arch"
	if [[ -f "$out/done" ]]; then
		echo "build-image-base: $out is already built ($SUITE, recipe $recipe)"
		continue
	fi
	if [[ "$arch" != "$host_arch" ]]; then
		ensure_binfmt "$arch"
	fi
	echo "build-image-base: debootstrap $SUITE $arch into $out (takes minutes on a cold cache)"
	start=$(date +%s)
	tmp="$out.tmp.$$"
	rm -rf "$tmp"
	mkdir -p "$tmp" "$cache/debs/$arch"
	trap 'unmount_under "$tmp"; rm -rf "$tmp"' EXIT
	mirror=()
	[[ -z "${HL_DEBIAN_MIRROR:-}" ]] || mirror=("$HL_DEBIAN_MIRROR")
	if ! debootstrap --variant=minbase --arch="$arch" --include="$INCLUDE" \
		--cache-dir="$cache/debs/$arch" "$SUITE" "$tmp/rootfs" "${mirror[@]}" >"$tmp/debootstrap.log" 2>&1; then
		tail -n 30 "$tmp/debootstrap.log" >&2
		die "debootstrap $SUITE $arch failed (log above)"
	fi
	unmount_under "$tmp/rootfs"
	if [[ -z "${SOURCE_DATE_EPOCH:-}" ]]; then
		release="$(ls "$tmp"/rootfs/var/lib/apt/lists/*_dists_"${SUITE}"_*Release 2>/dev/null | head -n 1 || true)"
		if [[ -n "$release" ]]; then
			SOURCE_DATE_EPOCH="$(date -d "$(sed -n 's/^Date: //p' "$release" | head -n 1)" +%s)"
		else
			SOURCE_DATE_EPOCH=0
		fi
	fi
	add_user "$tmp/rootfs"
	clamp_shadow "$tmp/rootfs"
	dpkg-query --admindir="$tmp/rootfs/var/lib/dpkg" -W -f '${Package} ${Version} ${Architecture}\n' |
		LC_ALL=C sort >"$tmp/packages.txt"
	trim "$tmp/rootfs"
	touch "$tmp/done"
	rm -rf "$out"
	mv "$tmp" "$out"
	trap - EXIT
	ln -sfn "$key" "$cache/current"
	echo "build-image-base: built $out in $(($(date +%s) - start))s ($(du -sxh "$out/rootfs" | cut -f1))"
done
ln -sfn "$key" "$cache/current"
