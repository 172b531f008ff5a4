import pickle

import pytest

from daemon.enrich import TextScore, TextScorer
from daemon.enrich.lexicon import GROUPS, lexicon
from daemon.enrich.scorer import transliterate_sr


@pytest.fixture(scope="module")
def scorer() -> TextScorer:
    return TextScorer()


NEGATIVE = [
    ("en", "My flight got cancelled and nobody answers the phone. Worst airline ever."),
    ("en", "Two hours on hold and still no refund, this is ridiculous"),
    ("nl", "Vlucht geannuleerd, koffer kwijt en niemand neemt op. Schandalig!"),
    ("sr", "Let otkazan, prtljag izgubljen, niko se ne javlja. Užas!"),
    ("sr", "Лет отказан, пртљаг изгубљен, нико се не јавља. Ужас!"),
    ("hr", "Aplikacija ne radi već tri dana, jako sam razočaran"),
    ("bs", "Kasni voz dva sata, sramota"),
    ("mk", "Летот е откажан, никој не одговара на телефон, ужас"),
    ("ru", "Рейс отменили, багаж потеряли, никто не отвечает. Ужасный сервис"),
]
POSITIVE = [
    ("en", "Thanks so much, the crew was amazing and very helpful!"),
    ("nl", "Heel erg bedankt, top service!"),
    ("sr", "Hvala vam, odlična usluga 🙂"),
    ("sr", "Хвала вам, одлична услуга"),
    ("hr", "Hvala na brzom odgovoru, sve je riješeno"),
    ("mk", "Ви благодарам, одлична услуга"),
    ("ru", "Спасибо большое, всё отлично!"),
]


@pytest.mark.parametrize(("lang", "text"), NEGATIVE)
def test_negative_texts(scorer: TextScorer, lang: str, text: str) -> None:
    for given in (lang, None):
        s = scorer.score(text, given)
        assert s.negative, (given, s)
        assert s.intent == "complaint"


@pytest.mark.parametrize(("lang", "text"), POSITIVE)
def test_positive_texts(scorer: TextScorer, lang: str, text: str) -> None:
    for given in (lang, None):
        s = scorer.score(text, given)
        assert not s.negative, (given, s)
        assert s.intent == "praise"


def test_score_is_a_probability(scorer: TextScorer) -> None:
    for text in ["", "!!!", "😡" * 50, "bad " * 500, "good " * 500, "http://x.y/z", "@a @b #c"]:
        s = scorer.score(text)
        assert isinstance(s, TextScore)
        assert 0.0 <= s.negativity <= 1.0
        assert s.negative == (s.negativity >= 0.5)


def test_negation_flips(scorer: TextScorer) -> None:
    assert (
        scorer.score("the service was good", "en").negativity
        < scorer.score("the service was not good", "en").negativity
    )
    assert scorer.score("not bad at all", "en").negativity < scorer.score("bad", "en").negativity
    assert scorer.score("не очень хорошо", "ru").negativity > scorer.score("очень хорошо", "ru").negativity
    assert scorer.score("nije dobro", "hr").negative
    assert scorer.score("app werkt niet", "nl").negative
    assert scorer.score("ne radi internet", "sr").negative
    # clitics between the negator and the verb stay in its scope
    assert scorer.score("Film mi se nije svideo", "sr").negative
    assert not scorer.score("Film mi se svideo", "sr").negative


def test_intensifier_and_emoji(scorer: TextScorer) -> None:
    assert scorer.score("very bad", "en").negativity > scorer.score("bad", "en").negativity
    assert scorer.score("ok 😡", "en").negative
    assert not scorer.score("ok 😍", "en").negative
    assert scorer.score("опять всё сломалось((((", "ru").negative
    assert not scorer.score("ну привет)))", "ru").negative
    assert scorer.score("great :/ just great", "en").negativity > scorer.score("great :D", "en").negativity


def test_intents(scorer: TextScorer) -> None:
    assert scorer.score("@klm when does the Oslo flight leave?", "en").intent == "question"
    assert scorer.score("Kada polazi let za Beograd?", "sr").intent == "question"
    assert scorer.score("Как изменить дату вылета?", "ru").intent == "question"
    assert scorer.score("Wanneer vertrekt de trein", "nl").intent == "question"
    assert scorer.score("I suggest you add an option to pick seats", "en").intent == "feedback"
    assert scorer.score("Predlažem da dodate opciju za online prijavu", "hr").intent == "feedback"
    assert scorer.score("Flight KL1234 to Oslo", "en").intent == "other"


