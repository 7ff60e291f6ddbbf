#!/usr/bin/env bash
# Compare Renovate 39 with `hl bot run --once` on the same repo contents, the
# same real Gitea and the same local datasources: wall time, peak RSS (GNU
# time), PRs opened (compared as package + new version).
#
# Usage: bench/renovate-compare.sh            (needs `make gitea` first)
#   KEEP=1     keep the work directory (logs, configs) and print its path
#   RENOVATE_DIR=DIR  reuse an existing `npm install renovate@39` in DIR
#
# Everything runs on loopback: a throw-away Gitea (app.ini mirrors
# internal/gitea/testserver/config.go), a Helm chart repo and an OCI
# registry served by bench/cmd/datasources. Each tool gets its own copy of
# the same fixture repo (hladmin/homelab-renovate, hladmin/homelab-hl) so both
# start from the same outdated pins. Both authenticate with the admin token.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
gitea_bin=$(ls -d "$root"/.cache/gitea/v*/gitea 2>/dev/null | tail -1)
[ -x "${gitea_bin:-}" ] || { echo "no gitea binary under .cache/gitea: run make gitea" >&2; exit 1; }
gitea_src=$(cat "$(dirname "$gitea_bin")/source-dir")
[ -x /usr/bin/time ] || { echo "GNU time missing: apt-get install -y time" >&2; exit 1; }

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ -n "${KEEP:-}" ]; then echo "work dir kept: $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
rnd() { head -c "$1" /dev/urandom | base64 | tr -d '\n=+/' ; }

# --- gitea ------------------------------------------------------------------
g=$work/gitea; mkdir -p "$g/data" "$g/custom" "$g/log"
port=$(free_port); url=http://127.0.0.1:$port
cat >"$g/app.ini" <<INI
APP_NAME = hl bench gitea
RUN_MODE = prod
RUN_USER = $(id -un)
WORK_PATH = $g
I_AM_BEING_UNSAFE_RUNNING_AS_ROOT = true

[server]
PROTOCOL = http
HTTP_ADDR = 127.0.0.1
HTTP_PORT = $port
DOMAIN = 127.0.0.1
ROOT_URL = $url/
APP_DATA_PATH = $g/data
STATIC_ROOT_PATH = $gitea_src
DISABLE_SSH = true
START_SSH_SERVER = false
LFS_START_SERVER = false
LFS_JWT_SECRET = $(rnd 32)
OFFLINE_MODE = true

[database]
DB_TYPE = sqlite3
PATH = $g/data/gitea.db
SQLITE_JOURNAL_MODE = WAL
LOG_SQL = false

[security]
INSTALL_LOCK = true
SECRET_KEY = $(rnd 32)
INTERNAL_TOKEN = $(rnd 64)
PASSWORD_HASH_ALGO = pbkdf2\$1000\$50
PASSWORD_CHECK_PWN = false
PASSWORD_COMPLEXITY = off
MIN_PASSWORD_LENGTH = 8

[oauth2]
JWT_SECRET = $(rnd 32)
JWT_SIGNING_ALGORITHM = HS256

[service]
DISABLE_REGISTRATION = true
REQUIRE_SIGNIN_VIEW = false
ENABLE_NOTIFY_MAIL = false
REGISTER_EMAIL_CONFIRM = false
NO_REPLY_ADDRESS = noreply.localhost

[repository]
ROOT = $g/repos
DEFAULT_BRANCH = main
ENABLE_PUSH_CREATE_USER = true
ENABLE_PUSH_CREATE_ORG = true

[webhook]
ALLOWED_HOST_LIST = *
SKIP_TLS_VERIFY = true
DELIVER_TIMEOUT = 5

[migrations]
ALLOW_LOCALNETWORKS = true

[mailer]
ENABLED = false

[actions]
ENABLED = false

[cron.update_checker]
ENABLED = false

[session]
PROVIDER = memory

[cache]
ADAPTER = memory

[queue]
TYPE = channel

