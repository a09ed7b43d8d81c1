#!/usr/bin/python3
"""paramiko peer of bench/ssh_bench.cpp: exec of `true` on one reused connection, and SFTP put and
get of one file, as a user of Debian's python3-paramiko writes them, printing the same JSON lines.

Usage: paramiko_bench.py --dir DIR [--nagle] exec N
       paramiko_bench.py --dir DIR [--nagle] put FILE REMOTE
       paramiko_bench.py --dir DIR [--nagle] get REMOTE FILE
DIR is a tests/support/sshd.sh dir (its env file, id_ed25519 and known_hosts). The connection's
socket gets TCP_NODELAY, as odd's does; paramiko's own socket (--nagle) has Nagle's algorithm on,
and every exec then waits ≈ 40 ms for a delayed ACK.
"""

import argparse
import json
import os
import socket
import statistics
import sys
import time

import paramiko


def read_env(path):
    values = {}
    with open(path) as f:
        for line in f:
            key, sep, value = line.rstrip("\n").partition("=")
            if sep:
                values[key] = value
    return values


def connect(sshd_dir, nagle):
    env = read_env(os.path.join(sshd_dir, "env"))
    sock = None
    if not nagle:
        sock = socket.create_connection((env["ODD_SSHD_ADDR"], int(env["ODD_SSHD_PORT"])))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    client = paramiko.SSHClient()
    client.load_host_keys(os.path.join(sshd_dir, "known_hosts"))
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    client.connect(env["ODD_SSHD_ADDR"], port=int(env["ODD_SSHD_PORT"]),
                   username=env["ODD_SSHD_USER"],
                   key_filename=os.path.join(sshd_dir, "id_ed25519"),
                   look_for_keys=False, allow_agent=False, sock=sock)
    return client


def exec_true(client):
    _, stdout, _ = client.exec_command("true")
    status = stdout.channel.recv_exit_status()
    if status != 0:
        raise RuntimeError(f"`true` exited {status}")


def bench_exec(client, n):
    exec_true(client)  # the first channel of a connection is slower; odd's runner skips it too
    per_exec = []
    for _ in range(n):
        start = time.perf_counter()
        exec_true(client)
        per_exec.append((time.perf_counter() - start) * 1e3)
    ordered = sorted(per_exec)
    return {"bench": "exec", "n": n, "median_ms": statistics.median(per_exec),
            "p90_ms": ordered[min(n - 1, n * 9 // 10)], "mean_ms": statistics.fmean(per_exec),
            "min_ms": ordered[0], "max_ms": ordered[-1], "per_exec_ms": per_exec}


def bench_transfer(client, put, source, dest):
    sftp = client.open_sftp()
    start = time.perf_counter()
    if put:
        sftp.put(source, dest)
        size = os.path.getsize(source)
    else:
        sftp.get(source, dest)
        size = os.path.getsize(dest)
    wall = time.perf_counter() - start
    sftp.close()
    return {"bench": "put" if put else "get", "bytes": size, "wall_s": wall,
            "mb_per_s": size / 1e6 / wall}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--dir", default=os.environ.get("ODD_SSHD_DIR"))
    parser.add_argument("--nagle", action="store_true")
    parser.add_argument("command", choices=["exec", "put", "get"])
    parser.add_argument("args", nargs="+")
    args = parser.parse_args()
    if not args.dir:
        parser.error("--dir or $ODD_SSHD_DIR is required")
    client = connect(args.dir, args.nagle)
    try:
        if args.command == "exec":
            result = bench_exec(client, int(args.args[0]))
        else:
            if len(args.args) != 2:
                parser.error(f"{args.command} takes two paths")
            result = bench_transfer(client, args.command == "put", *args.args)
        transport = client.get_transport()
        result["methods"] = {"cipher": transport.local_cipher, "mac": transport.local_mac}
    finally:
        client.close()
    print(json.dumps(result))


if __name__ == "__main__":
    sys.exit(main())
