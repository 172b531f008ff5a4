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
minus positive valence) becomes a probability through a fixed logistic curve.

Online learning: once upstream sentiments arrive, a logistic regression corrects that curve. Its
logit is `a * raw + b + sum of the weights of the text's words`, with `a` and `b` starting at the
lexicon curve's slope and shift and the word weights at zero, so an untrained model says exactly
what the lexicons say and every label moves it from there (no blend weight to tune). Words are
hashed with a stable hash (CRC-32, not Python's per-process `hash`) into a fixed table of
`2 ** model_bits` float32 weights; river's AdaGrad takes the steps, with its squared-gradient sums
kept in an equally small float32 table. A learning scorer therefore costs about
`8 * 2 ** model_bits` bytes (32 KiB by default) whatever it reads, and one that never learns costs
nothing beyond the object: the token caches are shared by all scorers of a process.
"""

from __future__ import annotations

import itertools
import math
import re
import zlib
from array import array
from collections.abc import Mapping
from importlib import resources
from itertools import chain, compress, repeat
from typing import Literal

import msgspec
from river import optim

from daemon.enrich import language
from daemon.enrich.lexicon import (
    CONTRAST,
    DIMINISHER,
    ENCLITIC,
    FEEDBACK,
    GROUPS,
    INTENSIFIER,
    INVERSION,
    NEGATOR,
    PARTICLE,
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

_SR_LAT_TO_CYR = str.maketrans(
    {
        "a": "а",
        "b": "б",
        "v": "в",
        "g": "г",
        "d": "д",
        "e": "е",
        "z": "з",
        "i": "и",
        "j": "ј",
        "k": "к",
        "l": "л",
        "m": "м",
        "n": "н",
        "o": "о",
        "p": "п",
        "r": "р",
        "s": "с",
        "t": "т",
        "u": "у",
        "h": "х",
    }
)  # fmt: skip  (enough for the clitics: no digraphs among them)

# Slavic `ne`/`не` binds to the next word; English and Dutch negation reaches further.
_NEGATION_SCOPE = {"en": 3, "nl": 3, "sh": 1, "mk": 1, "ru": 1}
# ... and so do the past forms of "to be" ("nisam bio zadovoljan", "не был доволен", "не бев задоволен")
_SH_CLITICS = (
    "mi ti mu joj nam vam im me te se ga ju ih si sam smo ste su bi bih bismo biste je bio bila bilo bili bile"
)
_CLITICS = {
    # Serbian is written in both alphabets: the Cyrillic forms too (chunks are not transliterated)
    "sh": frozenset(_SH_CLITICS.split() + _SH_CLITICS.translate(_SR_LAT_TO_CYR).split()),
    "mk": frozenset(
        "ми ти му ѝ ни ви им ме те се го ја ги би сум си е бев беше бил била било биле бевме бевте".split()
    ),
    "ru": frozenset("мне тебе ему ей нам вам им меня тебя его её ее их бы же был была было были".split()),
}
_MODIFIER = INTENSIFIER | DIMINISHER  # do not use up the negation scope: "не очень хорошо"
_NEGATION_FACTOR = -0.6
_CURVE_SLOPE = 1.1
_CURVE_SHIFT = 0.22  # evidence needed before a text counts as negative (raw > 0.2)
_MAX_CACHE = 200_000
_RAW_CLIP = 8.0  # the lexicon evidence as the learned model's feature (beyond it the curve is flat anyway)
_PUNCT = ".,!?:;\"'()[]{}<>…-–—*~«»“”„‘’"

# A question without "?" is told by its word order (lexicon classes `question`, `inversion`,
# `particle`, `enclitic`; `TextScorer._asks`): the asking word opens a clause. Before the first
# clause may come handles, links and these greetings and connectives ("hi @klm can you...", "and why
# is...").
_OPENERS = {
    "en": frozenset("hi hello hey hiya dear good please pls plz ok okay so and but also btw yo".split()),
    "nl": frozenset(
        "hoi hallo hey hi beste goede goedemorgen goedemiddag goedenavond ok oké oke dus en maar ook".split()
    ),
    "sh": frozenset("zdravo pozdrav ćao cao hej dobar poštovani postovani molim a i pa ali".split()),
    "mk": frozenset("здраво поздрав ќао еј добар почитувани а и па но".split()),
    "ru": frozenset("привет здравствуйте добрый а и но ну так скажите подскажите".split()),
}
# English and Dutch ask by inversion: the auxiliary before its subject ("is my flight", "kan ik"); after
# a subject it states ("I would suggest", "the staff were"). A handle is a subject too ("can @klm").
# The Slavic languages have free word order and drop pronouns: a verb first is no question there
# ("ima i boljih", "можно провести"), only a wh-word or a particle.
_SUBJECTS = {
    "en": frozenset(
        "i you u ya yall y'all we they he she it there my your ur our their his her its the this that these those"
        " any anyone anybody anything someone somebody something everyone everybody everything".split()
    ),
    "nl": frozenset(
        "ik je jij u we wij jullie ze zij hij het er iemand iets men mijn m'n jouw uw zijn haar ons onze hun de"
        " dit dat deze die".split()
    ),
}
# A wh-word followed by a personal pronoun or an article opens a clause or an exclamation, not a
# question: "when I landed", "what a crew", "wanneer ik", "wat een"; a Dutch wh-question has its verb next.
_NOT_ASKING_AFTER_WH = {
    "en": frozenset("i you u we they he she it a an".split()),
    "nl": frozenset("ik je jij u we wij ze zij hij het een de mijn m'n jouw uw ons onze hun".split()),
}
_SENTENCE_END = frozenset(".!?;:…")
_CLAUSE_MARKS = _SENTENCE_END | {","}


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
_ASKING = QUESTION | INVERSION | ENCLITIC | PARTICLE
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


def _chunk_feature(group: str, chunk: str, size: int) -> int:
    """A stable weight index in [0, size) for one chunk, or `size` (no feature) for handles, links, punctuation.

    >>> _chunk_feature("en", "Cancelled!!", 4096) == _chunk_feature("en", "cancelled", 4096) < 4096
    True
    >>> _chunk_feature("sh", "ужас", 4096) == _chunk_feature("sh", "užas", 4096)
    True
    >>> _chunk_feature("en", "@united", 4096), _chunk_feature("en", "...", 4096)
    (4096, 4096)
    """
    if chunk[0] == "@" or chunk.startswith(("http://", "https://", "www.")):
        return size
    w = chunk.lower().strip(_PUNCT)
    if group == "sh":
        w = transliterate_sr(w)
    return zlib.crc32(w.encode()) % size if w else size


# Token caches, shared by every scorer of the process (they depend on the lexicons only, never on what
# a scorer has learned), so a brand's own learning scorer adds no cache of its own.
_SHARED_CACHE: dict[str, dict[str, tuple[Piece, ...]]] = {g: {} for g in GROUPS}
_SHARED_PLAIN: dict[str, dict[str, str]] = {g: {} for g in GROUPS}
_SHARED_BORING: dict[str, dict[str, int]] = {g: {} for g in GROUPS}
_SHARED_WORDS: dict[str, dict[str, tuple[str, ...]]] = {g: {} for g in GROUPS}
_SHARED_FEATURES: dict[tuple[str, int], dict[str, int]] = {}
_SHARED_LANGS: dict[str, tuple[str, str]] = {}


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

    def __init__(self, *, learning_rate: float = 0.1, model_bits: int = 12) -> None:
        if not 4 <= model_bits <= 24:
            raise ValueError(f"model_bits must be in [4, 24], got {model_bits!r}")
        self.learning_rate = learning_rate
        self.model_bits = model_bits
        self._learned = 0
        # the learned model, created by the first `learn`: weights of 2**model_bits hashed words, then
        # the no-feature slot (always 0), the bias and the slope of the lexicon evidence
        self._w: array[float] | None = None
        self._opt: optim.AdaGrad | None = None
        self._init_caches()

    def _init_caches(self) -> None:
        self._lex: dict[str, Lexicon] = {g: lexicon(g) for g in GROUPS}
        self._cache = _SHARED_CACHE
        self._plain = _SHARED_PLAIN  # chunk -> its one plain word
        self._boring = _SHARED_BORING  # plain chunk -> 0
        self._words = _SHARED_WORDS
        self._langs = _SHARED_LANGS
        size = 1 << self.model_bits
        self._features = {g: _SHARED_FEATURES.setdefault((g, size), {}) for g in GROUPS}
        self._last: tuple[str, str, float, list[int]] | None = None  # (text, group, raw, features) just scored

    def __getstate__(self) -> dict[str, object]:
        return {
            "learning_rate": self.learning_rate,
            "model_bits": self.model_bits,
            "_learned": self._learned,
            "_w": self._w,
            "_opt": self._opt,
        }

    def __setstate__(self, state: dict[str, object]) -> None:
        if "_w" not in state:  # a snapshot of the earlier river-pipeline model: start learning afresh
            state = {"learning_rate": 0.1, "model_bits": 12, "_learned": 0, "_w": None, "_opt": None}
        self.__dict__.update(state)
        self._init_caches()

    @property
    def learned(self) -> int:
        """How many upstream sentiments have been learned."""
        return self._learned

    # -- language -------------------------------------------------------------------------------

    def _language(self, text: str, lang: str | None, prior: Mapping[str, float] | None = None) -> tuple[str, str]:
        """(language code, lexicon group) from the source's tag, else detected (`prior`: see
        `language.detect`)."""
        if lang:
            hit = self._langs.get(lang)
            if hit is None:
                code = language.normalise(lang) or "und"
                hit = (code, language.GROUP.get(code, "en"))
                if len(self._langs) < 1000:
                    self._langs[lang] = hit
            if hit[0] != "und":
                return hit
        code = language.detect(text, prior=prior)  # its own word tokens: "šta?" must vote as "šta"
        return code, language.GROUP.get(code, "en")

    # -- scanning -------------------------------------------------------------------------------

    def _scan(self, text: str, chunks: list[str], group: str) -> _Scan:
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
        feedback = False
        asking: list[tuple[int, int]] = []  # (chunk, flags) of the words that may ask, judged at the end
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
                    if flags & _ASKING:
                        asking.append((i, flags))
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
        question = "?" in text
        if asking and not question:
            for i, flags in asking:
                if self._asks(group, chunks, i, flags):
                    question = True
                    break
        return _Scan(neg - pos, pos, neg, question, feedback)

    def _asks(self, group: str, chunks: list[str], i: int, flags: int) -> bool:
        """Does the asking word in chunk `i` make the text a question without "?": `li`/`ли` after
        a clause's first word ("imate li", "можно ли", "da li"); a particle opening a clause ("jel",
        "дали", "разве"); in English and Dutch an auxiliary opening a clause before its subject, or
        a wh-word opening one not followed by a personal pronoun or an article. A Slavic wh-word asks
        only as the text's first word: after a comma or a sentence it is as often a relative or a
        subordinate ("хорошо, что...", "то чувство, когда...", "...film. Što se tiče...")."""
        # most of these words stand after a plain word in mid-sentence ("the staff were"): no clause
        # opens there, found with one look-up (what `_opens_clause` would say, sooner)
        j = i - 2 if flags & ENCLITIC else i - 1
        if j >= 0:
            before = chunks[j]
            word = self._plain[group].get(before)
            if word and word not in _OPENERS[group] and before[-1] not in _CLAUSE_MARKS:
                return False
        if flags & ENCLITIC:
            return i > 0 and self._opens_clause(group, chunks, i - 1)
        subjects = _SUBJECTS.get(group)
        if subjects is None and not flags & PARTICLE:
            return self._word_before(group, chunks, i) < 0
        if not self._opens_clause(group, chunks, i):
            return False
        if subjects is None:
            return True
        after = chunks[i + 1] if i + 1 < len(chunks) else ""
        nxt = self._first_word(group, after).partition("'")[0] if after else ""
        if flags & INVERSION:
            return nxt in subjects or after[:1] == "@"
        return bool(flags & QUESTION) and nxt not in _NOT_ASKING_AFTER_WH[group]

    def _opens_clause(self, group: str, chunks: list[str], i: int) -> bool:
        """Chunk `i` opens a clause: only handles, links, greetings and connectives come before it
        ("@klm is...", "hi @klm can..."), or before those the end of a sentence ("Landed. Where do
        I...") or the one word of an opening cut off by a comma ("Hi KLM, is...", "Dobar dan, je
        li..."); not a clause after a comma in a sentence ("that feeling, when...")."""
        k = self._word_before(group, chunks, i)
        if k < 0:
            return True
        end = chunks[k][-1]
        return end in _SENTENCE_END or (end == "," and self._word_before(group, chunks, k) < 0)

    def _word_before(self, group: str, chunks: list[str], i: int) -> int:
        """The index of the last chunk before `i` that is a word, not a handle, link, greeting or
        connective, or that ends a sentence on its own ("late !! What about..."); -1 when there is
        none."""
        openers = _OPENERS[group]
        k = i - 1
        while k >= 0:
            chunk = chunks[k]
            word = self._first_word(group, chunk)
            if (word and word not in openers) or (not word and chunk[-1] in _SENTENCE_END):
                return k
            k -= 1
        return -1

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

    def _content(self, chunks: list[str], group: str) -> list[str]:
        """Content words (stop words, handles, links and emoji dropped), in order.

        A word that cannot be a topic term (one letter, digits only) is kept as "" so that it still
        separates its neighbours: no bigram is made across it.
        """
        words = self._words[group]
        parts = list(map(words.get, chunks))
        if None in parts:
            for k, chunk in enumerate(chunks):
                if parts[k] is None:
                    _, pieces = self._classify(group, chunk)
                    ws = tuple(
                        "" if len(p[4]) < 2 or p[4].isdigit() else p[4] for p in pieces if p[4] and not p[2] & STOP
                    )
                    if len(chunk) <= 40:  # links and other long chunks are rarely seen twice
                        if len(words) >= _MAX_CACHE:
                            words.clear()
                        words[chunk] = ws
                    parts[k] = ws
        return list(chain.from_iterable(parts))  # type: ignore[arg-type]

    # -- public API -----------------------------------------------------------------------------

    def analyze(
        self, text: str, lang: str | None = None, prior: Mapping[str, float] | None = None
    ) -> tuple[TextScore, list[str]]:
        """Score and topic terms together (what the pipeline calls per mention, with the brand's
        sr/hr/bs mix as `prior` for untagged Latin text)."""
        low = text.lower()
        chunks = low.split()
        code, group = self._language(text, lang, prior)
        content = self._content(chunks, group)
        return self._decide(code, group, self._scan(text, chunks, group), text, chunks), self._terms(content)

    def score(self, text: str, lang: str | None = None) -> TextScore:
        """Language, negativity, negative flag and intent of one text."""
        low = text.lower()
        chunks = low.split()
        code, group = self._language(text, lang)
        return self._decide(code, group, self._scan(text, chunks, group), text, chunks)

    def terms(self, text: str, lang: str | None = None) -> list[str]:
        """Content words, then bigrams of adjacent content words, lower-case, stop words removed.

        Serbian Cyrillic is transliterated so one topic is one term; diacritics are kept.

        >>> TextScorer().terms("The flight to Oslo was cancelled, cancelled again #ash", "en")
        ['flight', 'oslo', 'cancelled', 'ash', 'flight oslo', 'oslo cancelled', 'cancelled ash']
        """
        low = text.lower()
        return self._terms(self._content(low.split(), self._language(text, lang)[1]))

    def learn(self, text: str, lang: str | None, sentiment: float) -> None:
        """Learn from an upstream sentiment in [-1, 1] (negative below 0): one AdaGrad step of the model.

        Right after `score`/`analyze` of the same text (what the pipeline does), the text is not scanned again.
        """
        if not -1.0 <= sentiment <= 1.0 or math.isnan(sentiment):
            raise ValueError(f"sentiment must be in [-1, 1], got {sentiment!r}")
        if self._w is None or self._opt is None:
            self._w, self._opt = self._new_model()
        w = self._w
        low = text.lower()
        group = self._language(text, lang)[1]
        last = self._last
        if last is not None and last[0] is text and last[1] == group:
            raw, feats = last[2], last[3]
        else:
            chunks = low.split()
            raw = self._scan(text, chunks, group).raw
            feats = self._feature_ids(group, chunks)
        raw = max(-_RAW_CLIP, min(_RAW_CLIP, raw))
        size = len(w) - 3
        p = _sigmoid(w[size + 1] + w[size + 2] * raw + sum(map(w.__getitem__, feats)))
        g = p - (1.0 if sentiment < 0.0 else 0.0)
        grad: dict[int, float] = {}
        for i in feats:
            if i != size:
                grad[i] = grad.get(i, 0.0) + g
        grad[size + 1] = g
        grad[size + 2] = g * raw
        self._opt.step(w, grad)  # type: ignore[arg-type]
        self._learned += 1
        self._last = None

    # -- helpers --------------------------------------------------------------------------------

    def _new_model(self) -> tuple[array[float], optim.AdaGrad]:
        size = 1 << self.model_bits
        w = array("f", bytes(4 * (size + 3)))
        w[size + 1] = -_CURVE_SHIFT
        w[size + 2] = _CURVE_SLOPE
        opt = optim.AdaGrad(self.learning_rate)
        # AdaGrad's per-weight sums of squared gradients: a fixed float32 table, not a growing dict
        opt.g2 = array("f", bytes(4 * (size + 3)))  # type: ignore[assignment]
        return w, opt

    def _feature_ids(self, group: str, chunks: list[str]) -> list[int]:
        """The weight index of each chunk (cached per process; `size` for a chunk without a feature)."""
        cache = self._features[group]
        ids = list(map(cache.get, chunks))
        if None in ids:
            size = 1 << self.model_bits
            for k, chunk in enumerate(chunks):
                if ids[k] is None:
                    ids[k] = i = _chunk_feature(group, chunk, size)
                    if len(chunk) <= 40:
                        if len(cache) >= _MAX_CACHE:
                            cache.clear()
                        cache[chunk] = i
        return ids  # type: ignore[return-value]

    def _decide(self, code: str, group: str, scan: _Scan, text: str, chunks: list[str]) -> TextScore:
        w = self._w
        if w is None:
            p = _sigmoid(_CURVE_SLOPE * scan.raw - _CURVE_SHIFT)
        else:
            size = len(w) - 3
            feats = self._feature_ids(group, chunks)
            raw = max(-_RAW_CLIP, min(_RAW_CLIP, scan.raw))
            p = _sigmoid(w[size + 1] + w[size + 2] * raw + sum(map(w.__getitem__, feats)))
            self._last = (text, group, scan.raw, feats)
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

    @staticmethod
    def _terms(content: list[str]) -> list[str]:
        """Distinct words, then distinct bigrams of adjacent words, in order of first appearance."""
        terms = list(dict.fromkeys(filter(None, content)))
        terms.extend(dict.fromkeys([f"{a} {b}" for a, b in itertools.pairwise(content) if a and b and a != b]))
        return terms
