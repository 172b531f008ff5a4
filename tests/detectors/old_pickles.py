"""Pickle a detector as the code before `__slots__` did, for checkpoint-compatibility tests."""

from __future__ import annotations

import copyreg
from typing import Any


class OldCheckpoint:
    """Pickles as the older code pickled an instance of `cls` whose __dict__ was `state`: NEWOBJ of
    the class, then BUILD with the dict."""

    def __init__(self, cls: type, state: dict[str, Any]) -> None:
        self.cls, self.state = cls, state

    @property  # type: ignore[misc]
    def __class__(self) -> type:  # pickle checks that NEWOBJ's class is the object's
        return self.cls

    def __reduce_ex__(self, protocol: Any) -> tuple[Any, ...]:
        return copyreg.__newobj__, (self.cls,), self.state  # type: ignore[attr-defined]
