"""The console notifier says what Slack says; the docstring examples of the notifier modules run."""

from __future__ import annotations

import doctest
import importlib
import io
import json

import msgspec
import pytest
from slack_helpers import note

from daemon.notification import ResponseFigures, StaffingFigures, VolumeFigures
from notifiers.console import ConsoleNotifier
from notifiers.render import IncidentStatus, render, thread_text
from notifiers.slack.blocks import root_blocks
from notifiers.slack.testing import SlackEmulator


def test_console_prints_the_same_content_as_the_slack_root(slack: SlackEmulator, make_notifier) -> None:
    out = io.StringIO()
    n = note(1, top_terms=["ash", "<!channel>"])
    assert ConsoleNotifier(out).send(n).ok
    text = out.getvalue()
    assert make_notifier().send(n).ok
    slack_text = json.dumps(slack.messages("#crisis")[0]["blocks"], ensure_ascii=False)
    message = render(n)
    for line in [message.title, *message.staffing, *(v for _, v in message.figures)]:
        assert line in text
    for plain in ("SEV1 · klm", "17.4×", "Agents needed: 34", "Volunteers signed up: 0", "All flights cancelled"):
        assert plain in text and plain in slack_text
    assert "<!channel>" in text and "&lt;!channel&gt;" in slack_text, "plain on the console, escaped in Slack"
    assert "[Acknowledge] [Escalate] [Resolve] [Snooze] [I can help]" in text
    assert len(root_blocks(message)) <= 50


@pytest.mark.parametrize(
    "module",
    [
        "daemon.notification",
        "daemon.outbox",
        "notifiers.render",
        "notifiers.console",
        "notifiers.slack.blocks",
        "notifiers.slack.chart",
        "notifiers.slack.notifier",
        "notifiers.slack.settings",
        "notifiers.slack.testing",
    ],
)
def test_doctests(module: str) -> None:
    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0


def test_resolved_messages_say_duration_and_totals_once() -> None:
    """The resolved headline is the summary, and the thread line does not repeat it after its figures."""
    summary = "klm: back to normal after 4h 00m; peak 8,000/h, 12,000 mentions, 800 replies."
    n = note(3, type="incident.resolved", summary=summary, staffing=None, called_in=0)
    assert render(n).headline == summary
    assert thread_text(n) == (
        "Resolved at 2010-04-16T09:40:00Z: duration 4h 00m, peak 8,000/h, mentions 12,000, brand replies 800."
    )


def test_replies_line_gives_the_counts_behind_a_tiny_response_rate() -> None:
    figures = ResponseFigures(response_rate=0.0025, mentions=14020, answered=35, backlog=13901, window_minutes=120)
    replies = dict(render(note(2, type="incident.updated", responses=figures)).figures)["Replies"]
    assert replies == "response rate <1% in the last 2h 00m (35 of 14,020 answered), backlog 13,901"


def test_figures_say_which_stretch_each_covers() -> None:
    """The volume is the current load; the negativity is the incident's mentions so far, so a
    resolved incident's 89% does not read as today's mood."""
    figures = dict(render(note(9, type="incident.resolved")).figures)
    assert figures["Negativity"].endswith("of the incident's mentions vs 24% usually")


def test_the_thread_line_says_why_an_update_came() -> None:
    """An update the load did not trigger (a backlog building) still says what moved."""
    line = thread_text(note(4, type="incident.updated", reason="staffing", updated_at="2010-04-16T07:38:00Z"))
    assert line.startswith("Update 4 at 2010-04-16T07:38:00Z (the staffing need moved): SEV1, volume ")
    assert "; staffing: 34 agents needed, call in 36" in line
    assert "(" not in thread_text(note(1)).split(":")[0], "the opening line needs no reason"


