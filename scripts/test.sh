#!/usr/bin/env bash
# make test: everything CI checks. The servers the tests run for real
# (Gitea, etcd and kube-apiserver, Alertmanager, the image base, Argo CD)
# build in the background while lint and the unit tests run: on a cold
# machine the builds take most of an hour, and the tests spend much of
# their time waiting on servers, so the two share the CPU instead of
# taking turns. A test that needs a binary not built yet waits for it
# (internal/testharness.AwaitBuild reads .cache/harness-build.pid); a build
# that fails ends those waits and the tests fail with the build's error.
# When everything is cached, the background build finishes in seconds.
# Then the QEMU PXE install and the loop test run, each alone, and a
# bounded fuzz run.
set -euo pipefail
cd "$(dirname "$0")/.."
MAKE="${MAKE:-make}"

mkdir -p .cache
log=.cache/harness-build.log
pidfile=.cache/harness-build.pid
# In the order the tests need them: most packages need Gitea, the longest
# ones the API server; Argo CD only its own package and the loop test.
harness=(gitea kube image-base-host alertmanager argocd)

start=$(date +%s)
# Its own session, so that a failure of lint or the tests stops the whole
# build (go and its compilers included), not only make.
setsid "$MAKE" --no-print-directory "${harness[@]}" >"$log" 2>&1 &
bg=$!
echo "$bg" >"$pidfile"
echo "test: building the test servers in the background (pid $bg, log $log): ${harness[*]}"
finish() {
	rc=$?
	if kill -0 "$bg" 2>/dev/null; then
		kill -- "-$bg" 2>/dev/null || true
		wait "$bg" 2>/dev/null || true
	fi
	rm -f "$pidfile"
	exit "$rc"
}
trap finish EXIT

showlog() {
	echo "--- test servers' build log ($log)"
	cat "$log"
	echo "---"
}

"$MAKE" --no-print-directory lint
unit=0
"$MAKE" --no-print-directory unit || unit=$?
build=0
wait "$bg" || build=$?
rm -f "$pidfile"
showlog
echo "test: lint and unit done after $(($(date +%s) - start))s; the test servers' build (log above) ended with status $build"
if [[ $build -ne 0 || $unit -ne 0 ]]; then
	exit 1
fi
"$MAKE" --no-print-directory e2e-pxe loop fuzz
