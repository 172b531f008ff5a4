"""Scale-out: throughput of 1, 2 and 3 `crisisd run` replicas in one consumer group.

One stream is produced once to a `--partitions`-partition topic on a loopback Tansu broker (key =
brand, as `crisisd produce` does, so a brand's state lives in one replica). Then for each replica
count a fresh consumer group consumes the whole topic: that many `crisisd run --notify-file`
subprocesses, started together. Progress is the group's committed offsets (read with the admin
client every 0.25 s; commits every second). The rate counts from the first commit to the last
message committed, so group join, restore and language-model loading are left out and shown apart
as "startup". The messages on each partition are printed before the runs.

Streams (`--stream`):
- `balanced` (the default): a simulated `normal` day (scale 1 unless `--scale`) re-branded into
  `--brands` (60) brands of similar volume: each simulated brand becomes regional accounts
  (`klm03`, `klm17`, ...) in proportion to its volume (a brand's reply goes with the mention it
  answers), and the account names are picked so that every partition gets the same number of
  brands (kafka-python's murmur2 partitioner), hence a similar share of the messages. Only valid
  events that carry `lang` are kept. This is the stream that shows whether throughput grows with
  replicas up to the partition count. (Real brand names hash at random: with 60 brands on 6
  partitions the fullest partition typically holds 1.3-1.6x the mean.)
- `ash-crisis`: the simulated ash-crisis day (scale 0.1 unless `--scale`), 7 brands, where klm is
  74 % of the events: klm's partition bounds the group whatever the replica count.
- `--input FILE`: a JSONL stream produced as it is (instead of `--stream`).

Each replica is a separate Python process: on a machine with fewer free cores than replicas the
figure shows the CPU limit, not crisisd's (with 2 CPUs, 3 replicas cannot exceed about x2); the
load average and CPU count are printed with it, and for each count the replicas' CPUs busy and
events per CPU-second over the measured window (/proc).

Measured (balanced, 6 partitions, 178,404 messages, 29,678-29,773 per partition, a quiet 2-CPU
machine): kafka-python 1/2/3 replicas 6,893, 13,452 (x1.95) and 11,238 events/s; confluent 6,366,
12,462 (x1.96) and 11,298: growth up to the CPUs there are. Figures and loads: bench/README.md.

    python bench/bench_scaleout.py                               # balanced: 60 brands, 6 partitions
    python bench/bench_scaleout.py --stream ash-crisis           # the crisis day (one brand is 74 %)
    python bench/bench_scaleout.py --brands 600 --replicas 1 2 3 4 6 --partitions 6
    python bench/bench_scaleout.py --client confluent             # the replicas on librdkafka
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import zlib
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import msgspec  # noqa: E402
from kafka import KafkaAdminClient, KafkaProducer  # noqa: E402
from kafka.admin import NewTopic  # noqa: E402
from kafka.partitioner.default import murmur2  # noqa: E402

from daemon.events import InvalidEvent, decode  # noqa: E402
from daemon.kafka.local_broker import LocalBroker  # noqa: E402
from daemon.kafka.produce_command import brand_key  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_latency import Committed  # noqa: E402  (the same offset reader, one copy)

_encoder = msgspec.json.Encoder()


def balanced_stream(lines: Iterable[bytes], brands: int, partitions: int) -> tuple[list[bytes], dict[str, int]]:
    """`lines` re-branded into `brands` brands of similar volume, spread evenly over `partitions`.

    Each source brand becomes several regional accounts (`klm` -> `klm03`, `klm17`, ...), as many
    as its share of the valid events, so texts, languages and conversations stay those of their
    brand. A brand's reply goes to the account of the mention it answers, any other event to one
    picked by its author (an author's posts stay together). Account names are picked
    so that kafka-python's partitioner (murmur2 of the key) gives every partition the same number
    of accounts, heaviest first onto the lightest partition. Only valid events that carry `lang`
    are kept (no garbage, no e-mails: those have no `lang`), and a source brand too small for half
    an account is left out. Returns (lines, volume per brand).
    """
    events: list[tuple[dict[str, Any], str]] = []
    volume: Counter[str] = Counter()
    for line in lines:
        m = decode(line)
        if isinstance(m, InvalidEvent) or m.lang is None:
            continue
        events.append((msgspec.json.decode(line), m.brand))
        volume[m.brand] += 1
    if brands < len(volume):
        raise ValueError(f"--brands {brands} is fewer than the {len(volume)} brands of the source stream")
    # a source brand smaller than half an account (makpetrol, ~400 events a day) is left out
    small = {b for b, n in volume.items() if n * brands < sum(volume.values()) / 2}
    if small:
        events = [(obj, b) for obj, b in events if b not in small]
        for b in small:
            del volume[b]
    total = sum(volume.values())
    # accounts per source brand: largest remainder of brands x share, at least one each
    exact = {b: brands * n / total for b, n in volume.items()}
    split = {b: max(1, int(x)) for b, x in exact.items()}
    for b in sorted(exact, key=lambda b: exact[b] - split[b], reverse=True):
        if sum(split.values()) >= brands:
            break
        split[b] += 1
    while sum(split.values()) > brands:  # the minimum of one pushed it over: take from the largest
        split[max(split, key=lambda b: split[b])] -= 1

    # event id -> account index within its source brand. Mentions first, by author, not thread: a
    # viral post's hundreds of comments are many accounts' mentions. Then the brand's own posts and
    # replies: a reply goes with the mention it answers, even one delivered late.
    account: dict[str, int] = {}
    for obj, b in events:
        if not obj["author"].get("is_brand"):
            account.setdefault(obj["id"], zlib.crc32(obj["author"]["id"].encode("utf-8")) % split[b])
    picked: list[tuple[str, int]] = []
    sizes: Counter[tuple[str, int]] = Counter()
    for obj, b in events:
        if obj["author"].get("is_brand"):
            parent = obj.get("in_reply_to")
            k = account[parent] if parent in account else zlib.crc32((parent or obj["id"]).encode()) % split[b]
            account.setdefault(obj["id"], k)
        else:
            k = account[obj["id"]]
        picked.append((b, k))
        sizes[b, k] += 1

    per_partition = -(-brands // partitions)
    load = [0] * partitions
    slots = [0] * partitions
    names: dict[tuple[str, int], str] = {}
    taken: set[str] = set()
    for (b, k), n in sorted(sizes.items(), key=lambda kv: (-kv[1], kv[0])):
        target = min((p for p in range(partitions) if slots[p] < per_partition), key=lambda p: load[p])
        j = 0
        while (name := f"{b}{j:02d}") in taken or partition_of(name.encode(), partitions) != target:
            j += 1
        taken.add(name)
        names[b, k] = name
        load[target] += n
        slots[target] += 1

    out: list[bytes] = []
    for (obj, _), key in zip(events, picked, strict=True):
        name = names[key]
        obj["brand"] = name
        if obj["author"].get("is_brand"):
            obj["author"]["id"] = f"brand:{name}"
        out.append(_encoder.encode(obj))
    return out, {names[key]: n for key, n in sizes.items()}


def partition_of(key: bytes, partitions: int) -> int:
    """The partition kafka-python's default partitioner gives `key` (the Java client's murmur2)."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


