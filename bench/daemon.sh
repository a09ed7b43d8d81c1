#!/usr/bin/env bash
# Benchmarks of oddd and oddc against what a user would otherwise run, side by side in one run on
# a private dockerd, with each figure's ratio to its target (bench/README.md):
#   P3/P4  a container writing 2 x ODD_BENCH_FLOOD_BYTES over stdout and stderr, run through oddd
#          vs `docker run` attached vs `docker run -d` + `docker logs -f`: wall time, and the CPU
#          of dockerd plus the reader (oddd, or the docker CLI); stored bytes checked
#   P9     oddd's RSS idle, and its peak with 8 concurrent floods and one stalled log follower
#   P10    `oddc status RUN` round trip (process start to answer) vs `docker ps`
#   P16    a 16-container matrix of `true` through oddd vs the raw-API floor (16 in flight)
# Usage: bench/daemon.sh        Environment: ODD_BUILD_DIR (default <repo>/build),
#   ODD_TEST_DOCKER_HOST (use that dockerd), ODD_BENCH_ONLY (default "p3 p9 p10 p16"),
#   ODD_BENCH_FLOOD_BYTES (default 275000000 per stream)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build_dir="${ODD_BUILD_DIR:-$root/build}"
only="${ODD_BENCH_ONLY:-p3 p9 p10 p16}"
flood_bytes="${ODD_BENCH_FLOOD_BYTES:-275000000}"
export ODD_TEST_IMAGE="${ODD_TEST_IMAGE:-odd-test/busybox:1}"
if [ -x /usr/bin/docker ]; then docker=/usr/bin/docker; else docker="$(command -v docker)"; fi

# shellcheck source=bench/lib.sh
source "$root/bench/lib.sh"

cmake --build "$build_dir" --target oddd oddc odd_bench_floor -j 2 >/dev/null
oddd="$build_dir/daemon/oddd"
oddc="$build_dir/oddc/oddc"
floor="$build_dir/bench/odd_bench_floor"

work="$(mktemp -d /tmp/odd-bench.XXXXXX)"
dockerd_dir=""
oddd_pid=""
cleanup() {
  if [ -n "$oddd_pid" ]; then kill -TERM "$oddd_pid" 2>/dev/null || true; wait "$oddd_pid" || true; fi
  if [ -n "$dockerd_dir" ]; then
    env -u ODD_TEST_DOCKER_HOST "$root/tests/support/dockerd.sh" stop "$dockerd_dir" || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT

if [ -z "${ODD_TEST_DOCKER_HOST:-}" ]; then
  dockerd_dir="$(mktemp -d /tmp/odd-bd.XXXXXX)"
  ODD_TEST_DOCKER_HOST="$("$root/tests/support/dockerd.sh" start "$dockerd_dir")"
fi
socket="${ODD_TEST_DOCKER_HOST#unix://}"
"$root/tests/support/test-image.sh" "$ODD_TEST_DOCKER_HOST" "$ODD_TEST_IMAGE"
dk() { "$docker" -H "$ODD_TEST_DOCKER_HOST" "$@"; }
dockerd_pid="$(cat "$(dirname "$socket")/dockerd.pid" 2>/dev/null || pgrep -o -x dockerd)"

# CPU seconds (user + system) a process has used so far.
cpu_of() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%.3f", ($14 + $15) / hz }' "/proc/$1/stat"; }
now() { echo "$EPOCHREALTIME"; }
sub() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a - b }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "n/a"; else printf "%.2f", a / b }'; }
rss_kib() { awk '/^VmRSS/ { print $2 }' "/proc/$1/status"; }
hwm_kib() { awk '/^VmHWM/ { print $2 }' "/proc/$1/status"; }

export ODD_SOCKET="$work/oddd.sock"
cat >"$work/oddd.yaml" <<YAML
socket: $ODD_SOCKET
state_dir: $work/state
docker_host: $ODD_TEST_DOCKER_HOST
default_network: none
max_concurrency: 16
log_level: warn
YAML
"$oddd" --config "$work/oddd.yaml" >"$work/oddd.log" 2>&1 &
oddd_pid=$!
for _ in $(seq 1 100); do "$oddc" ping >/dev/null 2>&1 && break; sleep 0.1; done
cd "$work"

