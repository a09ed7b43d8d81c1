#!/usr/bin/env bash
# A remote host whose sshd dies in the middle of a step, end to end through oddd and oddc against
# a private sshd on loopback that the test kills and restarts (tests/support/sshd.sh): the step
# fails with an error naming the host and the lost connection, and the next run on the host gets a
# new connection; an upload cut off the same way is retried, and the hidden temporary file the
# dead connection left on the host is removed. Then oddd itself is killed while a container runs
# on the host's dockerd (the test dockerd, reached through the host; oddd's own local dockerd is
# unreachable): the restarted oddd removes the container through the host; and killed during an
# upload: the restarted oddd removes the upload's temporary file from the host.
source "$(dirname "$0")/lib.sh"
SSHD="$E2E_SRC/tests/support/sshd.sh"
sshd_dir="$(mktemp -d /tmp/odd-es.XXXXXX)"
E2E_ON_EXIT+=("'$SSHD' stop '$sshd_dir' >/dev/null 2>&1; rm -rf '$sshd_dir'")
ODD_SSHD_DOCKER_HOST="$ODD_TEST_DOCKER_HOST" "$SSHD" start "$sshd_dir" >/dev/null
# shellcheck disable=SC1091
source "$sshd_dir/env"
remote="$sshd_dir/remote"

export E2E_LOCAL_DOCKER_HOST="unix://$E2E_DIR/no-dockerd.sock"
hosts="hosts:
  vm:
    address: $ODD_SSHD_ADDR
    port: $ODD_SSHD_PORT
    user: $ODD_SSHD_USER
    identity: $sshd_dir/id_ed25519
    known_hosts: $sshd_dir/known_hosts
    docker: true"
start_oddd "$hosts"
cd "$E2E_DIR"

# wait_for SECONDS DESCRIPTION COMMAND...: polls COMMAND until it succeeds.
wait_for() {
  local limit="$1" what="$2" _
  shift 2
  for _ in $(seq 1 $((limit * 20))); do
    if "$@"; then return 0; fi
    sleep 0.05
  done
  fail "$what did not happen within ${limit}s"
}

# sshd killed while a command runs: a clear error, then a new connection for the next run.
spec midexec.yml <<YAML
version: 1
name: midexec
jobs:
  job:
    host: vm
    steps:
      - exec: { cmd: "touch $remote/started && exec sleep 60" }
YAML
expect_exit 0 "$ODDC" run midexec.yml --detach
run="$OUT"
wait_for 30 "the remote command's start" test -e "$remote/started"
"$SSHD" kill "$sshd_dir"
wait_state "$run" failed 60
OUT=$(cat "$E2E_DIR/state/runs/$run/jobs/job/summary.json")
error=$(json "d['error']")
check "the error names the host" grep -q "vm ($ODD_SSHD_ADDR:$ODD_SSHD_PORT)" <<<"$error"
check "and says the connection was lost" grep -q "connection lost" <<<"$error"

"$SSHD" restart "$sshd_dir" >/dev/null
spec next.yml <<YAML
version: 1
name: next
jobs:
  job:
    host: vm
    steps:
      - exec: { cmd: "echo recovered" }
YAML
expect_exit 0 "$ODDC" run next.yml --json
expect_eq "$(json "d['jobs'][0]['state']")" succeeded "the next run on the host after sshd came back"

# sshd killed during an upload: the retry uploads it whole and the temporary file is gone.
truncate -s 1G big.bin
spec upload.yml <<YAML
version: 1
name: upload
jobs:
  job:
    host: vm
    retries: 1
    backoff: 1s
    steps:
      - upload: { src: ./big.bin, dest: "$remote/up/big.bin" }
