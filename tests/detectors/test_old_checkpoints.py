"""Checkpoints written before the volume and negativity detectors held their state in __slots__
(an instance dict, per-span lists of floats, the scored sums as a tuple, a ring of doubles, int64
rings) restore and score as the code that wrote them did (volume: to float32's precision).

The states below were pickled by that code (commit 0a2a538) mid-stream, in the middle of a burst,
without their settings (rebuilt here, so that a new setting does not invalidate them), together
with the scores of the buckets that followed."""

from __future__ import annotations

import base64
import math
import pickle
import random
import zlib
from typing import Any

from old_pickles import OldCheckpoint

from daemon.windows import Bucket
from detectors.negativity import NegativityDetector
from detectors.settings import NegativitySettings, VolumeSettings
from detectors.volume import VolumeDetector

_DAY0 = 1_699_920_000.0  # a UTC midnight


def _buckets(seed: int, start: int, n: int, burst: tuple[int, int]) -> list[Bucket]:
    """Diurnal minute buckets (random.Random: the same on every platform and numpy)."""
    rng = random.Random(seed)
    out = []
    for i in range(start, start + n):
        t = _DAY0 + 60.0 * i
        mu = 20.0 * (1 + 0.6 * math.sin(2 * math.pi * ((t % 86400) / 3600 - 9) / 24))
        m = int(mu * (0.6 + 0.8 * rng.random()))
        share = 0.25
        if burst[0] <= i < burst[1]:
            m *= 4
            share = 0.7
        neg = sum(rng.random() < share for _ in range(m))
        out.append(Bucket("acme", t, 60, mentions=m, negative=neg))
    return out


def _restore(blob: str, cls: type, settings: object) -> tuple[Any, dict[str, Any]]:
    saved = pickle.loads(zlib.decompress(base64.b64decode(blob)))
    state = dict(saved["state"], settings=settings)
    return pickle.loads(pickle.dumps(OldCheckpoint(cls, state))), saved


def test_volume_checkpoint_of_the_dict_layout_restores_and_scores_as_before() -> None:
    det, saved = _restore(_VOLUME_0A2A538, VolumeDetector, VolumeSettings(windows_minutes=(1, 5, 15, 60)))
    assert isinstance(det, VolumeDetector)
    assert det._protected > 0 and det._episode is not None  # restored in the middle of a burst
    assert det._ring.typecode == "f"
    scores = []
    for b in _buckets(2, 3 * 1440 + 100, 150, (3 * 1440 + 100, 3 * 1440 + 130)):
        r = det.read(b)
        det.after_score(b, r.score, r)
        scores.append(r.score)
    assert sum(s >= 0.5 for s in scores) > 30  # the comparison covers firing buckets
    # the ring is float32 now (restored rounded, its sums re-summed): the spans' sums, and so the
    # scores, agree to float32's precision, the firing decisions and the seasonal model exactly
    assert [s >= 0.5 for s in scores] == [s >= 0.5 for s in saved["scores"]]
    assert all(math.isclose(a, b, rel_tol=1e-7) for a, b in zip(scores, saved["scores"], strict=True))
    assert det.level == saved["level"]
    assert det.expected(_DAY0 + 60.0 * (3 * 1440 + 250)) == saved["expected"]
    again = pickle.loads(pickle.dumps(det))  # and the restored detector pickles in the new form
    assert again.__getstate__() == det.__getstate__()


def test_negativity_checkpoint_of_the_dict_layout_restores_and_scores_as_before() -> None:
    det, saved = _restore(_NEGATIVITY_0A2A538, NegativityDetector, NegativitySettings(grace_mentions=50))
    assert det._protected > 0
    scores = []
    for b in _buckets(4, 900, 150, (900, 930)):
        r = det.read(b)
        det.after_score(b, r.score)
        scores.append(r.score)
    assert sum(s >= 0.5 for s in scores) > 30
    assert scores == list(saved["scores"])
    assert det.baseline_share == saved["baseline"]
    again = pickle.loads(pickle.dumps(det))
    assert again.__getstate__() == det.__getstate__()


