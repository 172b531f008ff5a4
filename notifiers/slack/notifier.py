"""The Slack notifier: one living root message per incident, a thread for its timeline.

`send(n)` is called by the outbox, in `seq` order per incident, possibly again after a crash or
a failure. Each notification is a few steps (post or update the root, post the thread line,
upload the chart); each post is recorded `inflight` before the call and `done` after it, so a
post whose answer was lost (reset or timeout after Slack committed it) is looked up in Slack by
its marker (message metadata, or the chart's title) before it is sent again: no duplicate root
message, no duplicate thread line, across restarts too. Errors become a `Delivery`: 429 ->
retry after Retry-After; 5xx, connection errors and timeouts -> retry; other Slack errors ->
not retried. The notifier never sleeps: a channel over its rate (token bucket on the injected
clock) answers "retry in x seconds", and so does every call of a Slack method that answered 429
until its Retry-After has passed (Slack's limits are per method: one notification's 429 holds
the method for all of them, and for the background thread's pages too).

A background thread (`start()`) runs `tick()`: escalation pages that are due, thread notes
and root refreshes after button presses. Button presses arrive via `handle_interaction`
(HTTP, signature-checked) or `handle_payload` (Socket Mode) and only change local state
inline; the Slack calls they cause are made by `tick()`.

Several replicas (daemon/kafka/runner.py sets `owns`): an incident is run by the replica holding its
brand's partition, and only that one writes its view to the root, pages, posts notes and applies
presses. A replica that gets an incident back (the partition moved away and back, or a restart) reads
the root once before it does any of that, and takes over what another replica wrote there meanwhile
(`_catch_up`, `_adopt_root`; the revision in the root's metadata tells which is newer). One losing a
partition writes what it applied and had not shown before it lets go (`release`), and forgets all but
the root's address of an incident it has not run for a month (`_forget_lost`). One cut off from Kafka
runs its incidents on provisionally (`provisional`): it reads each root before it acts and leaves the
incident to the replica that took it over once that one has claimed the root (`adopt`, `_still_runs`).
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import structlog
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler
from slack_sdk.signature import Clock as SignatureClock
from slack_sdk.signature import SignatureVerifier
from slack_sdk.webhook import WebhookClient

from daemon import metrics
from daemon.clock import Clock, SystemClock
from daemon.events import parse_event_time
from daemon.notification import Notification, from_json, human_duration, to_json
from notifiers.base import LATE_POST_SECONDS, Delivery, Standing
from notifiers.render import ACTIONS, IncidentStatus, render, thread_text
from notifiers.slack import blocks as bk
from notifiers.slack.settings import EscalationSettings, SlackSettings, check_startup
from notifiers.slack.store import Escalation, SlackStore

log = structlog.get_logger(__name__)

ROOT_EVENT = "crisisd_incident"
POST_EVENT = "crisisd_post"
ACTION_IDS = frozenset(a for a, _, _ in ACTIONS)
_USER_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")
_CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{2,}$")
_LANGUAGE = re.compile(r"^[A-Za-z0-9_-]{1,16}$")  # a language code the root's metadata carries (en, pt-BR)
_RETRYABLE_ERRORS = {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
REPLAY_WINDOW = 300.0
# Resolved incidents are forgotten after this long (longer than the outbox remembers deliveries,
# so a late re-delivery is still recognised).
RETAIN_RESOLVED_SECONDS = 30 * 86400.0
# An incident this replica has not run for this long (its brand moved to another replica), nor used the
# record of (no delivery, no read of its root), is cut down to its root's address (`_forget_lost`): the
# replica never sees its resolution, so the rest would otherwise stay, and be scanned every tick, for
# good. Not dropped whole: the notifications carry only the incident id, and a replica with no record
# finds the root again only by scanning the channel's history (bounded: `_scan`), so if the brand comes
# back the address keeps it on the same root, read once and taken over as on any move back (one with no
# record at all is looked for by that scan first). The address goes too after RETAIN_ROOT_ADDRESS_SECONDS.
RETAIN_LOST_SECONDS = RETAIN_RESOLVED_SECONDS
RETAIN_ROOT_ADDRESS_SECONDS = 365 * 86400.0
# A press that came while this replica could neither apply it nor pass it on (starting: partitions
# not yet restored, relay not up; or Kafka out of reach for the relay) is kept this long, then dropped
# with a warning.
PRESS_HOLD_SECONDS = 600.0
RELAY_RETRY_SECONDS = 10.0  # a press that could not be passed on (Kafka out of reach) is tried again this often
# How long a replica losing partitions may spend showing what it applied to their incidents (`release`):
# the rebalance waits for it (one Slack call may run past it by up to `slack.http_timeout_seconds`).
RELEASE_SECONDS = 5.0
# An incident run provisionally (cut off from Kafka) has its root read before its writes, once per this
# many seconds: one read serves a tick's page, note and refresh, and a root refresh failing every tick
# costs no read each time.
PROVISIONAL_READ_SECONDS = 10.0
CHART_ATTEMPTS = 5  # a chart upload that fails this often (5xx, timeouts) is given up
# What the root message's metadata carries of the volunteers (`_root_metadata`), for the replica that
# takes the incident over. Message metadata is meant to be small and a surge can bring hundreds of
# sign-ups, so it carries no per-person list, only: the count; the count per language (the
# MAX_CARRIED_LANGUAGES most spoken; codes of at most 16 ASCII letters, digits, '-' or '_', as rosters
# give them); and the ids of the first MAX_CARRIED_VOLUNTEER_IDS to sign up (fewer if they would pass
# MAX_CARRIED_ID_CHARS). With the escalation fields the payload stays under 2 KB (beside the incident
# id) whatever the sign-ups (tests/slack/test_slack_escalation.py: 300 volunteers, about 1.6 KB). The
# ids only keep a volunteer who presses "I can help" again on the new owner from being counted twice;
# one past the first 50 who does so after a takeover is counted twice.
MAX_CARRIED_VOLUNTEER_IDS = 50
MAX_CARRIED_ID_CHARS = 700
MAX_CARRIED_LANGUAGES = 30
# Which is newer, the root's metadata or a replica's own record of the incident: every write of the
# root carries a revision (`rev`) and the writer id of the replica that wrote it (`by`). An owner
# writes one more than the revision its record goes on from, and records it once Slack confirmed the
# write; a replica taking the incident over (or getting it back) goes on from the revision it read.
# So the root's revision is higher than a replica's record, or equal but by another writer, exactly
# when another replica wrote the root after this one last wrote or read it (`_adopt_root`). A counter,
# not a timestamp: the replicas' clocks need not agree, and every owner has read the root's revision
# before it writes a higher one. The writer id keeps a replica from taking over its own write whose
# answer was lost.


class Throttled(Exception):
    """The channel's token bucket is empty, or Slack asked to wait (429): try again in `wait` seconds."""

    def __init__(self, wait: float, why: str = "channel rate limit") -> None:
        super().__init__(f"{why}, retry in {wait:.2f}s")
        self.wait = wait


class NotKnownYet(Throttled):
    """Where another replica put the incident's root is not known yet (the notification log is still
    being read after a takeover): asked again in a moment. Not a failure."""


class PermanentError(Exception):
    """A configuration problem retrying cannot fix (e.g. the channel does not exist)."""


class SlackConfigError(Exception):
    """Slack refused the token or the channel at start: `setting` names what to fix."""

    def __init__(self, setting: str, error: str, detail: str = "") -> None:
        super().__init__(f"{setting}: Slack says {error}" + (f" ({detail})" if detail else ""))
        self.setting, self.error = setting, error


# Answers that name a bad setting (`SlackNotifier.verify`): the token, or the incident channel.
TOKEN_ERRORS = frozenset({"invalid_auth", "not_authed", "token_revoked", "token_expired", "account_inactive"})
CHANNEL_ERRORS = frozenset({"channel_not_found", "not_in_channel", "is_archived"})


class Undecided(Exception):
    """After an uncertain failure, the lookup that would tell whether the post is in Slack failed
    (e.g. `missing_scope`): posting again could duplicate it, so the notification is retried."""


# What the lookups after a lost answer need, for the error that says they failed.
LOOKUP_SCOPES = (
    "the bot token needs channels:history (groups:history for a private channel), "
    "and channels:read (groups:read) when the channel is given by name"
)


# The bot token scopes crisisd uses (config/slack-app-manifest.yaml asks for them). Slack names a token's
# scopes in the `x-oauth-scopes` header of every answer: `verify` refuses to start without the first, which
# every incident needs, and says what goes missing without each of the others.
NEEDED_SCOPES = {"chat:write": "post and update the incident messages, thread lines and pages"}
WANTED_SCOPES = {
    ("channels:history", "groups:history"): "look for a post whose answer was lost before posting again (else "
    "such a notification is retried until the scope is added) and find the root of an incident another replica ran",
    ("files:write",): "upload the volume chart into the incident's thread",
}


# What the person who pressed a button is told at once, and only them (an ephemeral message through the
# press's `response_url`): the incident message itself changes a moment later, on the background thread.
CONFIRMATIONS = {
    "crisisd.ack": "You acknowledged {iid}: escalation stops. The incident message shows it in a moment.",
    "crisisd.escalate": "Escalating {iid} to the next level now.",
    "crisisd.snooze": "Escalation of {iid} snoozed for {snooze} min.",
    "crisisd.resolve": "You marked {iid} resolved: escalation stops, and crisisd closes it when the mentions "
    "are back to normal.",
    "crisisd.volunteer": "Thank you for helping with {iid}: you are counted as a volunteer{languages}. The "
    "incident's thread says what is needed.",
}
# Where a `response_url` may point: Slack's own hosts (and the configured API's, for Slack-compatible
# servers and tests); a payload is authenticated, but crisisd posts nowhere else.
RESPONSE_HOSTS = frozenset({"hooks.slack.com", "hooks.slack-gov.com"})
CONFIRM_WITHIN_SECONDS = 60.0
CONFIRM_TIMEOUT_SECONDS = 5


