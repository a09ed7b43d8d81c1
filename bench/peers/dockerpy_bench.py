#!/usr/bin/python3
"""docker-py peer of bench/floor: the same container call sequences through the docker Python
package's low-level APIClient (Debian's python3-docker), printing the same JSON lines.

Usage: dockerpy_bench.py [--host DOCKER_HOST] [--image IMAGE] p1 N
       dockerpy_bench.py [--host DOCKER_HOST] [--image IMAGE] p2 N K
DOCKER_HOST defaults to $ODD_TEST_DOCKER_HOST, then $DOCKER_HOST; IMAGE to $ODD_TEST_IMAGE, then
odd-test/busybox:1.
"""

import argparse
import json
import os
import statistics
import sys
import threading
import time

import docker


def make_client(host):
    # DockerClient as a user writes it; .api is the low-level APIClient the calls go through.
    return docker.DockerClient(base_url=host, version="1.41").api


def run_one(api, image):
    """One container of `true`: create, start, wait, logs, remove."""
    container = api.create_container(
        image, command=["true"], host_config=api.create_host_config(network_mode="none"))
    cid = container["Id"]
    api.start(cid)
    status = api.wait(cid)["StatusCode"]
    if status != 0:
        raise RuntimeError(f"container {cid} exited {status}")
    api.logs(cid, stdout=True, stderr=True)
    api.remove_container(cid, force=True)


def bench_p1(host, image, runs):
    api = make_client(host)
    per_run_ms = []
    start = time.perf_counter()
    for _ in range(runs):
        run_start = time.perf_counter()
        run_one(api, image)
        per_run_ms.append(round((time.perf_counter() - run_start) * 1e3, 2))
    total_s = time.perf_counter() - start
    return {"bench": "p1", "runs": runs, "total_s": round(total_s, 3),
            "per_run_ms": per_run_ms, "median_ms": round(statistics.median(per_run_ms), 2)}


def bench_p2(host, image, containers, in_flight):
    in_flight = min(in_flight, containers)
    # One client per thread, as with the floor's one connection per thread; connected up front.
    clients = [make_client(host) for _ in range(in_flight)]
    for api in clients:
        api.ping()
    lock = threading.Lock()
    next_index = [0]
    errors = []

    def worker(api):
        while True:
            with lock:
                if next_index[0] >= containers or errors:
                    return
                next_index[0] += 1
            try:
                run_one(api, image)
            except Exception as e:  # reported once all threads are done
                with lock:
                    errors.append(e)

    start = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(api,)) for api in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall_s = time.perf_counter() - start
    if errors:
        raise errors[0]
    return {"bench": "p2", "containers": containers, "in_flight": in_flight,
            "wall_s": round(wall_s, 3)}


def positive(text):
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("must be a positive number")
    return value


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default=os.environ.get("ODD_TEST_DOCKER_HOST")
                        or os.environ.get("DOCKER_HOST"))
    parser.add_argument("--image", default=os.environ.get("ODD_TEST_IMAGE", "odd-test/busybox:1"))
    sub = parser.add_subparsers(dest="bench", required=True)
    p1 = sub.add_parser("p1")
    p1.add_argument("n", type=positive)
    p2 = sub.add_parser("p2")
    p2.add_argument("n", type=positive)
    p2.add_argument("k", type=positive)
    args = parser.parse_args()
    if not args.host:
        parser.error("no dockerd: pass --host or set ODD_TEST_DOCKER_HOST")
    try:
        if args.bench == "p1":
            result = bench_p1(args.host, args.image, args.n)
        else:
            result = bench_p2(args.host, args.image, args.n, args.k)
    except Exception as e:
        print(f"dockerpy_bench: {e}", file=sys.stderr)
        return 1
    print(json.dumps(result, separators=(",", ":")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
