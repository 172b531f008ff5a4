"""Language identification for short social texts: script, cheap word votes, then py3langid.

Most texts are decided by their script, by letters only one language has (Serbian ђ ћ, Macedonian
ѓ ќ ѕ, Russian ы э ъ ё й щ ю я ь versus ј љ њ џ) and by frequent function words; only unclear texts
go to py3langid (its model ships in the wheel; it is restricted to the languages we serve).
Serbian, Croatian and Bosnian in Latin script are told apart by the yat reflex (ekavian `lepo`,
`gde` is Serbian; ijekavian `lijepo`, `gdje` is Croatian or Bosnian) and by words each standard
prefers (`tko`, `tjedan`, `tisuća` for Croatian; `šta`, `hiljada`, `sedmica`, `hljeb` for Bosnian).
"""

from __future__ import annotations

import copy
import functools
import math
import re
from collections.abc import Mapping
from typing import Any

SUPPORTED = ("en", "nl", "sr", "hr", "bs", "mk", "ru")

# Which lexicon scores each language; languages we do not serve fall back to English + emoji.
GROUP = {"en": "en", "nl": "nl", "sr": "sh", "hr": "sh", "bs": "sh", "sh": "sh", "cnr": "sh", "mk": "mk", "ru": "ru"}
GROUP.update({"uk": "ru", "be": "ru", "af": "nl", "me": "sh"})

_CYR = re.compile(r"[\u0400-\u04ff]")
_LAT = re.compile(r"[a-zA-Z\u00c0-\u024f]")
_NOT_PROSE = re.compile(r"https?://\S+|www\.\S+|[@#]\w+")

_SR_CYR_ONLY = frozenset("ђћ")
_MK_ONLY = frozenset("ѓќѕ")
_SR_MK = frozenset("јљњџ")
_RU_ONLY = frozenset("ыэъёйщюяь")
_SH_LAT_RE = re.compile("[čćšžđČĆŠŽĐ]")
# a brand's mix as a Bayes prior on py3langid's log-likelihoods (`bench/eval_language.py`: untagged
# sr/hr/bs right 0.691 -> 0.724); weighing it 2 or 3 times gained 0.004 more on another stream but
# cost the evenly mixed brands up to 1.6 points
_PRIOR_WEIGHT = 1.0
# one function word's weight against py3langid's log-likelihoods: every weight from 5 to 50 gave the
# same accuracy on Serbian (real texts transliterated), Russian and simulated Macedonian, 2 less
_VOTE_WEIGHT = 10.0

# Frequent function words that vote for one language (votes are cheap dict hits per token).
_VOTES: dict[str, str] = {}
for _lang, _words in {
    "en": "the and you to is are for of my with this that it was have not your on at be what why how can just "
    "get will been would from they we our don't can't i'm it's there their thanks thank please",
    "nl": "de het een en van ik jij niet op dat die met voor zijn maar naar ook wat hoe waarom nog al "
    "bij wel geen mijn ze er heb hebben ben wordt kan dan om uit als dit deze heel erg bedankt",
    "sh": "da se na ne za su sa od kao ali što šta sam si smo ste li ili još već samo nije nisam "
    "bilo biti bio bila ima nema ovo ovaj taj kad kada koji koja koje mi vi oni pa jer zašto zasto kako "
    "hvala molim sve svi ću će cu ce mogu treba bas baš jako",
    "ru": "и в не на что я с он как это по но она они мы вы его ее её к у же ты за бы так все всё от "
    "из то мне меня нет да если уже или ещё еще только очень когда почему где спасибо привет вот было был была "
    "будет тоже сегодня завтра сейчас теперь здесь просто круто давно пока хорошо плохо для про всем",
    "mk": "е и на се не да што со од ќе ги го ме си сум во за но тоа ова тие ние вие кој која кога "
    "зошто каде како многу нема има бев беше ли дали му денес денеска утре фала благодарам прашање одличен "
    "убаво убав сите пофалби пат летот аеродромот моето мојот никој ништо некој сега сме оваа овој јас тој "
    "таа сакам дека лошо кон секогаш",
    "src": "је и у да се на не за су са од као али што шта сам си смо сте ли или још већ само није нисам "
    "било бити био била има нема ово овај тај кад када који која које ми ви они па јер зашто како хвала где "
    "због одличан леп лепо пре опет касни увек данас сутра нико ништа веома отказан отказани мени седим кафа",
}.items():
    for _w in _words.split():
        # a word two languages share ("се", "од", "не") is no evidence for either: it votes for none
        _VOTES[_w] = _lang if _VOTES.get(_w, _lang) == _lang else ""

