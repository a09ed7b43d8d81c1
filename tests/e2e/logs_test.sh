#!/usr/bin/env bash
# Logs: byte-exact storage of both streams (binary bytes, a line over 16 KiB, no final newline),
# a follower that stops reading does not stall the job, artifacts hold the decompressed logs; a
# job of several run steps: a container each, one log with every step, live and stored; -f on a
# job yet to start waits for it.
source "$(dirname "$0")/lib.sh"
start_oddd
cd "$E2E_DIR"

# shellcheck disable=SC2016 # expanded by the container's shell
gen='i=0; while [ $i -lt 300 ]; do echo "line $i of stdout"; echo "err $i" >&2; i=$((i+1)); done;
printf "\001\002\377 binary\n"; head -c 20000 /dev/zero | tr "\0" x; echo; printf "no newline"'
spec bytes.yml <<YAML
version: 1
name: bytes
jobs:
  job:
    steps:
      - run: { image: $ODD_TEST_IMAGE, cmd: ["sh", "-c", '$gen'] }
YAML
expect_exit 0 "$ODDC" run bytes.yml --json
run=$(json "d['run_id']")
sh -c "$gen" >"$E2E_DIR/want.out" 2>"$E2E_DIR/want.err"
zstd -qdc "$(json "d['jobs'][0]['log_paths']['stdout']")" >"$E2E_DIR/got.out"
zstd -qdc "$(json "d['jobs'][0]['log_paths']['stderr']")" >"$E2E_DIR/got.err"
check "stdout byte-exact" cmp "$E2E_DIR/want.out" "$E2E_DIR/got.out"
check "stderr byte-exact" cmp "$E2E_DIR/want.err" "$E2E_DIR/got.err"
"$ODDC" logs "$run" job >"$E2E_DIR/served.out"
check "served stdout byte-exact" cmp "$E2E_DIR/want.out" "$E2E_DIR/served.out"

expect_exit 0 "$ODDC" artifacts "$run" -o "$E2E_DIR/art"
check "artifacts: aggregate summary" test -s "$E2E_DIR/art/aggregate-$run.json"
check "artifacts: job summary" test -s "$E2E_DIR/art/job/odd-$run-job-summary.json"
got=$(ls "$E2E_DIR"/art/job/odd-"$run"-job-stdout-*.log)
check "artifacts: decompressed stdout" cmp "$E2E_DIR/want.out" "$got"

# Several run steps in one job, the first kept: each gets its own container and log pair, and
# the job's log, live at -v and stored, is every step's output in order.
spec steps.yml <<YAML
version: 1
name: steps
jobs:
  job:
    steps:
      - id: first
        run: { image: $ODD_TEST_IMAGE, cmd: ["echo", "from the first step"], keep: true }
      - run: { image: $ODD_TEST_IMAGE, cmd: ["sh", "-c", "sleep 1; echo from the second step"] }
YAML
expect_exit 0 "$ODDC" run steps.yml -v
check "-v shows the first step's output" grep -qx "\[job\] from the first step" <<<"$OUT"
check "and the second's" grep -qx "\[job\] from the second step" <<<"$OUT"
run=$(sed -n "1s/^run //p" <<<"$OUT")
expect_exit 0 "$ODDC" logs "$run" job
expect_eq "$OUT" "from the first step
from the second step" "oddc logs: both steps, in order"
expect_exit 0 "$ODDC" status "$run" --json
summary="$E2E_DIR/state/runs/$run/jobs/job/summary.json"
OUT=$(cat "$summary")
expect_eq "$(json "[l['step'] for l in d['logs']]")" "['first', 'run#2']" "the summary lists both pairs"
expect_eq "$(json "d['log_paths']['stdout'] == d['logs'][1]['stdout']")" True \
  "log_paths names the newest pair"
kept=$("${DOCKER[@]}" inspect "odd-$run-job-first" --format '{{.Name}}' 2>&1 || true)
expect_eq "$kept" "/odd-$run-job-first" "the kept container is named after its step"
"${DOCKER[@]}" rm -f "odd-$run-job-first" >/dev/null

# Following a job that has not started: -f waits for it and prints its log; without -f it has
# none yet (exit 4).
spec later.yml <<YAML
version: 1
name: later
jobs:
  first:
    steps: [ { run: { image: $ODD_TEST_IMAGE, cmd: ["sleep", "3"] } } ]
  later:
    needs: [first]
    steps: [ { run: { image: $ODD_TEST_IMAGE, cmd: ["echo", "later ran"] } } ]
YAML
expect_exit 0 "$ODDC" run later.yml --detach
run=$(tr -d '[:space:]' <<<"$OUT")
expect_exit 4 "$ODDC" logs "$run" later
check "without -f: no logs yet" grep -q "later of run $run has no logs yet" <<<"$ERR"
expect_exit 0 "$ODDC" logs "$run" later -f
expect_eq "$OUT" "later ran" "-f waited for the job to start and printed its log"
wait_state "$run" succeeded 60

# A follower that stops reading: the job writes 40 MB and must still finish.
spec flood.yml <<YAML
version: 1
name: flood
defaults: { timeout: 2m }
jobs:
  job:
    steps:
      - run: { image: $ODD_TEST_IMAGE, cmd: ["sh", "-c", "sleep 1; head -c 40000000 /dev/zero | tr '\\\\0' y | fold -w 99"] }
YAML
expect_exit 0 "$ODDC" run flood.yml --detach
run=$(tr -d '[:space:]' <<<"$OUT")
wait_job_running "$run"
mkfifo "$E2E_DIR/stall"
"$ODDC" logs "$run" job -f >"$E2E_DIR/stall" &
follower=$!
exec 7<>"$E2E_DIR/stall"   # held open, never read
wait_state "$run" succeeded 100
kill "$follower" 2>/dev/null || true
exec 7>&-
expect_exit 0 "$ODDC" status "$run" --json
expect_no_containers
stop_oddd
