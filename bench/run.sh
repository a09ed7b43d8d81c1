#!/usr/bin/env bash
# Runs odd's Docker benchmarks side by side with their peers on a private dockerd and prints the
# figures, the ratios to the raw-API floor and the targets odd is held to (bench/README.md).
#   P1  one container at a time: create, start, wait, logs, remove of `true`
#   P2  many containers of `true` with a bounded number in flight
#   P5  reading the logs of an exited container that wrote 550 MB over stdout and stderr
#   P6  builds of a 100 MB context of 3,006 files: first build, no-op rebuild, cold hashing
# Peers: the floor (bench/floor), docker-py, the docker CLI, curl (P5). odd's own runner,
# $ODD_BUILD_DIR/bench/odd_bench_engine (same subcommands and JSON as the floor), is included
# with its targets when it has been built.
#
# Usage: bench/run.sh
# Environment:
#   ODD_BUILD_DIR          CMake build dir for bench/odd_bench_floor (default <repo>/build); when it
#                          holds no configured build, the floor is compiled with ${CXX:-c++} -O2
#   ODD_TEST_DOCKER_HOST   use this dockerd instead of starting a private one
#   ODD_BENCH_ONLY         the benchmarks to run (default "p1 p2 p5 p6")
#   ODD_BENCH_P1_N=20  ODD_BENCH_P2_N=50  ODD_BENCH_P2_K=8  ODD_BENCH_P5_BYTES=275000000 (a stream)
#   ODD_BENCH_ROUNDS       rounds of P1 and P2 for the floor and odd, alternating (default 3; one
#                          when odd's runner is not built); the best round of each is compared
#   ODD_BENCH_JSON         also append each raw result, as {"bench","peer","result"}, to this file
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build_dir="${ODD_BUILD_DIR:-$root/build}"
only="${ODD_BENCH_ONLY:-p1 p2 p5 p6}"
p1_n="${ODD_BENCH_P1_N:-20}"
p2_n="${ODD_BENCH_P2_N:-50}"
p2_k="${ODD_BENCH_P2_K:-8}"
p5_bytes="${ODD_BENCH_P5_BYTES:-275000000}"
p5_line=1000 # bytes per log line, newline included
export ODD_TEST_IMAGE="${ODD_TEST_IMAGE:-odd-test/busybox:1}"

if [ -x /usr/bin/docker ]; then docker=/usr/bin/docker; else docker="$(command -v docker)"; fi
# Debian's interpreter is the one with Debian's python3-docker.
if [ -x /usr/bin/python3 ]; then python=/usr/bin/python3; else python="$(command -v python3)"; fi

# shellcheck source=bench/lib.sh
source "$root/bench/lib.sh"

work="$(mktemp -d /tmp/odd-bench.XXXXXX)"
dockerd_dir=""
p5_container=""
# shellcheck disable=SC2317 # called from traps
cleanup() {
  if [ -n "$p5_container" ]; then
    "$docker" -H "$ODD_TEST_DOCKER_HOST" rm -f "$p5_container" >/dev/null 2>&1 || true
  fi
  if [ -n "$dockerd_dir" ]; then
    env -u ODD_TEST_DOCKER_HOST "$root/tests/support/dockerd.sh" stop "$dockerd_dir" ||
      say "stopping dockerd in $dockerd_dir failed"
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- programs and dockerd -------------------------------------------------------------------

floor="$build_dir/bench/odd_bench_floor"
if [ -f "$build_dir/CMakeCache.txt" ]; then
  say "building odd_bench_floor in $build_dir"
  if ! cmake --build "$build_dir" --target odd_bench_floor -j 2 >"$work/build.log" 2>&1; then
    cat "$work/build.log" >&2
    exit 1
  fi
  build_type="$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$build_dir/CMakeCache.txt")"
  floor_build="in $build_dir (${build_type:-no build type})"
else
  say "no CMake build in $build_dir: compiling the floor with ${CXX:-c++} -O2"
  floor="$work/odd_bench_floor"
  "${CXX:-c++}" -std=c++20 -O2 -o "$floor" "$root/bench/floor/floor.cpp"
  floor_build="with ${CXX:-c++} -O2"