# Without "?", a question is told by its word order: in English and Dutch an auxiliary (or a
# wh-word) opens the clause, before its subject; in the Slavic languages, whose word order is free, a
# wh-word or a particle ("da li", "je li", "дали") opens it, or "li"/"ли" follows its first word. The
# same words after a subject, or a verb first without a particle, make a statement.
ASKED = [
    ("en", "Is my flight to Oslo on time"),
    ("en", "@klm was my flight moved to tomorrow"),
    ("en", "@klm can you send me the receipt for my ticket"),
    ("en", "Hi KLM, is the lounge at Schiphol open"),
    ("en", "Do you have an update on my bag please"),
    ("en", "When does the Oslo flight leave"),
    ("en", "What time does boarding start for KL1234"),
    ("en", "Any news on my bag"),
    ("en", "Landed in Oslo. Where do I pick up my bag"),
    ("en", "@klm thanks for the upgrade !! What about the lounge"),
    ("nl", "Wanneer vertrekt de trein"),
    ("nl", "Kan ik mijn stoel nog kiezen"),
    ("nl", "@klm heeft iemand mijn tas gevonden"),
    ("sr", "Da li ima let za Beograd sutra"),
    ("sr", "Imate li let za Beograd sutra"),
    ("sr", "Kada polazi let za Beograd"),
    ("hr", "Dobar dan, je li moguće promijeniti let"),
    ("sr", "Јел ради шалтер на аеродрому"),
    ("mk", "Дали има лет за Скопје утре"),
    ("mk", "Имате ли лет за Скопје"),
    ("ru", "Можно ли поменять место"),
    ("ru", "Когда вылет в Москву"),
    ("ru", "Есть ли рейс в Москву завтра"),
]
STATED = [  # with the intent when it is not only "not a question"
    ("en", "The staff were friendly", "praise"),
    ("en", "I was on flight KL1234 yesterday", "other"),
    ("en", "I would suggest adding an option to pick seats", "feedback"),
    ("en", "You know what happened at the gate", None),
    ("en", "Will do, thanks", None),
    ("en", "Have a great day", None),
    ("en", "What a great crew", None),
    ("en", "When I landed the crew helped me with my bags", None),
    ("en", "That is why I fly KLM", None),
    ("nl", "De bemanning is heel vriendelijk", "praise"),
    ("nl", "Ik kan morgen vliegen", None),
    ("sr", "Ima i boljih filmova od ovog", None),
    ("sr", "Film koji sam gledao juče", None),
    ("sr", "Može, hvala", None),
    ("mk", "Може утре", None),
    ("ru", "Можно провести эксперимент", None),
]


@pytest.mark.parametrize(("lang", "text"), ASKED)
def test_questions_without_a_question_mark(scorer: TextScorer, lang: str, text: str) -> None:
    assert scorer.score(text, lang).intent == "question"


@pytest.mark.parametrize(("lang", "text", "intent"), STATED)
def test_statements_are_not_questions(scorer: TextScorer, lang: str, text: str, intent: str | None) -> None:
    got = scorer.score(text, lang).intent
    assert got != "question" and got == (intent or got)


def test_serbian_scripts_score_alike(scorer: TextScorer) -> None:
    lat = scorer.score("Užasna usluga, niko se ne javlja", "sr")
    cyr = scorer.score("Ужасна услуга, нико се не јавља", "sr")
    assert lat.negativity == cyr.negativity
    assert scorer.terms("Изгубљен пртљаг", "sr") == scorer.terms("Izgubljen prtljag", "sr")


def test_transliteration() -> None:
    assert transliterate_sr("џеп љубав њива ђак ћирилица") == "džep ljubav njiva đak ćirilica"


