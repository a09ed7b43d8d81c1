#!/usr/bin/env bash
# odd's SSH benchmarks side by side with OpenSSH and paramiko in one run, against private sshds on
# loopback (tests/support/sshd.sh: ed25519 keys, curve25519 key exchange, aes128-ctr, a test user
# whose shell is /bin/sh), printing each figure with its ratio to the target (bench/README.md):
#   P7   exec of `true` on one host: a fresh `ssh`, `ssh` through a ControlMaster, paramiko on a
#        reused connection, odd's sshx on a pooled session, and exec steps inside oddd
#   P8   SFTP upload and download of a 256 MiB file: OpenSSH `sftp`, sshx with 1 MiB and 32 KiB
#        buffers, oddd's upload/download steps, paramiko (on a 64 MiB file: it is slow)
#   FAN  100 execs of `true` over 4 hosts with 8 in flight: sshx pools vs `ssh` through one
#        ControlMaster per host (xargs -P 8)
# Usage: bench/ssh.sh
# Environment: ODD_BUILD_DIR (default <repo>/build), ODD_BENCH_ONLY (default "p7 p8 fan"),
#   ODD_BENCH_P7_N (odd's execs, 200), ODD_BENCH_FRESH_N (10), ODD_BENCH_MUX_N (50),
#   ODD_BENCH_PARAMIKO_N (50), ODD_BENCH_STEPS_N (oddd exec steps, 100), ODD_BENCH_P8_MIB (256),
#   ODD_BENCH_PARAMIKO_MIB (64), ODD_BENCH_FAN_N (100), ODD_BENCH_FAN_K (8), ODD_BENCH_ROUNDS
#   (rounds of the reused-connection peers of P7, of P8 and of FAN, in alternating order, best
#   of each; 3), ODD_BENCH_JSON (append each raw result as {"bench","peer","result"})
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build_dir="${ODD_BUILD_DIR:-$root/build}"
only="${ODD_BENCH_ONLY:-p7 p8 fan}"
p7_n="${ODD_BENCH_P7_N:-200}"
fresh_n="${ODD_BENCH_FRESH_N:-10}"
mux_n="${ODD_BENCH_MUX_N:-50}"
paramiko_n="${ODD_BENCH_PARAMIKO_N:-50}"
steps_n="${ODD_BENCH_STEPS_N:-100}"
p8_mib="${ODD_BENCH_P8_MIB:-256}"
paramiko_mib="${ODD_BENCH_PARAMIKO_MIB:-64}"
fan_n="${ODD_BENCH_FAN_N:-100}"
fan_k="${ODD_BENCH_FAN_K:-8}"
rounds="${ODD_BENCH_ROUNDS:-3}"
readonly kHosts=4
# Debian's interpreter is the one with Debian's python3-paramiko.
if [ -x /usr/bin/python3 ]; then python=/usr/bin/python3; else python="$(command -v python3)"; fi

# shellcheck source=bench/lib.sh
source "$root/bench/lib.sh"

say "building odd_bench_ssh, oddd and oddc in $build_dir"
cmake --build "$build_dir" --target odd_bench_ssh oddd oddc -j 2 >/dev/null
odd="$build_dir/bench/odd_bench_ssh"
oddd="$build_dir/daemon/oddd"
oddc="$build_dir/oddc/oddc"
build_type="$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$build_dir/CMakeCache.txt")"
paramiko_peer="$root/bench/peers/paramiko_bench.py"

