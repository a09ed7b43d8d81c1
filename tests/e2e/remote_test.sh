#!/usr/bin/env bash
# Remote hosts over SSH, end to end through oddd and oddc against the private sshd in its network
# namespace (tests/support/sshd.sh): a `.env` uploaded from a secret, a tree uploaded, a command
# run with outputs, results downloaded into the run's artifacts, the secret in no stored file;
# a container built and run on the host's dockerd through the SSH tunnel; a host reached through
# ssh-agent; a failing command, a deadline that kills the remote command, a host whose key
# changed, and the idle connection to the host's dockerd closed.
source "$(dirname "$0")/lib.sh"
: "${ODD_TEST_SSHD_DIR:?run under tests/support/with-dockerd.sh}"
# shellcheck disable=SC1091
source "$ODD_TEST_SSHD_DIR/env"
remote_dir="$ODD_SSHD_DIR/remote/e2e-$$"
secret_value="tok-$RANDOM$RANDOM-secret"
printf 'TOKEN=%s\n' "$secret_value" >"$E2E_DIR/tester.env"

host_entry() { # NAME KNOWN_HOSTS [AUTH]
  cat <<YAML
  $1:
    address: $ODD_SSHD_ADDR
    port: $ODD_SSHD_PORT
    user: $ODD_SSHD_USER
    ${3:-identity: $ODD_SSHD_DIR/id_ed25519}
    known_hosts: $ODD_SSHD_DIR/$2
    docker: true
YAML
}
# oddd authenticates to `agented` through this ssh-agent, which holds the ecdsa key.
agent_env=$(ssh-agent -s -a "$E2E_DIR/agent.sock")
agent_pid=$(sed -n 's/.*SSH_AGENT_PID=\([0-9]*\).*/\1/p' <<<"$agent_env")
E2E_ON_EXIT+=("kill $agent_pid")
export SSH_AUTH_SOCK="$E2E_DIR/agent.sock"
ssh-add -q "$ODD_SSHD_DIR/id_ecdsa" </dev/null 2>/dev/null
start_oddd "hosts:
$(host_entry tester1 known_hosts)
$(host_entry moved known_hosts_other)
$(host_entry agented known_hosts "agent: true")
secrets:
  TESTER_ENV: { file: $E2E_DIR/tester.env }"
cd "$E2E_DIR"

mkdir -p suites/unit
printf '#!/bin/sh\necho unit ok\n' >suites/unit/run.sh
chmod 0755 suites/unit/run.sh
echo data >suites/data.txt
mkdir -p ctx
cp /bin/busybox ctx/busybox
printf 'FROM scratch\nCOPY busybox /bin/busybox\nENTRYPOINT ["/bin/busybox"]\n' >ctx/Dockerfile

spec remote.yml <<YAML
version: 1
name: remote
jobs:
  flux:
    host: tester1
    steps:
      - upload: { content: "\${{ secrets.TESTER_ENV }}", dest: "$remote_dir/.env", mode: "0600" }
      - upload: { src: ./suites, dest: "$remote_dir/suites" }
      - id: suite
        exec:
          cmd: >-
            cd $remote_dir && stat -c %a .env && suites/unit/run.sh &&
            echo "the token is \$(cat .env)" &&
            echo "::set-output name=suite_files::\$(ls suites | wc -l)" &&
            mkdir -p raw-results && echo '{"passed": 3}' > raw-results/summary.json
      - download: { src: "$remote_dir/raw-results", dest: raw-results }
  image:
    host: tester1
    needs: [flux]
    steps:
      - id: build
        build: { context: ./ctx, repository: odd-e2e-remote }
      - run: { image: "\${{ steps.build.outputs.image }}", cmd: ["echo", "hello from the remote dockerd"] }
  agent:
    host: agented
    steps:
      - exec: { cmd: "echo signed in through ssh-agent" }
YAML
expect_exit 0 "$ODDC" run remote.yml --json
run_id=$(json "d['run_id']")
expect_eq "$(json "[j for j in d['jobs'] if j['job']=='flux'][0]['outputs']['suite_files']")" 2 \
  "::set-output from the exec step"
expect_exit 0 "$ODDC" logs "$run_id" flux
check "the exec output is in the job's log" grep -q "unit ok" <<<"$OUT"
check "the uploaded .env has mode 600" grep -qx "600" <<<"$OUT"
check "the secret is masked in the log" grep -qx "the token is \*\*\*" <<<"$OUT"
expect_exit 0 "$ODDC" logs "$run_id" image
check "the container ran on the remote dockerd" grep -q "hello from the remote dockerd" <<<"$OUT"
expect_exit 0 "$ODDC" logs "$run_id" agent
check "the host reached through ssh-agent ran the step" \
  grep -q "signed in through ssh-agent" <<<"$OUT"
