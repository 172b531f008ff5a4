"""Enrich: language, negativity and intent for each mention (the `score-text` scorer)."""

from daemon.enrich.scorer import Intent, TextScore, TextScorer

__all__ = ["Intent", "TextScore", "TextScorer"]