[indexer]
ISSUE_INDEXER_TYPE = bleve
ISSUE_INDEXER_PATH = $g/indexers/issues.bleve
REPO_INDEXER_ENABLED = false

[log]
MODE = file
LEVEL = Warn
ROOT_PATH = $g/log
INI
# gitea ARGS...: the binary with this instance's paths and without the
# caller's GITEA_* overrides (as testserver does). exec, so that when run in
# the background $! is gitea itself and the EXIT trap can stop it.
gitea() { cd "$g" && exec env $(env | sed -n 's/^\(GITEA_[^=]*\)=.*/-u \1/p') GITEA_WORK_DIR="$g" GITEA_CUSTOM="$g/custom" \
  "$gitea_bin" "$@" --config "$g/app.ini" --work-path "$g" --custom-path "$g/custom"; }
echo "== starting gitea ($gitea_bin) on $url"
(gitea web) >"$g/web.out" 2>&1 & pids+=($!)
for _ in $(seq 600); do curl -fsS "$url/api/v1/version" >/dev/null 2>&1 && break; sleep 0.1; done
curl -fsS "$url/api/v1/version" >/dev/null || { tail -30 "$g/web.out" >&2; exit 1; }
admin=hladmin; pass=Hl-$(rnd 16)
(gitea admin user create --admin --username "$admin" --password "$pass" \
  --email "$admin@example.com" --must-change-password=false) >/dev/null
token=$(curl -fsS -u "$admin:$pass" -H 'Content-Type: application/json' -X POST \
  "$url/api/v1/users/$admin/tokens" -d '{"name":"bench","scopes":["all"]}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["sha1"])')
api() { curl -fsS -H "Authorization: token $token" -H 'Content-Type: application/json' "$@"; }

# --- datasources ------------------------------------------------------------
echo "== building hl and the datasource server"
# hl is built as the release image builds it (release/: cgo off,
# -trimpath, -s -w) and then copied, as an install would: the very same
# program counts 10-30 MiB more file pages in its peak RSS when its file
# comes fresh from the linker (which leaves it in the page cache in large
# blocks the kernel maps whole) than when it was copied (`hl version`:
# 72 MiB vs 53 MiB here).
(cd "$root" && CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o "$work/hl.build" ./cmd/hl &&
  go build -o "$work/datasources" ./bench/cmd/datasources)
cp "$work/hl.build" "$work/hl" && rm "$work/hl.build"
"$work/datasources" "$work/charts" "$work/ds.ready" >"$work/ds.log" 2>&1 & pids+=($!)
for _ in $(seq 300); do [ -s "$work/ds.ready" ] && break; sleep 0.1; done
read -r helm_url reg_host <"$work/ds.ready"
echo "   helm repo $helm_url, OCI registry $reg_host"

# --- renovate ---------------------------------------------------------------
rdir=${RENOVATE_DIR:-$work/renovate}
if [ ! -f "$rdir/node_modules/renovate/dist/renovate.js" ]; then
  echo "== installing renovate@39 into $rdir"
  mkdir -p "$rdir"
  (cd "$rdir" && npm install --silent --no-audit --no-fund renovate@39 >/dev/null)
fi
echo "   renovate $(node "$rdir/node_modules/renovate/dist/renovate.js" --version)"

