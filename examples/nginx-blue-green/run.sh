#!/usr/bin/env bash
# The blue-green setup of a Spring Boot app behind nginx (two ports, an upstream file, nginx -s
# reload), with Baton doing the switching, in one command:
#
#   examples/nginx-blue-green/run.sh
#
# It starts a real nginx as your own process (everything in a temp folder), `baton up` driving
# it, deploys 1.0.0, then deploys 1.0.1 while `baton load` sends requests through nginx, and
# prints what the clients saw. Everything it started is stopped and the folder removed on any
# exit. Exit 0 when every request got an answer; otherwise the failing step's exit code (12:
# requests failed, 10: the deploy failed, 14: nginx refused the change) or 1.
#
# Settings (environment): NGINX_PORT (8080), APP_PORTS (8081-8082), ADMIN_PORT (9901),
# LOAD_RATE (100), LOAD_DURATION (8s), LOAD_KEEPALIVE=1 (keep-alive clients instead of a new
# connection per request), NGINX (/usr/sbin/nginx), NODE (node on PATH), KEEP_TMP=1 to keep the
# temp folder (its logs) for a look afterwards.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
NGINX=${NGINX:-/usr/sbin/nginx}
NODE=${NODE:-$(command -v node || true)}
NGINX_PORT=${NGINX_PORT:-8080}
APP_PORTS=${APP_PORTS:-8081-8082}
ADMIN_PORT=${ADMIN_PORT:-9901}
LOAD_RATE=${LOAD_RATE:-100}
LOAD_DURATION=${LOAD_DURATION:-8s}
URL="http://127.0.0.1:$NGINX_PORT/"

say() { printf '\n==> %s\n' "$*"; }
die() {
  printf 'run.sh: %s\n' "$1" >&2
  exit "${2:-1}"
}
BATON=("$NODE" "$ROOT/bin/baton.js")

[ -x "$NGINX" ] || die "nginx not found at $NGINX: install it (apt-get install nginx) or set NGINX=/path/to/nginx"
[ -n "$NODE" ] || die "node not found on PATH: install Node.js 20 or set NODE=/path/to/node"
[ -f "$ROOT/dist/cli/main.js" ] || die "Baton is not built: run npm ci && npm run build in $ROOT"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/baton-nginx-example.XXXXXX")
# Every process started from here on inherits this; cleanup finds leftovers by it.
export BATON_EXAMPLE_RUN="$WORK"
NGINX_PID=''
BATON_PID=''
LOAD_PID=''
FG_PID=''

alive() { [ -n "$1" ] && kill -0 "$1" 2>/dev/null; }

# Runs a command in the background and waits for it: bash runs a trap only once the foreground
# command is over, while `wait` lets a signal through at once.
fg_run() {
  "$@" &
  FG_PID=$!
  local code=0
  wait "$FG_PID" || code=$?
  FG_PID=''
  return "$code"
}

