#!/usr/bin/env bash
# Remote hosts where no sshd listens: `oddc hosts` lists the configured ones (idle until used),
# an exec step on one fails as an infrastructure failure naming the host and turns it failing,
# SIGHUP adds and removes hosts, and a broken config on SIGHUP keeps the running one.
source "$(dirname "$0")/lib.sh"

host_entry() { # NAME PORT
  cat <<YAML
  $1:
    address: 127.0.0.1
    port: $2
    user: odd
    agent: true
    known_hosts: $E2E_DIR/known_hosts
YAML
}
: >"$E2E_DIR/known_hosts"
start_oddd "hosts:
$(host_entry tester1 1)"
cd "$E2E_DIR"

expect_exit 0 "$ODDC" hosts
check "tester1 is listed with its address, idle" \
  grep -Eq "^tester1 +127\.0\.0\.1:1 +idle +0 +0 +-$" <<<"$OUT"
expect_exit 0 "$ODDC" hosts --json
expect_eq "$(json "d['hosts']['tester1']['state']")" idle "tester1's state in the JSON"
expect_eq "$(json "d['hosts']['tester1']['address']")" 127.0.0.1:1 "tester1's address"

spec exec.yml <<'YAML'
version: 1
name: exec
jobs:
  flux:
    host: tester1
    steps:
      - exec: { cmd: "true" }
YAML
expect_exit 5 "$ODDC" run exec.yml --json
check "the job's error names the host" grep -q "tester1 (127.0.0.1:1)" <<<"$(json "d['jobs'][0]['error']")"
expect_exit 0 "$ODDC" hosts --json
expect_eq "$(json "d['hosts']['tester1']['state']")" failing "tester1 after a failed exec"

spec local.yml <<'YAML'
version: 1
name: local
jobs:
  job:
    steps:
      - upload: { content: "x", dest: "odd/x" }
YAML
expect_exit 2 "$ODDC" run local.yml
check "an upload on local is refused naming its path" \
  grep -q "jobs.job.steps\[0\].upload: needs a remote host" <<<"$ERR"

# SIGHUP: tester1 goes, tester2 comes.
sed -i '/^hosts:/,$d' "$E2E_DIR/oddd.yaml"
{ echo "hosts:"; host_entry tester2 2; } >>"$E2E_DIR/oddd.yaml"
kill -HUP "$ODDD_PID"
for _ in $(seq 1 50); do
  "$ODDC" hosts 2>/dev/null | grep -q "^tester2 " && break
  sleep 0.1
done
expect_exit 0 "$ODDC" hosts
check "tester2 was added" grep -q "^tester2 " <<<"$OUT"
check "tester1 was removed" test -z "$(grep "^tester1 " <<<"$OUT" || true)"

# A config that no longer parses keeps the running one.
echo "max_concurrency: many" >>"$E2E_DIR/oddd.yaml"
kill -HUP "$ODDD_PID"
for _ in $(seq 1 50); do
  grep -q "keeping the running config" "$E2E_DIR/oddd.log" && break
  sleep 0.1
done
check "the reload error is logged" grep -q "keeping the running config" "$E2E_DIR/oddd.log"
expect_exit 0 "$ODDC" hosts
check "tester2 is still there" grep -q "^tester2 " <<<"$OUT"
stop_oddd
