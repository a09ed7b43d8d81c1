#!/usr/bin/env bash
# Starts and stops a private OpenSSH sshd for tests and benchmarks (DESIGN §12): its own config,
# host key, user keys and known_hosts files in DIR, a test user `oddtest` whose shell is /bin/sh
# (no start-up files) and a second, `oddtest-bash`, whose shell is /bin/bash (same keys), on
# loopback or, with --netns, inside a network namespace of its own so the
# "tester VM" has its own address.
#
# Usage:
#   tests/support/sshd.sh start DIR [--netns]   start it (DIR: a short dir under /tmp); prints
#                                               ADDR:PORT and writes DIR/env
#   tests/support/sshd.sh stop DIR              stop it and its sessions, delete the namespace,
#                                               remove DIR; safe to repeat
#   tests/support/sshd.sh kill DIR              SIGKILL the listener and every session (a host
#                                               that dies mid-command); keeps DIR
#   tests/support/sshd.sh restart DIR           start it again after kill: same config, keys,
#                                               address and port
# With ODD_SSHD_DOCKER_HOST=unix:///path/docker.sock at start, the sessions see it as
# DOCKER_HOST (so `docker system dial-stdio` reaches a test dockerd) and its directory is made
# traversable for the test user, who is in group docker.
#
# DIR holds: env (ODD_SSHD_ADDR, ODD_SSHD_PORT, ODD_SSHD_USER, ODD_SSHD_DIR, ODD_SSHD_NETNS),
# id_ed25519, id_ecdsa, id_ed25519_pass (its passphrase in DIR/passphrase), id_rsa (authorised,
# so a client can be shown refusing RSA), wrong_ed25519 (not authorised), known_hosts,
# known_hosts_hashed (the same entry hashed), known_hosts_other (the same host with another key),
# and remote/, a directory the test user owns.
set -euo pipefail

readonly kUser=oddtest
readonly kBashUser=oddtest-bash
readonly kStartTimeout=20 # seconds until the port must accept connections

die() {
  echo "sshd.sh: $*" >&2
  exit 1
}

alive() { kill -0 "$1" 2>/dev/null; }

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# A /30 in 10.231.0.0/16 that no interface uses yet: prints its third octet.
free_subnet() {
  local n used
  used="$(ip -o -4 addr show | awk '{print $4}')"
  for n in $(seq 1 250); do
    grep -q "^10\.231\.$n\." <<<"$used" || {
      echo "$n"
      return 0
    }
  done
  die "no free 10.231.X.0/30 subnet"
}

ensure_user() { # NAME SHELL
  local user="$1" shell="$2"
  if ! id "$user" >/dev/null 2>&1; then
    useradd --create-home --shell "$shell" "$user" 2>/dev/null || id "$user" >/dev/null 2>&1 ||
      die "cannot create user $user"
  fi
  if getent group docker >/dev/null && ! id -nG "$user" | grep -qw docker; then
    usermod -aG docker "$user"
  fi
  # sshd refuses a user whose password field is locked ("!") when UsePAM is off.
  usermod -p '*' "$user"
}

keygen() { ssh-keygen -q -C "odd-test" "$@" </dev/null; }