def run_group(
    bootstrap: str, topic: str, total: int, replicas: int, timeout: float, client: str = "kafka-python"
) -> tuple[float, float, list[int], float, float]:
    """(events/s, startup seconds, exit codes, CPUs busy, events per CPU-second) for `replicas`
    processes in a new group, the last two over the same window as the rate: CPUs busy near the
    free cores means the group is CPU-bound; events per CPU-second flat across replica counts
    means the replicas add no work of their own (on a shared machine, this one is the steadier)."""
    state = tempfile.mkdtemp(prefix=f"bench-scaleout-{replicas}-")
    group = f"{topic}-g{replicas}"
    env = dict(os.environ)
    env.update(
        CRISISD_KAFKA_BOOTSTRAP_SERVERS=bootstrap,
        CRISISD_KAFKA_CLIENT=client,
        CRISISD_KAFKA_TOPIC=topic,
        CRISISD_KAFKA_GROUP_ID=group,
        CRISISD_KAFKA_STATE_TOPIC=f"{group}-state",
        CRISISD_KAFKA_NOTIFICATIONS_TOPIC=f"{group}-nflog",
        CRISISD_KAFKA_DEAD_LETTER_TOPIC=f"{group}-dead",
        CRISISD_KAFKA_COMMIT_INTERVAL_SECONDS="1",
        CRISISD_HTTP_PORT="0",  # several replicas on one host
        CRISISD_KAFKA_SESSION_TIMEOUT_MS="10000",
        CRISISD_KAFKA_HEARTBEAT_INTERVAL_MS="1000",
    )
    committed = Committed(bootstrap, group, topic)
    procs = []
    started = time.perf_counter()
    for r in range(replicas):
        env_r = dict(env, CRISISD_STATE_DIR=os.path.join(state, f"r{r}"))
        log = open(os.path.join(state, f"r{r}.log"), "wb")  # noqa: SIM115 - closed with the process
        cmd = [sys.executable, "-m", "daemon.cli", "run", "--notify-file", os.path.join(state, "notified.jsonl")]
        procs.append((subprocess.Popen(cmd, cwd=REPO, env=env_r, stdout=log, stderr=log), log))
    first_at = first_n = None
    cpu0 = cpu1 = float("nan")
    done_at = None
    try:
        while time.perf_counter() - started < timeout:
            n = committed()
            now = time.perf_counter()
            if n > 0 and first_at is None:
                first_at, first_n, cpu0 = now, n, _cpu_seconds(p.pid for p, _ in procs)
            if n >= total:
                done_at, cpu1 = now, _cpu_seconds(p.pid for p, _ in procs)
                break
            if any(p.poll() is not None for p, _ in procs):
                break
            time.sleep(0.25)
    finally:
        for p, _ in procs:
            p.terminate()
        codes = []
        for p, log in procs:
            try:
                codes.append(p.wait(30))
            except subprocess.TimeoutExpired:
                p.kill()
                codes.append(p.wait())
            log.close()
        committed.close()
    if first_at is None or done_at is None or first_n is None:
        print(f"  {replicas} replicas did not finish (logs in {state})", flush=True)
        return 0.0, float("nan"), codes, float("nan"), float("nan")
    rate = (total - first_n) / max(1e-9, done_at - first_at)
    busy = (cpu1 - cpu0) / max(1e-9, done_at - first_at)
    return rate, first_at - started, codes, busy, (total - first_n) / max(1e-9, cpu1 - cpu0)


