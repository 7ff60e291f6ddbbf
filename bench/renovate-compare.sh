#!/usr/bin/env bash
# Compare Renovate 39 with `hl bot run --once` on the same repo, Gitea and
# datasources: wall time, peak RSS, PRs opened.
#
# Usage: bench/renovate-compare.sh GITEA_URL OWNER/REPO
#   HL_GITEA_TOKEN  token of the bot user (used by both tools; never printed)
#   Each tool gets a fresh fork of OWNER/REPO (OWNER/REPO-renovate, -hl)
#   so both start from the same outdated pins.
set -euo pipefail
url=${1:?GITEA_URL}; slug=${2:?OWNER/REPO}
: "${HL_GITEA_TOKEN:?set HL_GITEA_TOKEN}"
owner=${slug%/*}; repo=${slug#*/}
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT

api() { curl -fsS -H "Authorization: token $HL_GITEA_TOKEN" -H 'Content-Type: application/json' "$@"; }

fork() { # fork the repo under a new name for one tool
  api -X POST "$url/api/v1/repos/$owner/$repo/forks" -d "{\"name\":\"$repo-$1\"}" >/dev/null
}
count_prs() {
  api "$url/api/v1/repos/$owner/$repo-$1/pulls?state=all&limit=50" | grep -o '"number":' | wc -l
}
measure() { # name cmd...: prints wall seconds and peak RSS (KiB) via GNU time
  /usr/bin/time -f '%e %M' -o "$work/$1.time" "${@:2}" >"$work/$1.log" 2>&1 || echo "$1 exited non-zero (see log)" >&2
  cat "$work/$1.time"
}

echo "== building hl"; (cd "$root" && go build -o "$work/hl" ./cmd/hl)
echo "== installing renovate@39"
(cd "$work" && npm install --silent --no-audit --no-fund renovate@39 >/dev/null)

fork renovate; fork hl

# Renovate: Gitea platform, no onboarding PR, same datasources as the repo.
cat >"$work/config.js" <<JS
module.exports = {
  platform: 'gitea', endpoint: '$url/api/v1', token: process.env.HL_GITEA_TOKEN,
  repositories: ['$owner/$repo-renovate'], onboarding: false, requireConfig: 'ignored',
  prHourlyLimit: 0, prConcurrentLimit: 0, dependencyDashboard: true,
};
JS
read -r r_wall r_rss < <(cd "$work" && RENOVATE_CONFIG_FILE="$work/config.js" LOG_LEVEL=info measure renovate node node_modules/renovate/dist/renovate.js)

# hl: a hl.yaml pointing at the fork (from the repo's own hl.yaml when present).
git clone -q "$url/$owner/$repo-hl.git" "$work/hl-repo"
if [ -f "$work/hl-repo/hl.yaml" ]; then
  sed -i "s|^\(\s*repo:\s*\).*|\1$repo-hl|" "$work/hl-repo/hl.yaml"
fi
read -r h_wall h_rss < <(measure hlbot "$work/hl" bot run --once --dir "$work/hl-repo")

printf '%-10s %10s %12s %6s\n' tool wall_s peak_rss_MiB PRs
printf '%-10s %10s %12s %6s\n' renovate "$r_wall" "$((r_rss/1024))" "$(count_prs renovate)"
printf '%-10s %10s %12s %6s\n' hl "$h_wall" "$((h_rss/1024))" "$(count_prs hl)"