# A shell line writing $1 bytes to each of stdout and stderr at once, in 1000-byte lines.
# shellcheck disable=SC2016 # $l is the container shell's
flood_script() {
  printf 'l="$(head -c 999 /dev/zero | tr "\\0" o)"; yes "$l" | head -c %d & yes "$l" | head -c %d >&2; wait' "$1" "$1"
}

if wants p9; then
  sleep 1
  idle=$(rss_kib "$oddd_pid")
fi

if wants p3; then
  script="$(flood_script "$flood_bytes")"
  total=$((2 * flood_bytes))
  say "p3: docker run attached, 2 x $flood_bytes bytes"
  d0=$(cpu_of "$dockerd_pid"); t0=$(now)
  TIMEFORMAT='%3U %3S'
  cli_times=$({ time dk run --rm --network none "$ODD_TEST_IMAGE" sh -c "$script" >/dev/null 2>&1; } 2>&1)
  t1=$(now); d1=$(cpu_of "$dockerd_pid")
  attach_wall=$(sub "$t1" "$t0")
  attach_cpu=$(awk -v d="$(sub "$d1" "$d0")" -v t="$cli_times" 'BEGIN { split(t, x, " "); printf "%.3f", d + x[1] + x[2] }')

  say "p3: docker run -d + docker logs -f"
  d0=$(cpu_of "$dockerd_pid"); t0=$(now)
  id=$(dk run -d --network none "$ODD_TEST_IMAGE" sh -c "$script")
  logs_times=$({ time dk logs -f "$id" >/dev/null 2>&1; } 2>&1)
  t1=$(now); d1=$(cpu_of "$dockerd_pid")
  dk rm -f "$id" >/dev/null
  logs_wall=$(sub "$t1" "$t0")
  logs_cpu=$(awk -v d="$(sub "$d1" "$d0")" -v t="$logs_times" 'BEGIN { split(t, x, " "); printf "%.3f", d + x[1] + x[2] }')

  say "p3: oddd"
  cat >flood.yml <<YAML
version: 1
name: flood
defaults: { timeout: 30m }
jobs:
  flood:
    steps:
      - run: { image: $ODD_TEST_IMAGE, cmd: ["sh", "-c", '$script'] }
YAML
  d0=$(cpu_of "$dockerd_pid"); o0=$(cpu_of "$oddd_pid"); t0=$(now)
  "$oddc" run flood.yml --json >"$work/flood.json"
  t1=$(now); d1=$(cpu_of "$dockerd_pid"); o1=$(cpu_of "$oddd_pid")
  odd_wall=$(sub "$t1" "$t0")
  odd_cpu=$(awk -v a="$(sub "$d1" "$d0")" -v b="$(sub "$o1" "$o0")" 'BEGIN { printf "%.3f", a + b }')
  stored=0
  for stream in stdout stderr; do
    path=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['jobs'][0]['log_paths'][sys.argv[2]])" "$work/flood.json" "$stream")
    n=$(zstd -qdc "$path" | wc -c)
    stored=$((stored + n))
  done
  echo "P3/P4 flood of $total bytes:"
  echo "  docker run (attached):     wall ${attach_wall}s  dockerd+cli cpu ${attach_cpu}s"
  echo "  docker run -d + logs -f:   wall ${logs_wall}s  dockerd+cli cpu ${logs_cpu}s"
  echo "  oddd:                      wall ${odd_wall}s  dockerd+oddd cpu ${odd_cpu}s  stored $stored bytes"
  echo "  throughput vs docker run:  $(ratio "$attach_wall" "$odd_wall")x   (target >= 1.00)"
  echo "  cpu vs docker logs -f:     $(ratio "$odd_cpu" "$logs_cpu")x   (target <= 0.60)"
  echo "  nothing lost:              $([ "$stored" -eq "$total" ] && echo yes || echo "NO ($stored of $total)")"
fi

if wants p9; then
  say "p9: 8 concurrent floods with one stalled follower"
  script="$(flood_script 50000000)"
  cat >floods.yml <<YAML