# --- the fixture repo, once per tool ----------------------------------------
mkrepo() { # name: create hladmin/name and push the fixture to main
  api -X POST "$url/api/v1/user/repos" -d "{\"name\":\"$1\",\"default_branch\":\"main\"}" >/dev/null
  local d=$work/src-$1; mkdir -p "$d/apps/web"
  cat >"$d/apps/web/Chart.yaml" <<EOF
apiVersion: v2
name: web
version: 0.1.0
dependencies:
  - name: podinfo
    version: 1.0.0
    repository: $helm_url
EOF
  cat >"$d/apps/web/values.yaml" <<EOF
podinfo:
  replicas: 3
  image:
    repository: $reg_host/app/web
    tag: 1.0.0
EOF
  echo "# homelab" >"$d/README.md"
  sed -e "s|url: https://git.home.example.com|url: $url|" -e "s|owner: homelab|owner: $admin|" \
      -e "s|repo: cluster|repo: $1|" "$root/testdata/config/valid/minimal.yaml" >"$d/hl.yaml"
  # As Renovate is configured below: no release-age wait, no automerge, no
  # hourly PR limit (hl's default is 2 new PRs an hour).
  printf '  bot:\n    minimumReleaseAge: 0s\n    automerge: []\n    limits:\n      maxPRsPerHour: 100\n' >>"$d/hl.yaml"
  (cd "$d" && git init -q -b main && git add -A &&
   git -c user.name=bench -c user.email=bench@example.com commit -qm initial &&
   git push -q "http://$admin:$token@127.0.0.1:$port/$admin/$1.git" main)
}
mkrepo homelab-renovate; mkrepo homelab-hl; mkrepo homelab-floor

measure() { # name cmd...: runs cmd under GNU time; prints "wall_s peak_rss_KiB"
  local name=$1; shift
  /usr/bin/time -f '%e %M' -o "$work/$name.time" "$@" >"$work/$name.log" 2>&1 ||
    { echo "$name exited non-zero; log tail:" >&2; tail -20 "$work/$name.log" >&2; }
  tail -1 "$work/$name.time"
}

# Renovate: Gitea platform only, no onboarding PR, repo config optional, the
# local Helm repo and the plain-HTTP registry via hostRules/registryUrls.
cat >"$work/config.js" <<JS
module.exports = {
  platform: 'gitea', endpoint: '$url/api/v1', token: process.env.RENOVATE_TOKEN,
  gitAuthor: 'Renovate Bot <bot@example.com>',
  // Full target version in titles ("to 2.0.0", not "to v2") so PRs compare.
  commitMessageExtra: 'to {{{newVersion}}}',
  repositories: ['$admin/homelab-renovate'], onboarding: false, requireConfig: 'optional',
  enabledManagers: ['helmv3', 'helm-values'],
  prHourlyLimit: 0, prConcurrentLimit: 0, branchConcurrentLimit: 0, dependencyDashboard: true,
  hostRules: [
    { matchHost: '$helm_url', timeout: 10000 },
    { matchHost: 'http://$reg_host', insecureRegistry: true, timeout: 10000 },
  ],
  packageRules: [
    { matchDatasources: ['docker'], registryUrls: ['http://$reg_host'] },
  ],
};
JS
echo "== renovate"
read -r r_wall r_rss < <(cd "$work" && RENOVATE_TOKEN=$token RENOVATE_CONFIG_FILE="$work/config.js" \
  RENOVATE_BASE_DIR="$work/renovate-base" LOG_LEVEL=${RENOVATE_LOG_LEVEL:-info} RENOVATE_X_IGNORE_NODE_WARN=true \
  GITHUB_COM_TOKEN= HTTP_PROXY= HTTPS_PROXY= NO_PROXY=127.0.0.1 \
  measure renovate node "$rdir/node_modules/renovate/dist/renovate.js")

echo "== hl bot run --once"
git clone -q "http://$admin:$token@127.0.0.1:$port/$admin/homelab-hl.git" "$work/hl-repo"
read -r h_wall h_rss < <(HL_GITEA_TOKEN=$token measure hlbot \
  "$work/hl" bot run --once --dir "$work/hl-repo" --insecure-registry "$reg_host" --log-level debug)

