"""A secret value that never prints: repr, str, logs and `check-config` show it masked."""

from __future__ import annotations


class Secret:
    """Holds a token or password; `reveal()` is the only way to read it.

    >>> s = Secret("xoxb-123")
    >>> s, str(s), s.reveal()
    (Secret('***'), '***', 'xoxb-123')
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    def __str__(self) -> str:
        return "***"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)

    def __reduce__(self) -> tuple[type, tuple[str]]:
        return (Secret, (self._value,))