fi
odd="$build_dir/bench/odd_bench_engine"
# A stale odd runner would be measured silently: rebuild it when the build has the target. If it
# does not build (the engine mid-change), the run goes on without it.
targets=""
[ ! -f "$build_dir/CMakeCache.txt" ] ||
  targets="$(cmake --build "$build_dir" --target help 2>/dev/null || true)"
if grep -qE '(^|\.\.\. )odd_bench_engine(:|$)' <<<"$targets"; then
  say "building odd_bench_engine in $build_dir"
  if ! cmake --build "$build_dir" --target odd_bench_engine -j 2 >"$work/build-odd.log" 2>&1; then
    say "odd_bench_engine does not build, leaving it out:"
    grep -m 5 -E 'error:|Error [0-9]' "$work/build-odd.log" >&2 ||
      tail -n 5 "$work/build-odd.log" >&2
    odd=""
  fi
fi
[ -n "$odd" ] && [ -x "$odd" ] || odd=""

if [ -z "${ODD_TEST_DOCKER_HOST:-}" ]; then
  dockerd_dir="$(mktemp -d /tmp/odd-bd.XXXXXX)"
  say "starting a private dockerd in $dockerd_dir"
  ODD_TEST_DOCKER_HOST="$("$root/tests/support/dockerd.sh" start "$dockerd_dir")"
fi
export ODD_TEST_DOCKER_HOST
socket="${ODD_TEST_DOCKER_HOST#unix://}"
"$root/tests/support/test-image.sh" "$ODD_TEST_DOCKER_HOST" "$ODD_TEST_IMAGE"

# --- running peers --------------------------------------------------------------------------

round=1

# time_peer BENCH PEER CMD...: a reader that prints no JSON: its wall time and user+sys CPU
# (children included) are measured here, its output discarded.
time_peer() {
  local bench="$1" peer="$2" times real user sys cpu
  shift 2
  say "$bench: $peer"
  if ! times="$(
    TIMEFORMAT='%3R %3U %3S'
    { time "$@" >/dev/null 2>"$work/$bench.$peer.$round.err"; } 2>&1
  )"; then
    say "$bench: $peer failed: $(tail -n 3 "$work/$bench.$peer.$round.err")"
    return 0
  fi
  read -r real user sys <<<"$times"
  cpu="$(awk -v u="$user" -v s="$sys" 'BEGIN { printf "%.3f", u + s }')"
  save_result "$bench" "$peer" \
    "{\"stdout_bytes\":null,\"stderr_bytes\":null,\"wall_s\":$real,\"cpu_s\":$cpu}"
}

dockerpy="$root/bench/peers/dockerpy_bench.py"
cli="$root/bench/peers/cli_bench.sh"

# The first containers of a fresh dockerd are slower: warm it up unmeasured.
"$floor" p1 "$socket" "$ODD_TEST_IMAGE" 3 >/dev/null

# The targets for odd are a few percent of the floor, well inside the drift of a shared 2-core
# machine: the two alternate over several rounds, each going first in turn, and the best round
# of each is compared (load only ever adds time).
rounds="${ODD_BENCH_ROUNDS:-3}"
[ -n "$odd" ] || rounds=1
# api_rounds BENCH ARGS...: the floor and odd (when built) for $rounds rounds.
api_rounds() {
  local bench="$1" peer
  shift
  for ((round = 1; round <= rounds; round++)); do
    for peer in $( ((round % 2)) && echo floor odd || echo odd floor); do
      if [ "$peer" = floor ]; then
        run_peer "$bench" floor "$floor" "$bench" "$socket" "$ODD_TEST_IMAGE" "$@"
      elif [ -n "$odd" ]; then
        run_peer "$bench" odd "$odd" "$bench" "$socket" "$ODD_TEST_IMAGE" "$@"
      fi
    done
  done
  round=1
}

