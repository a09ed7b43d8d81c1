#!/usr/bin/env bash
# Starts and stops a private dockerd for tests and benchmarks, isolated from any other dockerd on
# the machine: own data root, exec root (hence its own containerd), pidfile, socket and containerd
# namespaces, no bridge and no iptables rules (DESIGN §12).
#
# Usage:
#   tests/support/dockerd.sh start DIR   start it in DIR (a short dir under /tmp: the socket path
#                                        must stay under 108 bytes); prints unix://DIR/docker.sock
#   tests/support/dockerd.sh stop DIR    remove its containers, stop it and its containerd, unmount
#                                        what is left under DIR, remove DIR; safe to repeat
# With ODD_TEST_DOCKER_HOST set, start only prints it and stop does nothing.
set -euo pipefail

readonly kStartTimeout=60 # seconds until /_ping must answer
readonly kStopTimeout=20  # seconds between SIGTERM and SIGKILL

die() {
  echo "dockerd.sh: $*" >&2
  exit 1
}

docker_bin() {
  if [ -x /usr/bin/docker ]; then echo /usr/bin/docker; else command -v docker; fi
}

dockerd_bin() {
  if [ -x /usr/sbin/dockerd ]; then echo /usr/sbin/dockerd; else command -v dockerd; fi
}

ping_ok() {
  [ -S "$1/docker.sock" ] &&
    [ "$(curl -s --max-time 2 --unix-socket "$1/docker.sock" http://d/_ping 2>/dev/null)" = OK ]
}

