#!/usr/bin/env bash
# The demo matrix end to end: four images built FROM scratch and tagged by content hash, four test
# containers in parallel, one failing variant; exit codes, summaries, stored logs, cidfiles,
# cleanup, and a second run that is a build cache hit with the same tags.
source "$(dirname "$0")/lib.sh"
start_oddd

work="$E2E_DIR/demo"
cp -r "$E2E_SRC/etc/examples/distro-matrix" "$work"
cp /bin/busybox "$work/test-orch/busybox"
cd "$work"

expect_exit 1 "$ODDC" run odd.yml --json
summary="$OUT"
run=$(json "d['run_id']")
expect_eq "$(json "d['state']")" failed "run state"
expect_eq "$(json "sorted(j['key'] for j in d['jobs'])")" \
  "['test-alpine', 'test-arch', 'test-debian', 'test-fedora']" "job keys"
expect_eq "$(json "{j['key']: j['state'] for j in d['jobs']}['test-fedora']")" failed "fedora"
expect_eq "$(json "sorted(j['state'] for j in d['jobs'])")" \
  "['failed', 'succeeded', 'succeeded', 'succeeded']" "job states"
expect_eq "$(json "d['counts']")" \
  "{'succeeded': 3, 'failed': 1, 'timed_out': 0, 'cancelled': 0, 'skipped': 0}" "counts"
expect_eq "$(json "list(d.keys())")" \
  "['run_id', 'name', 'state', 'started_at', 'finished_at', 'duration_ms', 'caller', 'counts', 'jobs']" \
  "aggregate summary keys"
state="$E2E_DIR/state/runs/$run"
for key in test-arch test-debian test-fedora test-alpine; do
  OUT=$(cat "$state/jobs/$key/summary.json")
  expect_eq "$(json "list(d.keys())")" \
    "['run_id', 'job', 'key', 'matrix', 'host', 'image', 'image_digest', 'container_id', 'container_name', 'started_at', 'finished_at', 'state', 'exit_code', 'attempts', 'error', 'log_paths', 'suites', 'outputs', 'logs']" \
    "$key summary keys"
  name=$(json "d['container_name']")
  expect_eq "$name" "odd-$run-$key" "$key container name"
  expect_eq "$(cat "$state/jobs/$key/$name.cid")" "$(json "d['container_id']")" "$key cidfile"
  expect_eq "$(json "d['image'].split(':')[0]")" "odd-demo-${key#test-}" "$key image"
  expect_eq "$(json "len(d['image'].split(':')[1])")" 12 "$key tag length"
  stdout_log=$(json "d['log_paths']['stdout']")
  check "$key stdout log exists" test -s "$stdout_log"
  # Byte-exact: what oddc logs serves is what zstd -dc reads from the stored file.
  "$ODDC" logs "$run" "$key" >"$E2E_DIR/served"
  zstd -qdc "$stdout_log" >"$E2E_DIR/stored"
  check "$key logs served = stored" cmp "$E2E_DIR/served" "$E2E_DIR/stored"
  check "$key log has suites" grep -q '^PASS 10-boot$' "$E2E_DIR/stored"
  check "$key log has progress" grep -q '^PB> 5/5 done$' "$E2E_DIR/stored"
done
OUT=$(cat "$state/jobs/test-arch/summary.json")
expect_eq "$(json "[s for s in d['suites'] if s['name']=='30-network']")" \
  "[{'name': '30-network', 'status': 'fail', 'expect': 'xfail'}]" "arch xfail suite"
expect_eq "$(json "d['exit_code']")" 0 "arch exit code"
expect_eq "$(json "d['outputs']['distro']")" arch "arch set-output"
OUT=$(cat "$state/jobs/test-fedora/summary.json")
expect_eq "$(json "d['exit_code']")" 1 "fedora exit code"
expect_eq "$(json "[s['status'] for s in d['suites'] if s['name']=='40-services']")" "['fail']" \
  "fedora real failure"
"$ODDC" logs "$run" test-fedora --stderr >"$E2E_DIR/stderr"
check "stderr stored apart" grep -q 'odd-demo.service failed' "$E2E_DIR/stderr"
expect_no_containers

images_before=$(python3 -c "import json,sys; d=json.loads(sys.argv[1]); print(sorted(j['image'] for j in d['jobs']))" "$summary")
expect_exit 1 "$ODDC" run odd.yml --json
run2=$(json "d['run_id']")
expect_eq "$(json "sorted(j['image'] for j in d['jobs'])")" "$images_before" "same tags on the second run"
expect_exit 0 "$ODDC" status "$run2" --json
expect_eq "$(json "sorted(set(j['outputs']['cache_hit'] for j in d['jobs']))")" "['true']" \
  "second run is a cache hit"
expect_no_containers

# The plain (non-TTY) renderer shows state changes and ends with the summary line.
expect_exit 1 "$ODDC" run odd.yml
check "plain output names the failing job" grep -q 'test-fedora' <<<"$OUT"
check "plain output ends with the run's result" grep -q 'failed (3 succeeded, 1 failed)' <<<"$OUT"
stop_oddd
expect_no_containers