cmd_start() {
  local dir="$1" netns="$2" addr port ns="" sub host_side ns_side pid deadline
  [ -e "$dir/sshd.pid" ] && die "$dir already holds an sshd; stop it first"
  mkdir -p "$dir"
  dir="$(cd "$dir" && pwd -P)"
  chmod 755 "$dir"
  ensure_user "$kUser" /bin/sh
  ensure_user "$kBashUser" /bin/bash
  mkdir -p /run/sshd

  keygen -t ed25519 -N '' -f "$dir/host_ed25519"
  keygen -t ed25519 -N '' -f "$dir/other_host_ed25519"
  keygen -t ed25519 -N '' -f "$dir/id_ed25519"
  keygen -t ecdsa -b 256 -N '' -f "$dir/id_ecdsa"
  echo "odd-test-pass" >"$dir/passphrase"
  keygen -t ed25519 -N "odd-test-pass" -f "$dir/id_ed25519_pass"
  keygen -t rsa -b 2048 -N '' -f "$dir/id_rsa"
  keygen -t ed25519 -N '' -f "$dir/wrong_ed25519"
  cat "$dir/id_ed25519.pub" "$dir/id_ecdsa.pub" "$dir/id_ed25519_pass.pub" "$dir/id_rsa.pub" \
    >"$dir/authorized_keys"
  chmod 644 "$dir/authorized_keys"
  mkdir -p "$dir/remote"
  chown "$kUser:" "$dir/remote"

  port="$(free_port)"
  addr=127.0.0.1
  if [ "$netns" = 1 ]; then
    # Two starts at once must not both take the first free /30.
    exec 9>/run/odd-sshd-netns.lock
    flock 9
    sub="$(free_subnet)"
    ns="odd-$(basename "$dir" | tr -c 'A-Za-z0-9\n' '-' | tail -c 12)"
    host_side="oh${sub}x$$"
    ns_side="on${sub}x$$"
    host_side="${host_side:0:15}"
    ns_side="${ns_side:0:15}"
    ip netns add "$ns"
    echo "$ns" >"$dir/netns"
    ip link add "$host_side" type veth peer name "$ns_side"
    ip link set "$ns_side" netns "$ns"
    ip addr add "10.231.$sub.1/30" dev "$host_side"
    ip link set "$host_side" up
    ip -n "$ns" addr add "10.231.$sub.2/30" dev "$ns_side"
    ip -n "$ns" link set "$ns_side" up
    ip -n "$ns" link set lo up
    addr="10.231.$sub.2"
    flock -u 9
    exec 9>&-
  fi

  {
    echo "Port $port"
    echo "ListenAddress $addr"
    echo "HostKey $dir/host_ed25519"
    echo "PidFile $dir/sshd.pid"
    echo "AuthorizedKeysFile $dir/authorized_keys"
    echo "StrictModes no"
    echo "PasswordAuthentication no"
    echo "KbdInteractiveAuthentication no"
    echo "UsePAM no"
    echo "AllowUsers $kUser $kBashUser"
    echo "MaxSessions 10"
    echo "MaxStartups 100"
    echo "PubkeyAcceptedAlgorithms +ssh-rsa"
    echo "Subsystem sftp internal-sftp"
    echo "AcceptEnv ODD_*"
    echo "KexAlgorithms curve25519-sha256,curve25519-sha256@libssh.org"
    echo "Ciphers aes128-ctr,aes128-gcm@openssh.com,chacha20-poly1305@openssh.com"
    if [ -n "${ODD_SSHD_DOCKER_HOST:-}" ]; then
      echo "SetEnv DOCKER_HOST=$ODD_SSHD_DOCKER_HOST"
      local sock="${ODD_SSHD_DOCKER_HOST#unix://}"
      chmod a+x "$(dirname "$sock")"
    fi
  } >"$dir/sshd_config"

  local entry
  entry="[$addr]:$port $(cut -d' ' -f1,2 "$dir/host_ed25519.pub")"
  echo "$entry" >"$dir/known_hosts"
  echo "$entry" >"$dir/known_hosts_hashed"
  ssh-keygen -q -H -f "$dir/known_hosts_hashed" >/dev/null 2>&1
  rm -f "$dir/known_hosts_hashed.old"
  echo "[$addr]:$port $(cut -d' ' -f1,2 "$dir/other_host_ed25519.pub")" >"$dir/known_hosts_other"

  launch "$dir" "$ns" "$addr" "$port" 1
  {
    echo "ODD_SSHD_ADDR=$addr"
    echo "ODD_SSHD_PORT=$port"
    echo "ODD_SSHD_USER=$kUser"
    echo "ODD_SSHD_DIR=$dir"
    echo "ODD_SSHD_NETNS=$ns"
  } >"$dir/env"
  echo "$addr:$port"
}

