"""Latency of the daemon's HTTP endpoints while the consumer side is busy.

Fills the metrics registry the way a large deployment would (N brands' mention counters, lag per
partition), starts `daemon.http_server.HttpServer` on loopback, and times sequential requests to
/healthz, /readyz and /metrics while a background thread burns CPU in Python (a stand-in for the
consumer loop holding the GIL). Prints median and p99 per endpoint, in milliseconds.

    python bench/bench_http.py [--brands 2000] [--requests 300]
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
import urllib.request

from prometheus_client import CollectorRegistry, Counter, Gauge

from daemon.http_server import Heartbeat, HttpServer


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--brands", type=int, default=2000)
    ap.add_argument("--partitions", type=int, default=24)
    ap.add_argument("--requests", type=int, default=300)
    args = ap.parse_args()

    registry = CollectorRegistry()
    mentions = Counter("crisisd_brand_mentions", "Customer mentions per brand", ["brand"], registry=registry)
    lag = Gauge("crisisd_consumer_lag", "Messages behind", ["partition"], registry=registry)
    for b in range(args.brands):
        mentions.labels(f"brand-{b}").inc(b)
    for p in range(args.partitions):
        lag.labels(str(p)).set(p * 10)

    stop = threading.Event()

    def busy() -> None:  # the consumer loop: pure-Python work, holding the GIL between switches
        x = 0
        while not stop.is_set():
            for i in range(10_000):
                x += i * i

    worker = threading.Thread(target=busy, daemon=True)
    worker.start()
    checks = {"group_joined": True, "partitions_restored": {"ok": True, "restoring": 0}, "outbox": {"ok": True}}
    with HttpServer("127.0.0.1", 0, readiness=lambda: checks, liveness=Heartbeat(), registry=registry) as server:
        print(f"{args.brands} brand series, {args.partitions} partitions, {args.requests} requests each, loop busy")
        for path in ("/healthz", "/readyz", "/metrics"):
            times = []
            size = 0
            for _ in range(args.requests):
                t = time.perf_counter()
                with urllib.request.urlopen(server.url + path, timeout=10) as r:
                    size = len(r.read())
                times.append((time.perf_counter() - t) * 1000)
            times.sort()
            p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
            print(f"{path:9s} median {statistics.median(times):7.2f} ms  p99 {p99:7.2f} ms  body {size} bytes")
    stop.set()
    worker.join()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