_EKAVIAN = frozenset(
    "gde ovde negde nigde svet sveta vreme lepo lep lepa lepi reč reči dete devojka pesma pesme mesto "
    "mesta celo ceo uvek videti verovati posle pre hteo mleko reka belo beo čovek čoveka covek nedelja deca "
    "vredi vest vesti mesec meseca sećam secam sedim volela mogla želela zelela "
    "uspeh uspeo primer telo dve razumeo razumem verujem verovatno verovati hteo htela videla videli lepše lepse "
    "ocena ocenu ocene oceni takođe takodje svideo svidela svidelo pesnik mesta dešava desava "
    # frequent words beyond the first list: prices, seats, changes, "next", "funny"
    "ocenom oceniti deo delovi podseća podseca primetio primetila primetiti leto letos letnje letnji sneg "
    "smešno smesno smeh zvezda zvezde pevač pevac pevati peva cena cene cenu cenom ceo cela celu celog vek "
    "veka svetlo lepota beda bedno bedan sledeći sledeci sledeće sledece zamena zameniti izmena promena "
    "promeniti promenili doneti doneo donela sedište sediste sedišta zauvek ponedeljak detetu".split()
)
_IJEKAVIAN = frozenset(
    "gdje ovdje negdje nigdje svijet svijeta vrijeme lijepo lijep lijepa lijepi riječ riječi rijec "
    "rijeci dijete djevojka pjesma pjesme mjesto mjesta cijelo cijeli uvijek vidjeti vjerovati poslije "
    "prije htio mlijeko rijeka bijelo bijel čovjek čovjeka covjek nedjelja djeca vrijedi vijest vijesti "
    "mjesec mjeseca sjećam sjecam sjedim voljela željela zeljela uspjeh uspio primjer tijelo dvije razumio "
    "razumijem vjerujem vjerojatno vjerovatno htjela vidjela vidjeli ljepše ljepse ocjena ocjenu ocjene "
    "svidio svidjela svidjelo dešava događa "
    "ocjenom ocijeniti dio dijelovi podsjeća podsjeca primijetio primijetila primijetiti ljeto ljetos ljetnje "
    "ljetni snijeg smiješno smijesno smijeh zvijezda zvijezde pjevač pjevac pjevati pjeva cijena cijene "
    "cijenu cijenom cio cijela cijelu cijelog vijek vijeka svjetlo ljepota bijeda bijedno bijedan sljedeći "
    "sljedeci sljedeće sljedece zamjena zamijeniti izmjena promjena promijeniti promijenili donijeti donio "
    "donijela sjedište sjediste sjedišta zauvijek ponedjeljak djetetu".split()
)
_SYNTHETIC_FUTURE = ("aću", "iću", "aćeš", "ićeš", "aćemo", "ićemo", "aćete", "ićete")
_SR_PAIRS = frozenset({("treba", "da"), ("da", "li")})
_HR = frozenset(
    "tko nitko netko što sto tjedan tjedna tisuća tisuca kruh vlak jučer jucer kava kavu povijest tijekom "
    "općenito uopće uopce opći glazba obitelj nogomet sveučilište točno tocno zrakoplov kolodvor bit "
    "siječanj veljača ožujak travanj svibanj lipanj srpanj kolovoz rujan listopad studeni prosinac "
    "zapravo baš bas ću hoću".split()
)
_SR = frozenset(
    "šta sta ko niko neko hiljada hiljadu hleb voz juče juce kafa kafu istorija uopšte uopste opšte porodica "
    "fudbal bezbednost biću bice biće treba_da januar februar mart april jun jul avgust septembar oktobar "
    "novembar decembar".split()
)
_BS = frozenset(
    "šta sta ko niko neko hiljada hiljadu hljeb sedmica sedmice kahva kahvu historija historije jok haman "
    "bajram dženaza dzenaza inšallah insallah inshallah selam merak džaba dzaba ahbab sevdah hadžija "
    "općina opcina".split()
)


def script(text: str) -> str:
    """`Cyrl`, `Latn` or `Zyyy` (neither), by which letters dominate.

    >>> script("Поезд опаздывает"), script("Voz kasni"), script("👍 123")
    ('Cyrl', 'Latn', 'Zyyy')
    """
    cyr = len(_CYR.findall(text))
    if cyr:
        text = _NOT_PROSE.sub(" ", text)  # handles and links are Latin whatever the language
        lat = len(_LAT.findall(text))
    else:
        lat = 1 if _LAT.search(text) else 0
    if not cyr and not lat:
        return "Zyyy"
    return "Cyrl" if 2 * cyr >= lat else "Latn"


