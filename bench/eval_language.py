"""Language identification of untagged Serbian, Croatian and Bosnian text in the pipeline (prints figures).

    .venv/bin/python bench/eval_language.py [--days 1] [--seed 0] [--scale 0.5] [--hide 5]

Simulates the `ash-crisis` stream, removes the `lang` tag from every `--hide`-th sr-Latn, hr and bs
event (chosen by a hash of its id), runs the whole pipeline over the stream, and prints per brand
how often the language found for those events is the hidden tag: with the brand's own mix of tagged
events as a prior (what the daemon does) and without it. Latin-script Serbian, Croatian and Bosnian
share most words, so where the text has no yat reflex or a standard's own word, the mix decides.
The simulated texts are crisisd's own; `bench/eval_sentiment.py` gives the figures on real texts.
"""

from __future__ import annotations

import argparse
import sys
import zlib
from collections import Counter
from contextlib import ExitStack
from pathlib import Path
from unittest import mock

import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from config.settings import load_settings
from daemon.enrich.language import SouthSlavicMix
from daemon.events import Mention
from daemon.pipeline import BrandState, Pipeline
from daemon.simulate import generate

_TAGS = {"sr-Latn": "sr", "sr": "sr", "hr": "hr", "bs": "bs"}


def _hide(lines: list[bytes], every: int) -> tuple[list[bytes], dict[str, tuple[str, str]]]:
    """The stream with every `every`-th South Slavic Latin tag removed, and id -> (brand, tag)."""
    hidden: dict[str, tuple[str, str]] = {}
    out = []
    for line in lines:
        try:
            event = msgspec.json.decode(line)
        except msgspec.DecodeError:
            out.append(line)
            continue
        tagged = isinstance(event, dict) and event.get("lang") in _TAGS and isinstance(event.get("id"), str)
        if tagged and zlib.crc32(event["id"].encode()) % every == 0:
            hidden[event["id"]] = (str(event.get("brand")), _TAGS[event.pop("lang")])
            line = msgspec.json.encode(event)
        out.append(line)
    return out, hidden


def _run(lines: list[bytes], hidden: dict[str, tuple[str, str]], prior: bool) -> dict[str, Counter[bool]]:
    found: dict[str, str] = {}
    enrich = Pipeline._enrich

    def spy(self: Pipeline, state: BrandState, m: Mention) -> object:
        result = enrich(self, state, m)
        if m.id in hidden:
            found[m.id] = result[0].lang
        return result

    with ExitStack() as stack:
        stack.enter_context(mock.patch.object(Pipeline, "_enrich", spy))
        if not prior:
            stack.enter_context(mock.patch.object(SouthSlavicMix, "prior", lambda self: None))
        p = Pipeline(load_settings(env={}))
        for line in lines:
            p.process(line)
    right: dict[str, Counter[bool]] = {}
    for event_id, (brand, tag) in hidden.items():
        if event_id in found:
            right.setdefault(brand, Counter())[found[event_id] == tag] += 1
    return right


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--days", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--scale", type=float, default=0.5)
    parser.add_argument("--hide", type=int, default=5, help="remove the tag of one in this many sr/hr/bs events")
    args = parser.parse_args()
    lines, hidden = _hide(list(generate("ash-crisis", args.days, args.seed, scale=args.scale)), args.hide)
    print(f"ash-crisis, {args.days} d, seed {args.seed}, scale {args.scale}: {len(hidden):,} sr/hr/bs tags hidden")
    without, with_mix = _run(lines, hidden, prior=False), _run(lines, hidden, prior=True)
    print(f"{'brand':<12} {'hidden':>7} {'no prior':>9} {'brand mix':>10}")
    for brand in sorted(with_mix, key=lambda b: -sum(with_mix[b].values())):
        n = sum(with_mix[brand].values())
        print(f"{brand:<12} {n:>7,} {without[brand][True] / n:>9.3f} {with_mix[brand][True] / n:>10.3f}")
    n = sum(sum(c.values()) for c in with_mix.values())
    a = sum(c[True] for c in without.values()) / n
    b = sum(c[True] for c in with_mix.values()) / n
    print(f"{'all':<12} {n:>7,} {a:>9.3f} {b:>10.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
