"""Python's scopes as the evaluator follows them: a module's, a function's, a class
body's or a comprehension's variables, looked up through the enclosing scopes as
Python does (a class body is not seen from the methods defined in it), with
`global` and `nonlocal` declarations."""

from __future__ import annotations

from typing import Any


class Scope:
    def __init__(self, parent: "Scope | None" = None, kind: str = "function"):
        self.vars: dict[str, Any] = {}
        self.parent = parent
        self.kind = "module" if parent is None else kind     # module|function|class|comprehension
        self.module: Scope = parent.module if parent is not None else self
        self.stars: list[tuple[str, ...]] = []     # `from keras.layers import *`
        self.declared_global: set[str] = set()
        self.declared_nonlocal: set[str] = set()
        self.info: Any = parent.info if parent is not None else None   # the module it belongs to

    @property
    def is_module(self) -> bool:
        return self.parent is None

    def lookup(self, name: str):
        if name in self.declared_global:
            return self.module.vars.get(name, _MISSING)
        s = self
        while s is not None:
            if name in s.vars:
                return s.vars[name]
            s = s.parent
            while s is not None and s.kind == "class" and s.parent is not None:
                s = s.parent             # methods do not see their class body's names
        return _MISSING

    def target(self, name: str) -> "Scope":
        """The scope an assignment to `name` writes (global, nonlocal or this one)."""
        if name in self.declared_global:
            return self.module
        if name in self.declared_nonlocal:
            s = self.parent
            while s is not None and not s.is_module:
                if s.kind == "function" and name in s.vars:
                    return s
                s = s.parent
        return self

    def function_scope(self) -> "Scope":
        """The scope a function defined here closes over: a class body's functions close
        over the scope around the class, as in Python."""
        s = self
        while s.kind == "class" and s.parent is not None:
            s = s.parent
        return s


# what lookup gives for a name bound nowhere (None is a value)
_MISSING = object()