# Polls `$@` every 0.1s until it succeeds or $1 seconds pass.
wait_until() {
  local seconds=$1
  shift
  local tries=$((seconds * 10))
  until "$@"; do
    tries=$((tries - 1))
    [ "$tries" -gt 0 ] || return 1
    sleep 0.1
  done
}
not_alive() { ! alive "$1"; }
tcp_open() { (: <>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Pids whose parent is $1 (nginx's workers), read from /proc without running anything.
children_of() {
  local stat line rest
  for stat in /proc/[0-9]*/stat; do
    { IFS= read -r line <"$stat"; } 2>/dev/null || continue
    rest=${line##*) } # after "pid (comm) ": state ppid ...
    # shellcheck disable=SC2086 # split into fields
    set -- "$1" $rest
    [ "$3" = "$1" ] && printf '%s ' "${stat//[!0-9]/}"
  done
  return 0
}

# Pids (not this shell) started with BATON_EXAMPLE_RUN=$WORK in their environment.
marked() {
  local env kv pid
  for env in /proc/[0-9]*/environ; do
    pid=${env//[!0-9]/}
    [ "$pid" = "$$" ] && continue
    while IFS= read -r -d '' kv; do
      if [ "$kv" = "BATON_EXAMPLE_RUN=$WORK" ]; then
        printf '%s ' "$pid"
        break
      fi
    done 2>/dev/null <"$env" || true
  done
}

stop_baton() {
  alive "$BATON_PID" || return 0
  # Baton takes the instances out of nginx, drains and stops them, then exits.
  kill -TERM "$BATON_PID" 2>/dev/null || true
  if ! wait_until 60 not_alive "$BATON_PID"; then
    echo "baton up did not stop within 60s: killing it" >&2
    kill -KILL "$BATON_PID" 2>/dev/null || true
  fi
  local code=0
  wait "$BATON_PID" 2>/dev/null || code=$?
  BATON_PID=''
  return "$code"
}

stop_nginx() {
  alive "$NGINX_PID" || return 0
  local workers
  workers=$(children_of "$NGINX_PID")
  kill -QUIT "$NGINX_PID" 2>/dev/null || true # graceful, as nginx -s quit
  if ! wait_until 5 not_alive "$NGINX_PID"; then
    echo "nginx did not quit within 5s: killing it" >&2
    # shellcheck disable=SC2086 # a list of pids
    kill -KILL "$NGINX_PID" $workers 2>/dev/null || true
  fi
  wait "$NGINX_PID" 2>/dev/null || true
  local w
  for w in $workers; do wait_until 5 not_alive "$w" || kill -KILL "$w" 2>/dev/null || true; done
  NGINX_PID=''
}

cleanup() {
  local code=$?
  set +e
  trap - EXIT INT TERM
  trap "" PIPE # messages to a closed pipe fail, and the cleanup goes on
  if [ "$code" -ne 0 ]; then
    echo "run.sh: failed (exit $code)" >&2
    for log in "$WORK/baton.log" "$WORK/error.log" "$WORK"/state/logs/*.log; do
      [ -s "$log" ] && printf -- '--- last lines of %s\n%s\n' "$log" "$(tail -n 15 "$log")" >&2
    done
  fi
  local pid
  for pid in "$FG_PID" "$LOAD_PID"; do
    if alive "$pid"; then
      kill -TERM "$pid" 2>/dev/null
      wait "$pid" 2>/dev/null
    fi
  done
  stop_baton
  stop_nginx
  # Only after an accident (a killed baton leaves its app instances running).
  local left
  left=$(marked)
  if [ -n "$left" ]; then
    echo "killing leftover processes: $left" >&2
    # shellcheck disable=SC2086 # a list of pids
    kill -KILL $left 2>/dev/null
  fi
  if [ "${KEEP_TMP:-}" = 1 ]; then
    echo "kept $WORK"
  else
    rm -rf "$WORK"
  fi
  exit "$code"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 141' PIPE # e.g. run.sh | head: still clean up

# --- the files: nginx.conf and baton.yaml from the templates next to this script -----------
esc() { printf '%s' "$1" | sed 's/[&|\\]/\\&/g'; }
USER_LINE='# (not root: the workers run as you)'
# As root, nginx runs its workers as nobody, who cannot enter the 0700 temp folder.
[ "$(id -u)" = 0 ] && USER_LINE='user root;'
mkdir -p "$WORK/tmp"
UPSTREAM="$WORK/web.upstream.conf"
fill() {
  sed -e "s|__PREFIX__|$(esc "$WORK")|g" \
    -e "s|__USER__|$(esc "$USER_LINE")|g" \
    -e "s|__NGINX_PORT__|$(esc "$NGINX_PORT")|g" \
    -e "s|__UPSTREAM_FILE__|$(esc "$UPSTREAM")|g" \
    -e "s|__ADMIN_PORT__|$(esc "$ADMIN_PORT")|g" \
    -e "s|__APP_PORTS__|$(esc "$APP_PORTS")|g" \
    -e "s|__NGINX__|$(esc "$NGINX")|g" \
    -e "s|__NODE__|$(esc "$NODE")|g" \
    -e "s|__APP__|$(esc "$ROOT/examples/app/app.js")|g" \
    "$1" >"$2"
}
fill "$HERE/nginx.conf" "$WORK/nginx.conf"
fill "$HERE/baton.yaml" "$WORK/baton.yaml"
CONF="$WORK/baton.yaml"
# What the upstream file holds before Baton's first deploy: a valid upstream with nothing up.
printf 'upstream web {\n    server 127.0.0.1:1 down;\n}\n' >"$UPSTREAM"

show_upstream() {
  local servers
  servers=$(sed -nE 's/^[[:space:]]*(server .*)/\1/p' "$UPSTREAM")
  echo "    $(basename "$UPSTREAM"): ${servers//$'\n'/ }"
}
answer() {
  # shellcheck disable=SC2016 # JavaScript, not shell
  "$NODE" -e '
    const url = process.argv[1];
    fetch(url).then(
      async (r) => console.log(`    GET ${url} -> ${r.status} ${(await r.text()).trim()}`),
      (e) => console.log(`    GET ${url} -> ${e.cause?.code ?? e.message}`),
    );' "$URL"
}

say "nginx on 127.0.0.1:$NGINX_PORT (prefix $WORK)"
"$NGINX" -p "$WORK/" -c "$WORK/nginx.conf" -e "$WORK/error.log" &
NGINX_PID=$!
# Listening, or gone (it says why).
nginx_settled() { ! alive "$NGINX_PID" || { [ -s "$WORK/nginx.pid" ] && tcp_open "$NGINX_PORT"; }; }
wait_until 10 nginx_settled || true
alive "$NGINX_PID" || die "nginx did not start on 127.0.0.1:$NGINX_PORT (is the port free?)"
nginx_settled || die "nginx did not listen on 127.0.0.1:$NGINX_PORT within 10s"
echo "    master $NGINX_PID, workers $(children_of "$NGINX_PID")"

say "baton up -c baton.yaml (admin 127.0.0.1:$ADMIN_PORT, app ports $APP_PORTS)"
"${BATON[@]}" up -c "$CONF" >"$WORK/baton.log" 2>&1 &
BATON_PID=$!
# Its log says when the admin API listens (a port that merely answers could be someone else's).
baton_listening() { grep -q '"msg":"admin API listening"' "$WORK/baton.log"; }
baton_settled() { ! alive "$BATON_PID" || baton_listening; }
wait_until 15 baton_settled || true
alive "$BATON_PID" || die "baton up exited at start (its log is below)"
baton_listening || die "baton up did not listen on 127.0.0.1:$ADMIN_PORT within 15s"
echo "    pid $BATON_PID, log $WORK/baton.log"

say "baton deploy --version 1.0.0"
code=0
fg_run "${BATON[@]}" deploy -c "$CONF" --version 1.0.0 || code=$?
[ "$code" = 0 ] || die "the deploy of 1.0.0 failed (exit $code)" "$code"
show_upstream
answer

# A new connection per request: at every reload nginx's old workers close their idle keep-alive
# client connections, and a request sent on one at that instant gets no answer. Browsers send
# it again (RFC 9112 9.3.1); baton load does not. LOAD_KEEPALIVE=1 shows it (README.md).
LOAD_ARGS=(--rate "$LOAD_RATE" --duration "$LOAD_DURATION" --timeout 2s --max-failures 0)
[ "${LOAD_KEEPALIVE:-}" = 1 ] || LOAD_ARGS+=(--new-connection)
say "baton load $URL ${LOAD_ARGS[*]} (in the background)"
"${BATON[@]}" load "$URL" "${LOAD_ARGS[@]}" >"$WORK/load.txt" 2>&1 &
LOAD_PID=$!
sleep 1 # the load runs for a moment on 1.0.0 before the deploy starts

say "baton deploy --version 1.0.1 (under load)"
deploy_code=0
fg_run "${BATON[@]}" deploy -c "$CONF" --version 1.0.1 || deploy_code=$?
show_upstream
answer

say "the load, as the clients saw it"
load_code=0
wait "$LOAD_PID" || load_code=$?
LOAD_PID=''
cat "$WORK/load.txt"

say "baton status"
"${BATON[@]}" status -c "$CONF" || true

say "stopping baton (SIGTERM) and nginx"
baton_code=0
stop_baton || baton_code=$?
stop_nginx
echo "    baton up exited $baton_code"

[ "$deploy_code" = 0 ] || die "the deploy of 1.0.1 failed (exit $deploy_code)" "$deploy_code"
[ "$load_code" = 0 ] || die "requests failed during the deploy (baton load exit $load_code)" "$load_code"
[ "$baton_code" = 0 ] || die "baton up exited $baton_code"
say "OK: 1.0.0 -> 1.0.1 behind nginx, every request answered"
