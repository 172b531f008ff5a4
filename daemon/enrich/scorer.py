"""Multilingual negativity, intent and language scoring, with online learning from upstream labels.

The public surface the pipeline relies on:
- `TextScorer().score(text, lang=None) -> TextScore`
- `TextScorer().learn(text, lang, sentiment)` : online learning from an upstream sentiment in [-1, 1]
- `TextScorer().terms(text, lang) -> list[str]` : normalised content terms (and bigrams) for topic detection
- `TextScorer().analyze(text, lang) -> (TextScore, terms)` : both in one pass

How a text is scored: the language is the source's tag or is detected (`language.detect`); words are
looked up in that language's lexicon (`lexicon.py`, files in `lexicons/`) with VADER-like rules
(a negator flips and damps the next three words, an intensifier scales the next one, a contrast
word such as "but" halves what came before it, two-word phrases such as "not working" override
their words), emoticons, emoji and Russian-style `)))`/`(((` count too. The evidence `raw` (negative
minus positive valence) becomes a probability through a fixed logistic curve. Once upstream
sentiments have been learned, a river logistic regression over hashed words plus the lexicon
evidence is blended in, with a weight that grows with the number of examples seen.
"""

from __future__ import annotations

import itertools
import math
import re
import zlib
from importlib import resources
from itertools import compress, repeat
from typing import Literal

import msgspec
from river import linear_model, optim

from daemon.enrich import language
from daemon.enrich.lexicon import (
    CONTRAST,
    DIMINISHER,
    FEEDBACK,
    GROUPS,
    INTENSIFIER,
    NEGATOR,
    QUESTION,
    STOP,
    Lexicon,
    lexicon,
)

Intent = Literal["complaint", "question", "feedback", "praise", "other"]

_TOKEN = re.compile(r"https?://\S+|www\.\S+|[@#]?[^\W_]+(?:['’][^\W_]+)*")
_CYR = re.compile(r"[\u0400-\u04ff]")

_SR_CYR_TO_LAT = str.maketrans(
    {
        "а": "a", "б": "b", "в": "v", "г": "g", "д": "d", "ђ": "đ", "е": "e", "ж": "ž", "з": "z", "и": "i",
        "ј": "j", "к": "k", "л": "l", "љ": "lj", "м": "m", "н": "n", "њ": "nj", "о": "o", "п": "p", "р": "r",
        "с": "s", "т": "t", "ћ": "ć", "у": "u", "ф": "f", "х": "h", "ц": "c", "ч": "č", "џ": "dž", "ш": "š",
    }
)  # fmt: skip

# Slavic `ne`/`не` binds to the next word; English and Dutch negation reaches further.
_NEGATION_SCOPE = {"en": 3, "nl": 3, "sh": 1, "mk": 1, "ru": 1}
_CLITICS = {
    "sh": frozenset("mi ti mu joj nam vam im me te se ga ju ih si sam smo ste su bi bih bismo biste je".split()),
    "mk": frozenset("ми ти му ѝ ни ви им ме те се го ја ги би сум си е".split()),
    "ru": frozenset("мне тебе ему ей нам вам им меня тебя его её ее их бы же".split()),
}
_MODIFIER = INTENSIFIER | DIMINISHER  # do not use up the negation scope: "не очень хорошо"
_NEGATION_FACTOR = -0.6
_CURVE_SLOPE = 1.1
_CURVE_SHIFT = 0.22  # evidence needed before a text counts as negative (raw > 0.2)
_MAX_CACHE = 200_000
_HASH_BITS = (1 << 18) - 1
_PUNCT = ".,!?:;\"'()[]{}<>…-–—*~«»“”„‘’"


def transliterate_sr(text: str) -> str:
    """Serbian Cyrillic to Gaj's Latin alphabet (lower-case input).

    >>> transliterate_sr("љубазни? ђубре, џабе, ћутите")
    'ljubazni? đubre, džabe, ćutite'
    """
    return text.translate(_SR_CYR_TO_LAT)


def _load_emoticons() -> tuple[re.Pattern[str], dict[str, float]]:
    table: dict[str, float] = {}
    text = (resources.files("daemon.enrich.lexicons") / "emoticons.txt").read_text(encoding="utf-8")
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        head, _, rest = line.partition(" ")
        for t in rest.split():
            table[t.replace("\ufe0f", "")] = float(head)
    for t in list(table):  # chunks are matched lower-case: ":D" arrives as ":d"
        table.setdefault(t.lower(), table[t])
    emoji = sorted(t for t in table if len(t) == 1 and ord(t) > 0x2000)
    faces = sorted((t for t in table if t not in emoji), key=len, reverse=True)
    # One chunk of text splits into emoji, emoticon faces and words; used only on a cache miss.
    pattern = (
        "([" + "".join(emoji) + "])|(?<![^\\s\\w])(" + "|".join(map(re.escape, faces)) + ")(?![^\\s.,!?])"
        "|(#?[^\\W_]+(?:['’][^\\W_]+)*)"
    )
    return re.compile(pattern), table