class TokenBucket:
    """Per-channel rate limit on an injected clock (GCRA: a token bucket that hands out slots).

    A caller refused a token gets a reserved slot, so callers that come back exactly when
    told are served in turn instead of all racing for the next token.

    >>> from daemon.clock import FakeClock
    >>> c = FakeClock(); b = TokenBucket(rate=1.0, burst=2, clock=c)
    >>> b.take("C1", "a"), b.take("C1", "b"), b.take("C1", "c"), b.take("C1", "d")
    (0.0, 0.0, 1.0, 2.0)
    >>> c.advance(1.0); b.take("C1", "d"), b.take("C1", "c"), b.take("C1", "e")
    (1.0, 0.0, 2.0)
    """

    def __init__(self, rate: float, burst: int, clock: Clock) -> None:
        self.rate, self.burst, self._clock = rate, burst, clock
        self._tat: dict[str, float] = {}  # channel -> theoretical arrival time of the next free slot
        self._reserved: dict[tuple[str, str], float] = {}  # (channel, holder) -> slot time

    def take(self, key: str, holder: str = "") -> float:
        """Take a slot for `holder` on channel `key`: 0.0 if granted now, else the seconds to wait."""
        now = self._clock.monotonic()
        slot = self._reserved.get((key, holder))
        if slot is not None:
            if slot <= now:
                del self._reserved[(key, holder)]
                return 0.0
            return slot - now
        interval = 1.0 / self.rate
        tat = max(self._tat.get(key, now), now)
        allowed_at = tat - (self.burst - 1) * interval
        self._tat[key] = tat + interval
        if allowed_at <= now:
            return 0.0
        if len(self._reserved) > 10_000:  # holders that never came back (gave up): forget old slots
            self._reserved = {k: t for k, t in self._reserved.items() if t > now - 600}
        self._reserved[(key, holder)] = allowed_at
        return allowed_at - now


def retry_after(exc: SlackApiError) -> float:
    """The seconds a 429 answer asks to wait (1 when its Retry-After is missing or unreadable)."""
    raw = exc.response.headers.get("Retry-After") or exc.response.headers.get("retry-after") or "1"
    try:
        return max(0.0, float(raw))
    except ValueError:
        return 1.0


def classify(exc: BaseException) -> Delivery:
    """What the outbox should do about a failed call."""
    if isinstance(exc, Throttled):
        return Delivery(ok=False, retry=True, retry_after=exc.wait, error=str(exc), paced=True)
    if isinstance(exc, PermanentError):
        return Delivery(ok=False, retry=False, error=str(exc))
    if isinstance(exc, Undecided):
        return Delivery(ok=False, retry=True, error=str(exc))
    if isinstance(exc, SlackApiError):
        status = exc.response.status_code
        error = str(exc.response.get("error", "")) if isinstance(exc.response.data, dict) else ""
        if status == 429:
            return Delivery(ok=False, retry=True, retry_after=retry_after(exc), error="ratelimited (429)")
        if status >= 500 or error in _RETRYABLE_ERRORS:
            return Delivery(ok=False, retry=True, error=f"slack {status} {error[:80]}")
        return Delivery(ok=False, retry=False, error=f"slack error: {error or status}")
    # Connection refused/reset, timeouts, truncated answers: Slack may be back in a moment.
    return Delivery(ok=False, retry=True, error=f"{type(exc).__name__}: {str(exc)[:200]}")


def slack_error(exc: BaseException) -> str:
    """Slack's error code of a failed call ("invalid_auth"), else the HTTP status or exception type."""
    if isinstance(exc, SlackApiError):
        data = exc.response.data
        code = data.get("error") if isinstance(data, dict) else None
        return str(code or exc.response.status_code)
    return type(exc).__name__


def _revision(payload: Mapping[str, Any]) -> tuple[int, str]:
    """The revision and writer a root's metadata carries (0 and "" when it has none we can read)."""
    try:
        rev = int(payload.get("rev") or 0)
    except (TypeError, ValueError):
        rev = 0
    return rev, str(payload.get("by") or "")[:64]


def _spoken(languages: list[str]) -> str:
    """What follows a volunteer's name: the languages in brackets, e.g. ` (nl, en)`; nothing without."""
    return f" ({', '.join(languages)})" if languages else ""


def _uncertain(exc: BaseException) -> bool:
    """Could the call have taken effect although it failed?"""
    if isinstance(exc, Throttled | PermanentError | Undecided):
        return False
    if isinstance(exc, SlackApiError):
        return bool(exc.response.status_code >= 500)
    return True