# Runs sshd (it daemonizes) from DIR's config, in namespace NS when given, and waits until
# ADDR:PORT accepts connections; on failure shows its log and, with CLEAN=1, stops everything in
# DIR.
launch() {
  local dir="$1" ns="$2" addr="$3" port="$4" clean="$5" deadline
  local -a in_ns=()
  [ -z "$ns" ] || in_ns=(ip netns exec "$ns")
  rm -f "$dir/sshd.pid"
  "${in_ns[@]}" /usr/sbin/sshd -f "$dir/sshd_config" -E "$dir/sshd.log"
  deadline=$((SECONDS + kStartTimeout))
  until [ -s "$dir/sshd.pid" ] &&
    "${in_ns[@]}" bash -c "exec 3<>/dev/tcp/$addr/$port" 2>/dev/null; do
    if [ $SECONDS -ge $deadline ]; then
      tail -n 30 "$dir/sshd.log" >&2 2>/dev/null || true
      [ "$clean" = 0 ] || cmd_stop "$dir"
      die "sshd did not accept connections on $addr:$port within ${kStartTimeout}s"
    fi
    sleep 0.1
  done
  alive "$(cat "$dir/sshd.pid")" || die "sshd exited: $(tail -n 30 "$dir/sshd.log" 2>/dev/null)"
}

# The listener and every session process it forked (their command lines name no file, so the
# process tree is the only way to find them).
sshd_pids() {
  local root="$1" p
  echo "$root"
  for p in $(pgrep -P "$root" 2>/dev/null); do sshd_pids "$p"; done
}

# The listener's pid when it is alive and DIR's (a pid file can outlive its process).
listener() {
  local dir="$1" pid
  [ -s "$dir/sshd.pid" ] || return 1
  pid="$(cat "$dir/sshd.pid")"
  alive "$pid" && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$dir/" &&
    echo "$pid"
}

cmd_kill() {
  local dir="$1" pid
  [ -s "$dir/env" ] || die "$dir holds no sshd started by sshd.sh"
  dir="$(cd "$dir" && pwd -P)"
  pid="$(listener "$dir")" || return 0
  # shellcheck disable=SC2046
  kill -KILL $(sshd_pids "$pid") 2>/dev/null || true
  while alive "$pid"; do sleep 0.05; done
}

cmd_restart() {
  local dir="$1" ODD_SSHD_ADDR ODD_SSHD_PORT ODD_SSHD_NETNS
  [ -s "$dir/env" ] || die "$dir holds no sshd started by sshd.sh"
  dir="$(cd "$dir" && pwd -P)"
  listener "$dir" >/dev/null && die "the sshd in $dir is running; kill it first"
  # shellcheck disable=SC1091
  . "$dir/env"
  launch "$dir" "$ODD_SSHD_NETNS" "$ODD_SSHD_ADDR" "$ODD_SSHD_PORT" 0
  echo "$ODD_SSHD_ADDR:$ODD_SSHD_PORT"
}

cmd_stop() {
  local dir="$1" pid ns
  [ -d "$dir" ] || return 0
  dir="$(cd "$dir" && pwd -P)"
  if pid="$(listener "$dir")"; then
    # shellcheck disable=SC2046
    kill -KILL $(sshd_pids "$pid") 2>/dev/null || true
  fi
  if [ -s "$dir/netns" ]; then
    ns="$(cat "$dir/netns")"
    ip netns pids "$ns" 2>/dev/null | xargs -r kill -KILL 2>/dev/null || true
    ip netns del "$ns" 2>/dev/null || true
  fi
  rm -rf "$dir"
}

readonly kUsage="usage: sshd.sh start DIR [--netns] | stop DIR | kill DIR | restart DIR"
[ $# -ge 2 ] || die "$kUsage"
case "$1" in
  start)
    netns=0
    [ "${3:-}" = "--netns" ] && netns=1
    cmd_start "$2" "$netns"
    ;;
  stop) cmd_stop "$2" ;;
  kill) cmd_kill "$2" ;;
  restart) cmd_restart "$2" ;;
  *) die "$kUsage" ;;
esac
