"""A picture of the root message, for the docs: what the on-call manager sees in Slack.

`python -m notifiers.slack.preview docs/` writes `slack-root-message.json` (the Block Kit
payload), `slack-root-message.png` (an approximation of Slack's rendering, drawn with
matplotlib) and `slack-chart.png` (the chart uploaded to the thread), for an example incident.
"""

from __future__ import annotations

import html
import io
import json
import re
import sys
import textwrap
from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import FancyBboxPatch

from daemon.notification import (
    NegativityFigures,
    Notification,
    SampleMention,
    StaffingFigures,
    Timeline,
    VolumeFigures,
)
from notifiers.render import IncidentStatus, render
from notifiers.slack.blocks import fallback_text, root_blocks
from notifiers.slack.chart import chart_png


def example() -> tuple[Notification, IncidentStatus]:
    """An example incident (synthetic texts) in the middle of its life."""
    obs = [300, 310, 290, 320, 305, 315, 900, 2400, 4100, 5400, 5300, 5100]
    n = Notification(
        type="incident.updated",
        incident_id="klm-20100416T0740Z-volume",
        brand="klm",
        severity="sev1",
        signals=["volume", "negativity", "topic"],
        started_at="2010-04-16T05:40:00Z",
        detected_at="2010-04-16T05:43:00Z",
        volume=VolumeFigures(5400, 310, 17.4),
        negativity=NegativityFigures(0.71, 0.24),
        top_terms=["ash", "cancelled", "refund", "rebooking", "schiphol"],
        languages={"en": 0.48, "nl": 0.31, "sr": 0.08, "ru": 0.05},
        sample_mentions=[
            SampleMention(
                id="twitter:1",
                text="Flight to Belgrade cancelled, nobody answers the phone. <!channel> please help",
                url="https://twitter.com/example/status/1",
                lang="en",
                platform="twitter",
            ),
            SampleMention(id="twitter:2", text="Wanneer kan ik omboeken? Al 2 uur in de wacht.", lang="nl"),
            SampleMention(id="facebook:3", text="Let otkazan, kako da dobijem povraćaj novca?", lang="sr"),
        ],
        staffing=StaffingFigures(
            agents_needed=34,
            to_schedule=42,
            on_shift=6,
            call_in=36,
            by_language={"en": 18, "nl": 12, "sr": 3, "ru": 1},
            sla_target="80/15m",
            service_level=0.81,
        ),
        seq=4,
        timeline=Timeline(
            start="2010-04-16T04:45:00Z",
            bucket_seconds=300,
            observed_per_hour=[float(x) for x in obs],
            expected_per_hour=[310.0] * len(obs),
            upper_per_hour=[420.0] * len(obs),
            negativity_share=[0.22, 0.25, 0.23, 0.24, 0.26, 0.25, 0.45, 0.62, 0.7, 0.71, 0.7, 0.69],
            baseline_negativity_share=[0.24] * len(obs),
        ),
    )
    status = IncidentStatus(escalation_level=1, volunteers=2, volunteer_languages=("en", "nl", "sr"))
    return n, status


def _plain(mrkdwn: str) -> str:
    text = re.sub(r"<(https?://[^|>]+)\|([^>]+)>", r"\2 ↗", mrkdwn)
    text = re.sub(r"<@([A-Z0-9]+)>", r"@\1", text)
    return html.unescape(text)