work="$(mktemp -d /tmp/odd-bs.XXXXXX)"
chmod 755 "$work" # the test user reaches the sshd dirs' remote/ through it
sshd_dirs=()
masters=()
oddd_pid=""
# shellcheck disable=SC2317 # called from traps
cleanup() {
  local h
  for h in "${masters[@]}"; do ssh -F "$work/ssh_config" -O exit "$h" 2>/dev/null || true; done
  if [ -n "$oddd_pid" ]; then
    kill -TERM "$oddd_pid" 2>/dev/null || true
    wait "$oddd_pid" 2>/dev/null || true
  fi
  for d in "${sshd_dirs[@]}"; do
    "$root/tests/support/sshd.sh" stop "$d" || say "stopping $d failed"
  done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- hosts: one sshd per host -----------------------------------------------------------------

# Four sshd processes on four ports rather than one sshd under four names: each "host" then has
# its own listener, host key and session processes, as four tester VMs would (all on this
# machine's two cores, over loopback).
for i in $(seq 1 $kHosts); do
  d="$work/s$i"
  sshd_dirs+=("$d")
  say "starting sshd h$i: $("$root/tests/support/sshd.sh" start "$d")"
  # shellcheck disable=SC1091
  source "$d/env"
  cat >>"$work/ssh_config" <<EOF
Host h$i
  HostName $ODD_SSHD_ADDR
  Port $ODD_SSHD_PORT
  User $ODD_SSHD_USER
  IdentityFile $d/id_ed25519
  IdentitiesOnly yes
  UserKnownHostsFile $d/known_hosts
  GlobalKnownHostsFile /dev/null
  StrictHostKeyChecking yes
  BatchMode yes
  KexAlgorithms curve25519-sha256
  Ciphers aes128-ctr
  ControlPath $work/cm-h$i
  ControlMaster no

EOF
done
ssh_cfg=(-F "$work/ssh_config")
h1="$work/s1"

# --- results ----------------------------------------------------------------------------------

round=1

usec() { echo "${EPOCHREALTIME/./}"; }

# time_execs BENCH PEER N CMD...: runs CMD once unmeasured, then N times, each timed from process
# start to exit.
time_execs() {
  local bench="$1" peer="$2" n="$3" i t0 t1 list=""
  shift 3
  say "$bench: $peer"
  if ! "$@" </dev/null >/dev/null 2>"$work/$bench.$peer.$round.err"; then
    say "$bench: $peer failed: $(tail -n 3 "$work/$bench.$peer.$round.err")"
    return 0
  fi
  for ((i = 0; i < n; i++)); do
    t0=$(usec)
    if ! "$@" </dev/null >/dev/null 2>"$work/$bench.$peer.$round.err"; then
      say "$bench: $peer failed: $(tail -n 3 "$work/$bench.$peer.$round.err")"
      return 0
    fi
    t1=$(usec)
    list+="${list:+,}$((t1 - t0))"
  done
  save_result "$bench" "$peer" "{\"n\":$n,\"per_exec_us\":[$list]}"
}

start_master() {
  ssh "${ssh_cfg[@]}" -o ControlMaster=yes -o ControlPersist=no -f -N "$1"
  masters+=("$1")
}

# The algorithms OpenSSH negotiated with h1, as ssh -v reports them.
ssh_methods="$(ssh "${ssh_cfg[@]}" -o ControlPath=none -v h1 true 2>&1 |
  sed -n -e 's/^debug1: kex: algorithm: /kex /p' \
    -e 's/^debug1: kex: client->server cipher: \([^ ]*\) MAC: \([^ ]*\) .*/cipher \1 mac \2/p' |
  tr '\n' ' ')"

# --- oddd with the four hosts -----------------------------------------------------------------

start_oddd() {
  {
    echo "socket: $work/oddd.sock"
    echo "state_dir: $work/state"
    # No dockerd: the SSH steps need none, and start-up only warns about it.
    echo "docker_host: unix://$work/no-dockerd.sock"
    echo "log_level: warn"
    echo "hosts:"
    for i in $(seq 1 $kHosts); do
      # shellcheck disable=SC1090
      source "$work/s$i/env"
      echo "  h$i:"
      echo "    address: $ODD_SSHD_ADDR"
      echo "    port: $ODD_SSHD_PORT"
      echo "    user: $ODD_SSHD_USER"
      echo "    identity: $work/s$i/id_ed25519"
      echo "    known_hosts: $work/s$i/known_hosts"
    done
  } >"$work/oddd.yaml"
  "$oddd" --config "$work/oddd.yaml" >"$work/oddd.log" 2>&1 &
  oddd_pid=$!
  for _ in $(seq 1 100); do
    ODD_SOCKET="$work/oddd.sock" "$oddc" ping >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  say "oddd did not start: $(tail -n 3 "$work/oddd.log")"
  return 1
}
start_oddd

