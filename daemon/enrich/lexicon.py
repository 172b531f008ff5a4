"""Sentiment lexicons written for crisisd, one file per language group, loaded from package data.

File format (`lexicons/<group>.txt`, UTF-8, `#` starts a comment):

    -2: bad awful terrible horribl*      valence from -4 (very negative) to +4, then terms
    -3: not_working no_one_answers       `_` joins a two-word phrase (scored on its second word)
    -2: =strašn*                         `=`: no plain-ASCII alias for this entry
    @negator: not never no               a word class, then its members

A term ending in `*` is a stem: it matches every word that starts with it (the longest stem wins, an
exact entry beats any stem). Classes: negator, intensifier, diminisher, contrast, stop, feedback,
and the words that ask without "?" (see `TextScorer._asks`): question (a wh-word), inversion (a verb
that asks opening a clause before its subject: en, nl), particle (asks opening a clause: "jel",
"разве"), enclitic (`li`/`ли`, asks after a clause's first word). Groups: `en`, `nl`, `sh` (Serbian,
Croatian, Bosnian in Latin script; Serbian Cyrillic is transliterated before lookup), `mk`, `ru`,
and `common` (emoticons, emoji, internet slang) merged into each.

Diacritics are never stripped from the text. To match the many people who type Serbian or Croatian
without them, each `sh` entry with č ć š ž đ also gets its plain-ASCII spelling as an alias, and each
Russian entry with ё its е spelling, unless that spelling is another entry (so `kuća`'s alias `kuca`
is added only while no entry is spelled `kuca`). й/и and the Macedonian ќ/ѓ are never folded.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from importlib import resources

NEGATOR = 1
INTENSIFIER = 2
DIMINISHER = 4
CONTRAST = 8
STOP = 16
QUESTION = 32
FEEDBACK = 64
INVERSION = 128
ENCLITIC = 256
PARTICLE = 512

_CLASSES = {
    "negator": NEGATOR,
    "intensifier": INTENSIFIER,
    "diminisher": DIMINISHER,
    "contrast": CONTRAST,
    "stop": STOP,
    "question": QUESTION,
    "feedback": FEEDBACK,
    "inversion": INVERSION,
    "enclitic": ENCLITIC,
    "particle": PARTICLE,
}
GROUPS = ("en", "nl", "sh", "mk", "ru")
_NEG_PREFIX = {"sh": "ne", "mk": "не", "ru": "не"}
_SUPERLATIVE = {"sh": "naj", "mk": "нај", "ru": "наи"}

_SH_FOLD = str.maketrans({"č": "c", "ć": "c", "š": "s", "ž": "z", "đ": "dj"})
_RU_FOLD = str.maketrans({"ё": "е"})

# An entry: (valence, intensity multiplier, class flags, phrases starting with this word or None).
Entry = tuple[float, float, int, "dict[str, float] | None"]
NO_ENTRY: Entry = (0.0, 1.0, 0, None)


_STRETCHED = re.compile(r"(\w)\1{2,}")  # a letter three or more times in a row


@dataclass
class Lexicon:
    """One language group's word valences, stems, phrases and word classes."""

    group: str
    words: dict[str, float] = field(default_factory=dict)
    stems: dict[str, float] = field(default_factory=dict)
    phrases: dict[str, dict[str, float]] = field(default_factory=dict)
    flags: dict[str, int] = field(default_factory=dict)
    no_alias: set[str] = field(default_factory=set)
    min_stem: int = 3
    max_stem: int = 3

    def valence(self, word: str) -> float:
        """Valence of one lower-case word: exact entry, else the longest matching stem, else 0.

        >>> lexicon("en").valence("disappointing") < 0 < lexicon("en").valence("thanks")
        True
        >>> lexicon("sh").valence("nezanimljiv") < 0 < lexicon("sh").valence("zanimljiv")
        True
        """
        v = self.words.get(word)
        if v is not None:
            return v
        for k in range(min(len(word), self.max_stem), self.min_stem - 1, -1):
            v = self.stems.get(word[:k])
            if v is not None:
                return v
        # Superlative prefix: najgluplji, најдобар
        sup = _SUPERLATIVE.get(self.group)
        if sup and word.startswith(sup) and len(word) >= len(sup) + 4:
            v = self.valence(word[len(sup) :])
            if v:
                return max(-4.0, min(4.0, 1.2 * v))
        # Slavic negative prefix on a positive word: nezanimljiv, неинтересный, неубав
        prefix = _NEG_PREFIX.get(self.group)
        if prefix and word.startswith(prefix) and len(word) >= len(prefix) + 4:
            v = self.valence(word[len(prefix) :])
            if v > 0.0:
                return -0.8 * v
        return 0.0

    def entry(self, word: str) -> Entry:
        """Everything the scorer needs about one token (a `#hashtag` is looked up as its word)."""
        if word[:1] == "#":
            word = word[1:]
        word = word.replace("’", "'")
        flags = self.flags.get(word, 0)
        if flags & STOP:  # a stop word takes an exact entry or a long stem only (`nad` is not `nad*`)
            val = self.words.get(word, 0.0) or (self.valence(word) if len(word) > 4 else 0.0)
        else:
            val = self.valence(word)
        mult = 1.0
        if flags & INTENSIFIER:
            mult = 1.4
        elif flags & DIMINISHER:
            mult = 0.6
        phr = self.phrases.get(word)
        if not val and not flags and phr is None:
            if _STRETCHED.search(word):  # "baaaad", "terribleeee", "ужаааас": the word stretched for effect
                for once in (_STRETCHED.sub(r"\1", word), _STRETCHED.sub(r"\1\1", word)):
                    found = self.entry(once)
                    if found is not NO_ENTRY:
                        return found
            return NO_ENTRY
        return (val, mult, flags, phr)

    def is_stop(self, word: str) -> bool:
        return bool(self.flags.get(word, 0) & STOP)

    def _add(self, term: str, value: float) -> None:
        if term.startswith("="):  # `=strašn*`: no plain-ASCII alias (`strasn*` is "passionate")
            term = term[1:]
            self.no_alias.add(term.rstrip("*"))
        if "_" in term:
            first, _, second = term.partition("_")
            self.phrases.setdefault(first, {})[second.replace("_", " ")] = value
        elif term.endswith("*"):
            self.stems[term[:-1]] = value
        else:
            self.words[term] = value

    def _add_aliases(self, fold: dict[int, str]) -> None:
        tables: list[dict[str, float] | dict[str, int]] = [self.words, self.stems, self.flags]
        for table in tables:
            for term in list(table):
                alias = term.translate(fold)
                # very short stems are left alone: `laž*` folded to `laz*` would also match `lazar`
                if alias == term or alias in table or term in self.no_alias:
                    continue
                if table is not self.stems or len(alias) >= 4:
                    table[alias] = table[term]  # type: ignore[assignment]
        for first in list(self.phrases):
            seconds = self.phrases[first]
            for second in list(seconds):
                alias2 = second.translate(fold)
                if alias2 not in seconds:
                    seconds[alias2] = seconds[second]
            alias = first.translate(fold)
            if alias != first and alias not in self.phrases:
                self.phrases[alias] = dict(seconds)
        if self.stems:
            self.min_stem = min(map(len, self.stems))
            self.max_stem = max(map(len, self.stems))