def _cpu_seconds(pids: Iterable[int]) -> float:
    """User + system CPU seconds of running processes so far (Linux /proc; NaN elsewhere)."""
    total = 0
    try:
        for pid in pids:
            with open(f"/proc/{pid}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    except OSError:
        return float("nan")
    return total / os.sysconf("SC_CLK_TCK")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--input", help="JSONL stream, produced as it is (instead of --stream)")
    ap.add_argument("--stream", choices=("balanced", "ash-crisis"), default="balanced", help="simulated stream")
    ap.add_argument("--brands", type=int, default=60, help="brands of the balanced stream")
    ap.add_argument("--days", type=int, default=1)
    ap.add_argument("--scale", type=float, help="simulation scale (default 1 balanced, 0.1 ash-crisis)")
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--partitions", type=int, default=6)
    ap.add_argument("--replicas", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--timeout", type=float, default=900.0, help="per replica count (s)")
    ap.add_argument("--client", choices=("kafka-python", "confluent"), default="kafka-python", help="kafka.client")
    args = ap.parse_args(argv)

    if args.input:
        with open(args.input, "rb") as fh:
            lines = [line.rstrip(b"\r\n") for line in fh if line.strip()]
        what = args.input
    else:
        from daemon.simulate import generate

        if args.stream == "balanced":
            scale = 1.0 if args.scale is None else args.scale
            lines, volume = balanced_stream(
                generate("normal", days=args.days, seed=args.seed, scale=scale), args.brands, args.partitions
            )
            what = (
                f"balanced: normal x{args.days}d scale {scale}, {len(volume)} brands of "
                f"{min(volume.values()):,}-{max(volume.values()):,} events"
            )
        else:
            scale = 0.1 if args.scale is None else args.scale
            lines = list(generate("ash-crisis", days=args.days, seed=args.seed, scale=scale))
            what = f"ash-crisis x{args.days}d scale {scale}"
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs", flush=True)
    with LocalBroker() as broker:
        bootstrap = broker.bootstrap_servers
        topic = f"scale-{os.getpid()}"
        admin = KafkaAdminClient(bootstrap_servers=bootstrap)
        admin.create_topics([NewTopic(topic, args.partitions, 1)])
        admin.close()
        producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, batch_size=256 * 1024)
        futures = [producer.send(topic, key=brand_key(line), value=line) for line in lines]
        producer.flush()
        producer.close()
        # from the producer's acknowledgements: Tansu's latest offsets lag behind the last batch
        placed = Counter(f.get().partition for f in futures)
        counts = [placed[p] for p in range(args.partitions)]
        print(f"stream       {what}", flush=True)
        print(f"messages     {len(lines):,} on {args.partitions} partitions, client {args.client}", flush=True)
        mean = sum(counts) / len(counts)
        print(
            f"per partition {', '.join(f'{n:,}' for n in counts)} (largest x{max(counts) / mean:.2f} the mean: "
            f"so at most x{len(counts) * mean / max(counts):.2f} from {len(counts)} replicas)",
            flush=True,
        )
        base = None
        for r in args.replicas:
            rate, startup, codes, busy, per_cpu = run_group(bootstrap, topic, len(lines), r, args.timeout, args.client)
            base = base or rate
            speedup = rate / base if base else 0.0
            print(
                f"replicas {r}   {rate:>9,.0f} events/s  x{speedup:4.2f}  "
                f"({per_cpu:,.0f} per CPU-second, {busy:.2f} CPUs busy; startup {startup:4.1f}s, exit codes {codes}, "
                f"load {os.getloadavg()[0]:.2f})",
                flush=True,
            )
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} (after)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
