"""Text-scoring throughput on one core (prints figures only).

    .venv/bin/python bench/bench_scoring.py [--data ../shared/data] [--n 50000]

Texts: the airline tweets and the sentiment_dev files when `--data` has them, else a built-in
multilingual sample. Measures `TextScorer.analyze` (score + terms, what the pipeline calls) and
`score` alone, with the language given and detected, on a fresh scorer and on one that has learned
from 2,000 upstream sentiments. The first pass warms the token caches, as a long-running daemon's are.
Rates are texts per CPU-second of this (single-threaded) process, so a busy machine skews them less, then
per wall-second; the load average is printed before and after (the machine may be shared).
"""

from __future__ import annotations

import argparse
import csv
import itertools
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from daemon.enrich import TextScorer

_SAMPLE = [
    ("en", "@klm my flight to Oslo got cancelled and nobody answers the phone, what now?"),
    ("en", "Thanks for the quick help with my booking, great service!"),
    ("nl", "Al twee uur in de wacht en mijn koffer is nog steeds kwijt"),
    ("sr", "Let kasni već tri sata, niko ništa ne govori. Užas."),
    ("sr", "Лет касни већ три сата, нико ништа не говори"),
    ("hr", "Hvala na brzom odgovoru, sve je riješeno"),
    ("bs", "Kad će biti vraćen novac za otkazani let?"),
    ("mk", "Летот е откажан, никој не одговара на телефон"),
    ("ru", "Рейс задержали на пять часов, никто ничего не объясняет"),
]


def _texts(data: Path) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    airline = data / "airline_tweets" / "Tweets_dev.csv"
    if airline.exists():
        with airline.open(newline="", encoding="utf-8") as fh:
            out += [("en", r["text"]) for r in csv.DictReader(fh)]
    for path in sorted((data / "sentiment_dev").glob("*/*.csv")):
        with path.open(newline="", encoding="utf-8") as fh:
            out += [(r["lang"], r["text"]) for r in csv.DictReader(fh)]
    return out or _SAMPLE


def _rate(
    fn: Callable[[str, str | None], object], texts: list[tuple[str, str]], n: int, given: bool
) -> tuple[float, float]:
    """(texts per CPU-second, texts per wall-second)."""
    batch = list(itertools.islice(itertools.cycle(texts), n))
    for lang, text in batch[: min(n, 20_000)]:  # warm-up
        fn(text, lang if given else None)
    t0 = time.process_time()  # CPU time of this process: other load on the machine does not count
    w0 = time.perf_counter()
    if given:
        for lang, text in batch:
            fn(text, lang)
    else:
        for _, text in batch:
            fn(text, None)
    return n / (time.process_time() - t0), n / (time.perf_counter() - w0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--n", type=int, default=50_000, help="texts per measurement")
    args = parser.parse_args()
    texts = _texts(args.data)
    mean_len = sum(len(t) for _, t in texts) / len(texts)
    print(f"{len(texts)} distinct texts, mean {mean_len:.0f} characters; {args.n} texts per measurement")
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    fresh = TextScorer()
    learned = TextScorer()
    for i, (lang, text) in enumerate(texts[:2000]):
        learned.learn(text, lang, -0.5 if i % 3 == 0 else 0.5)
    for name, scorer in (("fresh scorer", fresh), ("after learning", learned)):
        for method in ("score", "analyze"):
            fn = getattr(scorer, method)
            given, given_wall = _rate(fn, texts, args.n, True)
            detected, detected_wall = _rate(fn, texts, args.n, False)
            print(
                f"{name:<15} {method:<8} lang given: {given:>9,.0f}/CPU-s {given_wall:>9,.0f}/s wall   "
                f"detected: {detected:>9,.0f}/CPU-s {detected_wall:>9,.0f}/s wall"
            )
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
