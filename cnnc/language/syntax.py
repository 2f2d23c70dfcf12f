"""The syntax tree: what the user wrote, with a position on every node.

Nothing here knows about layers; `resolve` gives these nodes their meaning.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

from cnnc.support.diagnostics import Span


@dataclass(frozen=True, slots=True)
class Number:
    value: Union[int, float]
    text: str
    span: Span


@dataclass(frozen=True, slots=True)
class String:
    value: str
    span: Span


@dataclass(frozen=True, slots=True)
class Name:
    """A bare or dotted name: `relu`, `None`, `keras.layers.Conv2D`."""

    parts: tuple[str, ...]
    span: Span

    @property
    def dotted(self) -> str:
        return ".".join(self.parts)

    @property
    def last(self) -> str:
        return self.parts[-1]


@dataclass(frozen=True, slots=True)
class Tuple:
    items: tuple["Value", ...]
    span: Span


@dataclass(frozen=True, slots=True)
class List:
    items: tuple["Value", ...]
    span: Span


@dataclass(frozen=True, slots=True)
class Arg:
    keyword: str | None
    value: "Value"
    span: Span
    keyword_span: Span | None = None


@dataclass(frozen=True, slots=True)
class Call:
    name: Name
    args: tuple[Arg, ...]
    span: Span

    @property
    def positional(self) -> list[Arg]:
        return [a for a in self.args if a.keyword is None]

    @property
    def keywords(self) -> list[Arg]:
        return [a for a in self.args if a.keyword is not None]


@dataclass(frozen=True, slots=True)
class Applied:
    """A layer applied to tensors: `Conv2D(16, 3)(x)`, `Add()([x, y])`."""

    layer: Call
    args: tuple[Arg, ...]
    span: Span


# How each operator of a BinOp is written (in messages and in the text front ends emit).
SYMBOL = {"add": "+", "sub": "-", "mul": "*", "div": "/", "floordiv": "//", "mod": "%",
          "pow": "**", "neg": "-", "pos": "+"}


@dataclass(frozen=True, slots=True)
class BinOp:
    """Arithmetic with a name in it (`filters * 2`), folded once the name is known."""

    op: str                       # "add", "mul", "neg", ... (SYMBOL)
    items: tuple["Value", ...]
    span: Span
    name: str | None = None       # on tensors: the operation's name (front ends give Keras's)


@dataclass(frozen=True)
class Open:
    """A size not known yet: an open dimension, or arithmetic on open dimensions.
    `expr` is the size as an expression (analysis/symbolic.py); front ends emit it for
    values that come from data, resolve for names declared with `name: int`."""

    expr: object
    span: Span


Value = Union[Number, String, Name, Tuple, List, Call, Applied, BinOp, Open]


@dataclass(frozen=True, slots=True)
class ModelDecl:
    name: str
    span: Span
    name_span: Span


@dataclass(frozen=True, slots=True)
class InputDecl:
    value: Value
    span: Span
    alias: str | None = None


@dataclass(frozen=True, slots=True)
class CallStmt:
    """A call on its own line; `as NAME` names the tensor it makes."""

    call: Union[Call, Applied]
    span: Span
    alias: str | None = None
    alias_span: Span | None = None


@dataclass(frozen=True, slots=True)
class Assign:
    """`x = <value>`: a tensor, a layer object, a model or a constant gets a name."""

    target: str
    target_span: Span
    value: "Value"
    span: Span


@dataclass(frozen=True, slots=True)
class DimDecl:
    """`num_classes: int`: an open dimension (a size not fixed yet)."""

    name: str
    span: Span
    type_name: str
    type_span: Span


@dataclass(frozen=True, slots=True)
class Import:
    """A Python import in a pasted tutorial: no effect but its aliases
    (`from keras.layers import MaxPooling2D as MP`)."""

    aliases: tuple[tuple[str, str], ...]   # (alias, imported name)
    span: Span


Statement = Union[ModelDecl, InputDecl, CallStmt, Assign, Import, DimDecl]


def describe(v: Value) -> str:
    """How a value reads in a message: the Python-ish text of it."""
    if isinstance(v, Number):
        return v.text
    if isinstance(v, String):
        return repr(v.value)
    if isinstance(v, Name):
        return v.dotted
    if isinstance(v, Tuple):
        inner = ", ".join(describe(i) for i in v.items)
        return f"({inner},)" if len(v.items) == 1 else f"({inner})"
    if isinstance(v, List):
        return "[" + ", ".join(describe(i) for i in v.items) + "]"
    if isinstance(v, Call):
        return f"{v.name.dotted}({_describe_args(v.args)})"
    if isinstance(v, Applied):
        return f"{describe(v.layer)}({_describe_args(v.args)})"
    if isinstance(v, Open):
        return str(v.expr)
    if isinstance(v, BinOp):
        if len(v.items) == 1:
            return SYMBOL[v.op] + describe(v.items[0])
        return f"{describe(v.items[0])} {SYMBOL[v.op]} {describe(v.items[1])}"
    return "?"


def _describe_args(args: tuple[Arg, ...]) -> str:
    return ", ".join((f"{a.keyword}=" if a.keyword else "") + describe(a.value) for a in args)
