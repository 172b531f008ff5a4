"""First text scorer: a placeholder lexicon scorer, replaced by the multilingual one (issue 9).

The public surface the pipeline relies on:
- `TextScorer().score(text, lang=None) -> TextScore`
- `TextScorer().learn(text, lang, sentiment)` : online learning from an upstream sentiment in [-1, 1]
- `TextScorer().terms(text, lang) -> list[str]` : normalised content terms (and bigrams) for topic detection
"""

from __future__ import annotations

import re
from typing import Literal

import msgspec

Intent = Literal["complaint", "question", "feedback", "praise", "other"]

_WORD = re.compile(r"\w+", re.UNICODE)
_NEG = frozenset(
    "cancelled canceled delayed delay lost worst terrible awful angry refund stuck never nobody bad hate "
    "rude broken waiting wait fail failed problem".split()
)
_POS = frozenset("thanks thank great love awesome good best amazing happy".split())
_STOP = frozenset("the a an to and of in on for is it my me i you your we at with this that be are was".split())


class TextScore(msgspec.Struct, frozen=True):
    lang: str
    negativity: float
    negative: bool
    intent: Intent


class TextScorer:
    def score(self, text: str, lang: str | None = None) -> TextScore:
        words = _WORD.findall(text.lower())
        neg = sum(w in _NEG for w in words)
        pos = sum(w in _POS for w in words)
        negativity = 0.5 + 0.5 * (neg - pos) / (neg + pos) if neg + pos else 0.3
        if "?" in text:
            intent: Intent = "question"
        elif neg > pos:
            intent = "complaint"
        elif pos > neg:
            intent = "praise"
        else:
            intent = "other"
        return TextScore(lang or "und", negativity, negativity >= 0.5, intent)

    def learn(self, text: str, lang: str | None, sentiment: float) -> None:
        return None

    def terms(self, text: str, lang: str | None = None) -> list[str]:
        return [w for w in _WORD.findall(text.lower()) if w not in _STOP and len(w) > 2]
