"""The detector interface, in the river style.

A detector sees one closed `Bucket` of one brand at a time. `score_one` returns a float in [0, 1]
(high = anomalous; 0.5 = the signal's firing threshold) and changes nothing; `learn_one` updates the
baseline; `update` does both in that order and keeps anomalies out of learning (river's
`protect_anomaly_detector`): while a detector fires, its baseline is frozen, so a crisis is not
learned as normal, for at most `max_protect_buckets` in a row, after which a lasting level shift is
learned after all (otherwise it would page forever). During the warm-up (`grace period`) scores are 0.

Every detector pickles (checkpoints), and the same inputs give the same scores (seeds injected).
"""

from __future__ import annotations

import abc
import math

from daemon.windows import Bucket


def score_from_surprise(surprise: float, threshold: float) -> float:
    """Map a surprise to [0, 1] so that the firing threshold maps to 0.5.

    >>> score_from_surprise(0.0, 6.0), score_from_surprise(6.0, 6.0), score_from_surprise(18.0, 6.0)
    (0.0, 0.5, 0.75)
    """
    if surprise <= 0.0 or math.isnan(surprise):
        return 0.0
    return surprise / (surprise + threshold)


class Detector(abc.ABC):
    """Base class: subclasses implement `score_one`, `learn_one` and `warm`."""

    protect_score: float = 0.5
    """`update` does not learn from a bucket scoring at least this (the anomaly filter)."""
    max_protect_buckets: int = 360
    """...unless that many buckets in a row were kept out: then the new normal is learned."""

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        self._protected = 0

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