expect_exit 0 "$ODDC" artifacts "$run_id" -o "$E2E_DIR/art"
expect_eq "$(cat "$E2E_DIR/art/files/flux/raw-results/summary.json")" '{"passed": 3}' \
  "the downloaded results are in the artifacts"
if grep -rqF "$secret_value" "$E2E_DIR/state"; then fail "the secret was written under the state dir"; fi
if grep -q "AES-128-CTR" "$E2E_DIR/oddd.log"; then fail "oddd could not install its AES-128-CTR provider"; fi
mapfile -t images < <("${DOCKER[@]}" images -q odd-e2e-remote)
[ ${#images[@]} -eq 0 ] || "${DOCKER[@]}" rmi -f "${images[@]}" >/dev/null 2>&1 || true

# A secret from oddc's environment (--secret): used by the command, masked in the live output, the
# stored log and the events, and in no file of the daemon's.
run_secret="run-$RANDOM$RANDOM-token"
spec oddc_secret.yml <<YAML
version: 1
name: oddc-secret
jobs:
  use:
    host: tester1
    steps:
      - upload: { content: "\${{ secrets.RUN_TOKEN }}", dest: "$remote_dir/run-token", mode: "0600" }
      - exec: { cmd: "echo token=\${{ secrets.RUN_TOKEN }}; echo file=\$(cat $remote_dir/run-token)" }
YAML
RUN_TOKEN="$run_secret" expect_exit 0 "$ODDC" run oddc_secret.yml --secret RUN_TOKEN -vv
check "the live output masks the secret" grep -q "token=\*\*\*" <<<"$OUT"
check "the secret reached the host" grep -qx "$run_secret" "$remote_dir/run-token"
secret_run=$(sed -n "1s/^run //p" <<<"$OUT")
expect_exit 0 "$ODDC" logs "$secret_run" use
check "the stored log masks it, in the command's output and in the file it read" \
  grep -q "token=\*\*\*" <<<"$OUT"
check "the file's content is masked too" grep -q "file=\*\*\*" <<<"$OUT"
expect_exit 0 "$ODDC" events "$secret_run"
if grep -qF "$run_secret" <<<"$OUT$ERR"; then fail "an event carries the secret from --secret"; fi
if grep -rqF "$run_secret" "$E2E_DIR/state" "$E2E_DIR/oddd.log"; then
  fail "the secret from --secret was written by the daemon"
fi

spec failing.yml <<YAML
version: 1
name: failing
jobs:
  bad:
    host: tester1
    steps:
      - exec: { cmd: "echo about to fail; exit 3" }
YAML
expect_exit 1 "$ODDC" run failing.yml --json
expect_eq "$(json "d['jobs'][0]['exit_code']")" 3 "a failing command's exit code"

spec slow.yml <<YAML
version: 1
name: slow
jobs:
  slow:
    host: tester1
    steps:
      - exec: { cmd: "mkdir -p $remote_dir && echo \$\$ > $remote_dir/slow.pid && exec sleep 60", timeout: 2s }
YAML
expect_exit 1 "$ODDC" run slow.yml --json
expect_eq "$(json "d['jobs'][0]['state']")" timed_out "an exec past its timeout"
pid=$(cat "$remote_dir/slow.pid")
if grep -qs '^State:[^Z]*$' "/proc/$pid/status"; then fail "the remote command $pid still runs"; fi

spec moved.yml <<YAML
version: 1
name: moved
jobs:
  job:
    host: moved
    steps:
      - exec: { cmd: "true" }
YAML
expect_exit 5 "$ODDC" run moved.yml
check "a changed host key is refused naming the host" grep -q "moved (" <<<"$ERR$OUT"
check "and saying the key does not match" grep -q "does not match" <<<"$ERR$OUT"

spec nodocker.yml <<YAML
version: 1
name: local-exec
jobs:
  job:
    steps:
      - exec: { cmd: "true" }
YAML
expect_exit 2 "$ODDC" run nodocker.yml
check "exec on local is refused with its path" grep -q "jobs.job.steps\[0\].exec" <<<"$ERR"

# The kept-alive connection to tester1's dockerd (from the image job) closes after 30 s unused,
# giving its channel back: nothing holds tester1 once no step runs.
in_use=""
for _ in $(seq 1 45); do
  expect_exit 0 "$ODDC" hosts --json
  in_use=$(json "d['hosts']['tester1']['in_use']")
  [ "$in_use" = 0 ] && break
  sleep 1
done
expect_eq "$in_use" 0 "tester1's channels in use once its idle dockerd connection closed"
rm -rf "$remote_dir"