def test_the_staffing_says_what_left_the_backlog_unanswered() -> None:
    """A backlog that fell from 20,314 to 8,681 because mentions aged out must not read as answered."""
    figures = ResponseFigures(backlog=8681, dropped_old=11633, max_age_minutes=360, window_minutes=120)
    staffing = render(note(9, type="incident.updated", responses=figures)).staffing
    line = "Backlog: 8,681 waiting (+11,633 older than 6 h dropped unanswered in the last 24 h)"
    assert line in staffing and staffing.index(line) == len(staffing) - 2  # before the volunteers
    resolved = render(note(10, type="incident.resolved", staffing=None, responses=figures, called_in=0))
    assert resolved.staffing == [line], "said without a staffing suggestion too"
    assert not any(x.startswith("Backlog") for x in render(note(2, responses=ResponseFigures(backlog=5))).staffing)


def test_the_stand_down_of_those_on_shift_is_said() -> None:
    """The planner offers it only while the load falls and not as the incident opens or escalates."""
    staffing = StaffingFigures(agents_needed=5, to_schedule=8, on_shift=10, call_in=0, stand_down=2, advice="Covered.")
    said = "Covered. 2 can stand down now."
    assert said in render(note(5, type="incident.updated", reason="load", staffing=staffing)).staffing
    called = msgspec.structs.replace(staffing, called_in=1)
    said = "Covered. 2 can stand down now, those called in first."
    assert said in render(note(5, type="incident.updated", reason="load", staffing=called)).staffing


def test_the_resolution_stands_down_those_the_last_suggestion_called_in() -> None:
    """In the numbers of the last suggestion (call in 1,279, which the pipeline carries to the
    resolution), and the thread says what the block says: people on the schedule (709), not the
    473 answering the backlog at once."""
    out = io.StringIO()
    console = ConsoleNotifier(out)
    still = StaffingFigures(
        agents_needed=496,
        to_schedule=709,
        on_shift=0,
        call_in=709,
        backlog=8681,
        backlog_agents=473,
        advice="Call in 709",
    )
    assert console.send(note(9, type="incident.resolved", staffing=still, called_in=1279)).ok
    resolved = out.getvalue()
    said = "Stand down 570 of the 1,279 called in; keep 709 until the backlog of 8,681 is cleared."
    assert f"    {said}\n    Agents needed: 496 (schedule 709; on shift 0)\n" in resolved
    assert "Call in 709" not in resolved and "473" not in resolved
    assert resolved.splitlines()[-1].endswith(f"brand replies 800. {said}")
    # no backlog left: all of them go
    gone = note(2, type="incident.resolved", staffing=None, called_in=1279)
    assert thread_text(gone).endswith("brand replies 800. Stand down the 1,279 called in.")
    # the call-in is unknown (a restore from an older checkpoint): still no one kept for nothing
    unknown = thread_text(note(2, type="incident.resolved", staffing=still))
    assert unknown.endswith("Stand down those called in for the surge but 709, until the backlog of 8,681 is cleared.")


def test_a_watch_calls_no_one_in_for_the_everyday_backlog() -> None:
    """A sev3 watch: what the load above normal adds if it holds, not 'call in 503' for the whole
    queue and the backlog the brand carries every day."""
    staffing = StaffingFigures(
        agents_needed=352, to_schedule=503, on_shift=0, call_in=503, backlog=2176, backlog_agents=126,
        sla_target="80/15m", service_level=0.99, above_normal=143, by_language={"en": 167},
        advice="Call in 503: 352 people answering at once, ...",
    )  # fmt: skip
    watch = note(1, severity="sev3", staffing=staffing, volume=VolumeFigures(5340, 3119.4, 1.71))
    lines = render(watch, IncidentStatus(volunteers=2)).staffing
    assert lines == [
        "Watch: no call-in. If this load holds, it needs 143 more on the schedule than the normal 3,119/h;"
        " the 2,176 waiting are not counted.",
        "SLA target: 80% in 15m",
        "Volunteers signed up: 2",
    ]
    assert thread_text(watch).endswith(
        "; staffing: a watch, no call-in (143 more than the normal load needs, if it holds)"
    )
    out = io.StringIO()  # its resolution stands no one down
    console = ConsoleNotifier(out)
    console.send(watch)
    console.send(note(2, type="incident.resolved", severity="sev3", staffing=None, called_in=0))
    assert "stand down" not in out.getvalue().lower()
    # escalated, the full suggestion
    assert "Agents needed: 352 (schedule 503; on shift 0; call in 503)" in render(note(2, staffing=staffing)).staffing
