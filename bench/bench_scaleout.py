"""Scale-out: throughput of 1, 2 and 3 `crisisd run` replicas in one consumer group.

One simulated stream is produced once to a `--partitions`-partition topic on a loopback Tansu
broker (key = brand; the simulated world has 7 brands, so keep partitions <= 7 for every
partition to get traffic). Then for each replica count a fresh consumer group consumes the whole
topic: that many `crisisd run --notify-file` subprocesses, started together. Progress is the
group's committed offsets (read with the admin client every 0.25 s; commits every second). The
rate counts from the first commit to the last message committed, so group join, restore and
language-model loading are left out and shown apart as "startup".

Each replica is a separate Python process: on a machine with fewer free cores than replicas the
figure shows the CPU limit, not crisisd's; the load average and CPU count are printed with it.

    python bench/bench_scaleout.py                               # 1 day of ash crisis at scale 0.1
    python bench/bench_scaleout.py --days 2 --scale 0.5 --replicas 1 2 3 4 --partitions 6
    python bench/bench_scaleout.py --client confluent             # the replicas on librdkafka
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from kafka import KafkaAdminClient, KafkaProducer  # noqa: E402
from kafka.admin import NewTopic  # noqa: E402

from daemon.kafka.local_broker import LocalBroker  # noqa: E402
from daemon.kafka.produce_command import brand_key  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_latency import Committed  # noqa: E402  (the same offset reader, one copy)


def run_group(
    bootstrap: str, topic: str, total: int, replicas: int, timeout: float, client: str = "kafka-python"
) -> tuple[float, float, list[int]]:
    """(events/s, startup seconds, exit codes) for `replicas` processes in a new group."""
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
    done_at = None
    try:
        while time.perf_counter() - started < timeout:
            n = committed()
            now = time.perf_counter()
            if n > 0 and first_at is None:
                first_at, first_n = now, n
            if n >= total:
                done_at = now
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
        return 0.0, float("nan"), codes
    rate = (total - first_n) / max(1e-9, done_at - first_at)
    return rate, first_at - started, codes


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--input", help="JSONL stream (default: simulate ash-crisis)")
    ap.add_argument("--days", type=int, default=1)
    ap.add_argument("--scale", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--partitions", type=int, default=6)
    ap.add_argument("--replicas", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--timeout", type=float, default=900.0, help="per replica count (s)")
    ap.add_argument("--client", choices=("kafka-python", "confluent"), default="kafka-python", help="kafka.client")
    args = ap.parse_args(argv)

    if args.input:
        with open(args.input, "rb") as fh:
            lines = [line.rstrip(b"\r\n") for line in fh if line.strip()]
    else:
        from daemon.simulate import generate

        lines = list(generate("ash-crisis", days=args.days, seed=args.seed, scale=args.scale))
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs", flush=True)
    with LocalBroker() as broker:
        bootstrap = broker.bootstrap_servers
        topic = f"scale-{os.getpid()}"
        admin = KafkaAdminClient(bootstrap_servers=bootstrap)
        admin.create_topics([NewTopic(topic, args.partitions, 1)])
        admin.close()
        producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, batch_size=256 * 1024)
        for line in lines:
            producer.send(topic, key=brand_key(line), value=line)
        producer.flush()
        producer.close()
        print(f"messages     {len(lines):,} on {args.partitions} partitions, client {args.client}", flush=True)
        base = None
        for r in args.replicas:
            rate, startup, codes = run_group(bootstrap, topic, len(lines), r, args.timeout, args.client)
            base = base or rate
            speedup = rate / base if base else 0.0
            print(
                f"replicas {r}   {rate:>9,.0f} events/s  x{speedup:4.2f}  "
                f"(startup {startup:4.1f}s, exit codes {codes}, "
                f"load {os.getloadavg()[0]:.2f})",
                flush=True,
            )
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} (after)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