# --- P7 ---------------------------------------------------------------------------------------

if wants p7; then
  time_execs p7 ssh-fresh "$fresh_n" ssh "${ssh_cfg[@]}" -o ControlPath=none h1 true
  run_peer p7 paramiko-nagle "$python" "$paramiko_peer" --dir "$h1" --nagle exec 10
  start_master h1
  {
    printf 'version: 1\nname: p7\njobs:\n  steps:\n    host: h1\n    steps:\n'
    for ((i = 0; i < steps_n + 2; i++)); do echo '      - exec: { cmd: "true" }'; done
  } >"$work/p7.yml"
  # The reused-connection peers in turns, each round in another order.
  for ((round = 1; round <= rounds; round++)); do
    order=(ssh-mux paramiko odd oddd)
    ((round % 2)) || order=(oddd odd paramiko ssh-mux)
    for peer in "${order[@]}"; do
      case "$peer" in
        ssh-mux) time_execs p7 ssh-mux "$mux_n" ssh "${ssh_cfg[@]}" h1 true ;;
        paramiko) run_peer p7 paramiko "$python" "$paramiko_peer" --dir "$h1" exec "$paramiko_n" ;;
        odd) run_peer p7 odd "$odd" exec --dir "$h1" --n "$p7_n" ;;
        oddd) run_peer p7 oddd "$odd" steps "$work/oddd.sock" "$work/p7.yml" ;;
      esac
    done
  done
  round=1
fi

# --- P8 ---------------------------------------------------------------------------------------

# Every upload makes a new file: replacing one would add the removal of the old 256 MiB to the
# figure (sftp truncates it in place; odd moves the new file over it with `mv -f`).
# Each transfer writes 256 MiB. Every one starts after `sync`, so that none pays for flushing the
# dirty pages of the one before it.
# sftp_transfer PEER put|get: OpenSSH sftp on its own connection; the transfer alone is timed by
# local `!` commands on either side of it in the batch.
sftp_transfer() {
  local peer="$1" dir="$2" bytes batch="$work/sftp.batch" t0 t1 mac=()
  [ "$peer" != sftp-hmac ] || mac=(-o MACs=hmac-sha2-256)
  say "p8: $peer $dir"
  # shellcheck disable=SC2016 # the `!` lines' bash expands them
  if [ "$dir" = put ]; then
    rm -f "$p8_remote.sftp"
    printf '!echo ${EPOCHREALTIME/./} >%s\nput %s %s\n!echo ${EPOCHREALTIME/./} >%s\n' \
      "$work/t0" "$p8_file" "$p8_remote.sftp" "$work/t1" >"$batch"
  else
    printf '!echo ${EPOCHREALTIME/./} >%s\nget %s %s\n!echo ${EPOCHREALTIME/./} >%s\n' \
      "$work/t0" "$p8_remote.sftp" "$work/got.sftp" "$work/t1" >"$batch"
  fi
  sync
  if ! SHELL=/bin/bash sftp "${ssh_cfg[@]}" "${mac[@]}" -o ControlPath=none -b "$batch" h1 \
    >/dev/null 2>"$work/p8.$peer-$dir.$round.err"; then
    say "p8: $peer $dir failed: $(tail -n 3 "$work/p8.$peer-$dir.$round.err")"
    return 0
  fi
  t0=$(cat "$work/t0")
  t1=$(cat "$work/t1")
  if [ "$dir" = put ]; then
    bytes=$(stat -c %s "$p8_remote.sftp")
  else
    bytes=$(stat -c %s "$work/got.sftp")
    cmp -s "$p8_file" "$work/got.sftp" || say "p8: sftp get: the downloaded file differs"
    rm -f "$work/got.sftp"
  fi
  save_result p8 "$peer-$dir" "$(awk -v b="$bytes" -v us=$((t1 - t0)) \
    'BEGIN { printf "{\"bytes\":%d,\"wall_s\":%.6f,\"mb_per_s\":%.3f}", b, us / 1e6, b / us }')"
}