def test_diacritics_are_not_merged() -> None:
    # folding is only an extra lookup key, never a rewrite of the text: distinct words stay distinct
    s = TextScorer()
    assert s.terms("kuća kuca", "hr") == ["kuća", "kuca", "kuća kuca"]
    assert s.terms("всё все", "ru") == []  # both stop words, neither rewritten into the other
    assert s.terms("мой мои бой бои", "ru")[:2] == ["бой", "бои"]
    assert s.terms("ќерка керка", "mk")[:2] == ["ќерка", "керка"]
    sh = lexicon("sh")
    assert sh.valence("uzasno") == sh.valence("užasno") < 0  # plain-ASCII typing still scores
    assert lexicon("ru").valence("ещё") == lexicon("ru").valence("еще")


def test_terms_drop_stop_words_handles_and_links(scorer: TextScorer) -> None:
    terms = scorer.terms("@KLM The flight to Oslo is CANCELLED http://t.co/abc #ashcloud", "en")
    assert terms == ["flight", "oslo", "cancelled", "ashcloud", "flight oslo", "oslo cancelled", "cancelled ashcloud"]
    assert scorer.terms("Het is de trein naar Utrecht", "nl") == ["trein", "utrecht", "trein utrecht"]
    assert scorer.terms("", None) == []


def test_analyze_matches_score_and_terms(scorer: TextScorer) -> None:
    text = "Где мой багаж? Никто не отвечает"
    score, terms = scorer.analyze(text)
    assert score == scorer.score(text)
    assert terms == scorer.terms(text)


def test_lang_tags_are_normalised(scorer: TextScorer) -> None:
    assert scorer.score("Voz kasni", "sr-Latn").lang == "sr"
    assert scorer.score("Воз касни", "sr-Cyrl").lang == "sr"
    assert scorer.score("late again", "en-GB").lang == "en"
    assert scorer.score("zu spät", "de").lang == "de"  # unknown languages are kept and scored with English + emoji
    assert scorer.score("The flight is late again", "und").lang == "en"


def test_learning_adapts_to_a_brands_vocabulary() -> None:
    s = TextScorer()
    neutral_word = "wobblecopter is here"
    assert not s.score(neutral_word, "en").negative
    for i in range(400):
        s.learn(f"wobblecopter again {i % 7}", "en", -0.8)
        s.learn(f"lovely trip {i % 5}", "en", 0.6)
    assert s.learned == 800
    assert s.score(neutral_word, "en").negative
    assert not s.score("lovely trip", "en").negative


def test_learn_rejects_out_of_range() -> None:
    with pytest.raises(ValueError, match="sentiment"):
        TextScorer().learn("x", "en", 1.5)


def test_pickle_round_trip_keeps_learning_and_drops_caches() -> None:
    s = TextScorer()
    for _ in range(50):
        s.learn("wobblecopter again", "en", -1.0)
    s.score("warm the cache", "en")
    blob = pickle.dumps(s)
    assert len(blob) < 200_000
    t = pickle.loads(blob)
    assert t.learned == 50
    for text in ("wobblecopter again", "lovely", "Ужас"):
        assert t.score(text) == s.score(text)


@pytest.mark.parametrize("group", GROUPS)
def test_lexicons_load(group: str) -> None:
    lex = lexicon(group)
    assert len(lex.words) + len(lex.stems) > 100
    assert all(-4.0 <= v <= 4.0 for v in lex.words.values())


def test_untrained_model_says_what_the_lexicons_say() -> None:
    # the learned logit starts at the lexicon curve: one neutral label barely moves it
    fresh, taught = TextScorer(), TextScorer()
    taught.learn("something unrelated", "en", 0.0)
    for text in ("the service was good", "flight cancelled again", "ok"):
        assert abs(fresh.score(text, "en").negativity - taught.score(text, "en").negativity) < 0.05


def test_learned_model_has_a_fixed_size() -> None:
    s = TextScorer(model_bits=8)
    s.learn("first words", "en", -1.0)
    size = len(pickle.dumps(s))
    for i in range(3000):
        s.learn(f"word{i} other{i * 7} more{i * 13}", "en", 1.0 if i % 2 else -1.0)
    assert len(pickle.dumps(s)) < size + 16  # only the counters grow
    assert size < 5_000
    # a scorer that never learned carries no model and no cache of its own
    assert len(pickle.dumps(TextScorer())) < 300


def test_learn_after_score_is_the_same_as_learn_alone() -> None:
    a, b = TextScorer(), TextScorer()
    texts = [("flight late again", -1.0), ("thanks for the help", 1.0), ("where is my bag?", 0.0)] * 20
    for text, y in texts:
        a.score(text, "en")
        a.learn(text, "en", y)
        b.learn(text, "en", y)
    assert pickle.dumps(a) == pickle.dumps(b)


