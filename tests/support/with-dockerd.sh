#!/usr/bin/env bash
# Runs a command against a private dockerd (tests/support/dockerd.sh) with the test image built
# and a private sshd in a network namespace (tests/support/sshd.sh) whose sessions reach that
# dockerd, and always stops both afterwards. The command sees
#   ODD_TEST_DOCKER_HOST=unix:///tmp/odd-d.XXXXXX/docker.sock   ODD_TEST_IMAGE=odd-test/busybox:1
#   ODD_TEST_SSHD_DIR=/tmp/odd-s.XXXXXX
# With ODD_TEST_DOCKER_HOST (ODD_TEST_SSHD_DIR) already set, that dockerd (sshd) is used.
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
sshd_dir=""
child=""
# shellcheck disable=SC2317 # called from traps
cleanup() {
  if [ -n "$sshd_dir" ]; then
    "$here/sshd.sh" stop "$sshd_dir" || echo "with-dockerd.sh: stopping sshd in $sshd_dir failed" >&2
    sshd_dir=""
  fi
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
if [ -z "${ODD_TEST_SSHD_DIR:-}" ]; then
  sshd_dir="$(mktemp -d /tmp/odd-s.XXXXXX)"
  ODD_SSHD_DOCKER_HOST="$ODD_TEST_DOCKER_HOST" "$here/sshd.sh" start "$sshd_dir" --netns >/dev/null
  export ODD_TEST_SSHD_DIR="$sshd_dir"
fi

# In the background so a signal's trap runs at once rather than after CMD ends; <&0 keeps stdin.
"$@" <&0 &
child=$!
while :; do
  status=0
  wait "$child" || status=$?
  kill -0 "$child" 2>/dev/null || break
done
exit "$status"
