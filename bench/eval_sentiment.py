"""Negative-vs-not evaluation of the text scorer on the shared dev data (prints figures only).

    .venv/bin/python bench/eval_sentiment.py [--data ../shared/data] [--errors N] [--only S] [--bits B] [--ceiling]

For the airline tweets (Tweets_dev.csv) and each file of sentiment_dev/*/*.csv it prints precision,
recall and F1 of the negative and the not-negative class and their mean (macro-F1), with the language
given and with it detected, without any training on the labels, and how often the detected language is
the file's own (for Serbian also with the texts transliterated to Cyrillic); then the prequential run on the
airline tweets in time order (predict, then learn the label: negative -1, neutral 0, positive +1),
with the language given and detected, for a model of 2**B hashed word weights (`--bits`, default 12 as
the daemon's scorer). `--ceiling` adds what the learned model's class reaches at best: a batch
logistic regression on the same inputs (2**16 weights), 5-fold cross-validated.
Data are read from `--data` (relative to the repository root by default) and never copied.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from daemon.enrich import TextScorer
from daemon.enrich.language import detect
from daemon.enrich.scorer import _CURVE_SHIFT, _CURVE_SLOPE, _RAW_CLIP
from daemon.simulate.text import to_cyrillic

_SENTIMENT = {"negative": -1.0, "neutral": 0.0, "positive": 1.0}


def _report(name: str, gold: list[bool], pred: list[bool]) -> float:
    out = []
    f1s = []
    for cls, label in ((True, "neg"), (False, "not")):
        tp = sum(g == cls and p == cls for g, p in zip(gold, pred, strict=True))
        fp = sum(g != cls and p == cls for g, p in zip(gold, pred, strict=True))
        fn = sum(g == cls and p != cls for g, p in zip(gold, pred, strict=True))
        prec = tp / (tp + fp) if tp + fp else 0.0
        rec = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
        f1s.append(f1)
        out.append(f"{label} P={prec:.3f} R={rec:.3f} F1={f1:.3f}")
    macro = sum(f1s) / 2
    print(f"{name:<58} n={len(gold):>5}  {'  '.join(out)}  macro-F1={macro:.3f}")
    return macro


def _airline(path: Path) -> list[tuple[str, str, str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        rows = [(r["tweet_created"], r["text"], "en", r["airline_sentiment"]) for r in csv.DictReader(fh)]
    rows.sort(key=lambda r: r[0])  # time order for the prequential run (same offsets throughout)
    return rows


def _dev(path: Path) -> list[tuple[str, str, str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return [(r["created_at"], r["text"], r["lang"], r["label"]) for r in csv.DictReader(fh)]


def _evaluate(name: str, rows: list[tuple[str, str, str, str]], errors: int) -> None:
    gold = [r[3] == "negative" for r in rows]
    for given in (True, False):
        scorer = TextScorer()
        scores = [scorer.score(r[1], r[2] if given else None) for r in rows]
        _report(f"{name} [lang {'given' if given else 'detected'}]", gold, [s.negative for s in scores])
        if not given:
            langs = Counter(s.lang for s in scores)
            print(f"    detected languages: {dict(langs.most_common(6))}")
            _language_id(rows, [s.lang for s in scores])
            if errors:
                wrong = [(r, s) for r, s in zip(rows, scores, strict=True) if s.negative != (r[3] == "negative")]
                for r, s in wrong[:errors]:
                    print(f"    {r[3]:>8} {s.negativity:.2f} {r[1][:150]!r}")


def _prequential(rows: list[tuple[str, str, str, str]], bits: int) -> None:
    """Predict each text, then learn its label, in time order (what the daemon does with upstream sentiment)."""
    for given in (True, False):
        scorer = TextScorer(model_bits=bits)
        gold, pred = [], []
        for _, text, lang, label in rows:
            tag = lang if given else None
            gold.append(label == "negative")
            pred.append(scorer.score(text, tag).negative)
            scorer.learn(text, tag, _SENTIMENT[label])
        _report(f"airline tweets, prequential [lang {'given' if given else 'detected'}, 2^{bits} weights]", gold, pred)
        half = len(rows) // 2
        _report("  ... second half of the stream", gold[half:], pred[half:])


def _ceiling(rows: list[tuple[str, str, str, str]], bits: int, folds: int = 5, c: float = 0.3) -> None:
    """What the learned model's class can reach on these labels at all: a batch logistic regression
    (L2, C = `c`, L-BFGS to convergence) on the same inputs as the online learner (the lexicon
    evidence and the text's hashed words), then with word bigrams added, scored by `folds`-fold
    cross-validation. Each fold trains on four fifths of the stream, where the prequential run has
    seen only what came before each text, so this bounds the prequential figure from above."""
    import numpy as np
    from scipy import sparse
    from scipy.optimize import minimize

    scorer = TextScorer(model_bits=bits)
    size = 1 << bits
    gold = np.array([r[3] == "negative" for r in rows], dtype=np.float64)
    for name, bigrams in (("words", False), ("words + bigrams", True)):
        data: list[tuple[int, int, float]] = []
        for k, (_, text, lang, _) in enumerate(rows):
            chunks = text.lower().split()
            group = scorer._language(text, lang)[1]
            ids = [i for i in scorer._feature_ids(group, chunks) if i != size]
            if bigrams:
                ids += [(a * 1_000_003 + b) % size for a, b in itertools.pairwise(ids)]
            raw = max(-_RAW_CLIP, min(_RAW_CLIP, scorer._scan(text, chunks, group).raw))
            data += [(k, i, 1.0) for i in set(ids)] + [(k, size, raw), (k, size + 1, 1.0)]
        r, col, v = zip(*data, strict=True)
        x = sparse.csr_matrix((v, (r, col)), shape=(len(rows), size + 2))
        fold = np.arange(len(rows)) % folds
        pred = np.zeros(len(rows), dtype=bool)
        for f in range(folds):
            train = fold != f
            xt, yt = x[train], gold[train]

            def loss(w: np.ndarray, xt: sparse.csr_matrix = xt, yt: np.ndarray = yt) -> tuple[float, np.ndarray]:
                z = xt @ w
                grad = xt.T @ (1.0 / (1.0 + np.exp(-z)) - yt)
                grad[:size] += w[:size] / c
                return float(np.sum(np.logaddexp(0.0, z) - yt * z) + 0.5 / c * w[:size] @ w[:size]), grad

            w0 = np.zeros(size + 2)
            w0[size], w0[size + 1] = _CURVE_SLOPE, -_CURVE_SHIFT  # the lexicon curve, as the online model starts
            w = minimize(loss, w0, jac=True, method="L-BFGS-B", options={"maxiter": 500}).x
            pred[~train] = x[~train] @ w >= 0.0
        _report(f"airline tweets, {folds}-fold batch ceiling [{name}]", list(gold.astype(bool)), list(pred))


def _language_id(rows: list[tuple[str, str, str, str]], detected: list[str]) -> None:
    """The share of texts detected as the file's own language; for Serbian also in Cyrillic, the
    same texts transliterated (Serbian is written in both scripts; no Cyrillic labelled set here)."""
    own = [r[2] for r in rows]
    hit = sum(d == g for d, g in zip(detected, own, strict=True)) / len(rows)
    print(f"    detected as the file's own language: {hit:.3f}")
    serbian = [r[1] for r in rows if r[2] == "sr"]
    if serbian:
        cyr = Counter(detect(to_cyrillic(t)) for t in serbian)
        shares = ", ".join(f"{k} {v / len(serbian):.3f}" for k, v in cyr.most_common(3))
        print(f"    the Serbian texts in Cyrillic (transliterated): {shares}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"), help="shared data folder")
    parser.add_argument("--errors", type=int, default=0, help="print this many misclassified texts per file")
    parser.add_argument("--only", default="", help="substring: evaluate only files whose path contains it")
    parser.add_argument("--bits", type=int, default=12, help="learned model size: 2**bits hashed word weights")
    parser.add_argument(
        "--ceiling", action="store_true", help="also the batch, cross-validated ceiling of the learned model's class"
    )
    args = parser.parse_args()
    airline = args.data / "airline_tweets" / "Tweets_dev.csv"
    files = [airline, *sorted((args.data / "sentiment_dev").glob("*/*.csv"))]
    files = [f for f in files if args.only in str(f)]
    for path in files:
        rows = _airline(path) if path == airline else _dev(path)
        _evaluate(str(path.relative_to(args.data)), rows, args.errors)
    if airline in files:
        _prequential(_airline(airline), args.bits)
        if args.ceiling:
            _ceiling(_airline(airline), 16)
    return 0


if __name__ == "__main__":
    sys.exit(main())