# Ids of the containers DIR's dockerd created (its data root keeps one directory per container).
container_ids() {
  local d
  for d in "$1"/root/containers/*/; do
    [ -d "$d" ] && basename "$d"
  done
  return 0
}

# Pids of processes that belong to DIR: dockerd, containerd and shims whose command line names a
# path under it, and processes in the cgroup of one of its containers (they outlive a killed
# shim). Matching only on the unique temp dir and on container ids is what leaves every other
# dockerd and containerd on the machine alone.
pids_of() {
  local dir="$1" p comm cmd cg id
  local -a ids
  mapfile -t ids < <(container_ids "$dir")
  for p in /proc/[0-9]*; do
    p="${p#/proc/}"
    read -r comm 2>/dev/null <"/proc/$p/comm" || continue
    case "$comm" in
      dockerd | containerd* | runc | docker-proxy)
        cmd="$(tr '\0' ' ' 2>/dev/null <"/proc/$p/cmdline")" || continue
        case " $cmd" in
          *" $dir/"* | *"=$dir/"* | *"//$dir/"*)
            echo "$p"
            continue
            ;;
        esac
        ;;
    esac
    [ ${#ids[@]} -gt 0 ] || continue
    { cg="$(<"/proc/$p/cgroup")"; } 2>/dev/null || continue
    for id in "${ids[@]}"; do
      case "$cg" in *"/$id"*)
        echo "$p"
        break
        ;;
      esac
    done
  done
}

# The per-container cgroups dockerd creates are left behind when it dies before removing them.
remove_cgroups() {
  local id
  for id in $(container_ids "$1"); do
    find /sys/fs/cgroup -depth -mindepth 2 -maxdepth 5 -type d -name "$id" -print0 2>/dev/null |
      xargs -0 -r rmdir 2>/dev/null || true
  done
}

alive() { kill -0 "$1" 2>/dev/null; }

# SIGTERM, a bounded wait, then SIGKILL for the given pids.
terminate() {
  local timeout="$1" p deadline left
  shift
  [ $# -gt 0 ] || return 0
  kill -TERM "$@" 2>/dev/null || true
  deadline=$((SECONDS + timeout))
  while [ $SECONDS -lt $deadline ]; do
    left=0
    for p in "$@"; do alive "$p" && left=1; done
    [ $left -eq 0 ] && return 0
    sleep 0.2
  done
  kill -KILL "$@" 2>/dev/null || true
  sleep 0.2
}

# Everything `stop` does except removing DIR; used by start's failure path too.
shutdown_dir() {
  local dir="$1" pid="" ids mnt f
  if ping_ok "$dir"; then
    ids="$(timeout 30 "$(docker_bin)" -H "unix://$dir/docker.sock" ps -aq 2>/dev/null)" || ids=""
    if [ -n "$ids" ]; then
      # shellcheck disable=SC2086
      timeout 60 "$(docker_bin)" -H "unix://$dir/docker.sock" rm -f -v $ids >/dev/null 2>&1 || true
    fi
  fi
  for f in "$dir/dockerd.pid" "$dir/dockerd.launched"; do
    if [ -s "$f" ]; then
      pid="$(cat "$f")"
      break
    fi
  done
  # A pid file can outlive its process and the pid be reused: only signal it if it is ours.
  if [ -n "$pid" ] && alive "$pid" &&
    tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -qF -- "$dir/"; then
    terminate "$kStopTimeout" "$pid"
  fi
  # containerd, its shims and any container process dockerd left behind.
  # shellcheck disable=SC2046
  terminate 5 $(pids_of "$dir")
  remove_cgroups "$dir"
  # Innermost first: container rootfs overlays and netns bind mounts sit under the data root's
  # self bind mount and the exec root.
  findmnt -rn -o TARGET | awk -v d="$dir" 'index($0, d "/") == 1 || $0 == d' | sort -r |
    while read -r mnt; do
      umount -l "$mnt" 2>/dev/null || umount -l "$(printf '%b' "$mnt")" 2>/dev/null || true
    done
}

cmd_start() {
  local dir="$1" created=0 sock longest ns base deadline launched
  if [ -n "${ODD_TEST_DOCKER_HOST:-}" ]; then
    echo "$ODD_TEST_DOCKER_HOST"
    return 0
  fi
  [ -d "$dir" ] || created=1
  mkdir -p "$dir"
  dir="$(cd "$dir" && pwd -P)"
  sock="$dir/docker.sock"
  # The longest socket dockerd makes is its containerd's ttrpc one; sun_path holds 107 bytes.
  longest="$dir/exec/containerd/containerd.sock.ttrpc"
  if [ ${#longest} -gt 107 ]; then
    [ "$created" = 0 ] || rmdir "$dir"
    die "DIR too long for the Unix sockets under it: $dir; use a short dir under /tmp"
  fi
  if ping_ok "$dir"; then die "a dockerd already answers on $sock"; fi
  # Unique containerd namespaces, so two test dockerds sharing a system containerd cannot meet.
  base="$(basename "$dir" | tr -c 'A-Za-z0-9\n' '-' | tr -s '-')"
  ns="odd-test-${base#-}"
  ns="${ns%-}"
  mkdir -p "$dir/root" "$dir/exec"
  setsid "$(dockerd_bin)" \
    --data-root "$dir/root" \
    --exec-root "$dir/exec" \
    --pidfile "$dir/dockerd.pid" \
    -H "unix://$sock" \
    --bridge none \
    --iptables=false \
    --ip6tables=false \
    --containerd-namespace "$ns" \
    --containerd-plugins-namespace "$ns-plugins" \
    </dev/null >"$dir/dockerd.log" 2>&1 &
  launched=$!
  echo "$launched" >"$dir/dockerd.launched"
  deadline=$((SECONDS + kStartTimeout))
  until ping_ok "$dir"; do
    if ! alive "$launched"; then
      fail_start "$dir" "dockerd exited during start-up"
    fi
    if [ $SECONDS -ge $deadline ]; then
      fail_start "$dir" "dockerd did not answer /_ping within ${kStartTimeout}s"
    fi
    sleep 0.2
  done
  echo "unix://$sock"
}

fail_start() {
  local dir="$1"
  echo "dockerd.sh: $2; last lines of $dir/dockerd.log:" >&2
  tail -n 30 "$dir/dockerd.log" >&2 || true
  shutdown_dir "$dir"
  exit 1
}

cmd_stop() {
  local dir="$1"
  [ -n "${ODD_TEST_DOCKER_HOST:-}" ] && return 0
  [ -d "$dir" ] || return 0
  dir="$(cd "$dir" && pwd -P)"
  shutdown_dir "$dir"
  rm -rf --one-file-system "$dir"
}

main() {
  [ $# -eq 2 ] || die "usage: dockerd.sh start|stop DIR"
  case "$1" in
    start) cmd_start "$2" ;;
    stop) cmd_stop "$2" ;;
    *) die "usage: dockerd.sh start|stop DIR" ;;
  esac
}

main "$@"