_PIECES, _EMO = _load_emoticons()
_EMOTICON = 1 << 12  # flag of an emoticon or emoji piece: counted, never negated
# A piece of a chunk: (valence, intensity multiplier, flags, phrases it starts, word or "").
Piece = tuple[float, float, int, "dict[str, float] | None", str]


class TextScore(msgspec.Struct, frozen=True):
    """What the scorer says about one text. `negativity` is in [0, 1]; `negative` is `negativity >= 0.5`."""

    lang: str
    negativity: float
    negative: bool
    intent: Intent


class _Scan(msgspec.Struct):
    raw: float
    pos: float
    neg: float
    question: bool
    feedback: bool


def _chunk_hash(chunk: str) -> int:
    """A stable feature index for one chunk (-1 for handles, links and bare punctuation)."""
    if chunk[0] == "@" or chunk.startswith("http"):
        return -1
    w = chunk.strip(_PUNCT)
    return zlib.crc32(w.encode()) & _HASH_BITS if w else -1


def _sigmoid(z: float) -> float:
    if z < -30.0:
        return 0.0
    if z > 30.0:
        return 1.0
    return 1.0 / (1.0 + math.exp(-z))


class TextScorer:
    """Language, negativity and intent of short texts in en, nl, sr (Latin, Cyrillic), hr, bs, mk, ru.

    >>> s = TextScorer()
    >>> s.score("@klm flight cancelled again and nobody answers the phone!!", "en")
    TextScore(lang='en', negativity=..., negative=True, intent='complaint')
    >>> s.score("Hvala vam, super usluga 🙂").intent, s.score("Hvala vam, super usluga 🙂").lang
    ('praise', 'hr')
    >>> s.score("Када полеће лет за Београд?").intent
    'question'
    >>> s.terms("Изгубљен пртљаг на аеродрому", "sr")
    ['izgubljen', 'prtljag', 'aerodromu', 'izgubljen prtljag', 'prtljag aerodromu']

    Picklable: the lexicons are shared per process and only the learned model is saved.
    """

    def __init__(self, *, learning_rate: float = 0.15, blend_after: int = 300, max_learned_weight: float = 0.85):
        self.learning_rate = learning_rate
        self.blend_after = blend_after
        self.max_learned_weight = max_learned_weight
        self._model = linear_model.LogisticRegression(optimizer=optim.AdaGrad(learning_rate), l2=0.0)
        self._learned = 0
        self._init_caches()

    def _init_caches(self) -> None:
        self._lex: dict[str, Lexicon] = {g: lexicon(g) for g in GROUPS}
        self._cache: dict[str, dict[str, tuple[Piece, ...]]] = {g: {} for g in GROUPS}
        self._plain: dict[str, dict[str, str]] = {g: {} for g in GROUPS}  # chunk -> its one plain word
        self._boring: dict[str, dict[str, int]] = {g: {} for g in GROUPS}  # plain chunk -> 0
        self._words: dict[str, dict[str, tuple[str, ...]]] = {g: {} for g in GROUPS}
        self._hashes: dict[str, int] = {}
        self._langs: dict[str, tuple[str, str]] = {}

    def __getstate__(self) -> dict[str, object]:
        state = dict(self.__dict__)
        for k in ("_lex", "_cache", "_plain", "_boring", "_words", "_hashes", "_langs"):
            state.pop(k)
        return state

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__dict__.update(state)
        self._init_caches()

    @property
    def learned(self) -> int:
        """How many upstream sentiments have been learned."""
        return self._learned

    # -- language -------------------------------------------------------------------------------

    def _language(self, text: str, lang: str | None, low: str) -> tuple[str, str]:
        """(language code, lexicon group) from the source's tag, else detected."""
        if lang:
            hit = self._langs.get(lang)
            if hit is None:
                code = language.normalise(lang) or "und"
                hit = (code, language.GROUP.get(code, "en"))
                if len(self._langs) < 1000:
                    self._langs[lang] = hit
            if hit[0] != "und":
                return hit
        code = language.detect(text, low.split())
        return code, language.GROUP.get(code, "en")

    # -- scanning -------------------------------------------------------------------------------

    def _scan(self, text: str, low: str, group: str) -> _Scan:
        """Lexicon evidence for one text.

        The hot loop: chunks (whitespace-separated) are classified once and cached, and the many
        "plain" ones (no valence, no role) cost one set lookup. Negation and intensifier scopes are
        counted in chunks; a phrase is found by looking one chunk ahead from its first word.
        """
        boring = self._boring[group]
        cache = self._cache[group]
        scope = _NEGATION_SCOPE[group]
        clitics = _CLITICS.get(group, frozenset())
        pos = neg = emo = 0.0
        neg_until = boost_at = skip = -1
        boost = weight = 1.0
        question = feedback = False
        chunks = low.split()
        # indices of the chunks that are not known to be plain, found without a Python-level loop
        for i in compress(range(len(chunks)), map(boring.get, chunks, repeat(1))):
            chunk = chunks[i]
            pieces = cache.get(chunk)
            if pieces is None:
                w, pieces = self._classify(group, chunk)
                if w is not None:
                    continue
            for val, mult, flags, nxt, _ in pieces:
                if flags:
                    if flags & _EMOTICON:
                        emo += val
                        continue
                    if flags & QUESTION and i <= 2:
                        question = True
                    if flags & FEEDBACK:
                        feedback = True
                    if flags & CONTRAST:
                        pos *= 0.5
                        neg *= 0.5
                        weight = 1.5
                if i == skip:  # the second word of a phrase already counted
                    skip = -1
                    val = 0.0
                if val:
                    v = val * weight
                    if boost_at == i:
                        v *= boost
                    if i <= neg_until:
                        v *= _NEGATION_FACTOR
                    if v < 0.0:
                        neg -= v
                    else:
                        pos += v
                if mult != 1.0:
                    boost_at = i + 1
                    boost = mult
                    if i <= neg_until:  # "не очень хорошо": the modifier does not use up the scope
                        neg_until += 1
                if flags & NEGATOR:
                    neg_until = i + scope
                    # Slavic clitics sit between the negator and its verb: "nije mi se svidelo"
                    while neg_until < len(chunks) and chunks[neg_until] in clitics:
                        neg_until += 1
                if nxt is not None and i + 1 < len(chunks):
                    pv = nxt.get(self._first_word(group, chunks[i + 1]))
                    if pv is not None:
                        if pv < 0.0:
                            neg -= pv * weight
                        else:
                            pos += pv * weight
                        skip = i + 1
                        neg_until = -1
        # Emoticons, emoji, and the Russian-style smile `)))` / frown `(((`.
        parens = text.count(")") - text.count("(")
        if parens:
            emo += max(-3, min(3, parens)) * 0.9
        if emo:
            emo = max(-4.0, min(4.0, emo))
            if emo < 0.0:
                neg -= emo
            else:
                pos += emo
        bangs = text.count("!")
        if bangs:
            amp = 1.0 + 0.08 * min(bangs, 4)
            pos *= amp
            neg *= amp
        if not question and "?" in text:
            question = True
        return _Scan(neg - pos, pos, neg, question, feedback)

    def _classify(self, group: str, chunk: str) -> tuple[str | None, tuple[Piece, ...]]:
        """Split one whitespace-separated chunk into pieces and cache it.

        A chunk that is one word without valence, role or phrase ("plain") is cached as that word (or
        "" for a handle or a link); any other as its pieces. Both caches are bounded: chunks come from
        users.
        """
        pieces: tuple[Piece, ...] = ()
        if chunk[0] != "@" and not chunk.startswith(("http://", "https://", "www.")):
            lex = self._lex[group]
            text = transliterate_sr(chunk) if group == "sh" else chunk
            out: list[Piece] = []
            for emoji, face, word in _PIECES.findall(text):
                if emoji or face:
                    out.append((_EMO.get(emoji or face, 0.0), 1.0, _EMOTICON, None, ""))
                else:
                    word = word.lstrip("#").replace("’", "'")
                    if word:
                        val, mult, flags, phr = lex.entry(word)
                        out.append((val, mult, flags, phr, word))
            pieces = tuple(out)
        w: str | None = None
        if not pieces:
            w = ""
        elif len(pieces) == 1 and not pieces[0][0] and not pieces[0][2] & ~STOP and pieces[0][3] is None:
            w = pieces[0][4]
        if len(chunk) <= 40:
            if w is not None:
                plain = self._plain[group]
                if len(plain) >= _MAX_CACHE:
                    plain.clear()
                    self._boring[group].clear()
                plain[chunk] = w
                self._boring[group][chunk] = 0
            else:
                cache = self._cache[group]
                if len(cache) >= _MAX_CACHE:
                    cache.clear()
                cache[chunk] = pieces
        return w, pieces

    def _first_word(self, group: str, chunk: str) -> str:
        w = self._plain[group].get(chunk)
        if w is not None:
            return w
        pieces = self._cache[group].get(chunk)
        if pieces is None:
            w, pieces = self._classify(group, chunk)
            if w is not None:
                return w
        return next((p[4] for p in pieces if p[4]), "")

    def _content(self, low: str, group: str) -> list[str]:
        """Content words (stop words, handles, links and emoji dropped), in order."""
        words = self._words[group]
        out: list[str] = []
        for chunk in low.split():
            ws = words.get(chunk)
            if ws is None:
                _, pieces = self._classify(group, chunk)
                ws = tuple(p[4] for p in pieces if p[4] and not p[2] & STOP)
                if len(chunk) <= 40:
                    if len(words) >= _MAX_CACHE:
                        words.clear()
                    words[chunk] = ws
            out.extend(ws)
        return out

    # -- public API -----------------------------------------------------------------------------

    def analyze(self, text: str, lang: str | None = None) -> tuple[TextScore, list[str]]:
        """Score and topic terms together (what the pipeline calls per mention)."""
        low = text.lower()
        code, group = self._language(text, lang, low)
        content = self._content(low, group)
        return self._decide(code, self._scan(text, low, group), low), self._terms(content)

    def score(self, text: str, lang: str | None = None) -> TextScore:
        """Language, negativity, negative flag and intent of one text."""
        low = text.lower()
        code, group = self._language(text, lang, low)
        scan = self._scan(text, low, group)
        return self._decide(code, scan, low)

    def terms(self, text: str, lang: str | None = None) -> list[str]:
        """Content words, then bigrams of adjacent content words, lower-case, stop words removed.

        Serbian Cyrillic is transliterated so one topic is one term; diacritics are kept.

        >>> TextScorer().terms("The flight to Oslo was cancelled, cancelled again #ash", "en")
        ['flight', 'oslo', 'cancelled', 'ash', 'flight oslo', 'oslo cancelled', 'cancelled ash']
        """
        low = text.lower()
        return self._terms(self._content(low, self._language(text, lang, low)[1]))

    def learn(self, text: str, lang: str | None, sentiment: float) -> None:
        """Learn from an upstream sentiment in [-1, 1] (negative below 0)."""
        if not -1.0 <= sentiment <= 1.0 or math.isnan(sentiment):
            raise ValueError(f"sentiment must be in [-1, 1], got {sentiment!r}")
        low = text.lower()
        group = self._language(text, lang, low)[1]
        scan = self._scan(text, low, group)
        self._model.learn_one(self._features(scan, low), sentiment < 0.0)
        self._learned += 1

    # -- helpers --------------------------------------------------------------------------------

    def _decide(self, code: str, scan: _Scan, low: str) -> TextScore:
        p = _sigmoid(_CURVE_SLOPE * scan.raw - _CURVE_SHIFT)
        if self._learned:
            w = self.max_learned_weight * min(1.0, self._learned / self.blend_after)
            p = (1.0 - w) * p + w * self._model.predict_proba_one(self._features(scan, low)).get(True, 0.0)
        negative = p >= 0.5
        if negative:
            intent: Intent = "complaint"
        elif scan.question:
            intent = "question"
        elif scan.feedback:
            intent = "feedback"
        elif scan.pos >= 1.0 and scan.pos > scan.neg:
            intent = "praise"
        else:
            intent = "other"
        return TextScore(code, round(p, 4), negative, intent)

    def _features(self, scan: _Scan, low: str) -> dict[object, float]:
        x: dict[object, float] = {
            "lex": max(-4.0, min(4.0, scan.raw)) / 2.0,
            "pos": math.log1p(scan.pos),
            "neg": math.log1p(scan.neg),
            "q": 1.0 if scan.question else 0.0,
        }
        # hashed words and word pairs (bounded memory whatever users write); a chunk's hash is cached
        hashes = self._hashes
        prev = -1
        for chunk in low.split():
            h = hashes.get(chunk)
            if h is None:
                h = _chunk_hash(chunk)
                if len(hashes) >= _MAX_CACHE:
                    hashes.clear()
                hashes[chunk] = h
            if h < 0:
                continue
            x[h] = 1.0
            if prev >= 0:
                x[(prev * 1_000_003 + h) & _HASH_BITS] = 1.0
            prev = h
        return x

    @staticmethod
    def _terms(content: list[str]) -> list[str]:
        words = []
        seen: set[str] = set()
        for w in content:
            if w[0] == "#":
                w = w[1:]
            if len(w) < 2 or w.isdigit() or w in seen:
                continue
            seen.add(w)
            words.append(w)
        bigrams = []
        for a, b in itertools.pairwise(content):
            a, b = a.lstrip("#"), b.lstrip("#")
            if len(a) > 1 and len(b) > 1 and a != b and not a.isdigit() and not b.isdigit():
                bg = f"{a} {b}"
                if bg not in seen:
                    seen.add(bg)
                    bigrams.append(bg)
        return words + bigrams
