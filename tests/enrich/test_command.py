import json
from pathlib import Path

import pytest

from daemon.cli import main


def _run(tmp_path: Path, lines: list[bytes], capsys: pytest.CaptureFixture[str]) -> tuple[int, list[dict], str]:
    src = tmp_path / "in.jsonl"
    src.write_bytes(b"\n".join(lines) + b"\n")
    out = tmp_path / "out.jsonl"
    rc = main(["score-text", str(src), "-o", str(out)])
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    return rc, rows, capsys.readouterr().err


def test_scores_each_line_and_keeps_other_fields(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, rows, err = _run(
        tmp_path,
        [
            b'{"id": "a", "text": "Flight cancelled and nobody answers!", "lang": "en"}',
            '{"id": "b", "text": "Где мой багаж?"}'.encode(),
            b'{"id": "c", "text": "", "lang": null}',
        ],
        capsys,
    )
    assert rc == 0, err
    assert [r["id"] for r in rows] == ["a", "b", "c"]
    assert rows[0]["lang"] == "en" and rows[0]["negative"] is True and rows[0]["intent"] == "complaint"
    assert rows[1]["lang"] == "ru" and rows[1]["intent"] == "question"
    for r in rows:
        assert 0.0 <= r["negativity"] <= 1.0
        assert r["intent"] in {"complaint", "question", "feedback", "praise", "other"}


def test_bad_lines_are_skipped_with_a_reason(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, rows, err = _run(
        tmp_path,
        [b"not json", b"[1, 2]", b'{"text": 5}', b'{"lang": "en"}', b'{"text": "ok", "lang": 3}', b"\xff\xfe", b"",
         b'{"text": "fine, thanks"}'],
        capsys,
    )  # fmt: skip
    assert rc == 1
    assert len(rows) == 1 and rows[0]["text"] == "fine, thanks"
    reasons = ["not JSON", "expected a JSON object", "field text", "field text: missing", "field lang", "not UTF-8"]
    for n, what in enumerate(reasons, 1):
        assert f"line {n}: {what}" in err
    assert "6 line(s) skipped" in err


def test_missing_input_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["score-text", str(tmp_path / "nope.jsonl")]) == 2
    assert "nope.jsonl" in capsys.readouterr().err


def test_writes_to_stdout_by_default(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text('{"text": "Hvala, super!"}\n', encoding="utf-8")
    assert main(["score-text", str(src)]) == 0
    row = json.loads(capsys.readouterr().out)
    assert row["intent"] == "praise" and row["negative"] is False


def test_texts_over_the_daemons_cap_are_skipped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from daemon.events import MAX_TEXT_BYTES

    at_cap = json.dumps({"text": "a" * MAX_TEXT_BYTES}).encode()
    over = json.dumps({"text": "é" * (MAX_TEXT_BYTES // 2 + 1)}).encode()  # 2 bytes each in UTF-8
    rc, rows, err = _run(tmp_path, [at_cap, over], capsys)
    assert rc == 1 and len(rows) == 1
    assert f"line 2: field text: longer than {MAX_TEXT_BYTES} bytes" in err


def test_a_huge_line_is_skipped_without_reading_it_whole(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import gzip
    import tracemalloc

    from daemon.cli import input_lines
    from daemon.enrich.command import MAX_LINE_BYTES, score_lines
    from daemon.enrich.scorer import TextScorer

    huge = b'{"text": "' + b"x" * (20 << 20) + b'"}\n'
    src = tmp_path / "in.jsonl"
    src.write_bytes(b'{"text": "first"}\n' + huge + b'{"text": "Thanks, great help!"}')
    scorer, errors = TextScorer(), []
    tracemalloc.start()
    try:
        out = list(score_lines(scorer, input_lines(str(src), MAX_LINE_BYTES), lambda n, r: errors.append((n, r))))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 * MAX_LINE_BYTES  # not the 20 MB line
    assert [json.loads(o)["text"] for o in out] == ["first", "Thanks, great help!"]
    assert errors == [(2, f"longer than {MAX_LINE_BYTES} bytes")]
    packed = tmp_path / "in.jsonl.gz"
    packed.write_bytes(gzip.compress(src.read_bytes()))
    assert main(["score-text", str(packed), "-o", str(tmp_path / "out.jsonl")]) == 1
    assert f"line 2: longer than {MAX_LINE_BYTES} bytes" in capsys.readouterr().err
    assert len((tmp_path / "out.jsonl").read_text().splitlines()) == 2


def test_a_byte_order_mark_does_not_make_line_1_bad(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, rows, err = _run(tmp_path, [b'\xef\xbb\xbf{"text": "Hvala, super!"}'], capsys)
    assert rc == 0, err
    assert rows[0]["intent"] == "praise"
