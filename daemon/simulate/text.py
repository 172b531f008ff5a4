"""Multilingual message texts from the templates in `vocab.py`, cheap enough for 100k+ texts a second.

Every choice is drawn from one integer per event (`r`, 64 random bits from the stream's numpy
generator), so a text is a pure function of (language, domain, category, r, per-event values): the
same seed gives the same bytes, and a duplicate delivery can be rendered again identically.

>>> texts = Texts()
>>> t = texts.render("sr-Cyrl", "airline", "cr_complaint", 12345, {"b": "@KLM", "fl": "KL1234"})
>>> any(term in t for term in ("пепел", "вулкан", "отказан", "повраћај", "заглављени", "ваздушни"))
True
>>> texts.render("en", "airline", "cr_complaint", 12345, {"b": "@KLM", "fl": "KL1234"}) == \\
...     texts.render("en", "airline", "cr_complaint", 12345, {"b": "@KLM", "fl": "KL1234"})
True
"""

from __future__ import annotations

import string
from collections.abc import Mapping

from daemon.simulate.vocab import SHARED, VOCAB

LANGS = ("en", "nl", "sr-Latn", "sr-Cyrl", "hr", "bs", "mk", "ru")
DOMAINS = ("airline", "telecom", "retail", "delivery", "fuel")
# Slots filled from the per-event values rather than from a pool.
EVENT_SLOTS = frozenset({"b", "fl", "tag"})
# Pools that may be specialised per domain (`issue` -> `issue_airline`).
_DOMAIN_POOLS = ("issue", "ask", "good", "misc")

_LAT2CYR = {
    "lj": "љ", "nj": "њ", "dž": "џ", "Lj": "Љ", "Nj": "Њ", "Dž": "Џ", "LJ": "Љ", "NJ": "Њ", "DŽ": "Џ",
    "a": "а", "b": "б", "c": "ц", "č": "ч", "ć": "ћ", "d": "д", "đ": "ђ", "e": "е", "f": "ф", "g": "г",
    "h": "х", "i": "и", "j": "ј", "k": "к", "l": "л", "m": "м", "n": "н", "o": "о", "p": "п", "r": "р",
    "s": "с", "š": "ш", "t": "т", "u": "у", "v": "в", "z": "з", "ž": "ж",
}  # fmt: skip
_LAT2CYR.update({k.upper(): v.upper() for k, v in list(_LAT2CYR.items()) if len(k) == 1})


def to_cyrillic(latin: str) -> str:
    """Serbian Latin to Cyrillic, leaving `{slots}` and non-Serbian letters alone.

    >>> to_cyrillic("Zaglavljeni smo, {b} nema odgovora")
    'Заглављени смо, {b} нема одговора'
    """
    out: list[str] = []
    i, n = 0, len(latin)
    while i < n:
        ch = latin[i]
        if ch == "{":
            j = latin.index("}", i)
            out.append(latin[i : j + 1])
            i = j + 1
            continue
        pair = latin[i : i + 2]
        if pair in _LAT2CYR:
            out.append(_LAT2CYR[pair])
            i += 2
            continue
        out.append(_LAT2CYR.get(ch, ch))
        i += 1
    return "".join(out)


# A compiled template: literal strings and 1-tuples naming a slot. A pool is a tuple of items, each
# either a plain string (no slots: picked without a call) or a compiled template.
Template = tuple[str | tuple[str], ...]
Item = str | Template


def _compile(text: str) -> Item:
    pieces: list[str | tuple[str]] = []
    for literal, field, _spec, _conv in string.Formatter().parse(text):
        if literal:
            pieces.append(literal)
        if field is not None:
            pieces.append((field,))
    if len(pieces) == 1 and isinstance(pieces[0], str):
        return pieces[0]
    return tuple(pieces)


class Texts:
    """Compiled template tables, one per (language, domain)."""

    def __init__(self) -> None:
        vocab = dict(VOCAB)
        vocab["sr-Cyrl"] = {k: [to_cyrillic(t) for t in v] for k, v in VOCAB["sr-Latn"].items()}
        self._tables: dict[tuple[str, str], dict[str, tuple[Item, ...]]] = {}
        for lang in LANGS:
            pools = {**SHARED, **vocab["en"], **vocab[lang]}  # English is the fallback for special pools
            for domain in DOMAINS:
                table = {k: tuple(_compile(t) for t in v) for k, v in pools.items()}
                for base in _DOMAIN_POOLS:
                    special = f"{base}_{domain}"
                    if special in vocab[lang]:
                        table[base] = table[special]
                    elif base in vocab[lang]:
                        table[base] = tuple(_compile(t) for t in vocab[lang][base])
                self._tables[(lang, domain)] = table

    def has(self, lang: str, pool: str) -> bool:
        """Whether `pool` is written in `lang` itself (not the English fallback)."""
        src = VOCAB["sr-Latn"] if lang == "sr-Cyrl" else VOCAB[lang]
        return pool in src

    def render(self, lang: str, domain: str, pool: str, r: int, values: Mapping[str, str]) -> str:
        item, r = _pick(self._tables[(lang, domain)][pool], r)
        if item.__class__ is str:
            return item
        text, _ = self._fill(self._tables[(lang, domain)], item, r, values)  # type: ignore[arg-type]
        return text

    def _fill(
        self, table: dict[str, tuple[Item, ...]], template: Template, r: int, values: Mapping[str, str]
    ) -> tuple[str, int]:
        parts: list[str] = []
        for piece in template:
            if piece.__class__ is str:
                parts.append(piece)
                continue
            name = piece[0]
            if name in EVENT_SLOTS:
                parts.append(values.get(name, ""))
                continue
            choices = table[name]
            r, i = divmod(r, len(choices))
            item = choices[i]
            if item.__class__ is str:
                parts.append(item)
            else:
                if r < 1 << 16:  # running out of random bits: stir them rather than always picking item 0
                    r = (r * 6364136223846793005 + 1442695040888963407) & 0xFFFFFFFFFFFFFFFF
                sub, r = self._fill(table, item, r, values)  # type: ignore[arg-type]
                parts.append(sub)
        return "".join(parts), r


def _pick(choices: tuple[Item, ...], r: int) -> tuple[Item, int]:
    r, i = divmod(r, len(choices))
    return choices[i], r