def preview_png(blocks: list[dict[str, Any]], dpi: int = 110) -> bytes:
    """An approximation of how Slack draws these blocks (for documentation only)."""
    lines: list[tuple[str, str]] = []  # (style, text)
    for b in blocks:
        kind = b["type"]
        if kind == "header":
            lines.append(("header", b["text"]["text"]))
        elif kind == "section" and "text" in b:
            for raw in b["text"]["text"].split("\n"):
                style = "quote" if raw.startswith("> ") else "bold" if raw.startswith("*") else "text"
                text = (
                    _plain(raw[2:] if style == "quote" else raw).replace("*", "").replace("_(", "(").replace(")_", ")")
                )
                for piece in textwrap.wrap(text, 92) or [""]:
                    lines.append((style, piece))
        elif kind == "section":
            fields = [_plain(f["text"]).replace("*", "").split("\n", 1) for f in b["fields"]]
            for i in range(0, len(fields), 2):
                pair = fields[i : i + 2]
                lines.append(("fieldlabel", "\t".join(p[0] for p in pair)))
                lines.append(("text", "\t".join(p[1] if len(p) > 1 else "" for p in pair)))
        elif kind == "context":
            lines.append(("context", "   ".join(_plain(e["text"]) for e in b["elements"])))
        elif kind == "actions":
            lines.append(("actions", "\t".join(e["text"]["text"] for e in b["elements"])))
        lines.append(("gap", ""))
    height = 0.6 + 0.24 * len(lines)
    fig = Figure(figsize=(9, height), dpi=dpi)
    FigureCanvasAgg(fig)
    fig.patch.set_facecolor("white")
    y = height - 0.35

    def at(inches: float) -> float:
        return inches / height

    fig.text(0.03, at(y), "crisisd  APP  07:44", fontsize=9, color="#616061", weight="bold")
    y -= 0.32
    top = y + 0.2
    for style, text in lines:
        if style == "gap":
            y -= 0.08
            continue
        if style == "header":
            fig.text(0.045, at(y), text, fontsize=13, weight="bold", color="#1d1c1d")
            y -= 0.34
            continue
        if style in ("fieldlabel", "text") and "\t" in text:
            for col, part in enumerate(text.split("\t")):
                fig.text(
                    0.045 + 0.46 * col,
                    at(y),
                    part,
                    fontsize=9.5,
                    color="#1d1c1d",
                    weight="bold" if style == "fieldlabel" else "normal",
                )
        elif style == "actions":
            x = 0.045
            for label in text.split("\t"):
                w = 0.02 + 0.0105 * len(label)
                color = "#007a5a" if label == "Acknowledge" else "#e01e5a" if label == "Escalate" else "white"
                fig.add_artist(
                    FancyBboxPatch(
                        (x, at(y - 0.07)),
                        w,
                        at(0.26),
                        boxstyle="round,pad=0.004",
                        facecolor=color,
                        edgecolor="#bbbbbb",
                        transform=fig.transFigure,
                    )
                )
                fig.text(
                    x + 0.01,
                    at(y),
                    label,
                    fontsize=9.5,
                    weight="bold",
                    color="white" if color != "white" else "#1d1c1d",
                )
                x += w + 0.015
            y -= 0.1
        elif style == "quote":
            fig.text(0.045, at(y), "│ " + text, fontsize=9.5, color="#1d1c1d", style="italic")
        elif style == "context":
            fig.text(0.045, at(y), text[:130], fontsize=8, color="#616061")
        else:
            bold = style in ("bold", "fieldlabel")
            fig.text(0.045, at(y), text, fontsize=9.5, color="#1d1c1d", weight="bold" if bold else "normal")
        y -= 0.24
    bar = FancyBboxPatch(
        (0.025, at(y + 0.1)),
        0.004,
        at(top - y - 0.1),
        boxstyle="square,pad=0",
        color="#d62728",
        transform=fig.transFigure,
    )
    fig.add_artist(bar)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", facecolor="white", bbox_inches="tight", pad_inches=0.15)
    return buf.getvalue()


def main(argv: list[str] | None = None) -> int:
    out = Path((argv or sys.argv[1:] or ["docs"])[0])
    out.mkdir(parents=True, exist_ok=True)
    n, status = example()
    m = render(n, status)
    blocks = root_blocks(m)
    payload: dict[str, Any] = {"channel": "C0123CRISIS", "text": fallback_text(m), "blocks": blocks}
    (out / "slack-root-message.json").write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n")
    (out / "slack-root-message.png").write_bytes(preview_png(blocks))
    assert n.timeline is not None
    (out / "slack-chart.png").write_bytes(chart_png(n.timeline, f"{n.brand} · {n.severity.upper()} · {n.incident_id}"))
    print(f"wrote {out}/slack-root-message.json, slack-root-message.png, slack-chart.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
