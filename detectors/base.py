"""The detector interface, in the river style.

A detector sees one closed `Bucket` of one brand at a time. `score_one` returns a float in [0, 1]
(high = anomalous; 0.5 = the signal's firing threshold) and changes nothing; `learn_one` updates the
baseline; `update` does both in that order and keeps anomalies out of learning (river's
`protect_anomaly_detector`): while a detector fires, its baseline is frozen, so a crisis is not
learned as normal, for at most `max_protect_buckets` in a row, after which a lasting level shift is
learned after all (otherwise it would page forever). During the warm-up (`grace period`) scores are 0.

Every detector pickles (checkpoints), and the same inputs give the same scores (seeds injected).
A brand holds one detector of each kind, so subclasses may keep their state in `__slots__` (no
instance dict); with or without slots, the state pickles as one dict of attributes, the form of the
checkpoints written when every detector had an instance dict.
"""

from __future__ import annotations

import abc
import functools
import math
from array import array
from collections.abc import Iterable
from typing import Any

from daemon.windows import Bucket


def score_from_surprise(surprise: float, threshold: float) -> float:
    """Map a surprise to [0, 1] so that the firing threshold maps to 0.5.

    >>> score_from_surprise(0.0, 6.0), score_from_surprise(6.0, 6.0), score_from_surprise(18.0, 6.0)
    (0.0, 0.5, 0.75)
    """
    if surprise <= 0.0 or math.isnan(surprise):
        return 0.0
    return surprise / (surprise + threshold)


def span_buckets(windows_minutes: Iterable[int], seconds: int) -> tuple[int, ...]:
    """The spans of `windows_minutes` in whole buckets, ascending.

    >>> span_buckets((1, 5, 15, 60, 240), 60), span_buckets((1, 5, 15), 300)
    ((1, 5, 15, 60, 240), (1, 3))
    """
    return shared_spans(sorted({max(1, round(m * 60 / seconds)) for m in windows_minutes}))


_SHARED_SPANS: dict[tuple[int, ...], tuple[int, ...]] = {}


def shared_spans(spans: Iterable[int]) -> tuple[int, ...]:
    """One tuple for all the brands with these spans (few distinct ones), not one each.

    >>> shared_spans([1, 5]) is shared_spans((1, 5))
    True
    """
    key = tuple(spans)
    return _SHARED_SPANS.setdefault(key, key)


@functools.cache
def _slot_names(cls: type) -> tuple[str, ...]:
    names: list[str] = []
    for klass in reversed(cls.__mro__):
        slots = klass.__dict__.get("__slots__", ())
        names += [slots] if isinstance(slots, str) else [n for n in slots if n not in ("__dict__", "__weakref__")]
    return tuple(names)


class Detector(abc.ABC):
    """Base class: subclasses implement `score_one`, `learn_one` and `warm`."""

    # No slot here: a subclass without __slots__ (TopicDetector) keeps all of its state, `seed`
    # included, in its __dict__ as before, and one with __slots__ lists `BASE_SLOTS` among them.
    # (A call, not the literal `()`, which mypy would check this class's assignments against.)
    __slots__: tuple[str, ...] = tuple()
    BASE_SLOTS = ("seed", "_protected", "max_protect_buckets")
    """The attributes this class sets, for the __slots__ of subclasses that have them."""

    protect_score: float = 0.5
    """`update` does not learn from a bucket scoring at least this (the anomaly filter)."""
    max_protect_buckets: int = 360
    """...unless that many buckets in a row were kept out: then the new normal is learned."""

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        self._protected = 0

    def __getstate__(self) -> dict[str, Any]:
        """Every attribute, held in slots or in the instance dict, as one dict."""
        state = {name: getattr(self, name) for name in _slot_names(type(self)) if hasattr(self, name)}
        if type(self).__dictoffset__:  # a subclass without __slots__
            state.update(vars(self))
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Restore `__getstate__`'s dict: also the state of checkpoints from before the slots (a
        subclass converts the entries of older layouts first; an unknown name raises)."""
        if "_spans" in state:
            state = {**state, "_spans": shared_spans(state["_spans"])}
        if "max_protect_buckets" not in state:  # a detector never configured kept the class default
            state = {**state, "max_protect_buckets": Detector.max_protect_buckets}
        for name, value in state.items():
            # an unpickled array has room to grow (read in chunks): its slice is sized exactly
            setattr(self, name, value[:] if isinstance(value, array) else value)

    @abc.abstractmethod
    def score_one(self, bucket: Bucket) -> float:
        """Anomaly score of `bucket` in [0, 1]; no side effect."""

    @abc.abstractmethod
    def learn_one(self, bucket: Bucket) -> None:
        """Update the baseline with `bucket`."""

    @property
    @abc.abstractmethod
    def warm(self) -> bool:
        """True once the grace period is over (scores can be non-zero)."""

    @property
    def protecting(self) -> bool:
        """False during a burn-in in which everything is learned (e.g. the first daily cycles)."""
        return True

    def observe(self, bucket: Bucket) -> None:  # noqa: B027 - optional hook
        """Record the bucket in short-term state (spans) whether or not it is learned."""

    def update(self, bucket: Bucket) -> float:
        """Score, then learn unless the bucket is anomalous (see the module docstring)."""
        score = self.score_one(bucket)
        self.after_score(bucket, score)
        return score

    def after_score(self, bucket: Bucket, score: float) -> None:
        """The second half of `update`, for callers that scored with a richer method."""
        self.observe(bucket)
        if score < self.protect_score or not self.protecting:
            self._protected = 0
            self.learn_one(bucket)
        elif self._protected >= self.max_protect_buckets:
            self.learn_one(bucket)  # anomalous for too long: a new normal
        else:
            self._protected += 1