class _ClockAdapter(SignatureClock):
    """slack-sdk's signature clock, on our injected clock."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock

    def now(self) -> float:
        return self._clock.now()


class SlackNotifier:
    """Implements `notifiers.base.Notifier` on slack-sdk's `WebClient`.

    `on_resolve(incident_id, user_id)` is called (from the background thread) when someone
    presses Resolve; `languages_for(user_id)` gives a volunteer's languages from the roster
    and must be fast (it runs while Slack waits for the HTTP answer).

    slack-sdk's `RateLimitErrorRetryHandler` is taken off `client` if it has one: it would sleep
    in the caller's thread and retry, on top of the outbox waiting the same Retry-After.
    """

    def __init__(
        self,
        client: WebClient,
        channel: str,
        state_dir: str | Path,
        *,
        clock: Clock | None = None,
        settings: SlackSettings | None = None,
        signing_secret: str | None = None,
        on_resolve: Callable[[str, str], None] | None = None,
        languages_for: Callable[[str], list[str]] | None = None,
    ) -> None:
        self.client = client
        handlers = getattr(client, "retry_handlers", None)
        if handlers:
            client.retry_handlers = [h for h in handlers if not isinstance(h, RateLimitErrorRetryHandler)]
        self.settings = settings or SlackSettings(channel=channel)
        self.channel = channel
        self.policy: EscalationSettings = self.settings.escalation
        self.clock: Clock = clock or SystemClock()
        self.store = SlackStore(state_dir)
        self.on_resolve = on_resolve
        self.languages_for = languages_for
        # Several replicas (daemon/kafka/relay.py): whether this one runs an incident's escalation,
        # and how a press for one it does not run reaches the one that does. None: it runs them all.
        self.owns: Callable[[str], bool] | None = None
        # `relay` answers False when the press could not be passed on (Kafka out of reach): it is kept
        # and passed on again (every RELAY_RETRY_SECONDS, for PRESS_HOLD_SECONDS).
        self.relay: Callable[[str, str, str], bool | None] | None = None
        # The daemon (daemon/kafka/runner.py): whether an incident is known to be open now. An
        # incident's first page waits while it says `behind` (crisisd is replaying history and the
        # incident may be over already); `over` stops the ladder. None: every incident is current.
        self.standing: Callable[[str], Standing] | None = None
        # The daemon too: whether this replica runs an incident only because it cannot tell whether
        # another one has taken it over (Kafka is out of its reach, the partition was lost). Before
        # each write, page or press of such an incident the root is read again, and the incident is
        # left to whoever wrote it meanwhile (`_still_runs`). None: this replica's `owns` is certain.
        self.provisional: Callable[[str], bool] | None = None
        # And where the replica that last delivered an incident's notification put its root (the shared
        # notification log: `address` below, "<channel id> <ts>"), so finding the root of an incident
        # another replica ran takes one read, not a scan of the channel's history. None: scan; LookupError:
        # not known yet (the log is being read), ask again.
        self.root_hint: Callable[[str], str | None] | None = None
        self._writer = self.store.writer()
        # Incidents whose root this replica has read (or written) since it last got them, by the count of
        # `reassigned()` calls then: their record is current and the writes they need can go out.
        self._current: dict[str, int] = {}
        self._tenure = 0
        # Incidents run provisionally that another replica wrote the root of since, by the count of
        # `reassigned()` calls then: not run here again until the group assigns partitions anew.
        self._yielded: dict[str, int] = {}
        self._read_at: dict[str, float] = {}  # provisional incident -> monotonic time its root was last read
        # open incidents of partitions just taken over that this replica has no record of (`adopt`),
        # with the notification their root shows: their roots are looked for, and their escalation
        # taken over, on the background thread
        self._adopting: dict[str, Notification] = {}
        self._bucket = TokenBucket(self.settings.rate_per_second, self.settings.burst, self.clock)
        self._held: dict[str, float] = {}  # Slack method -> monotonic time its 429's Retry-After ends
        self._verifier = SignatureVerifier(signing_secret, clock=_ClockAdapter(self.clock)) if signing_secret else None
        self._lock = threading.RLock()  # Slack calls and their bookkeeping, one at a time
        self._seen: OrderedDict[str, float] = OrderedDict()  # signatures of accepted requests (replays)
        self._seen_lock = threading.Lock()  # also guards _resolves
        self._resolves: list[tuple[str, str]] = []
        # presses to confirm to the person who pressed: (monotonic time, response_url, action, incident, user)
        self._confirmations: list[tuple[float, str, str, str, str]] = []
        self._relay_tried: dict[int, float] = {}  # deferred press (its id) -> when passing it on last failed
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._next_prune = 0.0
        self._holder = ""  # the post now being made, for the rate limiter's reserved slots
        self._png: OrderedDict[tuple[str, int], bytes] = OrderedDict()
        self._chart_failures: dict[tuple[str, int], int] = {}  # (incident, seq) -> failed uploads

    # -- Notifier ------------------------------------------------------------------------
    def send(self, notification: Notification) -> Delivery:
        with self._lock:
            try:
                self._send(notification)
            except Exception as exc:
                result = classify(exc)
                if not result.retry:  # a bad token or channel, a refused message: counted by error
                    metrics.SLACK_ERRORS.labels(error=slack_error(exc)[:40]).inc()
                if result.paced:  # the channel's rate, or a 429's wait still running: sent in turn
                    log.info("slack.send_paced", incident_id=notification.incident_id, seq=notification.seq,
                             error=result.error)  # fmt: skip
                else:
                    log.warning(
                        "slack.send_failed",
                        incident_id=notification.incident_id,
                        seq=notification.seq,
                        retry=result.retry,
                        error=result.error,
                    )
                return result
        return Delivery.done()

    def delivered(self, notification: Notification) -> bool | None:
        """Whether `notification` is already in Slack (its thread line is there), for a notification
        log's bare claim after a crash; None when Slack cannot be asked (the log then sends again)."""
        n = notification
        with self._lock:
            try:
                rec = self.store.root(n.incident_id)
                if rec is not None and n.seq <= rec.last_seq:
                    return True
                if (rec is None or rec.root_ts is None) and not self._find_root(n.incident_id):
                    return False
                return self._find_post(n.incident_id, n.seq, "thread")
            except Exception as exc:
                log.warning("slack.delivered_unknown", incident_id=n.incident_id, seq=n.seq, error=str(exc))
                return None

    def verify(self) -> None:
        """For `crisisd run` at start: `auth.test`, then the incident channel (its id, from the list
        when given by name, and one message of its history: the bot can read it). Raises
        `SlackConfigError` for an answer naming a bad token or channel; anything else (connection,
        5xx, 429, another Slack error such as missing_scope) is raised as it is."""
        with self._lock:
            try:
                self._check_scopes(self.client.auth_test())
                channel_id = self._channel_id()
                self.client.conversations_history(channel=channel_id, limit=1)
            except SlackApiError as exc:
                error = slack_error(exc)
                if error in TOKEN_ERRORS:
                    raise SlackConfigError("slack.bot_token", error) from None
                if error in CHANNEL_ERRORS:
                    raise SlackConfigError("slack.channel", error, f"channel {self.channel!r}") from None
                raise
            except PermanentError as exc:  # the name is not in the list the bot sees
                raise SlackConfigError("slack.channel", "channel_not_found", f"{exc}; or give its id") from None

    def _check_scopes(self, answer: Any) -> None:
        """The token's scopes, from the header of an answer (`auth.test`): without chat:write nothing can
        be posted (`SlackConfigError`, so `crisisd run` stops at start, not at the first crisis); each
        other scope crisisd uses that is missing is one warning saying what will not work. Nothing is
        said when the header is absent (a proxy, another Slack-compatible API)."""
        headers = getattr(answer, "headers", None) or {}
        header = next((str(v) for k, v in headers.items() if str(k).lower() == "x-oauth-scopes"), None)
        if header is None:
            return
        granted = {x.strip() for x in header.split(",") if x.strip()}
        for scope, purpose in NEEDED_SCOPES.items():
            if scope not in granted:
                detail = f"the bot token lacks {scope}, needed to {purpose}; add it to the app and reinstall it"
                raise SlackConfigError("slack.bot_token", "missing_scope", detail)
        for scopes, purpose in WANTED_SCOPES.items():
            if granted.isdisjoint(scopes):
                log.warning("slack.scope_missing", scope=" or ".join(scopes), without_it_crisisd_cannot=purpose)

    def close(self) -> None:
        self.stop()
        with self._lock:
            self.store.close()

    def _send(self, n: Notification) -> None:
        iid = n.incident_id
        rec = self.store.root(iid)
        if rec is not None and n.seq <= rec.last_seq:
            return  # already applied (a re-delivery), or older than what the root shows
        if rec is None and n.seq > 1:
            # Another replica may have opened this incident (a partition moved): continue its root
            # message. Nothing is recorded before the lookup answers: a failed one is asked again.
            self._look(iid, "root", lambda: self._find_root(iid))
        elif rec is not None and rec.root_ts and not self._writes_own_view(iid):
            # Another replica may have run the incident since this one last wrote its root: the root is
            # read first and what it recorded taken over, so the update carries it, not this replica's
            # old view. One that does not run the incident reads it before each delivery it still makes
            # (its outbox held the notification when the partition moved, e.g. drained at shutdown;
            # the notification log lets one replica deliver each).
            self._catch_up(iid)
        self.store.ensure_root(iid, self.clock.now())
        rec = self.store.root(iid)
        assert rec is not None
        had_root = rec.root_ts is not None
        self._track_escalation(n)
        gen = rec.dirty
        message = render(n, self._status(iid))
        if not had_root:
            # One root step per incident (seq 0): a root post of an earlier notification whose answer
            # was lost is looked for by every later one, and none posts while the lookup cannot tell.
            if not self._once(iid, 0, "root", lambda: self._post_root(iid, message), lambda: self._find_root(iid)):
                # found (posted by an earlier attempt, maybe of an earlier notification): show this one
                self._once(iid, n.seq, "update", lambda: self._update_root(iid, message), lambda: False)
        else:  # an update is idempotent: after an uncertain failure it is simply made again
            self._once(iid, n.seq, "update", lambda: self._update_root(iid, message), lambda: False)
        self.store.set_body(iid, to_json(n), n.type == "incident.resolved", self.clock.now())
        self.store.clear_dirty(iid, gen)
        root = self._root(iid)
        line = thread_text(n)
        esc = self.store.escalation(iid)
        if n.type == "incident.opened" and esc is not None and esc.late is not None:
            line += f" (posted during catch-up, {human_duration(esc.late)} after the fact)"
        text = bk.clip(line, bk.MAX_SECTION_TEXT)  # outside text: no mentions restored
        self._once(iid, n.seq, "thread", lambda: self._post_thread(root, text, iid, n.seq, "thread"), None)
        if self.settings.chart and n.timeline is not None and n.timeline.observed_per_hour:
            timeline = n.timeline
            title = f"crisisd chart {iid} #{n.seq}"

            def upload() -> None:
                with self._api("files.getUploadURLExternal", "files.completeUploadExternal"):
                    self._throttle(root[0])
                    png = self._chart(iid, n.seq, timeline, f"{n.brand} · {n.severity.upper()} · {iid}")
                    self.client.files_upload_v2(
                        channel=root[0], thread_ts=root[1], file=png, filename=f"crisisd-{n.seq}.png", title=title
                    )

            self._best_effort_chart(
                iid, n.seq, lambda: self._once(iid, n.seq, "chart", upload, lambda: self._find_file(root, title))
            )
        self.store.finish(iid, n.seq)
        log.info("slack.sent", incident_id=iid, seq=n.seq, type=n.type)

    def _best_effort_chart(self, iid: str, seq: int, upload: Callable[[], object]) -> None:
        """The chart illustrates; it must not hold up the incident's text. An upload Slack refuses
        is skipped at once, one that keeps failing after `CHART_ATTEMPTS` tries (the notification
        and the ones after it wait meanwhile)."""
        key = (iid, seq)
        try:
            upload()
        except Throttled:
            raise  # our own rate limit: not a failure
        except Exception as exc:
            failures = self._chart_failures.get(key, 0) + 1
            result = classify(exc)
            if result.retry and failures < CHART_ATTEMPTS:
                self._chart_failures[key] = failures
                raise
            log.error("slack.chart_skipped", incident_id=iid, seq=seq, attempts=failures, error=result.error)
            self.store.set_step(iid, seq, "chart", "done")
        self._chart_failures.pop(key, None)

    def _chart(self, iid: str, seq: int, timeline: Any, title: str) -> bytes:
        """The PNG, drawn once per notification even when its upload is retried."""
        key = (iid, seq)
        png = self._png.get(key)
        if png is None:
            from notifiers.slack.chart import chart_png

            png = self._png[key] = chart_png(timeline, title)
            while len(self._png) > 8:  # one per incident being retried; a few suffice
                self._png.popitem(last=False)
        return png

    # -- ownership (several replicas) -----------------------------------------------------
    def reassigned(self) -> None:
        """Partitions were assigned to this replica (the runner calls it before it runs them): an
        incident it gets back may have been run by another replica since this one last read its root,
        so each root is read again before this replica next writes to it, pages or applies a press.
        (`owns` turning false is seen at every write; this catches a move away and back between two.)"""
        self._tenure += 1
        self._yielded.clear()  # the group is whole again: what this replica runs is certain
        self._read_at.clear()

    def adopt(self, open_incidents: Iterable[Notification]) -> None:
        """Open incidents of partitions this replica has just taken over, each with its last
        notification (the runner calls it once they are restored). One it has no record of was run by
        another replica: without this it would page nobody, and redraw no root for a press, until the
        incident's next notification, which a steady crisis may not send for a long while. On the
        background thread each root is read (looked for by its metadata when this replica has no record
        of it), the escalation recorded there goes on from here, and the root of one that still pages
        is redrawn from the newest notification: a write that claims it, so that a replica still running
        the incident provisionally (cut off from Kafka, `provisional`) sees that it moved and leaves it."""
        named = {n.incident_id: n for n in open_incidents}
        if named:
            with self._seen_lock:
                self._adopting.update(named)
            self._wake.set()

    def _runs(self, iid: str) -> bool:
        """Whether this replica runs the incident now (every incident, without `owns`)."""
        if self.owns is None:
            return True
        if self.owns(iid) and self._yielded.get(iid) != self._tenure:
            return True
        self._current.pop(iid, None)  # if it comes back, its root is read first
        return False

    def _is_current(self, iid: str) -> bool:
        """Whether this replica has read (or written) the root since it last got the incident."""
        return self.owns is None or self._current.get(iid) == self._tenure

    def _ready(self, iid: str) -> bool:
        """Whether the background thread may write the root, page, post a note or apply a press for the
        incident now: this replica runs it, and has read its root since it got it (read here if not).
        A failed read is logged and tried again on the next tick."""
        if not self._runs(iid):
            return False
        if not self._is_current(iid):
            try:
                self._catch_up(iid)
            except NotKnownYet as exc:
                log.info("slack.root_lookup_waits", incident_id=iid, why=str(exc))
                return False
            except Exception as exc:
                result = classify(exc)
                log.warning(
                    "slack.tick_failed", step="read_root", incident_id=iid, retry=result.retry, error=result.error
                )
                return False
        if not self._is_current(iid):
            return False
        if self.provisional is not None and self.provisional(iid):
            return self._still_runs(iid)
        return True

    def _writes_own_view(self, iid: str) -> bool:
        """Whether a delivery may write this replica's record to the root as it is: it runs the incident,
        has read the root since it got it, and, running it provisionally, nobody else wrote there since."""
        if not (self._runs(iid) and self._is_current(iid)):
            return False
        return self.provisional is None or not self.provisional(iid) or self._still_runs(iid)

    def _still_runs(self, iid: str) -> bool:
        """For an incident run provisionally (`provisional`): read its root, and leave the incident to
        another replica that wrote it since this one's record (the group gave that one the partition
        while this replica was cut off from Kafka; it claims the root as it takes over: `adopt`). So a
        replica cut off alone pages beside the new owner at most until that one's first write, not
        until it reaches the group again; in an outage of Kafka itself nobody writes, and it pages on.
        A failed read writes nothing this tick."""
        rec = self.store.root(iid)
        if rec is None or not rec.channel_id or not rec.root_ts:
            return True  # no root yet: nothing another replica could have written to
        now = self.clock.monotonic()
        if now - self._read_at.get(iid, -math.inf) < PROVISIONAL_READ_SECONDS:
            return True  # read a moment ago (the same tick's page, note and refresh need one read)
        try:
            payload = self._read_root(iid, (rec.channel_id, rec.root_ts))
        except Exception as exc:
            result = classify(exc)
            log.warning("slack.tick_failed", step="read_root", incident_id=iid, retry=result.retry, error=result.error)
            return False
        if payload is None or not self._written_since(iid, payload):
            self._read_at[iid] = now
            return True
        self._read_at.pop(iid, None)
        self._yielded[iid] = self._tenure
        self._current.pop(iid, None)
        log.info("slack.incident_left", incident_id=iid, why="another replica wrote its root: Kafka moved it")
        return False

    def _written_since(self, iid: str, payload: Mapping[str, Any]) -> bool:
        """Whether another replica wrote the root (its metadata `payload`) after this one's record of the
        incident was written or read (see `rev` above)."""
        rec = self.store.root(iid)
        own_rev, own_by = (rec.rev, rec.rev_by) if rec is not None else (0, "")
        rev, by = _revision(payload)
        if by == self._writer:  # its own write (found after its answer was lost, or written before a restart)
            return False
        return rev > own_rev or (rev == own_rev and by != own_by)

    def _catch_up(self, iid: str) -> None:
        """Read the incident's root (one call) and take over what another replica recorded there after
        this one's record (`_adopt_root`); the record is current from then on while this replica runs
        the incident. Raises what the read raised, `Undecided` for an answer retrying cannot change
        (missing_scope): nothing is written from a record that may be old."""
        tenure, runs = self._tenure, self._runs(iid)
        rec = self.store.root(iid)
        if rec is None:
            # never run here (a partition taken over, a press for it): the root another replica posted,
            # found by its metadata, and what it recorded taken over (`_find_root` marks it current)
            if self._look(iid, "root", lambda: self._find_root(iid)):
                return
        elif rec.channel_id and rec.root_ts:
            try:
                payload = self._read_root(iid, (rec.channel_id, rec.root_ts))
            except Exception as exc:
                result = classify(exc)
                if result.retry:  # 5xx, connection, 429: tried again
                    raise
                log.error("slack.root_unreadable", incident_id=iid, error=result.error, hint=LOOKUP_SCOPES)
                raise Undecided(f"cannot read the root of {iid} ({result.error}); {LOOKUP_SCOPES}") from exc
            if payload is not None:
                self._adopt_root(iid, payload)
        if runs:
            self._current[iid] = tenure

    def _read_root(self, iid: str, root: tuple[str, str]) -> dict[str, Any] | None:
        """The root message's metadata payload; None when the root is gone (the next update posts a new
        one) or carries none of ours."""
        try:
            with self._api("conversations.replies"):
                r = self.client.conversations_replies(channel=root[0], ts=root[1], limit=1, include_all_metadata=True)
        except SlackApiError as exc:
            if slack_error(exc) in ("thread_not_found", "message_not_found"):
                return None
            raise
        for m in r.get("messages") or []:
            md = m.get("metadata") or {}
            payload = md.get("event_payload") or {}
            if m.get("ts") == root[1] and md.get("event_type") == ROOT_EVENT and payload.get("incident_id") == iid:
                return dict(payload)
        return None

    def _rev_to_write(self, iid: str) -> int:
        """The revision a write of the root carries: one more than the record's from the replica that
        runs the incident; the same from one that does not (it read the root just before and writes
        back what it took over: `_send`)."""
        rec = self.store.root(iid)
        own = rec.rev if rec is not None else 0
        return own + 1 if self._runs(iid) else own

    # -- posting -------------------------------------------------------------------------
    @contextlib.contextmanager
    def _api(self, *methods: str) -> Iterator[None]:
        """Around the Slack calls of `methods`: raises `Throttled` (no call) while a 429 holds one of
        them, and a 429 from inside holds its method, for every caller, until Retry-After has passed."""
        now = self.clock.monotonic()
        wait = max((self._held.get(m, now) - now for m in methods), default=0.0)
        if wait > 0:
            held = ", ".join(m for m in methods if self._held.get(m, now) > now)
            raise Throttled(wait, f"slack asked to wait (429 on {held})")
        try:
            yield
        except SlackApiError as exc:
            if exc.response.status_code == 429:
                # the method that answered (files_upload_v2 makes several calls), else the first named
                url = str(getattr(exc.response, "api_url", "") or "")
                method = url.rsplit("/", 1)[-1].split("?")[0]
                method = method if method in methods else methods[0]
                until = self.clock.monotonic() + retry_after(exc)
                self._held[method] = max(self._held.get(method, 0.0), until)
                log.warning("slack.rate_limited", method=method, retry_after=retry_after(exc))
            raise

    def _throttle(self, channel: str) -> None:
        # One bucket per channel, whether it is named by name or by id.
        key = channel
        if channel == self.channel or channel == self.store.channel(self.channel):
            key = self.channel
        wait = self._bucket.take(key, self._holder)
        if wait > 0:
            raise Throttled(wait)

    def _once(
        self,
        iid: str,
        seq: int,
        step: str,
        do: Callable[[], None],
        find: Callable[[], bool] | None,
    ) -> bool:
        """Run `do` once for (incident, seq, step), across failures and restarts. True if `do` ran
        now, False if it was done before or found in Slack after an uncertain failure; `Undecided`
        if Slack could not be asked (the step stays in flight)."""
        state = self.store.step(iid, seq, step)
        if state == "done":
            return False
        if state == "inflight":
            if find is None:
                find = lambda: self._find_post(iid, seq, step)  # noqa: E731
            if self._look(iid, step, find):
                log.info("slack.found_after_uncertain_failure", incident_id=iid, seq=seq, step=step)
                self.store.set_step(iid, seq, step, "done")
                return False
        self.store.set_step(iid, seq, step, "inflight")
        self._holder = f"{iid}:{seq}:{step}"
        try:
            do()
        except Exception as exc:
            if not _uncertain(exc):
                self.store.set_step(iid, seq, step, None)
            raise
        self.store.set_step(iid, seq, step, "done")
        return True

    def _look(self, iid: str, what: str, find: Callable[[], bool]) -> bool:
        """Ask Slack whether a post is there. An answer that retrying cannot change (missing_scope,
        not_in_channel, a channel name not listed) raises `Undecided`: the caller must not post."""
        try:
            return find()
        except Exception as exc:
            if classify(exc).retry:  # 5xx, connection, 429, our own rate limit: retried anyway
                raise
            method = ""
            if isinstance(exc, SlackApiError):
                method = str(getattr(exc.response, "api_url", "") or "").rsplit("/", 1)[-1] + " answered "
            error = f"{method}{classify(exc).error}"
            log.error("slack.lookup_failed", incident_id=iid, step=what, error=error, hint=LOOKUP_SCOPES)
            raise Undecided(
                f"cannot tell whether the {what} post of {iid} is in Slack ({error}); {LOOKUP_SCOPES}"
            ) from exc

    def _root(self, iid: str) -> tuple[str, str]:
        rec = self.store.root(iid)
        assert rec is not None and rec.channel_id and rec.root_ts, "root message missing"
        return rec.channel_id, rec.root_ts

    def _post_root(self, iid: str, m: Any) -> None:
        tenure, runs = self._tenure, self._runs(iid)
        rev = self._rev_to_write(iid)
        with self._api("chat.postMessage"):
            self._throttle(self.channel)
            r = self.client.chat_postMessage(
                channel=self.channel,
                text=bk.fallback_text(m),
                blocks=bk.root_blocks(m),
                metadata=self._root_metadata(iid, rev),
                unfurl_links=False,
                unfurl_media=False,
            )
        channel_id = str(r["channel"])
        self.store.set_root(iid, channel_id, str(r["ts"]))
        self.store.set_rev(iid, rev, self._writer)
        if runs:
            self._current[iid] = tenure  # the root says what this replica's record says
        if channel_id != self.channel:
            self.store.set_channel(self.channel, channel_id)

    def _root_metadata(self, iid: str, rev: int) -> dict[str, Any]:
        """The root message carries the incident's escalation state and its volunteers, so that a
        replica taking the incident over (a partition moved) goes on from them: no second "New"
        page, the acknowledgement kept, an Escalate press still paging while catching up
        (`_adopt_escalation`), the volunteers still counted with their languages (`_adopt_volunteers`;
        bounded, see MAX_CARRIED_VOLUNTEER_IDS). `rev` and `by` tell a replica getting the incident
        back whether this is newer than its own record."""
        payload: dict[str, Any] = {"incident_id": iid, "rev": rev, "by": self._writer}
        rec = self.store.root(iid)
        if rec is not None and rec.resolve_requested_by:
            payload["resolve_requested_by"] = rec.resolve_requested_by
        esc = self.store.escalation(iid)
        if esc is not None:
            payload.update(
                severity=esc.severity,
                level=esc.level,
                pages=esc.pages,
                acked_by=esc.acked_by,
                last_page_at=esc.last_page_at or 0.0,
                snoozed_until=esc.snoozed_until or 0.0,
            )
            if esc.late is not None:
                payload["late"] = esc.late
            if esc.forced:  # an Escalate press: the next owner does not hold its first page back either
                payload["forced"] = True
        vols = self.store.volunteer_summary(iid)
        if vols.count:
            ids: list[str] = []
            used = 0
            for user in vols.users[:MAX_CARRIED_VOLUNTEER_IDS]:
                used += len(user) + 1
                if used > MAX_CARRIED_ID_CHARS:
                    break
                ids.append(user)
            carried = [(lang, n) for lang, n in vols.languages.items() if _LANGUAGE.match(lang)]
            spoken = sorted(carried, key=lambda kv: (-kv[1], kv[0]))  # the most spoken first
            payload.update(
                volunteers=vols.count,
                # an object of numbers and a string: shapes Slack's message metadata takes
                volunteer_languages=dict(spoken[:MAX_CARRIED_LANGUAGES]),
                volunteer_ids=",".join(ids),
            )
        return {"event_type": ROOT_EVENT, "event_payload": payload}

    def _adopt_root(self, iid: str, payload: Mapping[str, Any]) -> None:
        """Take over the state the root's metadata carries. Wholly when another replica wrote it after
        this one's record (see `rev` above): its acknowledgement, level, pages, snooze and volunteers
        replace this replica's, and the notes this replica has not posted are dropped (the presses they
        announce were not on the root, and what is there now supersedes them). Else only what this
        replica has no record of (the first takeover of an incident)."""
        rec = self.store.root(iid)
        own_rev = rec.rev if rec is not None else 0
        rev, by = _revision(payload)
        newer = self._written_since(iid, payload)
        if by == self._writer and rev > own_rev:
            self.store.set_rev(iid, rev, by)
        self._adopt_escalation(iid, payload, replace=newer)
        self._adopt_volunteers(iid, payload, replace=newer)
        resolver = str(payload.get("resolve_requested_by") or "")
        if (newer or (rec is not None and not rec.resolve_requested_by)) and (not resolver or _USER_ID.match(resolver)):
            self.store.set_resolve_requested(iid, resolver)
        self.store.touch(iid, self.clock.now())
        if newer:
            dropped = self.store.drop_notes(iid)
            self.store.set_rev(iid, rev, by)
            log.info("slack.root_state_adopted", incident_id=iid, rev=rev, own_rev=own_rev, notes_dropped=dropped)

    def _adopt_volunteers(self, iid: str, payload: Mapping[str, Any], *, replace: bool = False) -> None:
        """Volunteers another replica left in the root's metadata, taken over (unless this replica
        has sign-ups of its own for the incident; with `replace`, in place of them: the root's count
        includes those this replica carried onto it before)."""
        if not replace and self.store.volunteer_summary(iid).count:
            return
        try:
            count = int(payload.get("volunteers") or 0)
        except (TypeError, ValueError):
            return
        if count <= 0:
            if replace:
                self.store.carry_volunteers(iid, 0, {}, [], replace_local=True)
            return
        ids = [u for u in str(payload.get("volunteer_ids") or "").split(",") if _USER_ID.match(u)]
        ids = list(dict.fromkeys(ids))[:MAX_CARRIED_VOLUNTEER_IDS]
        count = max(count, len(ids))
        languages: dict[str, int] = {}
        raw = payload.get("volunteer_languages")
        if isinstance(raw, Mapping):
            for lang, n in list(raw.items())[:MAX_CARRIED_LANGUAGES]:
                try:
                    speakers = min(int(n), count)
                except (TypeError, ValueError):
                    continue
                if speakers > 0 and _LANGUAGE.match(str(lang)):
                    languages[str(lang)] = speakers
        self.store.carry_volunteers(iid, count, languages, ids, replace_local=replace)
        log.info("slack.volunteers_adopted", incident_id=iid, volunteers=count, languages=sorted(languages))

    def _adopt_escalation(self, iid: str, payload: Mapping[str, Any], *, replace: bool = False) -> None:
        """Escalation state another replica left in the root's metadata, taken over (in place of this
        replica's own with `replace`)."""
        severity = payload.get("severity")
        had = self.store.escalation(iid)
        if (had is not None and not replace) or severity not in ("sev1", "sev2", "sev3"):
            return
        try:
            level, pages = int(payload.get("level", -1)), int(payload.get("pages", 0))
            last = float(payload.get("last_page_at") or 0.0) or None
            snoozed = float(payload.get("snoozed_until") or 0.0) or None
            late = None if payload.get("late") is None else float(payload["late"])
        except (TypeError, ValueError):
            return
        forced = payload.get("forced") in (True, "true")
        acked = str(payload.get("acked_by") or "")
        next_at: float | None = None
        if not acked and self.policy.pages(severity):
            next_at = self.clock.now() if last is None else last + self.policy.timeout(max(level, 0), severity)
            if snoozed is not None:
                next_at = max(next_at, snoozed)
        if had is None:
            self.store.start_escalation(iid, severity, next_at, late)
        self.store.update_escalation(
            iid,
            severity=severity,
            level=level,
            pages=pages,
            acked_by=acked,
            last_page_at=last,
            snoozed_until=snoozed,
            next_at=next_at,
            late=late,
            forced=int(forced),
        )
        log.info("slack.escalation_adopted", incident_id=iid, level=level + 1, pages=pages, acked_by=acked)

    def _update_root(self, iid: str, m: Any) -> None:
        channel_id, ts = self._root(iid)
        rev = self._rev_to_write(iid)
        try:
            with self._api("chat.update"):
                self._throttle(channel_id)
                self.client.chat_update(
                    channel=channel_id,
                    ts=ts,
                    text=bk.fallback_text(m),
                    blocks=bk.root_blocks(m),
                    metadata=self._root_metadata(iid, rev),
                )
        except SlackApiError as exc:
            error = exc.response.get("error") if isinstance(exc.response.data, dict) else None
            if error == "edit_window_closed":
                log.warning("slack.root_not_editable", incident_id=iid)
                return
            if error == "message_not_found":  # someone deleted the root: start a new one
                log.warning("slack.root_deleted", incident_id=iid)
                self._post_root(iid, m)
                return
            raise
        self.store.set_rev(iid, rev, self._writer)

    def _post_thread(
        self, root: tuple[str, str], text: str, iid: str, seq: int, step: str, broadcast: bool = False
    ) -> None:
        with self._api("chat.postMessage"):
            self._throttle(root[0])
            self.client.chat_postMessage(
                channel=root[0],
                thread_ts=root[1],
                text=text,
                reply_broadcast=broadcast,
                metadata={"event_type": POST_EVENT, "event_payload": {"incident_id": iid, "seq": seq, "step": step}},
                unfurl_links=False,
                unfurl_media=False,
            )

    # -- finding what an uncertain failure may have posted ---------------------------------
    def _channel_id(self, ref: str | None = None) -> str:
        """The id of channel `ref` (the incident channel by default), given by id or by name."""
        ref = self.channel if ref is None else ref
        if _CHANNEL_ID.match(ref):
            return ref
        cached = self.store.channel(ref)
        if cached:
            return cached
        name = ref.lstrip("#")
        cursor = None
        for _ in range(50):
            with self._api("conversations.list"):
                r = self.client.conversations_list(
                    types="public_channel,private_channel", exclude_archived=True, limit=200, cursor=cursor
                )
            for c in r.get("channels") or []:
                if c.get("name") == name:
                    self.store.set_channel(ref, str(c["id"]))
                    return str(c["id"])
            cursor = (r.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                break
        raise PermanentError(f"channel {ref!r} not found (is the bot invited?)")

    def _scan(
        self, method: str, pages: Callable[[str | None], Any], match: Callable[[dict[str, Any]], bool]
    ) -> dict[str, Any] | None:
        cursor: str | None = None
        for _ in range(10):  # 2,000 messages back is far more than an incident thread holds
            with self._api(method):
                r = pages(cursor)
            for m in r.get("messages") or []:
                if match(m):
                    return dict(m)
            cursor = (r.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                return None
        return None

    def _history_scan(self, channel_id: str, match: Callable[[dict[str, Any]], bool]) -> dict[str, Any] | None:
        return self._scan(
            "conversations.history",
            lambda c: self.client.conversations_history(
                channel=channel_id, include_all_metadata=True, limit=200, cursor=c
            ),
            match,
        )

    def address(self, iid: str) -> str:
        """Where the incident's root is ("<channel id> <ts>"; "" before it is posted): the notification
        log records it with each delivery, for the replica that takes the incident over (`root_hint`)."""
        rec = self.store.root(iid)
        return f"{rec.channel_id} {rec.root_ts}" if rec is not None and rec.channel_id and rec.root_ts else ""

    def _find_root(self, iid: str) -> bool:
        """Find the root another replica (or a post whose answer was lost) made, by its metadata: where the
        notification log says it is (`root_hint`), else in the channel's history (its last 2,000
        messages: `_scan`); take over what it records."""
        tenure, runs = self._tenure, self._runs(iid)
        found = self._root_at_hint(iid)
        if found is None:
            channel_id = self._channel_id()

            def match(m: dict[str, Any]) -> bool:
                md = m.get("metadata") or {}
                return bool(
                    md.get("event_type") == ROOT_EVENT and (md.get("event_payload") or {}).get("incident_id") == iid
                )

            message = self._history_scan(channel_id, match)
            if message is None:
                return False
            payload = (message.get("metadata") or {}).get("event_payload") or {}
            found = (channel_id, str(message["ts"]), payload)
        channel_id, ts, payload = found
        self.store.ensure_root(iid, self.clock.now())
        self.store.set_root(iid, channel_id, ts)
        self._adopt_root(iid, payload)
        if runs:
            self._current[iid] = tenure
        return True

    def _root_at_hint(self, iid: str) -> tuple[str, str, dict[str, Any]] | None:
        """(channel id, ts, metadata payload) of the root where the notification log says it is; None
        without a hint, or when that message is not the incident's root (deleted, another workspace's
        channel now out of reach): the history is scanned then."""
        try:
            hint = self.root_hint(iid) if self.root_hint is not None else None
        except LookupError as exc:  # the log is still being read (a takeover): asked again in a moment
            raise NotKnownYet(0.5, str(exc)) from None
        if not hint or len(hint.split()) != 2:
            return None
        channel_id, ts = hint.split()
        try:
            payload = self._read_root(iid, (channel_id, ts))
        except SlackApiError as exc:
            if classify(exc).retry:
                raise
            log.warning("slack.root_hint_unreadable", incident_id=iid, error=slack_error(exc))
            return None
        return None if payload is None else (channel_id, ts, payload)

    def _find_in_channel(self, channel: str, marker: dict[str, Any]) -> dict[str, Any] | None:
        """A top-level post of `channel` (id or name) carrying `marker` as its POST_EVENT metadata."""

        def match(m: dict[str, Any]) -> bool:
            md = m.get("metadata") or {}
            return bool(md.get("event_type") == POST_EVENT and md.get("event_payload") == marker)

        return self._history_scan(self._channel_id(channel), match)

    def _thread_scan(self, root: tuple[str, str], match: Callable[[dict[str, Any]], bool]) -> bool:
        return (
            self._scan(
                "conversations.replies",
                lambda c: self.client.conversations_replies(
                    channel=root[0], ts=root[1], include_all_metadata=True, limit=200, cursor=c
                ),
                match,
            )
            is not None
        )

    def _find_post(self, iid: str, seq: int, step: str) -> bool:
        rec = self.store.root(iid)
        if rec is None or not rec.root_ts or not rec.channel_id:
            return False
        want = {"incident_id": iid, "seq": seq, "step": step}

        def match(m: dict[str, Any]) -> bool:
            md = m.get("metadata") or {}
            return bool(md.get("event_type") == POST_EVENT and md.get("event_payload") == want)

        return self._thread_scan((rec.channel_id, rec.root_ts), match)

    def _find_file(self, root: tuple[str, str], title: str) -> bool:
        return self._thread_scan(root, lambda m: any(f.get("title") == title for f in m.get("files") or []))

    # -- escalation ------------------------------------------------------------------------
    def _track_escalation(self, n: Notification) -> None:
        iid, now = n.incident_id, self.clock.now()
        esc = self.store.escalation(iid)
        if n.type == "incident.resolved":
            if esc is not None:
                self.store.update_escalation(iid, next_at=None, severity=n.severity)
            return
        pages = self.policy.pages(n.severity)
        if esc is None:
            late = self._late(n)
            self.store.start_escalation(iid, n.severity, now if pages else None, late)
            if late is not None:
                log.info("slack.posted_during_catch_up", incident_id=iid, late_seconds=round(late), pages=pages)
            return
        if esc.severity == n.severity:
            return
        if pages and self.policy.worse(n.severity, esc.severity) and self._stood_down(iid, esc):
            # Acknowledged while it was only a watch, or resolved in Slack, and now worse than
            # that: nobody has answered for what it is now, so the ladder starts again.
            self.store.update_escalation(
                iid, severity=n.severity, acked_by="", level=-1, next_at=now, snoozed_until=None
            )
            self.store.request_resolve(iid, "")
            self.store.add_note(iid, f"Now {n.severity.upper()}: paging again from the first level.")
            return
        if esc.acked_by:
            return  # the acknowledgement of a paged incident holds as it grows
        next_at = esc.next_at
        if pages and esc.pages == 0 and next_at is None:
            next_at = now  # became severe enough to page
        elif next_at is not None and esc.last_page_at is not None:
            next_at = min(next_at, esc.last_page_at + self.policy.timeout(max(esc.level, 0), n.severity))
        self.store.update_escalation(iid, severity=n.severity, next_at=next_at)

    def _late(self, n: Notification) -> float | None:
        """Seconds after the fact (its event time) `n` reaches Slack, when that is more than
        `LATE_POST_SECONDS`: crisisd was catching up (a backlog after an outage, or deliveries after
        a Slack outage). None when it is current, and without the daemon's `standing` (replays and
        tests run in event time, unrelated to the wall clock)."""
        if self.standing is None:
            return None
        try:
            at = parse_event_time(n.updated_at or n.detected_at)
        except ValueError:
            return None
        late = self.clock.now() - at
        return late if late > LATE_POST_SECONDS else None

    def _stood_down(self, iid: str, esc: Escalation) -> bool:
        if esc.acked_by:
            return not self.policy.pages(esc.severity)
        rec = self.store.root(iid)
        return rec is not None and bool(rec.resolve_requested_by)

    def _page(self, esc: Escalation, now: float) -> None:
        if self.standing is not None:
            # asked here, not when the ladder starts: the notification that started it may be
            # history that crisisd is replaying, and the tick may come before its resolution does
            standing = self.standing(esc.incident_id)
            if standing == "over":
                self.store.update_escalation(esc.incident_id, next_at=None)
                log.info("slack.not_paged", incident_id=esc.incident_id, why="its resolution is on its way")
                return
            if standing == "behind" and esc.pages == 0 and not esc.forced:
                return  # not known to be open now: the first page waits until crisisd has caught up
        levels = self.policy.levels
        nxt = esc.level + 1
        if nxt >= len(levels):
            if self.policy.repeat == "none":
                self.store.update_escalation(esc.incident_id, next_at=None)
                return
            nxt = len(levels) - 1 if self.policy.repeat == "last" else 0
        rec = self.store.root(esc.incident_id)
        if rec is not None and rec.resolved:
            self.store.update_escalation(esc.incident_id, next_at=None)
            return
        if rec is None or not rec.root_ts or not rec.channel_id:
            return  # the root is not there yet: page once it is
        root = (rec.channel_id, rec.root_ts)
        level = levels[nxt]
        k = esc.pages + 1
        who = " ".join([f"<!subteam^{g}>" for g in level.user_groups] + [f"<@{u}>" for u in level.users])
        body = from_json(rec.body) if rec.body else None
        what = f"{esc.severity.upper()} incident" + (f" on {body.brand}" if body else "")
        if k == 1 and esc.late is not None:
            reason = "New" if esc.forced else "Still open after catch-up:"
            what += f" (posted {human_duration(esc.late)} after the fact)"
        elif k == 1:
            reason = "New"
        elif nxt == 0:
            reason = "Worse since escalation stopped:"
        else:
            waited = now - (esc.last_page_at or now)
            reason = f"Not acknowledged after {waited / 60:.0f} min:"
        name = level.name or f"level {nxt + 1}"
        text = (who + " " if who else "") + bk.clip(
            f"{reason} {what}. Escalation level {nxt + 1} ({name}): please Acknowledge on the incident message.",
            2000,
        )
        broadcast = esc.severity in self.policy.broadcast
        self._once(
            esc.incident_id,
            0,
            f"page{k}",
            lambda: self._post_thread(root, text, esc.incident_id, 0, f"page{k}", broadcast),
            None,
        )
        if level.channel:
            elsewhere = f"{text} Incident thread in <#{root[0]}>."
            where, step = level.channel, f"page{k}-channel"
            marker = {"incident_id": esc.incident_id, "seq": 0, "step": step}

            def post_elsewhere() -> None:
                with self._api("chat.postMessage"):
                    self._throttle(where)
                    r = self.client.chat_postMessage(
                        channel=where,
                        text=elsewhere,
                        metadata={"event_type": POST_EVENT, "event_payload": marker},
                        unfurl_links=False,
                    )
                if str(r["channel"]) != where:
                    self.store.set_channel(where, str(r["channel"]))

            try:
                # after an uncertain failure, the channel's history is searched for the marker first
                self._once(
                    esc.incident_id, 0, step, post_elsewhere, lambda: self._find_in_channel(where, marker) is not None
                )
            except Exception as exc:
                if classify(exc).retry and not isinstance(exc, Undecided):
                    raise
                # not_in_channel, channel_not_found, or the channel's history cannot be read to tell
                # whether a lost page is there: the page is in the thread; the ladder goes on
                log.error("slack.page_channel_failed", channel=level.channel, error=classify(exc).error)
        timeout = self.policy.timeout(nxt, esc.severity)
        self.store.update_escalation(esc.incident_id, level=nxt, pages=k, last_page_at=now, next_at=now + timeout)
        self.store.mark_dirty(esc.incident_id)  # the root shows the level, and carries it for a takeover
        log.info("slack.paged", incident_id=esc.incident_id, level=nxt + 1, page=k)

    def _status(self, iid: str) -> IncidentStatus:
        esc = self.store.escalation(iid)
        rec = self.store.root(iid)
        vols = self.store.volunteer_summary(iid)
        late, unpaged = "", False
        if esc is not None and esc.late is not None:
            late = human_duration(esc.late)
            unpaged = esc.pages == 0 and not esc.acked_by and self.policy.pages(esc.severity)
        snoozed = ""
        if esc is not None and esc.snoozed_until and esc.snoozed_until > self.clock.now() and not esc.acked_by:
            snoozed = datetime.fromtimestamp(esc.snoozed_until, UTC).strftime("%H:%M UTC")
        return IncidentStatus(
            acknowledged_by=f"@{esc.acked_by}" if esc is not None and esc.acked_by else "",
            snoozed_until=snoozed,
            escalation_level=max(esc.level, 0) if esc is not None else 0,
            volunteers=vols.count,
            volunteer_languages=tuple(sorted(vols.languages)),
            resolve_requested_by=f"@{rec.resolve_requested_by}" if rec is not None and rec.resolve_requested_by else "",
            posted_late=late,
            unpaged=unpaged,
            waiting=unpaged and self.standing is not None and self.standing(iid) == "behind",
        )

    def tick(self) -> None:
        """Do what is due: resolve callbacks, presses kept until a root was read, escalation pages,
        thread notes, root refreshes; each only for an incident this replica runs (`_ready`: the
        others' are left, for when it runs them again).

        Failures are logged and retried on the next tick (state is persisted first)."""
        self._send_confirmations()
        with self._seen_lock:
            resolves, self._resolves = self._resolves, []
        for iid, user in resolves:
            if self.on_resolve is not None:
                try:
                    self.on_resolve(iid, user)
                except Exception:
                    log.exception("slack.on_resolve_failed", incident_id=iid)
        with self._lock:
            now = self.clock.now()
            self._adopt_taken_over()
            self._apply_deferred()
            # one incident's failure (a page, a note, a refresh) holds up nobody else's
            for due in self.store.due_escalations(now):
                iid = due.incident_id
                if not self._ready(iid):
                    continue  # its partition moved to another replica, which pages it now
                esc = self.store.escalation(iid)  # as the root may have said (paged, acknowledged)
                if esc is not None and esc.next_at is not None and esc.next_at <= now:
                    self._attempt("page", iid, self._page, esc, now)
            self._post_notes(self._ready)
            self._refresh_roots(self._ready)
            if now >= self._next_prune:
                self._next_prune = now + 3600.0
                self._attempt("prune", "", self.store.prune, now - RETAIN_RESOLVED_SECONDS)
                self._attempt("forget", "", self._forget_lost, now)

    def _post_notes(self, may: Callable[[str], bool], until: float = math.inf) -> None:
        """Post the unposted thread notes of the incidents `may` allows (until `until`, monotonic)."""
        # reading a root first may drop notes it supersedes (`_adopt_root`): the list is read after
        ready = {iid for iid in sorted({i for _, i, _ in self.store.unposted_notes()}) if may(iid)}
        for note_id, iid, text in self.store.unposted_notes():
            if self.clock.monotonic() >= until:
                return
            if iid not in ready:
                continue  # not posted by a replica that does not run the incident
            root = self.store.root(iid)
            if root is None or not root.root_ts or not root.channel_id:
                self.store.note_posted(note_id)
                continue
            where = (root.channel_id, root.root_ts)
            self._attempt("note", iid, self._post_note, note_id, iid, where, text)

    def _refresh_roots(self, may: Callable[[str], bool], until: float = math.inf) -> None:
        """Redraw the roots that changed since written, of the incidents `may` allows (until `until`)."""
        for iid in self.store.dirty_roots():
            if self.clock.monotonic() >= until:
                return
            if may(iid):
                self._attempt("refresh", iid, self._refresh, iid)

    def release(self, leaving: Callable[[str], bool], timeout: float = RELEASE_SECONDS) -> None:
        """The partitions of the incidents `leaving` names are being revoked (a rebalance, or this
        replica's shutdown; the runner calls it from its rebalance listener, before the next owner can
        get them): show now what this replica applied to them and has not shown yet, a press's root
        refresh and thread note that wait for the next tick or for a retry after a failure. The next
        owner reads the root when it takes over; without this the press would be lost. Bounded by
        `timeout` (the rebalance waits); what is not written by then (Slack failing, say) is lost as
        before. Nothing is read here: an incident whose root this replica has not read since it got
        it back is left alone (its record may be old)."""
        if not self._lock.acquire(timeout=timeout):  # the background thread or a delivery holds Slack
            log.warning("slack.release_skipped", why="busy")
            return
        try:
            until = self.clock.monotonic() + timeout
            shown = lambda iid: leaving(iid) and self._runs(iid) and self._is_current(iid)  # noqa: E731
            self._refresh_roots(shown, until)  # the state first: it is what the next owner goes on from
            self._post_notes(shown, until)
        finally:
            self._lock.release()

    def _forget_lost(self, now: float) -> None:
        """Hourly: cut the records of incidents this replica has not run for RETAIN_LOST_SECONDS down to
        the root's address, and forget the address after RETAIN_ROOT_ADDRESS_SECONDS; neither while the
        record was used within that time (a delivery, its root read) or a press waits for the incident.
        Not run at every pass, that is: one not run for a while only (a restart before the partitions
        are restored, say) starts the count again once it is run. One cut down that this replica runs
        again is taken back from its root here, if no press or notification has done so first."""
        if self.owns is None:
            return  # it runs every incident, and sees every resolution (`SlackStore.prune`)
        for iid, used_at, lost_at, address_only in self.store.unresolved():
            if self._runs(iid):
                if lost_at is not None:
                    self.store.set_lost(iid, None)
                if address_only:  # back: its root is read, and its ladder goes on without waiting for a press
                    self._ready(iid)
                continue
            if lost_at is None:
                self.store.set_lost(iid, now)
                continue
            since = max(used_at, lost_at)
            if address_only and since < now - RETAIN_ROOT_ADDRESS_SECONDS:
                self.store.forget(iid)
                log.info("slack.lost_incident_forgotten", incident_id=iid)
            elif not address_only and since < now - RETAIN_LOST_SECONDS and self.store.keep_address(iid):
                log.info("slack.lost_incident_cut_to_root_address", incident_id=iid)

    def _adopt_taken_over(self) -> None:
        """The incidents `adopt` named: each root read (`_ready` -> `_catch_up`; looked for when this
        replica has no record of it) until read, known not to be there, or the incident moved on, then
        redrawn (claimed); a failed read is tried again on the next tick."""
        with self._seen_lock:
            pending = sorted(self._adopting.items())
        for iid, n in pending:
            if self._runs(iid):
                if not self._ready(iid) and self._runs(iid):
                    continue  # the root could not be read: again on the next tick
                rec = self.store.root(iid)
                if self._runs(iid) and rec is not None and rec.root_ts and not rec.resolved:
                    if rec.body is None or from_json(rec.body).seq < n.seq:  # drawn from the newest
                        self.store.set_body(iid, to_json(n), False, self.clock.now())
                    esc = self.store.escalation(iid)
                    if esc is not None and esc.next_at is not None:
                        # its ladder runs: claimed at once, so that a replica still paging it provisionally
                        # stops before its next page (the others wait for their next write: every write
                        # takes a slot of the channel's rate, which pages need in a crisis)
                        self.store.mark_dirty(iid)
            with self._seen_lock:
                self._adopting.pop(iid, None)

    def _apply_deferred(self) -> None:
        """Presses kept until the incident's root was read (`_press`), applied in the order they came;
        passed on to the replica that runs the incident if that is another one now."""
        now = self.clock.now()
        for press_id, iid, action_id, user, at in self.store.deferred_presses():
            if not self._runs(iid):
                if self.relay is not None and now - self._relay_tried.get(press_id, -math.inf) >= RELAY_RETRY_SECONDS:
                    if self.relay(action_id, iid, user) is not False:
                        self._relay_tried.pop(press_id, None)
                        self.store.press_done(press_id)
                        continue
                    self._relay_tried[press_id] = now
                if now - at < PRESS_HOLD_SECONDS:
                    continue  # kept until this replica knows its incidents, or the relay takes it
                log.warning("slack.action_dropped", action=action_id, incident_id=iid, user=user)
                self._relay_tried.pop(press_id, None)
                self.store.press_done(press_id)
            elif self._ready(iid):
                self._apply(action_id, iid, user, at)
                self.store.press_done(press_id)

    @staticmethod
    def _attempt(what: str, iid: str, do: Callable[..., object], *args: Any) -> None:
        try:
            do(*args)
        except Exception as exc:  # retried on the next tick (state is persisted first)
            result = classify(exc)
            if result.paced:
                log.info("slack.tick_paced", step=what, incident_id=iid, error=result.error)
            else:
                log.warning("slack.tick_failed", step=what, incident_id=iid, retry=result.retry, error=result.error)

    def _post_note(self, note_id: int, iid: str, root: tuple[str, str], text: str) -> None:
        step = f"note{note_id}"
        line = bk.thread_blocks_text(text)
        self._once(iid, 0, step, lambda: self._post_thread(root, line, iid, 0, step), None)
        self.store.note_posted(note_id)

    def _refresh(self, iid: str) -> None:
        rec = self.store.root(iid)
        if rec is None or rec.body is None:
            return
        gen = rec.dirty
        try:
            self._update_root(iid, render(from_json(rec.body), self._status(iid)))
        except Exception as exc:
            if classify(exc).retry:
                raise
            log.error("slack.refresh_failed", incident_id=iid, error=classify(exc).error)  # not every tick
        self.store.clear_dirty(iid, gen)

    # -- interactivity -------------------------------------------------------------------
    def reconfigure(self, settings: SlackSettings) -> None:
        """SIGHUP (daemon/lifecycle.py): the new escalation ladder applies from the next page; the
        channel, tokens and rate limits wait for a restart."""
        self.policy = settings.escalation

    def handle_interaction(self, body: bytes, headers: Mapping[str, str]) -> tuple[int, bytes]:
        """Answer one interactive request (button press) from Slack: (status, body).

        Verifies the signature (5-minute window, constant-time compare, injected clock),
        rejects replays of an accepted request, records the action and returns at once; the
        Slack calls it causes happen on the background thread."""
        if self._verifier is None:
            return 503, b"interactivity is not configured (no signing secret)"
        try:
            valid = self._verifier.is_valid_request(body, dict(headers))
        except (ValueError, TypeError):
            valid = False
        if not valid:
            log.warning("slack.interaction_rejected", reason="bad signature or timestamp")
            return 401, b"invalid signature"
        signature = {k.lower(): v for k, v in headers.items()}.get("x-slack-signature", "")
        now = self.clock.now()
        with self._seen_lock:
            while self._seen and next(iter(self._seen.values())) < now - 2 * REPLAY_WINDOW:
                self._seen.popitem(last=False)
            if signature in self._seen:
                log.warning("slack.interaction_rejected", reason="replay")
                return 401, b"replayed request"
            self._seen[signature] = now
        try:
            form = parse_qs(body.decode("utf-8"))
            payload = json.loads(form["payload"][0])
        except (KeyError, IndexError, ValueError, UnicodeDecodeError):
            return 400, b"no payload"
        return self.handle_payload(payload)

    def handle_payload(self, payload: Mapping[str, Any]) -> tuple[int, bytes]:
        """Apply an interactive payload (already authenticated: HTTP after the signature
        check, or Socket Mode)."""
        if not isinstance(payload, Mapping) or payload.get("type") != "block_actions":
            return 200, b""
        user = str((payload.get("user") or {}).get("id", ""))
        if not _USER_ID.match(user):
            return 400, b"no user"
        for action in list(payload.get("actions") or [])[:5]:
            if not isinstance(action, Mapping):
                continue
            action_id, iid = str(action.get("action_id", "")), str(action.get("value", ""))
            if action_id not in ACTION_IDS:
                continue
            self._confirm(str(payload.get("response_url") or ""), action_id, iid, user)
            if not self._runs(iid):
                # Slack chose this replica (one Request URL, or one of the Socket Mode
                # connections); the incident's escalation runs on another
                if self.relay is None:  # before the partitions are restored and the relay is up, at start
                    why = "starting"
                elif self.relay(action_id, iid, user) is False:
                    why = "relay failed: passed on again shortly"
                else:
                    continue
                now = self.clock.now()
                press_id = self.store.defer_press(iid, action_id, user, now)
                if self.relay is not None:
                    self._relay_tried[press_id] = now
                log.info("slack.action_deferred", action=action_id, incident_id=iid, user=user, why=why)
                continue
            self._press(action_id, iid, user)  # one it has no record of: kept until its root is found
        self._wake.set()
        return 200, b""

    def _confirm(self, url: str, action_id: str, iid: str, user: str) -> None:
        """Tell the person who pressed, at the background thread's next tick (not on Slack's 3-second
        answer), when the press came with a `response_url` crisisd may post to."""
        if not url or not self._may_respond(url):
            return
        with self._seen_lock:
            if len(self._confirmations) < 100:  # feedback only: a flood of presses is not queued for ever
                self._confirmations.append((self.clock.monotonic(), url, action_id, iid, user))

    def _may_respond(self, url: str) -> bool:
        parts, api = urlsplit(url), urlsplit(self.settings.api_url)
        if parts.scheme == "https" and parts.hostname in RESPONSE_HOSTS:
            return True
        return (parts.scheme, parts.netloc) == (api.scheme, api.netloc)

    def _send_confirmations(self) -> None:
        """Feedback only, so it never holds up a page: one older than CONFIRM_WITHIN_SECONDS is dropped
        (the incident message shows the press by then), and so is the rest of a batch once one fails
        (Slack is out of reach: each would wait its timeout)."""
        with self._seen_lock:
            pending, self._confirmations = self._confirmations, []
        for at, url, action_id, iid, user in pending:
            if self.clock.monotonic() - at > CONFIRM_WITHIN_SECONDS:
                continue
            languages = _spoken(self._languages(user)) if action_id == "crisisd.volunteer" else ""
            snooze = f"{self.policy.snooze_seconds / 60:.0f}"
            text = CONFIRMATIONS[action_id].format(iid=iid, snooze=snooze, languages=languages)
            try:
                WebhookClient(url, timeout=CONFIRM_TIMEOUT_SECONDS).send(
                    text=text, response_type="ephemeral", replace_original=False
                )
            except Exception as exc:  # feedback only: the press itself is applied whatever happens here
                log.info("slack.confirmation_failed", incident_id=iid, action=action_id, error=type(exc).__name__)
                return

    def relayed(self, action_id: str, iid: str, user: str) -> None:
        """A press another replica received for an incident: applied if this one runs it."""
        if action_id not in ACTION_IDS or not _USER_ID.match(user):
            return
        if self._runs(iid):
            self._press(action_id, iid, user)
            self._wake.set()

    def _press(self, action_id: str, iid: str, user: str) -> None:
        """A press for an incident this replica runs: applied now, or, when it got the incident back and
        has not read the root since, kept until the background thread has (applied then on top of what
        the other replica recorded, which taking it over would otherwise overwrite). So is one for an
        incident run provisionally (cut off from Kafka): the root read then may show that another replica
        took it over, and the press is passed on to that one (`_apply_deferred`; through Kafka, so again
        every RELAY_RETRY_SECONDS while this replica cannot reach it) instead of being applied to a record
        this replica will not write again."""
        provisional = self.provisional is not None and self.provisional(iid)
        if self._is_current(iid) and not provisional:
            self._apply(action_id, iid, user)
        else:
            why = "run provisionally: root read first" if provisional else "root not read yet"
            self.store.defer_press(iid, action_id, user, self.clock.now())
            log.info("slack.action_deferred", action=action_id, incident_id=iid, user=user, why=why)

    def _apply(self, action_id: str, iid: str, user: str, at: float | None = None) -> None:
        now = self.clock.now() if at is None else at
        esc = self.store.escalation(iid)
        log.info("slack.action", action=action_id, incident_id=iid, user=user)
        if action_id == "crisisd.ack":
            if esc is not None:
                self.store.update_escalation(iid, acked_by=user, next_at=None)
            self.store.add_note(iid, f"Acknowledged by @{user}; escalation stopped.")
        elif action_id == "crisisd.escalate":
            if esc is not None:  # a person says it is live: no waiting for the catch-up
                self.store.update_escalation(iid, acked_by="", next_at=now, snoozed_until=None, forced=1)
            self.store.add_note(iid, f"@{user} escalated to the next level.")
        elif action_id == "crisisd.snooze":
            until = now + self.policy.snooze_seconds
            if esc is not None:
                next_at = None if esc.next_at is None else max(esc.next_at, until)
                self.store.update_escalation(iid, snoozed_until=until, next_at=next_at)
            self.store.add_note(iid, f"@{user} snoozed escalation for {self.policy.snooze_seconds / 60:.0f} min.")
        elif action_id == "crisisd.resolve":
            if esc is not None:
                self.store.update_escalation(iid, next_at=None)
            self.store.request_resolve(iid, user)
            self.store.add_note(iid, f"@{user} marked the incident resolved.")
            with self._seen_lock:
                self._resolves.append((iid, user))
        elif action_id == "crisisd.volunteer":
            languages = self._languages(user)
            if self.store.add_volunteer(iid, user, languages, now):
                self.store.add_note(iid, f"@{user} can help{_spoken(languages)}.")
        self.store.mark_dirty(iid)

    def _languages(self, user: str) -> list[str]:
        """A volunteer's languages from the roster (`languages_for`), bounded; [] without a roster or
        when it fails (logged)."""
        if self.languages_for is None:
            return []
        try:
            return [str(x)[:16] for x in self.languages_for(user)][:10]
        except Exception:
            log.exception("slack.languages_for_failed", user=user)
            return []

    # -- background thread ---------------------------------------------------------------
    def start(self) -> None:
        """Start the thread that runs `tick()` every `escalation.tick_seconds` (wall time) and
        soon after a button press."""
        if self._thread is not None:
            return
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="crisisd-slack", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stopping.is_set():
            self.tick()
            self._wake.wait(self.policy.tick_seconds)
            self._wake.clear()

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None


def build_slack_notifier(
    settings: SlackSettings,
    state_dir: str | Path,
    clock: Clock | None = None,
    *,
    on_resolve: Callable[[str, str], None] | None = None,
    languages_for: Callable[[str], list[str]] | None = None,
) -> SlackNotifier:
    """The notifier the daemon runs, from the `slack:` settings.

    slack-sdk's own retry handlers are turned off: they sleep in the calling thread and retry
    blindly (a duplicate post after a lost answer); the outbox retries instead."""
    check_startup(settings)
    assert settings.bot_token is not None  # checked
    base_url = settings.api_url if settings.api_url.endswith("/") else settings.api_url + "/"
    client = WebClient(
        token=settings.bot_token.reveal(),
        base_url=base_url,
        timeout=max(1, round(settings.http_timeout_seconds)),
        retry_handlers=[],
    )
    secret = settings.signing_secret.reveal() if settings.signing_secret else None
    return SlackNotifier(
        client,
        settings.channel,
        state_dir,
        clock=clock,
        settings=settings,
        signing_secret=secret,
        on_resolve=on_resolve,
        languages_for=languages_for,
    )
