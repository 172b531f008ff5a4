"""The `>>>` examples in the staffing modules run as tests."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "daemon.staffing.erlang",
    "daemon.staffing.settings",
    "daemon.staffing.planner",
    "daemon.staffing.responses",
    "daemon.staffing.simulation",
]


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