def normalise(tag: str | None) -> str | None:
    """A BCP 47 tag from the source reduced to its language (`sr-Latn` -> `sr`, `en-US` -> `en`).

    A tag whose first part is no language (a script `Latn`, a name `english`, `x-...`) is no
    tag: the text's language is detected, as when it is absent.

    >>> normalise("sr-Cyrl"), normalise("EN_us"), normalise(""), normalise("sh")
    ('sr', 'en', None, 'sr')
    >>> normalise("Latn"), normalise("english"), normalise("x-klingon")
    (None, None, None)
    >>> normalise("rus"), normalise("srp-Cyrl"), normalise("nld")
    ('ru', 'sr', 'nl')
    """
    if not tag:
        return None
    lang = tag.strip().replace("_", "-").split("-", 1)[0].lower()
    if not (2 <= len(lang) <= 3 and lang.isascii() and lang.isalpha()) or lang in ("und", "zxx", "mul"):
        return None
    return _SAME_LANGUAGE.get(lang, lang)


# Other names of the languages scored: Montenegrin and Serbo-Croatian as Serbian, and the three-letter
# ISO 639-2/3 codes some sources send (`rus`, `srp`): scored with the right lexicons, not English's.
_SAME_LANGUAGE = {
    "sh": "sr", "cnr": "sr", "me": "sr", "hbs": "sr", "srp": "sr", "scc": "sr", "hrv": "hr", "scr": "hr",
    "bos": "bs", "mkd": "mk", "mac": "mk", "rus": "ru", "ukr": "uk", "bel": "be", "eng": "en", "nld": "nl",
    "dut": "nl", "afr": "af",
}  # fmt: skip


@functools.cache
def _model() -> Any:
    """py3langid's model, loaded once (about 80 MB)."""
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=False)


@functools.cache
def _identifier(langs: tuple[str, ...]) -> Any:
    """The model restricted to `langs`: a shallow copy shares the big arrays, and `set_languages`
    slices only its own columns (a model loaded per language set took 80 MB each, 480 MB for six)."""
    ident = copy.copy(_model())
    ident.set_languages(list(langs))
    return ident


def _langid(text: str, langs: tuple[str, ...]) -> str:
    return str(_identifier(langs).classify(text)[0])


def _pick(
    text: str, langs: tuple[str, ...], evidence: Mapping[str, float] | None, weight: float = _PRIOR_WEIGHT
) -> str:
    """py3langid's choice among `langs`, with `weight` x `evidence` added to its log-likelihoods
    (a brand's mix as log-shares, or function-word votes); py3langid's own choice without any."""
    if not evidence:
        return _langid(text, langs)
    scores = _identifier(langs).rank(text)
    return str(max(scores, key=lambda ls: ls[1] + weight * evidence.get(ls[0], 0.0))[0])


def _south_slavic_latin(
    words: list[str], text: str, langid_choice: str | None = None, prior: Mapping[str, float] | None = None
) -> str:
    """sr, hr or bs from the yat reflex and words each standard prefers; py3langid breaks a tie,
    weighed by `prior` when the caller knows which of the three its writers use (a brand's mix).

    `langid_choice`: what py3langid already said when it was asked with these three among its
    languages (its best of them is its best of a wider set too: the scores are per language).
    """
    ek = ij = hr = sr = bs = 0
    prev = ""
    for w in words:
        if w in _EKAVIAN:
            ek += 1
        elif w in _IJEKAVIAN:
            ij += 1
        if w in _HR:
            hr += 1
        if w in _SR:
            sr += 1
        if w in _BS:
            bs += 1
        if (prev, w) in _SR_PAIRS or (len(w) > 5 and w.endswith(_SYNTHETIC_FUTURE)):
            sr += 1  # "treba da", "da li"; gledaću where Croatian writes gledat ću
        prev = w
    if ek > ij:
        return "sr"
    if ij > ek:
        # ijekavian is Croatian or Bosnian: their own words decide, else py3langid between the two
        return "bs" if bs > hr else "hr" if hr > bs else _pick(text, ("hr", "bs"), prior)
    if hr > max(sr, bs):
        return "hr"
    if bs > sr:
        return "bs"
    if sr > bs:
        return "sr"
    if sr > hr:  # as many Serbian as Bosnian words ("niko", "šta"), so not Croatian
        return _pick(text, ("sr", "bs"), prior)
    if not words:
        return "hr"
    if prior:
        return _pick(text, ("hr", "sr", "bs"), prior)
    return langid_choice or _langid(text, ("hr", "sr", "bs"))