if wants p1; then
  api_rounds p1 "$p1_n"
  run_peer p1 docker-py "$python" "$dockerpy" p1 "$p1_n"
  run_peer p1 cli "$cli" p1 "$p1_n"
fi

if wants p2; then
  api_rounds p2 "$p2_n" "$p2_k"
  run_peer p2 docker-py "$python" "$dockerpy" p2 "$p2_n" "$p2_k"
  run_peer p2 cli "$cli" p2 "$p2_n" "$p2_k"
fi

if wants p5; then
  say "p5: writing 2 x $p5_bytes bytes of logs"
  # Two `yes` writers at once interleave the streams; yes and head cost far less than dockerd's
  # own logging, so dockerd sets the pace.
  start=$EPOCHREALTIME
  # shellcheck disable=SC2016 # $l is the container shell's
  printf -v script 'l="$(head -c %d /dev/zero | tr "\\0" o)"
    yes "$l" | head -c %d &
    yes "$l" | head -c %d >&2
    wait' $((p5_line - 1)) "$p5_bytes" "$p5_bytes"
  p5_container="$("$docker" -H "$ODD_TEST_DOCKER_HOST" run -d --network none "$ODD_TEST_IMAGE" \
    sh -c "$script")"
  status="$("$docker" -H "$ODD_TEST_DOCKER_HOST" wait "$p5_container")"
  save_result p5 generate \
    "{\"wall_s\":$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.3f", b - a }')}"
  if [ "$status" != 0 ]; then
    say "p5: the writer container exited $status"
    exit 1
  fi
  time_peer p5 curl curl --unix-socket "$socket" -sf -o /dev/null \
    "http://d/v1.41/containers/$p5_container/logs?stdout=1&stderr=1"
  run_peer p5 cli "$cli" logs "$p5_container"
  run_peer p5 floor "$floor" logs "$socket" "$p5_container"
  [ -z "$odd" ] || run_peer p5 odd "$odd" logs "$socket" "$p5_container"
  "$docker" -H "$ODD_TEST_DOCKER_HOST" rm -f "$p5_container" >/dev/null
  p5_container=""
fi

if wants p6 && [ -n "$odd" ]; then
  # 3,004 files of random bytes (about 100 MB in all) in 350 directories, plus the Dockerfile and
  # a .dockerignore: the shape of a mid-sized repository.
  p6_ctx="$work/p6-context"
  "$python" - "$p6_ctx" <<'PY'