def test_learning_is_deterministic_across_processes() -> None:
    # feature hashing must not use Python's per-process randomised str hash
    import subprocess
    import sys

    code = (
        "from daemon.enrich import TextScorer\n"
        "s = TextScorer()\n"
        "for i in range(200):\n"
        "    s.learn(f'wobblecopter again {i % 7}', 'en', -0.8)\n"
        "    s.learn(f'lovely trip {i % 5}', 'en', 0.6)\n"
        "print(s.score('wobblecopter is here', 'en').negativity, s.score('Лет касни', 'sr').negativity)\n"
    )
    outs = {
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={**__import__("os").environ, "PYTHONHASHSEED": seed},
        ).stdout
        for seed in ("1", "2")
    }
    assert len(outs) == 1


def test_snapshot_of_the_earlier_model_loads_unlearned() -> None:
    s = TextScorer.__new__(TextScorer)
    s.__setstate__({"learning_rate": 0.15, "blend_after": 300, "max_learned_weight": 0.85, "_learned": 9})
    assert s.learned == 0
    assert s.score("flight cancelled again", "en") == TextScorer().score("flight cancelled again", "en")


def test_terms_skip_one_letter_and_digit_words_without_bridging_them(scorer: TextScorer) -> None:
    assert scorer.terms("x 12 flight delay 7 delay flight delay", "en") == [
        "flight",
        "delay",
        "flight delay",
        "delay flight",
    ]


@pytest.mark.parametrize(
    ("lang", "complaint", "not_a_complaint"),
    [
        ("sr", "Nisam bio zadovoljan uslugom", "Obrok nije bio loš"),
        ("sr", "Храна није била добра", "Оброк није био лош"),
        ("hr", "Hrana nije bila dobra", "Let nije bio loš"),
        ("mk", "Не бев задоволен од услугата", "Храната не беше лоша"),
        ("ru", "Я не был доволен обслуживанием", "Полет не был плохим, спасибо"),
    ],
)
def test_negation_reaches_past_a_past_tense_to_be(
    scorer: TextScorer, lang: str, complaint: str, not_a_complaint: str
) -> None:
    """Slavic negation binds to the next word, but `bio`/`был`/`бев` ("was") sits between it and
    the word it negates: "I wasn't satisfied" read as praise, "the meal wasn't bad" as a complaint."""
    assert scorer.score(complaint, lang).negative
    assert not scorer.score(not_a_complaint, lang).negative


def test_serbian_scores_alike_in_both_alphabets(scorer: TextScorer) -> None:
    for latin in ("Nije mi se svidelo", "Nisam bila zadovoljna", "Ne bih se vratio"):
        cyrillic = latin.lower().translate(str.maketrans("abvgdeziklmnoprstuhj", "абвгдезиклмнопрстухј"))
        assert scorer.score(latin, "sr").negativity == pytest.approx(scorer.score(cyrillic, "sr").negativity)


def test_three_letter_language_codes_take_their_lexicons(scorer: TextScorer) -> None:
    text = "Мой рейс отменили, никто не отвечает"
    assert scorer.score(text, "rus") == scorer.score(text, "ru")
    assert scorer.score("Let je otkazan, niko se ne javlja", "srp").lang == "sr"


def test_language_sets_share_one_model() -> None:
    """Each set of candidate languages got a model of its own (80 MB each, 480 MB for six)."""
    from daemon.enrich import language

    a, b = language._identifier(("sr", "hr", "bs")), language._identifier(("ru", "mk"))
    assert a.tk_nextmove is b.tk_nextmove is language._model().tk_nextmove
    assert a.nb_classes != b.nb_classes


@pytest.mark.parametrize(
    ("lang", "text"),
    [("en", "baaaad service"), ("en", "terribleeee service"), ("sr", "ovo je loooooše"), ("ru", "ужаааас")],
)
def test_a_word_stretched_for_effect_keeps_its_meaning(scorer: TextScorer, lang: str, text: str) -> None:
    """A letter repeated for effect made the word unknown: "baaaad service" scored 0.445, 'other'."""
    assert scorer.score(text, lang).negative
