#!/usr/bin/env bash
# `baton deploy` on the server over SSH, for a CI job (github-actions/deploy.yml and
# jenkins/Jenkinsfile beside this file call it; copy it to ci/deploy.sh in your repository).
# Streams the deploy's JSON progress lines, prints the last one, says what Baton's exit code
# means, shows the failed deploy's history entry (with its log lines) from the server, and exits
# with Baton's code: 0 only when the version is live.
#
# Settings, from the environment (the CI file sets them from its variables and secrets):
#   BATON_HOST         required: the server where `baton up` runs, as ssh takes it (deploy@lb-1)
#   BATON_VERSION      required (or the first argument): the version to deploy
#   BATON_CONFIG       baton.yaml on the server (default /etc/baton/baton.yaml)
#   BATON_SSH_KEY      a private key file (default: ssh's own: the agent, ~/.ssh/id_*)
#   BATON_KNOWN_HOSTS  a known_hosts file with the server's host key (default ~/.ssh/known_hosts).
#                      The host key is always checked (StrictHostKeyChecking=yes): make the line
#                      once with `ssh-keyscan -t ed25519 lb-1` and compare its fingerprint
#                      (`ssh-keygen -lf`) with the server's own (`ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub`)
#   BATON_ADMIN_TOKEN  the daemon's admin token, when it has one: sent on ssh's standard input,
#                      never on a command line (where `ps` on the server would show it)
#   BATON_SSH_OPTIONS  more ssh options, split on spaces, before ours (-p 2222 -J bastion)
#   BATON_DEPLOY_ARGS  more `baton deploy` flags, split on spaces (--strategy rolling, --force)
#   BATON_BIN          the baton command on the server (default baton)
#   BATON_ACTOR        who deploys, for Baton's history (default: the CI's user and run)
# The server's login shell for that user must be a POSIX shell (sh, bash, dash, zsh).
set -euo pipefail

host=${BATON_HOST:-}
version=${1:-${BATON_VERSION:-}}
config=${BATON_CONFIG:-/etc/baton/baton.yaml}
bin=${BATON_BIN:-baton}

# An error line that the CI shows as one: an annotation on GitHub Actions, plain elsewhere.
fail() {
  if [ -n "${GITHUB_ACTIONS:-}" ]; then echo "::error title=baton deploy::${1//%/%25}"; else echo "ERROR: $1"; fi
}

if [ -z "$host" ]; then
  fail "no server to deploy to: set BATON_HOST to where baton up runs, as ssh takes it (deploy@lb-1). Nothing was deployed."
  exit 2
fi
if [ -z "$version" ]; then
  fail "no version to deploy: set BATON_VERSION (or pass it as the first argument). Nothing was deployed."
  exit 2
fi

# One word for the server's shell, in single quotes.
q() { printf "'%s'" "${1//\'/\'\\\'\'}"; }

actor=${BATON_ACTOR:-}
if [ -z "$actor" ]; then
  if [ -n "${GITHUB_ACTIONS:-}" ]; then
    actor="${GITHUB_ACTOR:-unknown} (GitHub Actions run ${GITHUB_RUN_ID:-?})"
  elif [ -n "${JENKINS_URL:-}" ]; then
    actor="${BUILD_USER_ID:-jenkins} (Jenkins ${BUILD_TAG:-})"
  else
    actor="${USER:-unknown} (CI)"
  fi
fi

read -r -a extra_ssh <<<"${BATON_SSH_OPTIONS:-}"
# ssh keeps the first value it is given for an option: the user's come first.
ssh_opts=(${extra_ssh[@]+"${extra_ssh[@]}"}
  -o BatchMode=yes -o StrictHostKeyChecking=yes -o ConnectTimeout=10
  -o ServerAliveInterval=15 -o ServerAliveCountMax=4)
