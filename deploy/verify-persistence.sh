#!/usr/bin/env bash
# Restart-and-verify: proves that what inflow accepted survives restarts.
#
#   bash deploy/verify-persistence.sh          (with the stack running: docker compose up -d)
#
# 1. submits N entries through nginx and waits until every one is persisted;
# 2. `restart`s the whole stack, then `down` (volumes kept) and `up` again, and checks after
#    each that every entry is still there;
# 3. stops the worker, submits N more (they wait in Redis), restarts Redis, starts the worker
#    and checks that every queued entry is persisted.
# Prints PASS or FAIL per step and exits non-zero on any failure.
#
# Environment: INFLOW_URL (http://localhost:9999), ENTRIES (20), TIMEOUT_S (120), and the
# usual Compose variables (COMPOSE_PROJECT_NAME, the *_IMAGE variables, DB_PASS, …).
# Needs bash, curl and Docker Compose (v2 or 1.29).
set -Eeuo pipefail
cd "$(dirname "$0")/.."

url="${INFLOW_URL:-http://localhost:9999}"
entries="${ENTRIES:-20}"
timeout_s="${TIMEOUT_S:-120}"
failures=0
run_id="$(date +%s)-$$"

if docker compose version >/dev/null 2>&1; then compose=(docker compose); else compose=(docker-compose); fi

# say: one line of progress.
say() { printf '%s  %s\n' "$(date +%H:%M:%S)" "$*"; }

# check NAME CONDITION...: runs the condition, prints PASS or FAIL, counts failures.
check() {
  local name="$1"
  shift
  if "$@"; then
    say "PASS  $name"
  else
    say "FAIL  $name"
    failures=$((failures + 1))
  fi
}

# wait_ready: until nginx answers and a replica reports Redis and PostgreSQL reachable.
wait_ready() {
  local deadline=$((SECONDS + timeout_s))
  until curl -fsS -o /dev/null "$url/readyz" 2>/dev/null; do
    if ((SECONDS > deadline)); then
      say "the stack did not become ready within ${timeout_s}s"
      return 1
    fi
    sleep 1
  done
}

# submit COUNT LABEL: POSTs COUNT entries and prints their ids, one per line.
submit() {
  local count="$1" label="$2" i body id
  for ((i = 1; i <= count; i++)); do
    body="$(curl -fsS -X POST "$url/api/entries" \
      -H 'Content-Type: application/json' \
      -H "Idempotency-Key: verify-$run_id-$label-$i" \
      -d "{\"author\":\"verify-persistence\",\"message\":\"$label $i of $count ($run_id)\"}")"
    id="$(sed -n 's/.*"id":"\([0-9a-f-]*\)".*/\1/p' <<<"$body")"
    [[ -n "$id" ]] || { say "no id in the answer: $body" >&2; return 1; }
    echo "$id"
  done
}

# status ID: the entry's status as GET /api/entries/:id reports it.
status() {
  curl -fsS "$url/api/entries/$1" | sed -n 's/.*"status":"\([a-z]*\)".*/\1/p'
}

# all_persisted IDS...: true once every id reads "persisted" (waits up to TIMEOUT_S).
all_persisted() {
  local deadline=$((SECONDS + timeout_s)) id pending
  while :; do
    pending=0
    for id in "$@"; do
      [[ "$(status "$id" 2>/dev/null)" == persisted ]] || pending=$((pending + 1))
    done
    ((pending == 0)) && return 0
    if ((SECONDS > deadline)); then
      say "$pending of $# entries are not persisted"
      return 1
    fi
    sleep 1
  done
}

# all_status STATUS IDS...: true when every id reads STATUS right now.
all_status() {
  local want="$1" id
  shift
  for id in "$@"; do
    [[ "$(status "$id")" == "$want" ]] || { say "$id is $(status "$id"), expected $want"; return 1; }
  done
}

say "waiting for $url"
wait_ready

say "submitting $entries entries"
mapfile -t ids < <(submit "$entries" persisted)
check "$entries entries accepted (202) and persisted" all_persisted "${ids[@]}"

say "restarting every container"
"${compose[@]}" restart >/dev/null 2>&1
wait_ready
check "entries still there after 'restart'" all_persisted "${ids[@]}"

say "down (volumes kept) and up again"
"${compose[@]}" down >/dev/null 2>&1
"${compose[@]}" up -d >/dev/null 2>&1
wait_ready
check "entries still there after 'down' and 'up'" all_persisted "${ids[@]}"

say "stopping the worker, submitting $entries entries to wait in Redis"
"${compose[@]}" stop worker >/dev/null 2>&1
mapfile -t queued < <(submit "$entries" queued)
check "$entries entries accepted and waiting while the worker is stopped" all_status queued "${queued[@]}"

say "restarting Redis with the backlog in it"
"${compose[@]}" restart redis >/dev/null 2>&1
wait_ready
check "the backlog survived the Redis restart" all_status queued "${queued[@]}"

say "starting the worker"
"${compose[@]}" start worker >/dev/null 2>&1
check "every queued entry persisted after the worker came back" all_persisted "${queued[@]}"
check "the first entries are all still there" all_persisted "${ids[@]}"

if ((failures > 0)); then
  say "FAIL: $failures check(s) failed"
  exit 1
fi
say "PASS: every accepted entry survived restart, down/up and a Redis restart with a backlog"
