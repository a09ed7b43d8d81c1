#!/usr/bin/env bash
# docker CLI peer of bench/floor: what a user's script does, printing the same JSON lines.
# Per container (p1, p2):
#   docker run --network none --name NAME IMAGE true    (create, attach, start, wait)
#   docker logs NAME >/dev/null 2>&1
#   docker rm NAME >/dev/null
# p2 runs that sequence for N containers through `xargs -P K`. logs times
#   docker logs CONTAINER >/dev/null 2>&1
# (wall, and user+sys CPU of the CLI process); its byte counts are null, since counting would
# add a reader the figure should not include.
#
# Usage: bench/peers/cli_bench.sh p1 N
#        bench/peers/cli_bench.sh p2 N K
#        bench/peers/cli_bench.sh logs CONTAINER
# Environment: ODD_TEST_DOCKER_HOST (else DOCKER_HOST), ODD_TEST_IMAGE (default odd-test/busybox:1).
# Uses Debian's /usr/bin/docker when present (it matches dockerd 20.10), else `docker`.
set -euo pipefail

usage() {
  echo "usage: cli_bench.sh p1 N | p2 N K | logs CONTAINER" >&2
  exit 2
}

host="${ODD_TEST_DOCKER_HOST:-${DOCKER_HOST:-}}"
if [ -z "$host" ]; then
  echo "cli_bench.sh: no dockerd: set ODD_TEST_DOCKER_HOST" >&2
  exit 2
fi
image="${ODD_TEST_IMAGE:-odd-test/busybox:1}"
if [ -x /usr/bin/docker ]; then docker=/usr/bin/docker; else docker="$(command -v docker)"; fi
label="odd.bench.cli=$$"
export host image docker label

run_one() {
  local name="odd-bench-$$-$1"
  "$docker" -H "$host" run --network none --label "$label" --name "$name" "$image" true
  "$docker" -H "$host" logs "$name" >/dev/null 2>&1
  "$docker" -H "$host" rm "$name" >/dev/null
}
export -f run_one

# Containers of a failed run must not linger in the dockerd the next benchmark uses.
# shellcheck disable=SC2317 # called from the trap
cleanup() {
  "$docker" -H "$host" ps -aq --filter "label=$label" | xargs -r "$docker" -H "$host" rm -f \
    >/dev/null 2>&1 || true
}

positive() {
  [[ "$1" =~ ^[1-9][0-9]*$ ]] || usage
}

now_us() {
  local t="$EPOCHREALTIME"
  echo "${t/./}"
}

# Microseconds as milliseconds with two decimals, or seconds with three.
ms() { printf '%d.%02d' $(($1 / 1000)) $((($1 % 1000) / 10)); }
secs() { printf '%d.%03d' $(($1 / 1000000)) $((($1 % 1000000) / 1000)); }

bench_p1() {
  local n="$1" i start run_start us list="" median
  local -a runs=()
  start="$(now_us)"
  for ((i = 0; i < n; i++)); do
    run_start="$(now_us)"
    run_one "p1-$i"
    us=$(($(now_us) - run_start))
    runs+=("$us")
    list+="${list:+,}$(ms "$us")"
  done
  us=$(($(now_us) - start))
  median="$(printf '%s\n' "${runs[@]}" | sort -n |
    awk '{ v[NR] = $1 } END { m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2;
                              printf "%.2f", m / 1000 }')"
  printf '{"bench":"p1","runs":%d,"total_s":%s,"per_run_ms":[%s],"median_ms":%s}\n' \
    "$n" "$(secs "$us")" "$list" "$median"
}

bench_p2() {
  local n="$1" k="$2" start us
  [ "$k" -le "$n" ] || k="$n"
  start="$(now_us)"
  # shellcheck disable=SC2016 # expanded by the inner bash
  seq 0 $((n - 1)) | xargs -P "$k" -I{} bash -c 'run_one "p2-$1"' _ {}
  us=$(($(now_us) - start))
  printf '{"bench":"p2","containers":%d,"in_flight":%d,"wall_s":%s}\n' "$n" "$k" "$(secs "$us")"
}

bench_logs() {
  local container="$1" out real user sys
  "$docker" -H "$host" inspect --type container "$container" >/dev/null
  out="$(mktemp)"
  # bash's `time` reports the CLI process's own wall, user and sys.
  TIMEFORMAT='%3R %3U %3S'
  { time "$docker" -H "$host" logs "$container" >/dev/null 2>&1; } 2>"$out"
  read -r real user sys <"$out"
  rm -f "$out"
  printf '{"stdout_bytes":null,"stderr_bytes":null,"wall_s":%s,"cpu_s":%s}\n' \
    "$real" "$(awk -v u="$user" -v s="$sys" 'BEGIN { printf "%.3f", u + s }')"
}

[ $# -ge 1 ] || usage
case "$1" in
  p1)
    [ $# -eq 2 ] || usage
    positive "$2"
    trap cleanup EXIT
    bench_p1 "$2"
    ;;
  p2)
    [ $# -eq 3 ] || usage
    positive "$2"
    positive "$3"
    trap cleanup EXIT
    bench_p2 "$2" "$3"
    ;;
  logs)
    [ $# -eq 2 ] || usage
    bench_logs "$2"
    ;;
  *) usage ;;
esac
