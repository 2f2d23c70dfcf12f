"""Arithmetic on numbers in a .cnn file (`1. / 255`, `filters * 2`), worked out before
anything runs. Bounded: no result beyond 2**63, no exponent beyond 64."""

from __future__ import annotations

from cnnc.language import syntax as S
from cnnc.support.diagnostics import Span

SYMBOL = S.SYMBOL
OPERATORS = frozenset(SYMBOL)
MAX_MAGNITUDE = 2 ** 63     # beyond any size or count a model can have


class FoldError(Exception):
    def __init__(self, message: str, span: Span, *notes: str):
        super().__init__(message)
        self.message, self.span, self.notes = message, span, notes


def combine(op: str, items: list[S.Value], span: Span) -> S.Value:
    """A Number when every operand is one; a BinOp to fold later when an operand is a
    name (a constant defined in the file); FoldError for anything else."""
    if all(isinstance(i, S.Number) for i in items):
        return fold(op, items, span)
    for item in items:
        if not isinstance(item, (S.Number, S.Name, S.BinOp, S.Applied)):
            raise FoldError(f"'{SYMBOL[op]}' works on numbers only, got {S.describe(item)}",
                            item.span, "the .cnn language has no arithmetic on strings, lists or calls")
    return S.BinOp(op, tuple(items), span)


def fold(op: str, items: list[S.Number], span: Span) -> S.Number:
    vals = [i.value for i in items]
    try:
        value = _compute(op, vals)
    except ZeroDivisionError:
        raise FoldError("division by zero", span) from None
    except (OverflowError, ValueError):
        raise FoldError("the result of this arithmetic is too large", span) from None
    if isinstance(value, complex) or abs(value) > MAX_MAGNITUDE:
        raise FoldError("the result of this arithmetic is out of range", span)
    if len(items) == 1:
        text = SYMBOL[op] + items[0].text
    else:
        text = f"{items[0].text} {SYMBOL[op]} {items[1].text}"
    return S.Number(value, text, span)


def _compute(op: str, v: list) -> int | float:
    if op == "neg":
        return -v[0]
    if op == "pos":
        return v[0]
    a, b = v
    if op == "pow" and abs(b) > 64:   # bounded work: no 10 ** 10 ** 10
        raise OverflowError
    return {"add": lambda: a + b, "sub": lambda: a - b, "mul": lambda: a * b,
            "div": lambda: a / b, "floordiv": lambda: a // b, "mod": lambda: a % b,
            "pow": lambda: a ** b}[op]()
