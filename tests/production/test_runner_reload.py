"""SIGHUP's hand-over reaches every brand's detectors and staffing planner, learned state kept."""

from __future__ import annotations

import json

import msgspec
from kafka import TopicPartition

from config.settings import load_settings
from daemon.kafka.runner import PartitionTask, Runner
from daemon.lifecycle import reloadable
from daemon.pipeline import Pipeline
from notifiers.console import ConsoleNotifier


def test_reload_reconfigures_the_pipelines_of_assigned_partitions() -> None:
    settings = load_settings(env={"CRISISD_KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9"})
    runner = Runner(settings, ConsoleNotifier())  # not started: no broker is contacted
    pipeline = Pipeline(settings)
    event = {"id": "t:1", "brand": "klm", "platform": "twitter", "created_at": 1_700_000_000,
             "text": "where is my bag", "author": {"id": "u1"}}  # fmt: skip
    pipeline.process(json.dumps(event))
    tp = TopicPartition("mentions", 0)
    runner._tasks[tp] = PartitionTask(tp, pipeline, next_offset=1, checkpointed=0)
    brand = pipeline.brands["klm"]

    new = msgspec.convert(
        {"detection": {"sensitivity": 2.0}, "staffing": {"shrinkage": 0.4}, "windows": {"bucket_seconds": 30},
         "kafka": {"bootstrap_servers": ["127.0.0.1:9"], "commit_interval_seconds": 2}},
        type(settings),
    )  # fmt: skip
    applied, waiting = reloadable(settings, new)
    assert waiting == ["windows.bucket_seconds"]
    assert runner.reload(applied) == []
    runner._apply_settings(applied)  # what the loop does at its next turn

    assert pipeline.brands["klm"] is brand  # learned state kept
    assert pipeline.settings.detection.sensitivity == 2.0 and pipeline.settings.windows.bucket_seconds == 60
    assert brand.detection.tracker.settings.sensitivity == 2.0
    assert brand.detection.planner.settings.shrinkage == 0.4
    assert runner.k.commit_interval_seconds == 2