def _cyrillic(text: str, words: list[str]) -> str:
    """Letters only one language has decide; otherwise py3langid's score plus `_VOTE_WEIGHT` per
    function word of each language: neither alone tells short Serbian from Macedonian (e.g. a
    tie of votes went to py3langid, and one shared word such as "се" decided for Macedonian)."""
    letters = set(text)
    if letters & _SR_CYR_ONLY:
        return "sr"
    if letters & _MK_ONLY:
        return "mk"
    ru_only = letters & _RU_ONLY
    sr_mk = letters & _SR_MK
    if ru_only and not sr_mk:
        return "ru"
    votes = {"ru": 0, "mk": 0, "sr": 0}
    for w in words[:40]:
        v = _VOTES.get(w)
        if v == "src":
            votes["sr"] += 1
        elif v in votes:
            votes[v] += 1
    return _pick(text, ("sr", "mk") if sr_mk and not ru_only else ("ru", "sr", "mk"), votes, _VOTE_WEIGHT)


def detect(text: str, words: list[str] | None = None, prior: Mapping[str, float] | None = None) -> str:
    """The language of `text`, one of SUPPORTED, or `und` when there is nothing to go on.

    `words` are the lower-case word tokens if the caller has them already; `prior` log-weights of
    sr, hr and bs for Latin text that does not tell them apart (`SouthSlavicMix.prior`).

    >>> detect("My flight was cancelled and nobody answers the phone")
    'en'
    >>> detect("Mijn vlucht is geannuleerd en niemand neemt op")
    'nl'
    >>> detect("Гдје је мој пртљаг? Нико се не јавља."), detect("Каде е мојот багаж? Никој не одговара.")
    ('sr', 'mk')
    >>> detect("Где мой багаж? Никто не отвечает.")
    'ru'
    >>> detect("Gde je moj prtljag, uvek isto"), detect("Tko će mi vratiti novac, svaki tjedan isto")
    ('sr', 'hr')
    """
    if words is None:
        words = re.findall(r"[^\W\d_]+(?:['’][^\W\d_]+)*", text.lower())
    sc = script(text)
    if sc == "Zyyy":
        return "und"
    if sc == "Cyrl":
        return _cyrillic(text.lower(), words)
    votes = {"en": 0, "nl": 0, "sh": 0}
    for w in words[:40]:
        v = _VOTES.get(w)
        if v in votes:
            votes[v] += 1
    if _SH_LAT_RE.search(text):
        votes["sh"] += 2
    ranked = sorted(votes.items(), key=lambda kv: kv[1], reverse=True)
    (best, top), (_, second) = ranked[0], ranked[1]
    if top >= 2 and top >= 2 * second:
        lang = best
    else:
        lang = _langid(text, ("en", "nl", "hr", "sr", "bs"))
        if lang in ("hr", "sr", "bs"):
            return _south_slavic_latin(words, text, lang, prior)
    return _south_slavic_latin(words, text, None, prior) if lang == "sh" else lang


class SouthSlavicMix:
    """Which of sr, hr and bs a brand's writers use, from the events whose source tagged them.

    Latin-script Serbian, Croatian and Bosnian often differ in no word of a short text; the brand's
    own mix then decides better than a guess (a Serbian airline's untagged Facebook comments are
    mostly Serbian). Only source tags count, never our own detections, so the prior cannot feed
    itself. Counts halve past `_MIX_HORIZON` tags: the mix follows the brand's audience.

    >>> mix = SouthSlavicMix()
    >>> for _ in range(30): mix.observe("sr")
    >>> mix.observe("hr"); mix.observe("en")
    >>> {k: round(v, 2) for k, v in mix.prior().items()}
    {'sr': -0.09, 'hr': -2.83, 'bs': -3.53}
    """

    __slots__ = ("_prior", "counts")

    def __init__(self) -> None:
        self.counts = [0, 0, 0]
        self._prior: dict[str, float] | None = None  # computed on demand after a change

    def observe(self, lang: str) -> None:
        i = _MIX_INDEX.get(lang)
        if i is None:
            return
        self.counts[i] += 1
        if sum(self.counts) > _MIX_HORIZON:
            self.counts = [c // 2 for c in self.counts]
        self._prior = None

    def prior(self) -> dict[str, float] | None:
        """Log-shares (add-one smoothed), or None before `_MIX_MIN` tags: no prior yet."""
        if self._prior is None:
            total = sum(self.counts)
            if total < _MIX_MIN:
                return None
            self._prior = {
                lang: math.log((c + 1) / (total + 3)) for lang, c in zip(_MIX_LANGS, self.counts, strict=True)
            }
        return self._prior


_MIX_LANGS = ("sr", "hr", "bs")
SOUTH_SLAVIC = frozenset(_MIX_LANGS)
_MIX_INDEX = {lang: i for i, lang in enumerate(_MIX_LANGS)}
_MIX_MIN = 20
_MIX_HORIZON = 2000