# pickle.dumps({"state": state without settings, "scores": array("d"), ...}, protocol=4), zlib, base64
_VOLUME_0A2A538 = (
    "eNrtV/lXU8kSDksAkSgIoj4HwQsIAupIXHgG7GKRIIujMAi4hZBcDBoIJkGW0UEWQTACSsRERQZwQQZl0XFlFFfUx6iM4uBK"
    "gCSgoGyCLIPvJbLEN+e8P+CdM/1L91ddX3VV9T3VdXdpHrSZTPgydgqtBUQen87HhcqlJg/HmUIvgkCXFsnl8HEGXwmnCCbw"
    "WVycx+KwmUIqTB+hCiaFRDG24nwaD2dwIpg8oZejQDs0jMvj0/hCqvPz78+aKbXUIoQ+9gYCIhvfjrMVbEvzYsO3d4cFGiwO"
    "Uygg0rlceqxQYET7sqBxlbZ4fG4Ug8/hCrOV3o1qjM7ZQoGawiV916rYjgV/TJ/bgeCZvZ10fxsKOuxwud/yLbIquRl99oe3"
    "yLO6tU5OaUPbch3+XCfvQKdyJy/o6elBgy96Cd3cflSaJjvvz/4TcQ798rSklQDG2swq0VwNWP46M9btgyYEH9aeHkLSgtnd"
    "Tp/2PdWCyJQMEuWNNkjZH/VO/6wN7JuX67V5WnAye958zwAiXJew2/claYD0UbV88gM1SKaTVuW7fUZHegM67rkNIiefVFmt"
    "Wx8KWXgjj63TjYR8oa9QoMHkRAtZJGuWPstAEZXDSG470fal9Atnr3Whax+b0xhRnWitX/WBTd6d6EKmQaifXica0xubR6zp"
    "0BRZpUVEhX9lsurjjQ5SxrpjkFnWcql69yGQxLZV7LTJBmfK4H1JQDZ8/y91fZOTQqAEdvdvWCECK9eWJ9dTj0F0yp7if9YW"
    "gI5htq66+knYfdl9OHt1MVD8Y9LFvWfgczHnsRWnDAq9109cG1IOSdfx0wN6FdAvPGFwuqMCvlu61H9tXQVkFofqLZCVg48J"
    "LNfRKwe9xMWJNk6l8Ng6bIFuUgm4uV1c9KNLEXwTM3HChYkngEOam7PuST5cepUTZHQrF74OjYlHfB1aab44Xm9+Hiyfwpjn"
    "vO4I3J77ZJp+rAgc7FsOlm8SwZW75QT7NSI4BGYrzIJE0NdktmTXVhFY19qrbdwtgt22l8/oHBdB/k+Wlb6VIkh2OB+0vE4E"
    "nMeDwRUfREBxCNsu1RLDtmlXn6rNEEPqJ9qaqfPF0POPmpu9IAba6oywklViON7DTijfKAaS58rnLeFi8LgRp/8yRjHb5ela"
    "7BLDt74S6w9JYogxDfn9Y4oY1r7wczCnHR4PTfER/OXWRj8EAuEYez4Tuutht+/whrar9aAZv/Rgx9zn8KurWesK93Qg/GV8"
    "bfK/szVu0vSQ6DB59jMwt5WRpZ1/wFX3YlO8oB4Ks51+zqpL+x8mtWi8SHoET7hRaO2l5kX0muzliAu0aRE0ZhgvUuiTPVEw"
    "gcaPozHoDBauVFpFHePjAg0abq+UUUH99YQQm0LFAmmpTwpqd6UC1+nJlczhASqUTVy5cI1NglI7fFQ7Nj+QUpNUSYXbOpuy"
    "Qp0RFfoyH/5QoDmJ6rykmMP2O3ceFxBp3LCIzao4Xco0xg6eAzfXUwKWDZmPhmQB14c6Pu7rHsPfQBfnqFaNfAxbw5T02MHu"
    "2jFsAw+2/2B+tGYMmwHlfesgejCGMSDscdgzcEll38N6i0FjsYo/c1nE3YY81X7mUWfH0lyVvX/vW7+l/sAYngOHN3/KYiaq"
    "9hvCHvPOxan4T4zTtgu2qPZPcX9juASr+N47CtqYq1X+Ne88couyUqW/901ed7Sjyh6vveDHXjtV/NIoNSN/c1V+zhwoZOeb"
    "qvDKIbucOJLK3hHgh2wewsb5LIlF3Pp2bHz/YsL0ug1vsXF+y4mXgdwXqv133V0ee+5h4/74+vUmX7k8hqdDRM39NsdyFfY/"
    "5MK1PYqNx5s2a3uubqoKs/Ukb2wTsfH4Q6RryDt2qs7/lHzQzImLwTLLOjyvjAxbeEU2i4IxeHnpdKDeHTJQQha1M+IwWKxF"
    "SVv7ggzHSZ415w9i8G5V9Znw38nQRz0zJ2MvBhf4Aw7JD8jgkaifsDkBg+vxHjaHb5JBXMl7CdEYFF20SSi9Qob2vmeL/xGO"
    "gV7BVKfbFWRwWrgsqycEAyO1HzfWF5MhY2vuu5pADDpq/2hsKyCD5ARhxclVGHznlXP/82Ey2EsYefFuGJisf0w4eZAM69Q1"
    "DU85YXD3CaPTO4sMiRbHUx4uwWBam4WoJ50Mxe5ug70LMKgqafkk3k2GWpY03GQuBsaD8ZNhFxkG0pMb3TAMGtNuvJHFkWH2"
    "GQt/9kwMvmmNx/dGKeJ5dPtethEGd6IyCr+NJENkF9PxKgkDEatKVLeFDCJDYlmTliqf7rDQppZuMX5/sMb1KcvTYjz/WPj5"
    "olNOFuP393bzYtm5eSo8fF7L1N7IYrQQEmksnK543Zco6kpoGJutbD4oysITFU7jfCk8BCr4cV9LLIyMqbDNJOV9av0BKqR6"
    "o7fpxFR8VBMf03QxsEoUSphUoL0hZQXEZ1IhIZlaldnzSlm3IqN4LJwn9HEzUAA+h09n85Rdi385SeHYl+JD3lInqmKJqIBp"
    "NZURDUUpiu4l0Pe9VHPKUSq4iy9d6dPAlDJuUFmWXXAGFejGcXVNQ/uVslThF5cUJz6bYryoVS9FiKco48MjaRFCKqppcqiY"
    "Nf03RZlWCJj0WMXRMKMth6W2WUfReilkeAwD5ymlU0gMju+j8BFqtILa/hU1jMdh4iqvqWBrX+Kbf7YrRfkA0GmjLRdCaQ93"
    "5QQSFOmhKx9RhWS95oY6R88RibIBoSJL7dBb+4MJilzQRwq6imYYTo8ZawdpIz2fIm8stSiBFo/BUfSFX9deTQLhybm3VoEx"
    "chQcWiloIMtQ+6HTfIMdcvRCbcCQ+EGK3hN/D/qlQ4rS79wr8UuQI5ekhXsnJMnR7C5JUbiHHFk93rN6e4oc/ZlQvw0jyZGn"
    "/0/zfhqQoqKcu2KPISnizHtvrlkrQxW1t8/3G8pRugnYlk6Vo9cxJu92HpAjgVeznckMOVIzyiQKnstQ3kOizPmlDM05EeAt"
    "1pGhJXvupQybytG7l2vDth6VoUiTps+mx2So0mpNjudkGXKu9vZIz5ehO/3LLI9Zy1Hp/Wp7qzCFPS/X4FqaDGH5pYGMIhka"
    "enQ1s6pYjop17aaFN0nRfep87e4GKep0jJmu3SxFz/KvxSZ0SdHKXS51hcaKc+37JzXMkqHg72d9SpopQ6bD9enG2jL0/jWP"
    "V6khQ6WrqLfcCTKU3dn79MAjKWLdZjTv2C9FJfHPWkmbpCgqZctNkY4U2e64aGR3oRk1771wXxDRjCRnfp17cWozejRQOSOo"
    "oQkxDczcXbOaEGWdz7xU9yY0fPa7kz6NjUhNsvxVbnQjKjUt19k7sxGleW/w062UIHXSRFI2RYI05eF9AY8bUMldg28nXn2D"
    "aESJ6FrXa5Q471nLq9evUGHWEfdZ11+iliD3aYfevEDeln1WTdYvEOHv8ff4Px5f3h7WBMWvqa6NBrWHI9DBYyJHfn2pYNad"
    "OHivWj9q/n8A5PPZhw=="
)
_NEGATIVITY_0A2A538 = (
    "eNq91GlQFEcUAOBdEeUQBFE5NKAhRiwPBALKIW/BY8UVjShWsNRl2V2XQxbcnUU5VJJA0DjxKAZRFKMYLQ0kopEooIIWd1Ap"
    "r4ClpUHk2GlFI4LIYQbmafknVaZSSf/5enp6pvt1v3rJQzOSTQSDbTPjRBtqKRmlZAa6Q7VKpYKRCGgTaawmhlLKqYFHe9qY"
    "CtcoteEx6xWMWGTDf0qbh+nkUUpKqlXKY9QKLSPxoQ3UShU340SCTpRfNIY2pGIo2XpuoNqqr/1c7YTB/6uZwCee9DCpXBct"
    "jWICq22wz40LA+jhUk2EWsW9oA1lGo0snqFHSwc7Us3AMlpKo5NTMRomfWDjOANNZ2jhBkYywr9VKBCcNeN3WYheQMvRGvQG"
    "eg9tQp+hHegQc14j1BK1QSegjuhkdDtajtqN5FWiN1BbC14FWo7Os+S9iNqPwv+ibWigFe9ptB9VjeY9jDai4jG8v6JeY3m3"
    "oAXoJ9a8UvQ4aoxZsAKtRv3wvBahK1Apug5Vozp0C/oNuhvNRA+hx9B8lKGYIOZt1qiZ8JFO4aPCrTAJmmbxk8xm4yWhfmgI"
    "moL+jF5GWfQNOsWTdwEai+5AT6Fl6BM02guTEXX35s1GPX0wONR4Du93qKcv72M0HjBpRLxHUHc/vAzU3R+TCbWcy7sBHTMP"
    "LxuVzcf4UbMF+B41FmM8aDcasZBXGMDr4sErQbVoJnoKvY22osZ4Xx+jIjQU3YYeRX+b9X4SGErDlTKuXM3g0kHL1YiB0uXD"
    "FRdtrEytZdYwThKhxFAyUuKj5AYVSjlXMsTQ3mte4fzEnTaQxrkMzBGXZLo99N/5aIK4RB+2PWOH12xx6Tg3VSNpzRGXSpXn"
    "nhl2hSkHZrsOzhYtc0vaen9Xt1iUlfDaWFRlKhZdXWwq61AMF/uZjglbmlJZMLCaWhon0zCBMgOuLxvsi8H520ovnUhAW0XL"
    "Nr2ttlK+pGqZwHChjh6mlXNRaPmkpoVcOBb++UMFguKHPRZ/BhEwK+hKT/UlcOBBU3GKM4GMop66zokEVjk+sd3kyo1PP333"
    "hh8Bi/iqEldbAil5/q1hNgRWZ9VVho8noApQ74p2JJBVnheVOoHAvs5IO1/O0urEDMlYApaJ5aV3PyUgr95duMWKQCu1fdKh"
    "jwj01halNU8mEPZiV0b3NAL+uhEnr3L7GLmxJa1/DYHCwkjB3GUEvvbss7iqIDB35RxnDTe+y+j2sYnveWFv7m3fGC6OVO2S"
    "g1oCrzxPjK1NItBTqlq7dzOB+uF5X8RvJ3A+xmSr31YCHUdrA7ooAqKIF9v0sQSe9h+/XxvJjTvSSSVyAivuqM56rCaQnPLy"
    "Wf9yAofUBusSxARSPRzqXGYTCA06PnXqdAIzrRx+vzmJgNS3L7jGgYv7OUlytCbw1fnuhpcjCFQW+EkUQgJVYFeQ28XCgzNF"
    "VSGNLEy+Uvz08k0WzJ4u8swqY+H75FXp00pZiNxbkmP7Iwuxt3bOTkpjwTst9c7FOBbWmdjcNJGzkDUqxck0kIW7vSGJrz1Y"
    "WEx523vYs1AtntW2TMjC+I4ItzmsHg7fUq1dUKGH7ML9e1x+0sPy4YWSdEYPRmlJYY80eigc11ufrdDDGaeNS8wX6iGZyg5Z"
    "aaEH9lpM36PuNijJ/czk6aU26LT78loN1QY9iz+vu+LRBoI1KZRxZyu02z6P0x1sBXpST1uetBUc5hjsKHvTAskd2Q3bDrRA"
    "R9/FWbVDWiB0H5V+PaEZLOPM+s2HNIP9oebpwRGPYcrJOEV1cBP8wMrWerxq5M5vfJ9b7h/g+nqmU+Wlh7B0SY7PvfP3oCm0"
    "YVFZez0Wqf++uW+c371kX84Hr+cdVXSkcPmJf7w/xY6ExPNF+WDeoLb1PF30t99fqK+w/cXg6Lv3HgnW5cKU/e+ek48GTSnf"
    "U/Gvz6doYnFxpvXZ/+2c37bJitIaVeq5D16XL89GYTKtcn2EWsnVvuvB7RUh2RW6GX8Bm2KgOg=="
)
