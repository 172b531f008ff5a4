"""The incident chart: volume and negativity against the expected band, as a PNG.

Drawn with matplotlib's Agg canvas (no pyplot, no display, safe off the main thread).

>>> from daemon.notification import Timeline
>>> t = Timeline(start="2010-04-16T04:00:00Z", bucket_seconds=300,
...     observed_per_hour=[300, 320, 2000, 5400], expected_per_hour=[300, 310, 310, 310],
...     upper_per_hour=[400, 410, 410, 410], negativity_share=[0.2, 0.25, 0.6, 0.71],
...     baseline_negativity_share=[0.24] * 4)
>>> chart_png(t, "klm").startswith(b"\\x89PNG")
True
"""

from __future__ import annotations

import io
from datetime import datetime, timedelta

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.dates import DateFormatter
from matplotlib.figure import Figure

from daemon.notification import Timeline


def _times(t: Timeline, n: int) -> list[datetime]:
    try:
        start = datetime.fromisoformat(t.start.replace("Z", "+00:00"))
    except ValueError:
        start = datetime(1970, 1, 1)
    return [start + timedelta(seconds=i * t.bucket_seconds) for i in range(n)]


def chart_png(t: Timeline, title: str, dpi: int = 100) -> bytes:
    n = len(t.observed_per_hour)
    x = _times(t, n)

    def series(values: list[float]) -> list[float]:
        return (list(values) + [float("nan")] * n)[:n]

    fig = Figure(figsize=(8, 4.8), dpi=dpi)
    FigureCanvasAgg(fig)
    ax1, ax2 = fig.subplots(2, 1, sharex=True, height_ratios=[3, 2])
    expected, upper = series(t.expected_per_hour), series(t.upper_per_hour)
    ax1.fill_between(x, expected, upper, color="#9ecae1", alpha=0.6, label="expected band", step="mid")
    ax1.plot(x, expected, color="#3182bd", linewidth=1, linestyle="--", label="expected")
    ax1.plot(x, series(t.observed_per_hour), color="#d62728", linewidth=2, label="observed")
    ax1.set_ylabel("mentions / hour")
    ax1.set_title(title[:80], fontsize=11)
    ax1.legend(loc="upper left", fontsize=8, frameon=False)
    ax1.grid(alpha=0.3)
    ax2.plot(x, [100 * v for v in series(t.negativity_share)], color="#d62728", linewidth=2, label="negative")
    ax2.plot(
        x,
        [100 * v for v in series(t.baseline_negativity_share)],
        color="#3182bd",
        linestyle="--",
        linewidth=1,
        label="usual",
    )
    ax2.set_ylabel("negative %")
    ax2.set_ylim(0, 100)
    ax2.legend(loc="upper left", fontsize=8, frameon=False)
    ax2.grid(alpha=0.3)
    ax2.xaxis.set_major_formatter(DateFormatter("%H:%M"))
    ax2.set_xlabel("UTC")
    fig.subplots_adjust(left=0.1, right=0.97, top=0.92, bottom=0.12, hspace=0.12)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
