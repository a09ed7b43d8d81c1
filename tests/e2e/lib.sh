# shellcheck shell=bash
# Shared set-up of the end-to-end tests: each test starts its own oddd (private socket, state dir
# and config) against the private dockerd of tests/support/with-dockerd.sh and drives it with the
# real oddc. Sourced by tests/e2e/*_test.sh; needs ODD_BIN_DIR (the build directory),
# ODD_TEST_DOCKER_HOST and ODD_TEST_IMAGE.
set -euo pipefail

: "${ODD_BIN_DIR:?set ODD_BIN_DIR to the build directory}"
: "${ODD_TEST_DOCKER_HOST:?run under tests/support/with-dockerd.sh}"
: "${ODD_TEST_IMAGE:=odd-test/busybox:1}"

# shellcheck disable=SC2034 # for the tests that source this file
E2E_SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
ODDD="$ODD_BIN_DIR/daemon/oddd"
ODDC="$ODD_BIN_DIR/oddc/oddc"
if [ -x /usr/bin/docker ]; then DOCKER=(/usr/bin/docker -H "$ODD_TEST_DOCKER_HOST"); else
  DOCKER=(docker -H "$ODD_TEST_DOCKER_HOST"); fi

E2E_DIR="$(mktemp -d /tmp/odd-e.XXXXXX)"
export ODD_SOCKET="$E2E_DIR/oddd.sock"
ODDD_PID=""
E2E_FAILED=0
E2E_ON_EXIT=() # commands a test adds, run at exit after oddd stopped

e2e_cleanup() {
  local rc=$? cmd
  if [ -n "$ODDD_PID" ] && kill -0 "$ODDD_PID" 2>/dev/null; then
    kill -TERM "$ODDD_PID" 2>/dev/null || true
    wait "$ODDD_PID" 2>/dev/null || true
  fi
  for cmd in "${E2E_ON_EXIT[@]}"; do eval "$cmd" || true; done
  # Whatever a failed test left behind is removed, so the next test starts clean.
  local left
  left=$(odd_containers 2>/dev/null || true)
  if [ -n "$left" ]; then
    local ids
    mapfile -t ids <<<"$left"
    "${DOCKER[@]}" rm -f "${ids[@]}" >/dev/null 2>&1 || true
  fi
  if [ "$rc" -ne 0 ] || [ "$E2E_FAILED" -ne 0 ]; then
    echo "--- oddd log ($E2E_DIR/oddd.log) ---" >&2
    tail -n 60 "$E2E_DIR/oddd.log" >&2 2>/dev/null || true
  fi
  rm -rf "$E2E_DIR"
}
trap e2e_cleanup EXIT

fail() {
  echo "FAIL: $*" >&2
  E2E_FAILED=1
  exit 1
}

# check DESCRIPTION COMMAND...: the command must succeed.
check() {
  local what="$1"
  shift
  if ! "$@"; then fail "$what"; fi
}

expect_eq() {
  if [ "$1" != "$2" ]; then fail "$3: expected [$2], got [$1]"; fi
}

# expect_exit CODE COMMAND...: runs the command, which must exit with CODE; its stdout is in
# $OUT and its stderr in $ERR afterwards.
expect_exit() {
  local want="$1"
  shift
  local rc=0
  "$@" >"$E2E_DIR/out" 2>"$E2E_DIR/err" || rc=$?
  OUT="$(cat "$E2E_DIR/out")"
  ERR="$(cat "$E2E_DIR/err")"
  if [ "$rc" -ne "$want" ]; then
    echo "stdout: $OUT" >&2
    echo "stderr: $ERR" >&2
    fail "$* exited $rc, expected $want"
  fi
}

# start_oddd [EXTRA CONFIG LINES]: starts oddd on a private socket and state dir; its local
# dockerd is $E2E_LOCAL_DOCKER_HOST if set, else the test dockerd.
# shellcheck disable=SC2120 # the extra lines are optional
start_oddd() {
  mkdir -p "$E2E_DIR/state"
  cat >"$E2E_DIR/oddd.yaml" <<YAML
socket: $ODD_SOCKET
state_dir: $E2E_DIR/state
docker_host: ${E2E_LOCAL_DOCKER_HOST:-$ODD_TEST_DOCKER_HOST}
default_network: none
stop_grace: 2s
shutdown_grace: 20s
${1:-}
YAML
  "$ODDD" --config "$E2E_DIR/oddd.yaml" --log-level debug >"$E2E_DIR/oddd.log" 2>&1 &
  ODDD_PID=$!
  for _ in $(seq 1 100); do
    if "$ODDC" ping >/dev/null 2>&1; then return 0; fi
    if ! kill -0 "$ODDD_PID" 2>/dev/null; then fail "oddd exited during start-up"; fi
    sleep 0.1
  done
  fail "oddd did not answer on $ODD_SOCKET within 10 s"
}

stop_oddd() {
  kill -TERM "$ODDD_PID"
  local rc=0
  wait "$ODDD_PID" || rc=$?
  ODDD_PID=""
  return "$rc"
}

# Containers of this test's oddd still present (any state). Tests run in parallel against one
# dockerd, so each looks only at containers labelled with its own daemon's instance id.
odd_containers() {
  local id
  id=$(cat "$E2E_DIR/state/instance-id" 2>/dev/null) || return 0
  "${DOCKER[@]}" ps -aq --filter "label=odd.daemon=$id"
}

expect_no_containers() {
  local left
  left=$(odd_containers)
  if [ -n "$left" ]; then fail "containers left behind: $left"; fi
}

# json FILTER: runs python over $OUT's JSON (python3 is there for the benchmarks' peers).
json() { python3 -c "import json,sys; d=json.loads(sys.stdin.read()); print($1)" <<<"$OUT"; }

# wait_state RUN STATE [SECONDS]: waits until `oddc status RUN` reports the run state.
wait_state() {
  local run="$1" want="$2" limit="${3:-60}" state=""
  for _ in $(seq 1 $((limit * 10))); do
    state=$("$ODDC" status "$run" --json 2>/dev/null |
      python3 -c "import json,sys; print(json.load(sys.stdin)['state'])" 2>/dev/null || true)
    if [ "$state" = "$want" ]; then return 0; fi
    sleep 0.1
  done
  fail "run $run did not reach $want within ${limit}s (last: $state)"
}

# wait_job_running RUN: waits until some job of RUN is running.
wait_job_running() {
  local run="$1"
  for _ in $(seq 1 300); do
    if "$ODDC" status "$run" --json 2>/dev/null | python3 -c \
      "import json,sys; sys.exit(0 if any(j['state']=='running' for j in json.load(sys.stdin)['jobs']) else 1)" \
      2>/dev/null; then return 0; fi
    sleep 0.1
  done
  fail "no job of $run started running"
}

# spec FILE <<'YAML': writes a spec into the test dir.
spec() { cat >"$E2E_DIR/$1"; }
