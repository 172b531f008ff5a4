"""The Slack notifier's own record (sqlite, one file in the state directory).

What it keeps, so a restart neither re-posts nor forgets:
- `roots`: incident -> (channel id, root ts), the last applied `seq` and notification, and the
  revision of the root's metadata this record goes on from: the one this replica last wrote, or
  took over from another (`rev`, and `rev_by` the replica that wrote it; `SlackNotifier._adopt_root`);
  when it was last used (`updated_at`: a delivery, or the root read), since when this replica has not
  run it (`lost_at`), and whether it was cut down to the root's address (`address_only`: `keep_address`);
- `steps`: each post of each notification, `inflight` before the call and `done` after, so a
  post whose answer was lost is looked up in Slack (by its marker) before it is re-sent;
- `escalation`: level paged, when the next is due, acknowledgement, snooze, how long after the
  fact an incident posted during a catch-up reached Slack, an Escalate press (no waiting for it);
- `volunteers`: who pressed "I can help" here, with their languages;
- `carried_volunteers`: those who signed up on the replica that ran the incident before (a partition
  moved), as the root message's metadata carried them: a count, a count per language, and the ids
  it names (`SlackNotifier._adopt_volunteers`);
- `notes`: thread lines from button presses, posted by the background thread;
- `deferred_presses`: button presses for an incident this replica got back from another one, kept
  until it has read the root (`SlackNotifier._catch_up`) so they apply on top of what the other
  replica recorded;
- `channels`: channel names resolved to ids;
- `meta`: this replica's writer id (`writer()`), which the root's metadata names.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import threading
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS roots (
    incident_id TEXT PRIMARY KEY,
    channel_id TEXT,
    root_ts TEXT,
    last_seq INTEGER NOT NULL DEFAULT 0,
    body BLOB,
    resolved INTEGER NOT NULL DEFAULT 0,
    dirty INTEGER NOT NULL DEFAULT 0,
    resolve_requested_by TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS steps (
    incident_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    step TEXT NOT NULL,
    state TEXT NOT NULL,
    PRIMARY KEY (incident_id, seq, step)
);
CREATE TABLE IF NOT EXISTS escalation (
    incident_id TEXT PRIMARY KEY,
    severity TEXT NOT NULL,
    level INTEGER NOT NULL DEFAULT -1,
    pages INTEGER NOT NULL DEFAULT 0,
    next_at REAL,
    last_page_at REAL,
    acked_by TEXT NOT NULL DEFAULT '',
    snoozed_until REAL,
    late REAL,
    forced INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS volunteers (
    incident_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    languages TEXT NOT NULL DEFAULT '',
    at REAL NOT NULL,
    PRIMARY KEY (incident_id, user_id)
);
CREATE TABLE IF NOT EXISTS carried_volunteers (
    incident_id TEXT PRIMARY KEY,
    count INTEGER NOT NULL DEFAULT 0,
    languages TEXT NOT NULL DEFAULT '{}',
    users TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS notes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    incident_id TEXT NOT NULL,
    text TEXT NOT NULL,
    posted INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS deferred_presses (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    incident_id TEXT NOT NULL,
    action_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS channels (ref TEXT PRIMARY KEY, id TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


_INCIDENT_TABLES = ("roots", "steps", "escalation", "volunteers", "carried_volunteers", "notes", "deferred_presses")


@dataclass(frozen=True)
class Root:
    incident_id: str
    channel_id: str | None
    root_ts: str | None
    last_seq: int
    body: bytes | None
    resolved: bool
    dirty: int  # bumped by every change the root should show; cleared only if unchanged since read
    resolve_requested_by: str
    rev: int = 0  # the revision of the root's metadata this record goes on from (written or taken over)
    rev_by: str = ""  # the writer id of the replica that wrote that revision


@dataclass(frozen=True)
class Escalation:
    incident_id: str
    severity: str
    level: int
    pages: int
    next_at: float | None
    last_page_at: float | None
    acked_by: str
    snoozed_until: float | None
    late: float | None = None
    """Seconds after the fact (wall clock minus its event time) the incident's first notification
    reached the notifier, when more than `LATE_POST_SECONDS`: crisisd was catching up."""
    forced: bool = False
    """Someone pressed Escalate: the first page goes out without waiting for the catch-up."""


_ESCALATION_COLUMNS = (
    "incident_id, severity, level, pages, next_at, last_page_at, acked_by, snoozed_until, late, forced"
)


def _escalation(row: Any) -> Escalation:
    iid, severity, level, pages, next_at, last_page_at, acked_by, snoozed_until, late, forced = row
    return Escalation(iid, severity, level, pages, next_at, last_page_at, acked_by, snoozed_until, late, bool(forced))


@dataclass(frozen=True)
class Volunteers:
    """Everyone who signed up for an incident: those carried over from a previous owner, then those
    who pressed here. `users` names them in sign-up order, but only as many of the carried ones as the
    root's metadata named: `count` may be larger."""

    count: int
    languages: dict[str, int]  # language -> volunteers who speak it
    users: list[str]


