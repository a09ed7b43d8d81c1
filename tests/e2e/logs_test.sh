#!/usr/bin/env bash
# Logs: byte-exact storage of both streams (binary bytes, a line over 16 KiB, no final newline),
# a follower that stops reading does not stall the job, artifacts hold the decompressed logs.
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
