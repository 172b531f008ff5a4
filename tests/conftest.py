"""Suite-wide isolation: every test starts with structlog's defaults.

Commands under test (`replay`, `demo`, `run`) configure logging for the process, e.g. at level
`warning`; without a reset that would leak into later tests that capture info logs.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
import structlog


@pytest.fixture(autouse=True)
def _fresh_logging() -> Iterator[None]:
    yield
    structlog.reset_defaults()
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, "_crisisd_handler", False)]:
        root.removeHandler(handler)