class SlackStore:
    FILENAME = "slack.sqlite3"

    def __init__(self, state_dir: str | Path) -> None:
        d = Path(state_dir)
        d.mkdir(parents=True, exist_ok=True)
        self.path = d / self.FILENAME
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(roots)")}
        if "updated_at" not in columns:  # files from before the column existed
            self._db.execute("ALTER TABLE roots ADD COLUMN updated_at REAL")
        if "rev" not in columns:  # files from before the root's metadata carried a revision
            self._db.execute("ALTER TABLE roots ADD COLUMN rev INTEGER NOT NULL DEFAULT 0")
            self._db.execute("ALTER TABLE roots ADD COLUMN rev_by TEXT NOT NULL DEFAULT ''")
        if "lost_at" not in columns:  # files from before a replica forgot the incidents it lost
            self._db.execute("ALTER TABLE roots ADD COLUMN lost_at REAL")
            self._db.execute("ALTER TABLE roots ADD COLUMN address_only INTEGER NOT NULL DEFAULT 0")
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(escalation)")}
        if "late" not in columns:  # files from before the catch-up columns existed
            self._db.execute("ALTER TABLE escalation ADD COLUMN late REAL")
            self._db.execute("ALTER TABLE escalation ADD COLUMN forced INTEGER NOT NULL DEFAULT 0")
        # The root post was once a step of each notification's seq; it is one step per incident
        # (seq 0) now, so a root whose answer was lost is looked for by every later notification.
        self._db.execute("UPDATE OR IGNORE steps SET seq = 0 WHERE step = 'root' AND seq > 0 AND state = 'inflight'")
        self._db.execute("DELETE FROM steps WHERE step = 'root' AND seq > 0")
        self._lock = threading.RLock()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _x(self, sql: str, args: tuple[object, ...] = ()) -> sqlite3.Cursor:
        with self._lock:
            return self._db.execute(sql, args)

    # roots
    def root(self, incident_id: str) -> Root | None:
        row = self._x(
            "SELECT incident_id, channel_id, root_ts, last_seq, body, resolved, dirty, resolve_requested_by, rev,"
            " rev_by FROM roots WHERE incident_id = ?",
            (incident_id,),
        ).fetchone()
        if row is None:
            return None
        return Root(row[0], row[1], row[2], row[3], row[4], bool(row[5]), int(row[6]), row[7], int(row[8]), row[9])

    def ensure_root(self, incident_id: str, now: float) -> None:
        self._x("INSERT OR IGNORE INTO roots (incident_id, updated_at) VALUES (?, ?)", (incident_id, now))

    def set_root(self, incident_id: str, channel_id: str, ts: str) -> None:
        self._x("UPDATE roots SET channel_id = ?, root_ts = ? WHERE incident_id = ?", (channel_id, ts, incident_id))

    def set_body(self, incident_id: str, body: bytes, resolved: bool, now: float = 0.0) -> None:
        self._x(
            "UPDATE roots SET body = ?, resolved = ?, updated_at = ?, address_only = 0 WHERE incident_id = ?",
            (body, int(resolved), now, incident_id),
        )

    def touch(self, incident_id: str, now: float) -> None:
        """The record is in use again (its root was read): not forgotten for another while."""
        self._x("UPDATE roots SET updated_at = ?, address_only = 0 WHERE incident_id = ?", (now, incident_id))

    def set_rev(self, incident_id: str, rev: int, by: str) -> None:
        """The record goes on from the root's revision `rev`, written by replica `by`."""
        self._x("UPDATE roots SET rev = ?, rev_by = ? WHERE incident_id = ?", (rev, by, incident_id))

    def set_resolve_requested(self, incident_id: str, user: str) -> None:
        """Who marked the incident resolved, as the root's metadata says (no refresh: the root shows it)."""
        self._x("UPDATE roots SET resolve_requested_by = ? WHERE incident_id = ?", (user, incident_id))

    def prune(self, before: float) -> int:
        """Forget incidents resolved before `before` (keeps the file small); returns how many."""
        with self._lock:
            ids = [
                r[0]
                for r in self._db.execute(
                    "SELECT incident_id FROM roots WHERE resolved = 1 AND updated_at < ?", (before,)
                ).fetchall()
            ]
            for table in _INCIDENT_TABLES:
                self._db.executemany(f"DELETE FROM {table} WHERE incident_id = ?", [(i,) for i in ids])
        return len(ids)

    def unresolved(self) -> list[tuple[str, float, float | None, bool]]:
        """(incident, when last used, since when not run here, cut down to its address) of every record
        of an incident whose resolution this replica has not delivered."""
        rows = self._x(
            "SELECT incident_id, COALESCE(updated_at, 0), lost_at, address_only FROM roots WHERE resolved = 0"
        ).fetchall()
        return [(str(a), float(b), None if c is None else float(c), bool(d)) for a, b, c, d in rows]

    def set_lost(self, incident_id: str, since: float | None) -> None:
        """Since when this replica has not run the incident (None: it runs it)."""
        self._x("UPDATE roots SET lost_at = ? WHERE incident_id = ?", (since, incident_id))

    def keep_address(self, incident_id: str) -> bool:
        """Cut the record down to what taking the incident back needs (`SlackNotifier._forget_lost`):
        where the root is, the revision read or written last, the last `seq` applied and the posts of a
        notification not finished (the outbox may still deliver it). False, and nothing changed, while
        a press waits for the incident."""
        with self._lock:
            if self._db.execute("SELECT 1 FROM deferred_presses WHERE incident_id = ?", (incident_id,)).fetchone():
                return False
            for table in ("escalation", "volunteers", "carried_volunteers", "notes"):
                self._db.execute(f"DELETE FROM {table} WHERE incident_id = ?", (incident_id,))
            self._db.execute(
                "UPDATE roots SET body = NULL, dirty = 0, resolve_requested_by = '', address_only = 1"
                " WHERE incident_id = ?",
                (incident_id,),
            )
        return True

    def forget(self, incident_id: str) -> None:
        """Forget everything of the incident."""
        with self._lock:
            for table in _INCIDENT_TABLES:
                self._db.execute(f"DELETE FROM {table} WHERE incident_id = ?", (incident_id,))

    def finish(self, incident_id: str, seq: int) -> None:
        with self._lock:
            self._db.execute("UPDATE roots SET last_seq = MAX(last_seq, ?) WHERE incident_id = ?", (seq, incident_id))
            self._db.execute("DELETE FROM steps WHERE incident_id = ? AND seq = ?", (incident_id, seq))

    def mark_dirty(self, incident_id: str) -> None:
        self._x("UPDATE roots SET dirty = dirty + 1 WHERE incident_id = ?", (incident_id,))

    def clear_dirty(self, incident_id: str, seen: int) -> None:
        self._x("UPDATE roots SET dirty = 0 WHERE incident_id = ? AND dirty = ?", (incident_id, seen))

    def dirty_roots(self) -> list[str]:
        rows = self._x("SELECT incident_id FROM roots WHERE dirty > 0 AND root_ts IS NOT NULL").fetchall()
        return [r[0] for r in rows]

    def request_resolve(self, incident_id: str, user: str) -> None:
        self._x(
            "UPDATE roots SET resolve_requested_by = ?, dirty = dirty + 1 WHERE incident_id = ?", (user, incident_id)
        )

    # steps
    def step(self, incident_id: str, seq: int, step: str) -> str | None:
        row = self._x(
            "SELECT state FROM steps WHERE incident_id = ? AND seq = ? AND step = ?", (incident_id, seq, step)
        ).fetchone()
        return None if row is None else str(row[0])

    def set_step(self, incident_id: str, seq: int, step: str, state: str | None) -> None:
        if state is None:
            self._x("DELETE FROM steps WHERE incident_id = ? AND seq = ? AND step = ?", (incident_id, seq, step))
        else:
            self._x(
                "INSERT OR REPLACE INTO steps (incident_id, seq, step, state) VALUES (?, ?, ?, ?)",
                (incident_id, seq, step, state),
            )

    # escalation
    def escalation(self, incident_id: str) -> Escalation | None:
        row = self._x(f"SELECT {_ESCALATION_COLUMNS} FROM escalation WHERE incident_id = ?", (incident_id,)).fetchone()
        return None if row is None else _escalation(row)

    def start_escalation(
        self, incident_id: str, severity: str, next_at: float | None, late: float | None = None
    ) -> None:
        self._x(
            "INSERT OR IGNORE INTO escalation (incident_id, severity, next_at, late) VALUES (?, ?, ?, ?)",
            (incident_id, severity, next_at, late),
        )

    def update_escalation(self, incident_id: str, **fields: object) -> None:
        cols = ", ".join(f"{k} = ?" for k in fields)
        self._x(f"UPDATE escalation SET {cols} WHERE incident_id = ?", (*fields.values(), incident_id))

    def due_escalations(self, now: float) -> list[Escalation]:
        rows = self._x(
            f"SELECT {_ESCALATION_COLUMNS} FROM escalation WHERE next_at IS NOT NULL AND next_at <= ? ORDER BY next_at",
            (now,),
        ).fetchall()
        return [_escalation(r) for r in rows]

    # volunteers
    def add_volunteer(self, incident_id: str, user_id: str, languages: list[str], at: float) -> bool:
        """Record a sign-up; False if `user_id` had signed up already (here, or as a carried id)."""
        with self._lock:
            if user_id in self._carried(incident_id)[2]:
                return False
            cur = self._db.execute(
                "INSERT OR IGNORE INTO volunteers (incident_id, user_id, languages, at) VALUES (?, ?, ?, ?)",
                (incident_id, user_id, ",".join(languages), at),
            )
            return cur.rowcount == 1

    def volunteers(self, incident_id: str) -> list[tuple[str, list[str]]]:
        rows = self._x(
            "SELECT user_id, languages FROM volunteers WHERE incident_id = ? ORDER BY at", (incident_id,)
        ).fetchall()
        return [(r[0], [x for x in r[1].split(",") if x]) for r in rows]

    def carry_volunteers(
        self, incident_id: str, count: int, languages: dict[str, int], users: list[str], *, replace_local: bool = False
    ) -> None:
        """The sign-ups a previous owner recorded (from the root's metadata), replacing any carried before;
        with `replace_local`, those made here are forgotten too (the root's count includes them)."""
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO carried_volunteers (incident_id, count, languages, users) VALUES (?, ?, ?, ?)",
                (incident_id, count, json.dumps(languages, sort_keys=True), ",".join(users)),
            )
            if replace_local:
                self._db.execute("DELETE FROM volunteers WHERE incident_id = ?", (incident_id,))

    def _carried(self, incident_id: str) -> tuple[int, dict[str, int], list[str]]:
        row = self._x(
            "SELECT count, languages, users FROM carried_volunteers WHERE incident_id = ?", (incident_id,)
        ).fetchone()
        if row is None:
            return 0, {}, []
        return int(row[0]), {str(k): int(v) for k, v in json.loads(row[1]).items()}, [u for u in row[2].split(",") if u]

    def volunteer_summary(self, incident_id: str) -> Volunteers:
        """The carried sign-ups plus those made here."""
        with self._lock:
            count, carried_languages, users = self._carried(incident_id)
            local = self.volunteers(incident_id)
        languages = Counter(carried_languages)
        languages.update(lang for _, langs in local for lang in set(langs))
        return Volunteers(count + len(local), dict(languages), users + [u for u, _ in local])

    # notes
    def add_note(self, incident_id: str, text: str) -> None:
        self._x("INSERT INTO notes (incident_id, text) VALUES (?, ?)", (incident_id, text))

    def unposted_notes(self) -> list[tuple[int, str, str]]:
        return [
            (int(a), str(b), str(c))
            for a, b, c in self._x("SELECT id, incident_id, text FROM notes WHERE posted = 0 ORDER BY id").fetchall()
        ]

    def note_posted(self, note_id: int) -> None:
        self._x("UPDATE notes SET posted = 1 WHERE id = ?", (note_id,))

    def drop_notes(self, incident_id: str) -> int:
        """Mark the incident's unposted notes posted without posting them; returns how many."""
        return self._x("UPDATE notes SET posted = 1 WHERE incident_id = ? AND posted = 0", (incident_id,)).rowcount

    # presses waiting for the root to be read
    def defer_press(self, incident_id: str, action_id: str, user_id: str, at: float) -> int:
        """Keep a press for later; its id (as `deferred_presses` gives it)."""
        cursor = self._x(
            "INSERT INTO deferred_presses (incident_id, action_id, user_id, at) VALUES (?, ?, ?, ?)",
            (incident_id, action_id, user_id, at),
        )
        return int(cursor.lastrowid or 0)

    def deferred_presses(self) -> list[tuple[int, str, str, str, float]]:
        """(id, incident, action, user, when pressed), in the order they came."""
        rows = self._x("SELECT id, incident_id, action_id, user_id, at FROM deferred_presses ORDER BY id").fetchall()
        return [(int(a), str(b), str(c), str(d), float(e)) for a, b, c, d, e in rows]

    def press_done(self, press_id: int) -> None:
        self._x("DELETE FROM deferred_presses WHERE id = ?", (press_id,))

    # channels
    def channel(self, ref: str) -> str | None:
        row = self._x("SELECT id FROM channels WHERE ref = ?", (ref,)).fetchone()
        return None if row is None else str(row[0])

    def set_channel(self, ref: str, channel_id: str) -> None:
        self._x("INSERT OR REPLACE INTO channels (ref, id) VALUES (?, ?)", (ref, channel_id))

    def writer(self) -> str:
        """This replica's id in the root's metadata: random, made once per state directory (a restart keeps
        it: the record it writes from is the same)."""
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key = 'writer'").fetchone()
            if row is None:
                self._db.execute("INSERT INTO meta (key, value) VALUES ('writer', ?)", (secrets.token_hex(6),))
                row = self._db.execute("SELECT value FROM meta WHERE key = 'writer'").fetchone()
        return str(row[0])
