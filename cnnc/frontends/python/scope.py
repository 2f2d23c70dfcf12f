"""Python's scopes as the evaluator follows them: a module's or a function's variables,
looked up through the enclosing scopes."""

from __future__ import annotations

from typing import Any


class Scope:
    def __init__(self, parent: "Scope | None" = None):
        self.vars: dict[str, Any] = {}
        self.parent = parent
        self.module: Scope = parent.module if parent is not None else self
        self.stars: list[tuple[str, ...]] = []

    @property
    def is_module(self) -> bool:
        return self.parent is None

    def lookup(self, name: str):
        s = self
        while s is not None:
            if name in s.vars:
                return s.vars[name]
            s = s.parent
        return _MISSING


# what lookup gives for a name bound nowhere (None is a value)
_MISSING = object()
