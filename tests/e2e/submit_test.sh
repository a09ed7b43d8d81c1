#!/usr/bin/env bash
# Submission: -e overrides declared vars and refuses undeclared ones; steps and hosts the daemon
# cannot run yet are refused naming the spec path; mounts outside allowed_roots fail the job;
# and a daemon killed with -9 mid-run, once restarted, fails that run and removes its container.
source "$(dirname "$0")/lib.sh"
mkdir -p "$E2E_DIR/allowed"
start_oddd "allowed_roots: [$E2E_DIR/allowed]"
cd "$E2E_DIR"

spec vars.yml <<YAML
version: 1
name: vars
vars: { greeting: hello }
jobs:
  job:
    steps:
      - id: say
        run: { image: $ODD_TEST_IMAGE, cmd: "echo ::set-output name=said::\${{ vars.greeting }}" }
YAML
expect_exit 0 "$ODDC" run vars.yml --json
expect_eq "$(json "d['jobs'][0]['outputs']['said']")" hello "the spec's default"
expect_exit 0 "$ODDC" run vars.yml -e greeting=bonjour --json
expect_eq "$(json "d['jobs'][0]['outputs']['said']")" bonjour "-e overrides"
expect_exit 2 "$ODDC" run vars.yml -e greting=typo
check "an undeclared var names vars.greting" grep -q "vars.greting" <<<"$ERR"

spec badref.yml <<YAML
version: 1
name: badref
vars: { greeting: hello }
jobs:
  job:
    steps:
      - run: { image: $ODD_TEST_IMAGE, cmd: "echo \${{ vars.greetng }}" }
YAML
expect_exit 2 "$ODDC" run badref.yml
check "an unknown reference is refused before anything runs, naming its path" \
  grep -q "jobs.job.steps\[0\].run.cmd" <<<"$ERR"
check "with a suggestion" grep -q "greeting" <<<"$ERR"

spec exec.yml <<'YAML'
version: 1
name: exec
jobs:
  job:
    steps:
      - exec: { cmd: "true" }
YAML
expect_exit 2 "$ODDC" run exec.yml
check "exec step refused with its path" grep -q "jobs.job.steps\[0\].exec" <<<"$ERR"

spec host.yml <<YAML
version: 1
name: host
jobs:
  job:
    host: tester9
    steps: [ { run: { image: $ODD_TEST_IMAGE } } ]
YAML
expect_exit 2 "$ODDC" run host.yml
check "unknown host refused with its path" grep -q "jobs.job.host" <<<"$ERR"

spec mount.yml <<YAML
version: 1
name: mount
jobs:
  job:
    steps:
      - run: { image: $ODD_TEST_IMAGE, cmd: ["true"], mounts: ["/etc:/host-etc:ro"] }
YAML
expect_exit 5 "$ODDC" run mount.yml --json
check "a mount outside allowed_roots names the mount" \
  grep -q "jobs.job.steps\[0\].run.mounts\[0\]" <<<"$(json "d['jobs'][0]['error']")"
expect_no_containers

# kill -9 of oddd mid-run, then a restart: the run is failed with a reason, the container removed.
spec sleepy.yml <<YAML
version: 1
name: sleepy
jobs:
  job:
    steps: [ { run: { image: $ODD_TEST_IMAGE, cmd: ["sleep", "60"] } } ]
YAML
expect_exit 0 "$ODDC" run sleepy.yml --detach
run=$(tr -d '[:space:]' <<<"$OUT")
wait_job_running "$run"
kill -KILL "$ODDD_PID"
wait "$ODDD_PID" 2>/dev/null || true
ODDD_PID=""
check "the container outlived the daemon" test -n "$(odd_containers)"
start_oddd "allowed_roots: [$E2E_DIR/allowed]"
wait_state "$run" failed 30
for _ in $(seq 1 100); do [ -z "$(odd_containers)" ] && break; sleep 0.1; done
expect_no_containers
OUT=$(cat "$E2E_DIR/state/runs/$run/run.json")
check "the reason is recorded" grep -q "daemon stopped" <<<"$(json "d['error']")"
stop_oddd