if [ -n "${BATON_SSH_KEY:-}" ]; then ssh_opts+=(-i "$BATON_SSH_KEY" -o IdentitiesOnly=yes); fi
if [ -n "${BATON_KNOWN_HOSTS:-}" ]; then ssh_opts+=(-o "UserKnownHostsFile=$BATON_KNOWN_HOSTS"); fi

# remote ARGS...: `baton ARGS... -c CONFIG` on the server; each ARG is quoted for its shell.
remote() {
  local cmd
  cmd="BATON_ACTOR=$(q "$actor") $bin"
  for a in "$@" -c "$config"; do cmd+=" $(q "$a")"; done
  if [ -n "${BATON_ADMIN_TOKEN:-}" ]; then
    # shellcheck disable=SC2029 # $cmd is for the server's shell, quoted word by word above
    printf '%s\n' "$BATON_ADMIN_TOKEN" |
      ssh "${ssh_opts[@]}" "$host" "IFS= read -r BATON_ADMIN_TOKEN && export BATON_ADMIN_TOKEN && $cmd"
  else
    ssh -n "${ssh_opts[@]}" "$host" "$cmd"
  fi
}

read -r -a deploy_args <<<"${BATON_DEPLOY_ARGS:-}"
events=$(mktemp)
trap 'rm -f "$events"' EXIT

echo "baton deploy $version on $host ($config) as $actor"
set +e
remote deploy --version "$version" --json ${deploy_args[@]+"${deploy_args[@]}"} | tee "$events"
code=${PIPESTATUS[0]}
set -e

# The last JSON line: the deploy's "done" event, or {"error":{...}} when it was refused.
last=$(grep '^{' "$events" | tail -n 1 || true)
# Its message: the first "message" of the line (the event's, or the error's), unescaped
# enough for a log line (no jq needed on the CI's machine).
said=$(printf '%s\n' "$last" | awk '{
  i = index($0, "\"message\":\""); if (!i) exit
  s = substr($0, i + 11); out = ""
  while (s != "") {
    c = substr(s, 1, 1)
    if (c == "\"") break
    if (c == "\\") { c = substr(s, 2, 1); s = substr(s, 3); out = out (c == "n" ? " " : c) }
    else { out = out c; s = substr(s, 2) }
  }
  print out
}')
said=${said%.}
echo "result: ${last:-(no JSON line: see above)}"

case $code in
  0) echo "$version is live on $host" ;;
  2) fail "refused (exit 2: a bad flag, baton.yaml or version): $said. Nothing was deployed." ;;
  3) fail "the admin API on $host refused us (exit 3): $said. Set BATON_ADMIN_TOKEN to the daemon's token (a CI secret)." ;;
  9) fail "no baton daemon answers on $host (exit 9): $said. Nothing was deployed (under systemd: systemctl status baton)." ;;
  10) fail "the deploy of $version failed (exit 10), the previous version serves: $said" ;;
  11) fail "another deploy holds the lock on $host (exit 11): $said. Nothing was deployed; run this job again once it has ended." ;;
  13) fail "deploy refused on $host (exit 13: outside the deploy windows, or frozen): $said. Nothing was deployed (BATON_DEPLOY_ARGS=--force passes --force)." ;;
  14) fail "the edge (nginx / HAProxy) refused a change or cannot be reached (exit 14), the previous routes serve: $said" ;;
  127) fail "'$bin' was not found on $host (exit 127): install Baton there, or set BATON_BIN to its path." ;;
  255) fail "ssh to $host failed (exit 255; ssh's own line above says why: unreachable, key refused, or a host key that is not in known_hosts). If the connection dropped mid-deploy, the deploy goes on on the server: \`baton follow\` there." ;;
  *) fail "baton deploy exited $code on $host: ${said:-see above}" ;;
esac

# What the server knows about it, best effort: this job fails with Baton's code either way.
case $code in
  10 | 14)
    echo "--- baton history --limit 1 --logs on $host"
    remote history --limit 1 --logs || true
    ;;
  11 | 13)
    echo "--- baton status on $host"
    remote status || true
    ;;
esac
exit "$code"