odd_transfer() { # PEER put|get BUFFER
  local peer="$1" dir="$2" buffer="$3"
  if [ "$dir" = put ]; then
    rm -f "$p8_remote.odd"
    sync
    run_peer p8 "$peer-put" "$odd" put --dir "$h1" --buffer "$buffer" "$p8_file" "$p8_remote.odd"
  else
    sync
    run_peer p8 "$peer-get" "$odd" get --dir "$h1" --buffer "$buffer" "$p8_remote.odd" \
      "$work/got.odd"
    if [ -f "$work/got.odd" ]; then
      cmp -s "$p8_file" "$work/got.odd" || say "p8: odd get: the downloaded file differs"
      rm -f "$work/got.odd"
    fi
  fi
}

# oddd_transfer put|get: a run of an exec that connects the pool, the upload of the file (or the
# download of the uploaded one into the run's artifacts) and an exec to end on; the transfer step
# is timed by its events, and its rate saved as the other peers' are.
oddd_transfer() {
  local dir="$1" out got bytes
  say "p8: oddd $dir"
  [ "$dir" = get ] || rm -f "$p8_remote.oddd"
  sync
  if ! out="$("$odd" steps "$work/oddd.sock" "$work/p8-$dir.yml" 2>"$work/p8.oddd-$dir.$round.err" \
    </dev/null)"; then
    say "p8: oddd $dir failed: $(tail -n 3 "$work/p8.oddd-$dir.$round.err")"
    return 0
  fi
  if [ "$dir" = put ]; then
    bytes=$(stat -c %s "$p8_remote.oddd")
  else
    got="$(find "$work/state" -name p8.bin -type f | head -n 1)"
    bytes=$(stat -c %s "$got")
    cmp -s "$p8_file" "$got" || say "p8: oddd download: the file differs"
    rm -f "$got"
  fi
  save_result p8 "oddd-$dir" "$(STEPS="$out" BYTES="$bytes" "$python" -c '
import json, os
ms = json.loads(os.environ["STEPS"])["step_ms"][1]
b = int(os.environ["BYTES"])
print(json.dumps({"bytes": b, "wall_s": ms / 1e3, "mb_per_s": b / ms / 1e3}))')"
}

if wants p8; then
  p8_file="$work/p8.bin"
  p8_remote="$h1/remote/p8"
  say "p8: writing $p8_mib MiB of random bytes"
  head -c $((p8_mib << 20)) /dev/urandom >"$p8_file"
  for dir in put get; do
    if [ "$dir" = put ]; then
      step="upload: { src: $p8_file, dest: $p8_remote.oddd }"
    else
      step="download: { src: $p8_remote.oddd, dest: p8.bin }"
    fi
    cat >"$work/p8-$dir.yml" <<YAML
version: 1
name: p8-$dir
jobs:
  sftp:
    host: h1
    steps:
      - exec: { cmd: "true" }
      - $step
      - exec: { cmd: "true" }
YAML
  done
  # Load from anything else on the machine moves these figures by up to 2x from one minute to
  # the next, and so does the guest's memory handed back to the host between transfers (each
  # one writes 256 MiB into fresh pages): the peers alternate within each round, in another
  # order each round.
  for ((round = 1; round <= rounds; round++)); do
    for dir in put get; do
      if ((round % 2)); then
        sftp_transfer sftp "$dir"
        sftp_transfer sftp-hmac "$dir"
        odd_transfer odd "$dir" $((1 << 20))
        oddd_transfer "$dir"
      else
        oddd_transfer "$dir"
        odd_transfer odd "$dir" $((1 << 20))
        sftp_transfer sftp-hmac "$dir"
        sftp_transfer sftp "$dir"
      fi
    done
  done
  round=1
  odd_transfer odd32k put 32768
  odd_transfer odd32k get 32768
  rm -f "$p8_remote.sftp" "$p8_remote.odd" "$p8_remote.oddd"

  head -c $((paramiko_mib << 20)) "$p8_file" >"$work/p8-small.bin"
  run_peer p8 paramiko-put "$python" "$paramiko_peer" --dir "$h1" put "$work/p8-small.bin" \
    "$p8_remote.paramiko"
  run_peer p8 paramiko-get "$python" "$paramiko_peer" --dir "$h1" get "$p8_remote.paramiko" \
    "$work/got.paramiko"
  rm -f "$p8_remote.paramiko" "$work/got.paramiko" "$work/p8-small.bin" "$p8_file"
  run_peer p8 cipher "$odd" cipher
