"""A named registry: the one shape of every choice the project offers (strategies, SR engines,
integrators), so each choice is defined once and its names feed the configs and the CLI.

In:  entries registered under their names (`register`).
Out: `names()` in registration order, `get(name)` (a one-line `InputError` naming the
     registered ones for any other name), `find(name)` (None for any other name).
"""
from __future__ import annotations

from typing import Generic, TypeVar

from .errors import InputError

T = TypeVar("T")


class Registry(Generic[T]):
    """Entries of one kind by name.

    Args:
        kind: what an entry is, for the error message ("strategy", "SR engine", ...).
    """

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, T] = {}

    def register(self, name: str, entry: T) -> T:
        """Make `entry` selectable as `name` (replacing one of that name); returns it."""
        self._entries[name] = entry
        return entry

    def names(self) -> tuple[str, ...]:
        """The registered names, in registration order."""
        return tuple(self._entries)

    def get(self, name: str) -> T:
        """The entry called `name`; InputError listing the registered names otherwise."""
        try:
            return self._entries[name]
        except (KeyError, TypeError):
            raise InputError(f"unknown {self.kind} {name!r}; choose one of {', '.join(self._entries)}") from None

    def find(self, name: str) -> T | None:
        """The entry called `name`, None for any other name."""
        try:
            return self._entries.get(name)
        except TypeError:   # an unhashable name
            return None