def _parse(lex: Lexicon, text: str, origin: str) -> None:
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip() if not raw.lstrip().startswith("@") else raw.strip()
        if not line:
            continue
        head, sep, rest = line.partition(":")
        if not sep:
            raise ValueError(f"{origin}:{lineno}: expected 'VALUE: terms' or '@class: words'")
        terms = rest.split()
        if head.startswith("@"):
            flag = _CLASSES.get(head[1:].strip())
            if flag is None:
                raise ValueError(f"{origin}:{lineno}: unknown word class {head!r}")
            for t in terms:
                lex.flags[t] = lex.flags.get(t, 0) | flag
            continue
        value = float(head)
        for t in terms:
            lex._add(t.lower(), value)


@functools.cache
def lexicon(group: str) -> Lexicon:
    """The lexicon of one group (`en`, `nl`, `sh`, `mk`, `ru`), loaded once per process.

    >>> lexicon("sh").valence("užasno") == lexicon("sh").valence("uzasno") < 0
    True
    >>> lexicon("ru").valence("плохо") < 0
    True
    """
    if group not in GROUPS:
        raise ValueError(f"unknown lexicon group {group!r}")
    lex = Lexicon(group)
    base = resources.files("daemon.enrich.lexicons")
    for name in ("common", group):
        _parse(lex, (base / f"{name}.txt").read_text(encoding="utf-8"), f"{name}.txt")
    if group == "sh":
        lex._add_aliases(_SH_FOLD)
    elif group == "ru":
        lex._add_aliases(_RU_FOLD)
    else:
        lex._add_aliases({})
    # Apostrophe forms: people type "dont" as often as "don't".
    for w in [w for w in lex.flags if "'" in w]:
        lex.flags.setdefault(w.replace("'", ""), lex.flags[w])
    for w in [w for w in lex.words if "'" in w]:
        lex.words.setdefault(w.replace("'", ""), lex.words[w])
    return lex
