import pytest

from daemon.enrich import language
from daemon.enrich.lexicon import lexicon


@pytest.mark.parametrize(
    ("text", "lang"),
    [
        ("My flight was cancelled again and nobody picks up the phone", "en"),
        ("Mijn koffer is nog steeds niet aangekomen, wat moet ik doen?", "nl"),
        ("Где мой багаж? Уже три часа никто не отвечает.", "ru"),
        ("Каде е мојот багаж? Веќе три часа никој не одговара.", "mk"),
        ("Где је мој пртљаг? Већ три сата нико се не јавља.", "sr"),
        ("Gde je moj prtljag? Uvek isto, niko se ne javlja.", "sr"),
        ("Gdje je moja prtljaga? Tko će mi to platiti, svaki tjedan isto.", "hr"),
        ("Gdje mi je prtljag? Šta ćemo sad, hiljadu puta sam zvao, jok.", "bs"),
        ("@klm http://t.co/x Поезд опять опаздывает", "ru"),  # handles and links do not make it Latin
        ("👍👍 123", "und"),
    ],
)
def test_detect(text: str, lang: str) -> None:
    assert language.detect(text) == lang


@pytest.mark.parametrize(
    ("text", "lang"),
    [
        # short Serbian Cyrillic without ђ/ћ: no letter decides, and words Macedonian shares ("се",
        # "од", "да") used to vote for Macedonian only
        ("Ужасно, опет касни лет!", "sr"),
        ("Мени се филм баш свидео. Од мене 8.5", "sr"),
        ("Ерупција вулкана на Исланду: отказани летови због пепела", "sr"),
        # Macedonian and Russian without their own letters
        ("седам на аеродром и го чекам JU1294", "mk"),
        ("Летот повторно доцни, ужасна услуга", "mk"),
        ("Два спартаковца из трех", "ru"),
    ],
)
def test_detect_short_cyrillic(text: str, lang: str) -> None:
    assert language.detect(text) == lang


@pytest.mark.parametrize(
    ("text", "lang"),
    [
        ("Cena karte je previsoka, sledeći put letim drugom kompanijom", "sr"),  # ekavian cena, sledeći
        ("Cijena karte je previsoka, sljedeći put letim drugom kompanijom", "hr"),
        ("Sreća da je let stigao na vrijeme", "hr"),  # sreća is every standard's: no yat vote for Serbian
    ],
)
def test_yat_reflex_of_frequent_words(text: str, lang: str) -> None:
    assert language.detect(text) == lang


def test_a_brands_mix_decides_only_what_the_text_leaves_open() -> None:
    serbian, croatian = language.SouthSlavicMix(), language.SouthSlavicMix()
    assert serbian.prior() is None  # no prior before a few tagged events
    for _ in range(50):
        serbian.observe("sr")
        croatian.observe("hr")
    open_text = "Odličan film!"  # no word tells the three standards apart
    assert language.detect(open_text, prior=serbian.prior()) == "sr"
    assert language.detect(open_text, prior=croatian.prior()) == "hr"
    # the text's own evidence wins over the mix: nitko is Croatian, cijena ijekavian
    assert language.detect("Let kasni dva sata, nitko ne javlja", prior=serbian.prior()) == "hr"
    assert language.detect("Cijena je previsoka", prior=serbian.prior()) in ("hr", "bs")
    # Serbian and Bosnian words alike ("niko"): not Croatian, whatever py3langid prefers
    assert language.detect("Let kasni dva sata i niko se ne javlja") in ("sr", "bs")


def test_a_word_two_languages_share_votes_for_neither() -> None:
    assert language._VOTES["се"] == language._VOTES["од"] == language._VOTES["и"] == ""
    assert (language._VOTES["је"], language._VOTES["со"], language._VOTES["что"]) == ("src", "mk", "ru")


def test_script() -> None:
    assert language.script("@brand https://t.co/abc Привет") == "Cyrl"
    assert language.script("Zdravo") == "Latn"


def test_normalise_tags() -> None:
    assert [language.normalise(t) for t in ("sr-Latn", "sr_Cyrl", "HR", "bs-BA", "und", None, "cnr")] == [
        "sr", "sr", "hr", "bs", None, None, "sr",
    ]  # fmt: skip


def test_slavic_negative_prefix_turns_positive_words() -> None:
    sh, ru = lexicon("sh"), lexicon("ru")
    assert sh.valence("nezanimljiv") < 0 < sh.valence("zanimljiv")
    assert ru.valence("неинтересно") < 0 < ru.valence("интересно")
    assert sh.valence("nesreća") < 0  # a negative word with ne- stays negative