YAML
expect_exit 0 "$ODDC" run upload.yml --detach
run="$OUT"
growing() { [ -n "$(find "$remote/up" -name '.big.bin.odd-tmp-*' -size +2M 2>/dev/null)" ]; }
wait_for 60 "the upload's start" growing
"$SSHD" kill "$sshd_dir"
"$SSHD" restart "$sshd_dir" >/dev/null
wait_state "$run" succeeded 120
OUT=$(cat "$E2E_DIR/state/runs/$run/jobs/job/summary.json")
expect_eq "$(json "d['attempts']")" 2 "attempts of the upload cut off once"
expect_eq "$(ls -A "$remote/up")" big.bin "the files on the host after the retried upload"
expect_eq "$(stat -c %s "$remote/up/big.bin")" $((1 << 30)) "the uploaded file's size"
check "the retry removed the temporary file" \
  grep -q "host vm: removed 1 temporary file(s) left behind by a cut-off upload to $remote/up/big.bin" \
  "$E2E_DIR/oddd.log"
expect_eq "$(ls -A "$E2E_DIR/state/uploads/vm")" "" "the notes of uploads once they are over"

# oddd killed while a container runs on the host: the next oddd removes it through the host.
spec sleepy.yml <<YAML
version: 1
name: sleepy
jobs:
  job:
    host: vm
    steps: [ { run: { image: $ODD_TEST_IMAGE, cmd: ["sleep", "60"] } } ]
YAML
expect_exit 0 "$ODDC" run sleepy.yml --detach
run="$OUT"
has_containers() { [ -n "$(odd_containers)" ]; }
no_containers() { [ -z "$(odd_containers)" ]; }
wait_job_running "$run"
wait_for 30 "the container's start on the host" has_containers
kill -KILL "$ODDD_PID"
wait "$ODDD_PID" 2>/dev/null || true
ODDD_PID=""
check "the container outlived the daemon" has_containers
start_oddd "$hosts"
wait_state "$run" failed 30
wait_for 60 "the removal of the container left on the host" no_containers
check "the removal went through the host" grep -q "on host vm, left behind" "$E2E_DIR/oddd.log"

# oddd killed during an upload: the next oddd finds the upload's note in its state dir and, at
# start-up, removes the hidden temporary file the killed daemon left on the host.
rm -rf "$remote/up"
expect_exit 0 "$ODDC" run upload.yml --detach
run="$OUT"
wait_for 60 "the upload's start" growing
kill -KILL "$ODDD_PID"
wait "$ODDD_PID" 2>/dev/null || true
ODDD_PID=""
check "the temporary file outlived the daemon" growing
expect_eq "$(find "$E2E_DIR/state/uploads/vm" -name '*.json' | wc -l)" 1 "notes of the killed upload"
# A host the config no longer names: its note is reported, and kept for when the host returns.
mkdir -p "$E2E_DIR/state/uploads/gone"
echo '{"format":1,"dest":"/srv/x"}' >"$E2E_DIR/state/uploads/gone/0123456789abcdef.json"
start_oddd "$hosts"
check "oddd reports the uploads to a host no longer configured" \
  grep -q "host gone: 1 cut-off upload(s) may have left temporary files" "$E2E_DIR/oddd.log"
check "their note is kept" test -f "$E2E_DIR/state/uploads/gone/0123456789abcdef.json"
kill -HUP "$ODDD_PID"
warned_twice() { [ "$(grep -c "host gone: 1 cut-off upload(s)" "$E2E_DIR/oddd.log")" -ge 2 ]; }
wait_for 10 "the warning again after SIGHUP" warned_twice
wait_state "$run" failed 30
no_temporary() { [ -z "$(find "$remote/up" -name '.big.bin.odd-tmp-*')" ]; }
wait_for 60 "the removal of the temporary file" no_temporary
check "the next oddd says what it removed" \
  grep -q "host vm: removed 1 temporary file(s) left behind by a cut-off upload to $remote/up/big.bin" \
  "$E2E_DIR/oddd.log"
expect_eq "$(ls -A "$E2E_DIR/state/uploads/vm")" "" "the notes once the sweep is over"
expect_eq "$(ls -A "$remote/up")" "" "the files on the host"
