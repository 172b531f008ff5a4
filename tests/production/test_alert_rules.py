"""config/prometheus-alerts.yaml: rules ops load as they are, over metrics crisisd exports."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from daemon import metrics

RULES = Path(__file__).resolve().parents[2] / "config" / "prometheus-alerts.yaml"


def _rules() -> list[dict[str, object]]:
    doc = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    return [rule for group in doc["groups"] for rule in group["rules"]]


def test_every_metric_an_alert_reads_is_one_crisisd_exports() -> None:
    """A renamed metric would leave an alert that never fires."""
    # by family (a labelled metric has no sample before its first label value): a counter `x` is `x_total`
    families = list(metrics.REGISTRY.collect())
    exported = {f.name + "_total" if f.type == "counter" else f.name for f in families}
    named = {m for rule in _rules() for m in re.findall(r"crisisd_[a-z_]+", str(rule["expr"]))}
    assert named, "no crisisd metric in the rules"
    assert named <= exported, f"not exported: {sorted(named - exported)}"


def test_every_rule_says_how_bad_and_what_to_do() -> None:
    rules = _rules()
    names = [r["alert"] for r in rules]
    assert len(names) == len(set(names))
    for rule in rules:
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule["alert"]
        assert rule["labels"]["severity"] in ("critical", "warning", "info"), rule["alert"]  # type: ignore[index]
        annotations = rule["annotations"]
        assert isinstance(annotations, dict) and annotations["summary"] and annotations["description"]
        assert "for" not in rule or re.fullmatch(r"\d+[smh]", str(rule["for"])), rule["alert"]
    # what pages: incidents not reaching anyone
    critical = {r["alert"] for r in rules if r["labels"]["severity"] == "critical"}  # type: ignore[index]
    assert {"CrisisdDown", "CrisisdWatchesNothing", "CrisisdNotificationsFailing"} <= critical
