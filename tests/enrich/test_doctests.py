import doctest

import pytest

from daemon.enrich import command, language, lexicon, scorer


@pytest.mark.parametrize("module", [command, language, lexicon, scorer])
def test_doctests(module: object) -> None:
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)  # type: ignore[arg-type]
    assert result.failed == 0