# Gitea's own cost of the same three PRs, with no bot at all: git pushes
# the three branches in one push, curl opens the three PRs one after
# another. No client can do this work faster than the server does it.
echo "== gitea floor: one git push of 3 branches, 3 PRs by curl"
fl=$work/floor-repo
git clone -q "http://$admin:$token@127.0.0.1:$port/$admin/homelab-floor.git" "$fl"
floor_branch() { # name file old new
  (cd "$fl" && git checkout -q -b "$1" main && sed -i "s|$3|$4|" "$2" &&
   git -c user.name=bench -c user.email=bench@example.com commit -qam "$1" && git checkout -q main)
}
floor_branch f-podinfo-1 apps/web/Chart.yaml "version: 1.0.0" "version: 1.0.1"
floor_branch f-podinfo-2 apps/web/Chart.yaml "version: 1.0.0" "version: 2.0.0"
floor_branch f-web-1 apps/web/values.yaml "tag: 1.0.0" "tag: 1.1.0"
now() { date +%s.%N; }
t0=$(now); (cd "$fl" && git push -q origin f-podinfo-1 f-podinfo-2 f-web-1 2>/dev/null); t1=$(now)
for b in f-podinfo-1 f-podinfo-2 f-web-1; do
  api -X POST "$url/api/v1/repos/$admin/homelab-floor/pulls" -d "{\"head\":\"$b\",\"base\":\"main\",\"title\":\"$b\",\"body\":\"floor\"}" >/dev/null
done
t2=$(now)
read -r f_push f_prs f_all < <(python3 -c "print(f'{$t1-$t0:.2f} {$t2-$t1:.2f} {$t2-$t0:.2f}')")

# PRs as "package new-version" lines, sorted. Titles differ by convention
# (Renovate: "Update Helm release podinfo to 2.0.0", "Update HOST/app/web
# Docker tag to 1.1.0"; hl: "Update HOST/app/web to 1.1.0"), so drop the
# filler words and the registry host before comparing.
prs() {
  api "$url/api/v1/repos/$admin/$1/pulls?state=all&limit=50" | python3 -c '
import json, re, sys
for p in json.load(sys.stdin):
    t = re.sub(r"\b(dependency|helm release|docker tag|image|chart)\b\s*", "", p["title"], flags=re.I)
    m = re.search(r"(?:update|bump)\s+(\S+)(?:\s+from\s+\S+)?\s+to\s+v?(\S+)", t, re.I)
    if m:
        print(re.sub(r"^[^/]*[:.][^/]*/", "", m.group(1)), m.group(2))
    else:
        print("?", p["title"])
' | sort
}
prs homelab-renovate >"$work/prs.renovate"; prs homelab-hl >"$work/prs.hl"
echo
printf '%-10s %10s %12s %6s\n' tool wall_s peak_rss_MiB PRs
printf '%-10s %10s %12s %6s\n' renovate "$r_wall" "$((r_rss/1024))" "$(wc -l <"$work/prs.renovate")"
printf '%-10s %10s %12s %6s\n' hl "$h_wall" "$((h_rss/1024))" "$(wc -l <"$work/prs.hl")"
echo; echo "renovate PRs:"; sed 's/^/  /' "$work/prs.renovate"
echo "hl PRs:"; sed 's/^/  /' "$work/prs.hl"
api "$url/api/v1/repos/$admin/homelab-renovate/pulls?state=all&limit=50" | python3 -c 'import json,sys; [print("  renovate title:", p["title"], "<-", p["head"]["ref"]) for p in json.load(sys.stdin)]'
api "$url/api/v1/repos/$admin/homelab-hl/pulls?state=all&limit=50" | python3 -c 'import json,sys; [print("  hl title:", p["title"], "<-", p["head"]["ref"]) for p in json.load(sys.stdin)]'
if diff -q "$work/prs.renovate" "$work/prs.hl" >/dev/null; then same=yes; else same=no; fi
speedup=$(python3 -c "print(f'{$r_wall/max($h_wall,0.01):.1f}')")
echo; echo "same PR set: $same; hl speed-up: ${speedup}x (target >= 10x and same PR set)"
echo "gitea floor: push ${f_push}s + 3 PRs ${f_prs}s = ${f_all}s; renovate / floor = $(python3 -c "print(f'{$r_wall/max($f_all,0.01):.1f}')")x (load average $(cut -d' ' -f1-3 /proc/loadavg))"
echo "hl phases (debug log):"; grep -o 'msg="[a-z ]*" .*took=[0-9.a-zµ]*' "$work/hlbot.log" | sed -E 's/ (base|n|prs)=[^ ]*//g; s/^/  /' || true
