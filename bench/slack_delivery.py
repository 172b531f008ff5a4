"""Slack delivery figures against the local emulator (loopback only): prints what it measures.

    .venv/bin/python bench/slack_delivery.py [--incidents 20] [--updates 10] [--outage 30] [--seed 1]

1. A crisis with a Slack outage, 429 bursts, 5xx answers and lost answers: how many notifications were delivered,
   how many duplicate root messages or thread lines there were, whether order held, retries, and how long (on the
   fake clock) it took to drain after Slack came back.
2. Outbox hand-off cost: `put` (one fsync each) and `put_many` (one fsync per batch of 100), notifications/s.
3. Button presses: wall time `handle_interaction` takes per signed request (Slack wants an answer within 3 s).
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from config.secrets import Secret
from daemon.clock import FakeClock
from daemon.notification import NegativityFigures, Notification, StaffingFigures, VolumeFigures
from daemon.outbox import BackoffPolicy, Outbox
from notifiers.base import Delivery
from notifiers.slack import SlackSettings, build_slack_notifier
from notifiers.slack.testing import SlackEmulator

TOKEN, SECRET = "xoxb-bench", "bench-secret"


def notification(iid: str, seq: int, last: int) -> Notification:
    kind = "incident.opened" if seq == 1 else "incident.resolved" if seq == last else "incident.updated"
    return Notification(
        type=kind,
        incident_id=iid,
        brand=iid.split("-")[0],
        severity="sev1",
        signals=["volume", "negativity"],
        started_at="2010-04-16T05:40:00Z",
        detected_at="2010-04-16T05:43:00Z",
        volume=VolumeFigures(1000.0 + seq, 100.0, 10.0),
        negativity=NegativityFigures(0.6, 0.2),
        top_terms=["ash", "cancelled"],
        staffing=StaffingFigures(agents_needed=10, to_schedule=12, on_shift=2, call_in=10),
        resolved_at="2010-04-16T09:40:00Z" if kind == "incident.resolved" else None,
        seq=seq,
    )


def crisis(args: argparse.Namespace) -> None:
    clock = FakeClock(1_700_000_000.0)
    rng = random.Random(args.seed)
    with SlackEmulator(token=TOKEN, clock=clock) as slack, tempfile.TemporaryDirectory() as state:
        settings = SlackSettings(
            bot_token=Secret(TOKEN), api_url=slack.base_url, channel="#crisis", chart=False, http_timeout_seconds=5
        )
        notifier = build_slack_notifier(settings, Path(state) / "slack", clock)
        box = Outbox(
            Path(state) / "outbox", notifier, clock=clock, backoff=BackoffPolicy(base=1, cap=30), seed=args.seed
        )
        ids = [f"brand{i}-incident" for i in range(args.incidents)]
        notes = [notification(i, s, args.updates) for s in range(1, args.updates + 1) for i in ids]
        half = len(notes) // 2
        box.put_many(notes[:half])
        while (w := box.run_once()) is not None:
            clock.advance(w)
        start = clock.now()
        slack.outage(args.outage)
        for _ in range(5):
            slack.fail(rng.choice(["429", "429", "500", "lost", "reset"]), "chat.postMessage", times=3, retry_after="2")
            slack.fail(rng.choice(["429", "500", "lost"]), "chat.update", times=2, retry_after="1")
        box.put_many(notes[half:])
        wall = time.perf_counter()
        while (w := box.run_once()) is not None:
            clock.advance(w)
        wall = time.perf_counter() - wall
        drained_after = clock.now() - start - args.outage
        roots = slack.messages("#crisis")
        per_incident = {}
        for r in roots:
            per_incident.setdefault(r["metadata"]["event_payload"]["incident_id"], []).append(r)
        dup_roots = sum(len(v) - 1 for v in per_incident.values())
        dup_lines, in_order = 0, True
        for rs in per_incident.values():
            seqs = [m["metadata"]["event_payload"]["seq"] for m in slack.replies("#crisis", rs[0]["ts"])]
            dup_lines += len(seqs) - len(set(seqs))
            in_order &= seqs == sorted(seqs) and seqs == list(range(1, args.updates + 1))
        c = box.counters()
        faults = sum(1 for call in slack.calls if call.outcome in ("429", "500", "lost", "reset"))
        print(
            f"crisis: {len(notes)} notifications, {args.incidents} incidents,"
            f" {args.outage:.0f}s outage + {faults} faults"
        )
        print(f"  delivered {c['sent']}/{len(notes)}, failed {c['failed']}, retried {c['retried']}")
        print(f"  duplicate roots {dup_roots}, duplicate thread lines {dup_lines}, in order {in_order}")
        print(
            f"  drained {drained_after:.0f}s (fake clock) after Slack came back; {wall:.1f}s wall for the second half"
        )
        print(f"  Slack API calls {len(slack.calls)} for {len(notes)} notifications")
        box.stop()
        notifier.close()


class _Null:
    def send(self, n: Notification) -> Delivery:
        return Delivery.done()

    def close(self) -> None:
        pass


def handoff() -> None:
    with tempfile.TemporaryDirectory() as d:
        box = Outbox(d, _Null(), clock=FakeClock(0))
        n = 500
        t = time.perf_counter()
        for i in range(n):
            box.put(notification(f"a{i}", 1, 3))
        single = n / (time.perf_counter() - t)
        t = time.perf_counter()
        for b in range(20):
            box.put_many([notification(f"b{b}-{i}", 1, 3) for i in range(100)])
        batch = 2000 / (time.perf_counter() - t)
        for b in range(75):
            box.put_many([notification(f"c{b}", s, 100) for s in range(1, 101)])
        pending = box.pending()
        t = time.perf_counter()
        for _ in range(1000):
            box.run_once()
        per = (time.perf_counter() - t) / 1000
        box.stop()
    print(f"outbox hand-off: put {single:,.0f}/s (fsync each), put_many {batch:,.0f}/s (batches of 100)")
    print(f"outbox delivery overhead with {pending:,} pending: {1000 * per:.2f} ms per notification (one fsync)")


def presses() -> None:
    clock = FakeClock(1_700_000_000.0)
    with SlackEmulator(token=TOKEN, clock=clock) as slack, tempfile.TemporaryDirectory() as state:
        settings = SlackSettings(
            bot_token=Secret(TOKEN),
            signing_secret=Secret(SECRET),
            api_url=slack.base_url,
            channel="#crisis",
            chart=False,
        )
        notifier = build_slack_notifier(settings, state, clock, languages_for=lambda u: ["en"])
        notifier.send(notification("klm-1", 1, 3))
        times = []
        for i in range(1000):
            payload = {
                "type": "block_actions",
                "trigger_id": str(i),
                "user": {"id": f"U{i:06d}"},
                "actions": [{"action_id": "crisisd.volunteer", "value": "klm-1"}],
            }
            body = urlencode({"payload": json.dumps(payload)}).encode()
            ts = str(int(clock.now()))
            sig = "v0=" + hmac.new(SECRET.encode(), f"v0:{ts}:".encode() + body, hashlib.sha256).hexdigest()
            t = time.perf_counter()
            status, _ = notifier.handle_interaction(body, {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": sig})
            times.append(time.perf_counter() - t)
            assert status == 200
        times.sort()
        print(
            f"button presses: median {1000 * statistics.median(times):.2f} ms, "
            f"p99 {1000 * times[int(0.99 * len(times))]:.2f} ms per request (1000 volunteers signed up: "
            f"{len(notifier.store.volunteers('klm-1'))})"
        )
        notifier.close()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--incidents", type=int, default=20)
    p.add_argument("--updates", type=int, default=10)
    p.add_argument("--outage", type=float, default=30.0)
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args()
    crisis(args)
    handoff()
    presses()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