fi

# --- fan-out ----------------------------------------------------------------------------------

if wants fan; then
  hosts_list=""
  for i in $(seq 1 $kHosts); do
    [[ " ${masters[*]} " == *" h$i "* ]] || start_master "h$i"
    hosts_list+="${hosts_list:+,}$work/s$i"
  done
  for ((i = 0; i < fan_n; i++)); do echo "h$((i % kHosts + 1))"; done >"$work/fan.hosts"
  ssh_fanout() {
    local t0 t1
    say "fan: ssh + ControlMaster, xargs -P $fan_k"
    t0=$(usec)
    if ! xargs -P "$fan_k" -I{} ssh "${ssh_cfg[@]}" {} true <"$work/fan.hosts" \
      2>"$work/fan.ssh.$round.err"; then
      say "fan: ssh failed: $(tail -n 3 "$work/fan.ssh.$round.err")"
      return 0
    fi
    t1=$(usec)
    save_result fan ssh "$(awk -v n="$fan_n" -v us=$((t1 - t0)) \
      'BEGIN { printf "{\"wall_s\":%.6f,\"execs_per_s\":%.3f}", us / 1e6, n * 1e6 / us }')"
  }
  for ((round = 1; round <= rounds; round++)); do
    if ((round % 2)); then
      ssh_fanout
      run_peer fan odd "$odd" fanout --hosts "$hosts_list" --n "$fan_n" --inflight "$fan_k"
    else
      run_peer fan odd "$odd" fanout --hosts "$hosts_list" --n "$fan_n" --inflight "$fan_k"
      ssh_fanout
    fi
  done
  round=1
fi

# --- report -----------------------------------------------------------------------------------

"$python" - "$work" "$build_type" "$(nproc)" "$(cut -d' ' -f1-3 /proc/loadavg)" \
  "$(ssh -V 2>&1)" "$ssh_methods" "$p8_mib" "$paramiko_mib" "$fan_n" "$fan_k" "$kHosts" <<'EOF'
import glob, json, os, statistics, sys

(work, build_type, cpus, load, ssh_version, ssh_methods, p8_mib, paramiko_mib, fan_n, fan_k,
 hosts) = sys.argv[1:]


def load_all(bench, peer):
    out = []
    paths = glob.glob(os.path.join(work, f"{bench}.{peer}.*.json"))
    for path in sorted(paths, key=lambda p: int(p.rsplit(".", 2)[-2])):
        try:
            with open(path) as f:
                out.append(json.load(f))
        except (OSError, ValueError):
            pass
    return out


def by_round(bench, peer):
    out = {}
    for path in glob.glob(os.path.join(work, f"{bench}.{peer}.*.json")):
        try:
            with open(path) as f:
                out[int(path.rsplit(".", 2)[-2])] = json.load(f)
        except (OSError, ValueError):
            pass
    return out


def ran(bench, peer):
    return bool(glob.glob(os.path.join(work, f"{bench}.{peer}.*")))


def per_exec(result):
    if "per_exec_us" in result:
        return [us / 1000 for us in result["per_exec_us"]]
    return result.get("per_exec_ms") or result.get("step_ms", [])[1:-1]


