#!/usr/bin/env bash
# Cancelling: oddc cancel on a detached run, SIGINT to a waiting oddc run, a waiting client that
# is killed, and SIGTERM to oddd mid-run — each leaves no container behind.
source "$(dirname "$0")/lib.sh"
start_oddd
cd "$E2E_DIR"

spec sleepy.yml <<YAML
version: 1
name: sleepy
jobs:
  test:
    matrix: { n: [a, b] }
    steps:
      - run: { image: $ODD_TEST_IMAGE, cmd: ["sleep", "60"] }
YAML

# Detached, then oddc cancel.
expect_exit 0 "$ODDC" run sleepy.yml --detach
run=$(tr -d '[:space:]' <<<"$OUT")
check "detached run prints its id" grep -Eq '^[0-9]{8}-[0-9]{6}Z-[0-9a-f]{4}$' <<<"$run"
wait_job_running "$run"
expect_exit 0 "$ODDC" cancel "$run"
wait_state "$run" cancelled 30
expect_exit 0 "$ODDC" status "$run" --json
expect_eq "$(json "sorted(j['state'] for j in d['jobs'])")" "['cancelled', 'cancelled']" "jobs"
expect_no_containers

# SIGINT to a waiting oddc run: it cancels the run and exits 130.
"$ODDC" run sleepy.yml >"$E2E_DIR/run.out" 2>&1 &
client=$!
sleep 0.5
run=$("$ODDC" ls --json | python3 -c "import json,sys; print(json.load(sys.stdin)[0]['id'])")
wait_job_running "$run"
kill -INT "$client"
rc=0
wait "$client" || rc=$?
expect_eq "$rc" 130 "oddc run exit code after SIGINT"
wait_state "$run" cancelled 30
expect_no_containers

# A waiting client killed outright: the daemon sees the connection close and cancels.
"$ODDC" run sleepy.yml >/dev/null 2>&1 &
client=$!
sleep 0.5
run=$("$ODDC" ls --json | python3 -c "import json,sys; print(json.load(sys.stdin)[0]['id'])")
wait_job_running "$run"
kill -KILL "$client"
wait "$client" 2>/dev/null || true
wait_state "$run" cancelled 30
expect_no_containers

# A detached run is not cancelled by its submitter going away.
expect_exit 0 "$ODDC" run sleepy.yml --detach
run=$(tr -d '[:space:]' <<<"$OUT")
wait_job_running "$run"
expect_exit 0 "$ODDC" status "$run" --json
expect_eq "$(json "d['state']")" running "a detached run keeps running"

# SIGTERM to oddd mid-run: it cancels the run, removes the containers and exits 0.
check "oddd stops cleanly" stop_oddd
expect_no_containers
OUT=$(cat "$E2E_DIR/state/runs/$run/run.json")
expect_eq "$(json "d['run']['state']")" cancelled "run.json after SIGTERM"

# Unknown run id, bad spec, daemon down.
start_oddd
expect_exit 4 "$ODDC" status 20200101-000000Z-beef
check "not found names the run" grep -q "20200101-000000Z-beef" <<<"$ERR"
spec bad.yml <<'YAML'
version: 1
name: bad
jobs:
  job:
    timeout: soon
    steps: [ { run: { image: busybox } } ]
YAML
expect_exit 2 "$ODDC" run bad.yml
check "spec error names the path" grep -q "jobs.job.timeout" <<<"$ERR"
expect_eq "$(wc -l <<<"$ERR")" 1 "one error line"
stop_oddd
expect_exit 3 "$ODDC" ping
check "unreachable names the socket" grep -q "$ODD_SOCKET" <<<"$ERR"