import os, random, sys
root = sys.argv[1]
rng = random.Random(6)
files, total = 3004, 100 * 1024 * 1024
for i in range(files):
    d = os.path.join(root, f"d{i % 50:02d}", f"s{i % 7}")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"f{i:04d}.bin"), "wb") as f:
        f.write(rng.randbytes(total // files))
with open(os.path.join(root, "Dockerfile"), "w") as f:
    f.write("FROM scratch\nCOPY . /ctx\n")
with open(os.path.join(root, ".dockerignore"), "w") as f:
    f.write("*.tmp\n")
PY
  cat "$p6_ctx"/*/*/*.bin >/dev/null # warm page cache: hashing is measured, not the disk
  p6_repo="odd-bench/p6-$$"
  for ((round = 1; round <= 3; round++)); do
    run_peer p6 hash "$odd" hash "$p6_ctx"
  done
  round=1
  run_peer p6 odd-first "$odd" build "$socket" "$p6_ctx" "$p6_repo" "$work/p6-cache"
  time_peer p6 classic-first env DOCKER_BUILDKIT=0 "$docker" -H "$ODD_TEST_DOCKER_HOST" \
    build -q -t "$p6_repo:classic" "$p6_ctx"
  time_peer p6 buildkit-first env DOCKER_BUILDKIT=1 "$docker" -H "$ODD_TEST_DOCKER_HOST" \
    build -q -t "$p6_repo:buildkit" "$p6_ctx"
  for ((round = 1; round <= 3; round++)); do
    run_peer p6 odd-noop "$odd" build "$socket" "$p6_ctx" "$p6_repo" "$work/p6-cache"
    time_peer p6 classic-noop env DOCKER_BUILDKIT=0 "$docker" -H "$ODD_TEST_DOCKER_HOST" \
      build -q -t "$p6_repo:classic" "$p6_ctx"
    time_peer p6 buildkit-noop env DOCKER_BUILDKIT=1 "$docker" -H "$ODD_TEST_DOCKER_HOST" \
      build -q -t "$p6_repo:buildkit" "$p6_ctx"
  done
  round=1
  "$docker" -H "$ODD_TEST_DOCKER_HOST" images -q "$p6_repo" | sort -u |
    xargs -r "$docker" -H "$ODD_TEST_DOCKER_HOST" rmi -f >/dev/null 2>&1 || true
fi

# --- report ---------------------------------------------------------------------------------

dockerd_version="$("$docker" -H "$ODD_TEST_DOCKER_HOST" version \
  -f '{{.Server.Version}} (API {{.Server.APIVersion}})')"
"$python" - "$work" "$odd" "$rounds" "$p1_n" "$p2_n" "$p2_k" "$p5_bytes" "$p5_line" \
  "$dockerd_version" "$(nproc)" "$floor_build" <<'EOF'
import glob, json, os, sys

(work, odd_path, rounds, p1_n, p2_n, p2_k, p5_bytes, p5_line, dockerd, cpus,
 floor_build) = sys.argv[1:]
p5_bytes = int(p5_bytes)
names = {"floor": "floor (raw API)", "odd": "odd engine", "docker-py": "docker-py",
         "cli": "docker CLI", "curl": "curl"}


def ran(bench, peer):
    return bool(glob.glob(os.path.join(work, f"{bench}.{peer}.*")))


def load_all(bench, peer):
    results = []
    paths = glob.glob(os.path.join(work, f"{bench}.{peer}.*.json"))
    for path in sorted(paths, key=lambda p: int(p.rsplit(".", 2)[-2])):
        try:
            with open(path) as f:
                results.append(json.load(f))
        except (OSError, ValueError):
            pass
    return results


def load(bench, peer, key=None):
    """The peer's result; of several rounds, the one lowest on `key`."""
    results = load_all(bench, peer)
    if not results:
        return None
    return min(results, key=lambda r: r[key]) if key else results[0]


def verdict(value, limit):
    return "met" if value <= limit else "NOT met"


def ratio_table(bench, key, columns, target):
    """One row per peer: its figures and its ratio to the floor on `key`."""
    floor = load(bench, "floor", key)
    print(f"  {'peer':<18}" + "".join(f"{title:>11}" for title, _ in columns) + f"{'vs floor':>10}")
    for peer in ("floor", "odd", "docker-py", "cli"):
        if not ran(bench, peer):
            continue
        r = load(bench, peer, key)
        if r is None:
            print(f"  {names[peer]:<18}{'failed':>11}")
            continue
        line = f"  {names[peer]:<18}" + "".join(f"{fmt(r):>11}" for _, fmt in columns)
        if floor:
            ratio = r[key] / floor[key]
            line += f"{ratio:>9.2f}x"
            if peer == "odd":
                line += f"   target <= {target:.2f}x: {verdict(ratio, target)}"
        every = load_all(bench, peer)
        if len(every) > 1:
            line += "   rounds: " + " ".join(f"{x[key]:.5g}" for x in every)
        print(line)


print(f"dockerd {dockerd}, {cpus} CPUs, floor built {floor_build}")
if not odd_path:
    print("odd's runner (bench/odd_bench_engine) is not available: no odd rows, targets not "
          "checked")
elif int(rounds) > 1:
    print(f"P1, P2: floor and odd alternated for {rounds} rounds; each shows its best round")

if ran("p1", "floor"):
    print(f"\nP1  one container at a time: create/start/wait/logs/remove of `true`, N={p1_n}")
    ratio_table("p1", "median_ms",
                [("median ms", lambda r: f"{r['median_ms']:.1f}"),
                 ("total s", lambda r: f"{r['total_s']:.2f}")], 1.03)

if ran("p2", "floor"):
    print(f"\nP2  {p2_n} containers of `true`, at most {p2_k} in flight")
    ratio_table("p2", "wall_s",
                [("wall s", lambda r: f"{r['wall_s']:.2f}"),
                 ("ms/ctr", lambda r: f"{r['wall_s'] * 1e3 / int(p2_n):.1f}")], 1.02)

generate = load("p5", "generate")
if generate:
    total = 2 * p5_bytes
    print(f"\nP5  /logs of an exited container that wrote {total / 1e6:.0f} MB: "
          f"{p5_bytes / 1e6:.0f} MB on each of stdout and stderr, interleaved, in "
          f"{p5_line}-byte lines (writing took {generate['wall_s']:.1f} s)")
    print(f"  {'reader':<18}{'wall s':>10}{'cpu s':>10}{'MB/s':>10}  stdout/stderr bytes")
    results = {}
    for peer in ("curl", "cli", "floor", "odd"):
        if not ran("p5", peer):
            continue
        r = results[peer] = load("p5", peer)
        if r is None:
            print(f"  {names[peer]:<18}{'failed':>10}")
            continue
        counted = r["stdout_bytes"] is not None
        line = (f"  {names[peer]:<18}{r['wall_s']:>10.2f}{r['cpu_s']:>10.2f}"
                f"{total / 1e6 / r['wall_s']:>10.0f}  "
                + (f"{r['stdout_bytes']}/{r['stderr_bytes']}" if counted else "not counted"))
        if counted and (r["stdout_bytes"], r["stderr_bytes"]) != (p5_bytes, p5_bytes):
            line += "  WRONG"
        print(line)
    odd, curl, cli = results.get("odd"), results.get("curl"), results.get("cli")
    if odd and curl:
        print(f"  target: odd cpu <= curl cpu ({odd['cpu_s']:.3f} <= {curl['cpu_s']:.3f} s): "
              f"{verdict(odd['cpu_s'], curl['cpu_s'])}")
    if odd and cli:
        print(f"  target: odd wall <= docker logs wall ({odd['wall_s']:.3f} <= "
              f"{cli['wall_s']:.3f} s): {verdict(odd['wall_s'], cli['wall_s'])}")

hashed = load("p6", "hash", "wall_s")
if hashed:
    print(f"\nP6  builds of a {hashed['bytes'] / 1e6:.0f} MB context of {hashed['files']} entries "
          "(best of 3 where repeated)")
    rate = hashed["mb_per_s"]
    print(f"  cold hashing (no digest cache, warm page cache): {rate:.0f} MB/s   "
          f"target >= 800 MB/s: {'met' if rate >= 800 else 'NOT met'}")
    rows = [("odd-first", "odd, first build"), ("classic-first", "docker build, classic"),
            ("buildkit-first", "docker build, BuildKit"), ("odd-noop", "odd, no-op rebuild"),
            ("classic-noop", "classic, no-op"), ("buildkit-noop", "BuildKit, no-op")]
    got = {peer: load("p6", peer, "wall_s") for peer, _ in rows}
    for peer, title in rows:
        r = got[peer]
        print(f"  {title:<28}" + (f"{r['wall_s']:>8.3f} s" if r else "    failed"))
    def target(name, odd_key, peer_key, limit):
        o, p = got.get(odd_key), got.get(peer_key)
        if o and p:
            ratio = o["wall_s"] / p["wall_s"]
            print(f"  {name:<44}{ratio:>6.3f}x  target <= {limit}x: {verdict(ratio, limit)}")
    target("first build vs classic docker build", "odd-first", "classic-first", 1.05)
    target("no-op rebuild vs BuildKit no-op", "odd-noop", "buildkit-noop", 0.2)
    target("no-op rebuild vs classic no-op", "odd-noop", "classic-noop", 0.05)
    noop = got.get("odd-noop")
    if noop and not noop.get("cache_hit"):
        print("  WRONG: odd's no-op rebuild was not a cache hit")
EOF