def stats(ms):
    ordered = sorted(ms)
    return {"n": len(ms), "median": statistics.median(ms),
            "p90": ordered[min(len(ms) - 1, len(ms) * 9 // 10)], "mean": statistics.fmean(ms)}


def verdict(ok):
    return "met" if ok else "NOT met"


print(f"{cpus} CPUs, load average {load} at the end, odd built {build_type or 'no build type'}, "
      f"{ssh_version}")
print(f"OpenSSH negotiated: {ssh_methods.strip()}")
p7 = load_all("p7", "odd") or load_all("p8", "odd-put")
if p7 and "methods" in p7[0]:
    m = p7[0]["methods"]
    print(f"sshx (libssh2) negotiated: kex {m['kex']} cipher {m['cipher']} mac {m['mac']}")

if any(ran("p7", p) for p in ("ssh-fresh", "ssh-mux", "paramiko", "odd", "oddd")):
    print("\nP7  exec of `true` on one host, one at a time (ms from start to exit status); "
          "of several rounds, the one with the lowest median")
    print(f"  {'peer':<44}{'n':>5}{'median':>9}{'p90':>9}{'mean':>9}   rounds' medians")
    rows = [("ssh-fresh", "ssh, fresh connection (process included)"),
            ("ssh-mux", "ssh through a ControlMaster (process incl.)"),
            ("paramiko", "paramiko, reused connection, TCP_NODELAY"),
            ("paramiko-nagle", "paramiko, reused connection, its own socket"),
            ("odd", "odd sshx exec, pooled session"),
            ("oddd", "oddd exec step (step.start -> step.end)")]
    got, best_result = {}, {}
    for peer, title in rows:
        if not ran("p7", peer):
            continue
        results = load_all("p7", peer)
        if not results:
            print(f"  {title:<44}{'failed':>5}")
            continue
        every = [stats(per_exec(r)) for r in results]
        i = min(range(len(every)), key=lambda k: every[k]["median"])
        s = got[peer] = every[i]
        best_result[peer] = results[i]
        line = f"  {title:<44}{s['n']:>5}{s['median']:>9.2f}{s['p90']:>9.2f}{s['mean']:>9.2f}"
        if len(every) > 1:
            line += "   " + " ".join(f"{e['median']:.2f}" for e in every)
        print(line)
    if "odd" in best_result:
        r = best_result["odd"]
        print(f"  (sshx: connect {r['connect_ms']:.1f} ms and the first exec on the new session "
              f"{r['first_exec_ms']:.1f} ms, left out)")
    if "oddd" in best_result:
        r = best_result["oddd"]
        steps = r["step_ms"]
        first = load_all("p7", "oddd")[0]["step_ms"][0]
        print(f"  (oddd: the first step, which connects in the first round, {first:.1f} ms, "
              f"and the last, {steps[-1]:.1f} ms, left out; one step.end to the next "
              f"{r['period_ms']:.2f} ms on average; {len(steps)} steps in "
              f"{r['run_wall_s']:.2f} s from submission to the run's end)")
    for peer, title in (("oddd", "P7 oddd exec step"), ("odd", "sshx exec alone")):
        if peer not in got:
            continue
        m = got[peer]["median"]
        print(f"  {title}: median {m:.2f} ms   target <= 5 ms: {verdict(m <= 5)}")
        for other, name, limit in (("ssh-mux", "ssh through a ControlMaster", 0.5),
                                   ("ssh-fresh", "a fresh ssh", 0.02)):
            if other in got:
                ratio = m / got[other]["median"]
                print(f"    vs {name:<30}{ratio:>8.3f}x   target <= {limit}x: "
                      f"{verdict(ratio <= limit)}")

if any(ran("p8", p) for p in ("sftp-put", "odd-put", "oddd-put", "paramiko-put")):
    print(f"\nP8  SFTP of a {p8_mib} MiB file of random bytes, transfer only on a connected "
          f"session, MB/s (10^6 bytes/s); best of the rounds where repeated")
    print(f"  {'peer':<42}{'put':>8}{'get':>8}   rounds put / get")
    rates = {}

    def row(peer, title):
        cells, every = [], []
        for d in ("put", "get"):
            results = load_all("p8", f"{peer}-{d}")
            if not results:
                cells.append("failed" if ran("p8", f"{peer}-{d}") else "-")
                every.append("")
                continue
            best = max(r["mb_per_s"] for r in results)
            rates[(peer, d)] = best
            cells.append(f"{best:.0f}")
            every.append(" ".join(f"{r['mb_per_s']:.0f}" for r in results))
        line = f"  {title:<42}{cells[0]:>8}{cells[1]:>8}"
        if any(" " in e for e in every):
            line += f"   {every[0]} / {every[1]}"
        print(line)

    row("sftp", "OpenSSH sftp, its default MAC")
    row("sftp-hmac", "OpenSSH sftp, MAC hmac-sha2-256 as sshx")
    row("odd", "odd sshx, 1 MiB buffers")
    row("odd32k", "odd sshx, 32 KiB buffers")
    row("oddd", "oddd upload / download steps")
    row("paramiko", f"paramiko ({paramiko_mib} MiB file)")
    for d in ("put", "get"):
        results = [r for r in load_all("p8", f"odd-{d}") if "cpu_s" in r]
        if results:
            best = max(results, key=lambda r: r["mb_per_s"])
            print(f"  (sshx {d}, best round: {best['cpu_s']:.2f} s of CPU in {best['wall_s']:.2f} s, "
                  f"{100 * best['cpu_s'] / best['wall_s']:.0f}% of one core)")
    cipher = load_all("p8", "cipher")
    if cipher:
        c = cipher[0]
        print(f"  (AES-128-CTR in this process, fed 16 bytes per EVP_Cipher call as libssh2 1.10 "
              f"does: {c['mb_per_s_16']:.0f} MB/s from OpenSSL's default provider, "
              f"{c['mb_per_s_16_odd']:.0f} MB/s from sshx's CTR provider; "
              f"{c['mb_per_s_32k']:.0f} MB/s fed 32 KiB per call)")
    for peer, title in (("oddd", "P8 oddd steps"), ("odd", "sshx alone")):
        for d in ("put", "get"):
            for base, name in (("sftp", "sftp"), ("sftp-hmac", "sftp with hmac-sha2-256")):
                if (peer, d) not in rates or (base, d) not in rates:
                    continue
                ratio = rates[(peer, d)] / rates[(base, d)]
                line = (f"  {title + ' ' + d + ' vs ' + name:<46}{ratio:>6.2f}x   "
                        f"target >= 1.0x: {verdict(ratio >= 1.0)}")
                # Each round's pair ran within seconds of each other: their ratios show how
                # much of the difference is load.
                ours = by_round("p8", f"{peer}-{d}")
                theirs = by_round("p8", f"{base}-{d}")
                pairs = [ours[k]["mb_per_s"] / theirs[k]["mb_per_s"]
                         for k in sorted(ours) if k in theirs]
                if len(pairs) > 1:
                    line += ("   per round " + " ".join(f"{x:.2f}" for x in pairs)
                             + f", median {statistics.median(pairs):.2f}x")
                print(line)

if ran("fan", "ssh") or ran("fan", "odd"):
    print(f"\nFAN  {fan_n} execs of `true` over {hosts} hosts ({hosts} sshd on loopback), "
          f"{fan_k} in flight, connections made beforehand; best of the rounds")
    print(f"  {'peer':<42}{'wall s':>8}{'execs/s':>9}   rounds execs/s")
    best = {}
    for peer, title in (("ssh", f"ssh + ControlMaster per host, xargs -P {fan_k}"),
                        ("odd", "odd sshx, one pool per host")):
        results = load_all("fan", peer)
        if not results:
            if ran("fan", peer):
                print(f"  {title:<42}{'failed':>8}")
            continue
        b = best[peer] = max(results, key=lambda r: r["execs_per_s"])
        print(f"  {title:<42}{b['wall_s']:>8.2f}{b['execs_per_s']:>9.0f}   "
              + " ".join(f"{r['execs_per_s']:.0f}" for r in results))
    if "ssh" in best and "odd" in best:
        print(f"  odd vs ssh + ControlMaster: "
              f"{best['odd']['execs_per_s'] / best['ssh']['execs_per_s']:.1f}x the execs/s")
EOF
