#!/usr/bin/env bash
# A job past its deadline ends timed_out with its container removed; fail-fast cancels the rest.
source "$(dirname "$0")/lib.sh"
start_oddd
cd "$E2E_DIR"

spec deadline.yml <<YAML
version: 1
name: deadline
defaults: { timeout: 2s, retries: 2 }
jobs:
  slow:
    steps:
      - run: { image: $ODD_TEST_IMAGE, cmd: ["sleep", "60"] }
YAML
start=$(date +%s)
expect_exit 1 "$ODDC" run deadline.yml --json
expect_eq "$(json "d['jobs'][0]['state']")" timed_out "job state"
expect_eq "$(json "d['jobs'][0]['attempts']")" 1 "a timed-out attempt is not retried"
check "the error names the timeout" grep -q "timeout of 2s" <<<"$(json "d['jobs'][0]['error']")"
check "ended well before the container's 60 s" test $(( $(date +%s) - start )) -lt 30
expect_no_containers

spec failfast.yml <<YAML
version: 1
name: failfast
fail_fast: true
concurrency: 3
jobs:
  test:
    matrix: { n: [one, two, three] }
    steps:
      - run:
          image: $ODD_TEST_IMAGE
          cmd: "if [ \$N = two ]; then sleep 1; exit 3; fi; sleep 60"
          env: { N: "\${{ matrix.n }}" }
YAML
start=$(date +%s)
expect_exit 1 "$ODDC" run failfast.yml --json
expect_eq "$(json "{j['key']: j['state'] for j in d['jobs']}")" \
  "{'test-one': 'cancelled', 'test-two': 'failed', 'test-three': 'cancelled'}" "fail-fast states"
expect_eq "$(json "[j['exit_code'] for j in d['jobs'] if j['key']=='test-two']")" "[3]" "exit code"
check "fail-fast ended the run early" test $(( $(date +%s) - start )) -lt 30
expect_no_containers

# A launch failure (no such image) is an infrastructure failure: exit 5, not retried.
spec noimage.yml <<'YAML'
version: 1
name: noimage
defaults: { retries: 3 }
jobs:
  job:
    steps: [ { run: { image: "odd-test/does-not-exist:1" } } ]
YAML
expect_exit 5 "$ODDC" run noimage.yml --json
expect_eq "$(json "d['jobs'][0]['attempts']")" 1 "not retried"
check "the error names the image" grep -q "does-not-exist" <<<"$(json "d['jobs'][0]['error']")"
expect_no_containers
stop_oddd