version: 1
name: floods
concurrency: 8
defaults: { timeout: 30m }
jobs:
  flood:
    matrix: { n: [1, 2, 3, 4, 5, 6, 7, 8] }
    steps:
      - run: { image: $ODD_TEST_IMAGE, cmd: ["sh", "-c", '$script'] }
YAML
  run=$("$oddc" run floods.yml --detach | tr -d '[:space:]')
  sleep 1
  mkfifo "$work/stall"
  "$oddc" logs "$run" flood-1 -f >"$work/stall" &
  follower=$!
  exec 7<>"$work/stall"
  peak=0
  while :; do
    state=$("$oddc" status "$run" --json | python3 -c "import json,sys; print(json.load(sys.stdin)['state'])")
    r=$(rss_kib "$oddd_pid"); [ "$r" -gt "$peak" ] && peak=$r
    [ "$state" = running ] || [ "$state" = queued ] || break
    sleep 0.2
  done
  kill "$follower" 2>/dev/null || true
  exec 7>&-
  echo "P9 oddd memory:"
  echo "  idle RSS:                  $((idle / 1024)) MiB ($idle KiB)   ratio $(ratio "$idle" 10240)x of 10 MiB"
  echo "  8 floods + stalled reader: $((peak / 1024)) MiB peak RSS sampled, VmHWM $(( $(hwm_kib "$oddd_pid") / 1024 )) MiB   ratio $(ratio "$peak" 65536)x of 64 MiB"
fi

if wants p10; then
  run=$("$oddc" ls --json | python3 -c "import json,sys; r=json.load(sys.stdin); print(r[0]['id'] if r else '')")
  if [ -z "$run" ]; then
    printf 'version: 1\nname: one\njobs:\n  one:\n    steps: [ { run: { image: %s, cmd: ["true"] } } ]\n' \
      "$ODD_TEST_IMAGE" >one.yml
    run=$("$oddc" run one.yml --json | python3 -c "import json,sys; print(json.load(sys.stdin)['run_id'])")
  fi
  median_ms() {
    local t0 t1 times=()
    for _ in $(seq 1 31); do
      t0=$(now); "$@" >/dev/null; t1=$(now)
      times+=("$(sub "$t1" "$t0")")
    done
    printf '%s\n' "${times[@]}" | sort -n | awk '{ a[NR] = $1 } END { printf "%.1f", a[int((NR + 1) / 2)] * 1000 }'
  }
  odd_ms=$(median_ms "$oddc" status "$run")
  ps_ms=$(median_ms dk ps)
  echo "P10 status round trip (median of 31, process start to answer):"
  echo "  oddc status: ${odd_ms} ms   docker ps: ${ps_ms} ms   ratio $(ratio "$odd_ms" 10)x of 10 ms"
fi

if wants p16; then
  cat >sixteen.yml <<YAML
version: 1
name: sixteen
concurrency: 16
jobs:
  t:
    matrix: { n: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16] }
    steps:
      - run: { image: $ODD_TEST_IMAGE, cmd: ["true"] }
YAML
  best_floor=""
  best_odd=""
  for round in 1 2 3; do
    out=$("$floor" p2 "$socket" "$ODD_TEST_IMAGE" 16 16)
    f=$(python3 -c "import json,sys; print(json.loads(sys.argv[1])['wall_s'])" "$out")
    t0=$(now); "$oddc" run sixteen.yml -q >/dev/null; t1=$(now)
    o=$(sub "$t1" "$t0")
    say "p16 round $round: floor ${f}s oddd ${o}s"
    best_floor=$(awk -v a="$f" -v b="${best_floor:-1e9}" 'BEGIN { print (a < b ? a : b) }')
    best_odd=$(awk -v a="$o" -v b="${best_odd:-1e9}" 'BEGIN { print (a < b ? a : b) }')
  done
  echo "P16 16-container matrix of true (best of 3):"
  echo "  raw-API floor: ${best_floor}s   oddd + oddc: ${best_odd}s   ratio $(ratio "$best_odd" "$best_floor")x   (target <= 1.03)"
fi
