#!/usr/bin/env bash
# Runs a command against a private dockerd (tests/support/dockerd.sh) with the test image built,
# and always stops that dockerd afterwards. The command sees
#   ODD_TEST_DOCKER_HOST=unix:///tmp/odd-d.XXXXXX/docker.sock   ODD_TEST_IMAGE=odd-test/busybox:1
# With ODD_TEST_DOCKER_HOST already set, that dockerd is used and only the image is ensured.
#
# Usage: tests/support/with-dockerd.sh CMD [ARG...]      exits with CMD's status
set -euo pipefail

if [ $# -eq 0 ]; then
  echo "usage: with-dockerd.sh CMD [ARG...]" >&2
  exit 2
fi

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export ODD_TEST_IMAGE="${ODD_TEST_IMAGE:-odd-test/busybox:1}"

dir=""
child=""
# shellcheck disable=SC2317 # called from traps
cleanup() {
  if [ -n "$dir" ]; then
    # Unset: dockerd.sh leaves a dockerd named by ODD_TEST_DOCKER_HOST alone, and that is now ours.
    env -u ODD_TEST_DOCKER_HOST "$here/dockerd.sh" stop "$dir" ||
      echo "with-dockerd.sh: stopping dockerd in $dir failed" >&2
    dir=""
  fi
}
trap cleanup EXIT
# Before CMD runs a signal just exits (through the EXIT trap); while it runs, the signal is passed
# on as SIGTERM (an async child of a non-interactive shell ignores SIGINT) and its exit awaited.
# shellcheck disable=SC2317 # called from traps
on_signal() {
  if [ -n "$child" ]; then kill -TERM "$child" 2>/dev/null || true; else exit "$1"; fi
}
trap 'on_signal 130' INT
trap 'on_signal 143' TERM

if [ -z "${ODD_TEST_DOCKER_HOST:-}" ]; then
  dir="$(mktemp -d /tmp/odd-d.XXXXXX)"
  ODD_TEST_DOCKER_HOST="$("$here/dockerd.sh" start "$dir")"
  export ODD_TEST_DOCKER_HOST
fi
"$here/test-image.sh" "$ODD_TEST_DOCKER_HOST" "$ODD_TEST_IMAGE"

# In the background so a signal's trap runs at once rather than after CMD ends; <&0 keeps stdin.
"$@" <&0 &
child=$!
while :; do
  status=0
  wait "$child" || status=$?
  kill -0 "$child" 2>/dev/null || break
done
exit "$status"
