"""Argument converters: a syntax value -> a checked Python value.

Each converter takes the value node and the argument's name and returns the
normalised value (tuples filled to the layer's rank, strings lower-cased as
Keras does) or raises `ArgError` pointing at the value. They follow Keras 3's
own validation (keras/src/utils/argument_validation.py) so that cnnc accepts
and refuses what Keras accepts and refuses.
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from cnnc.analysis.symbolic import Expr, dim
from cnnc.language import syntax as S
from cnnc.support.diagnostics import Span, did_you_mean

Converter = Callable[[S.Value, str], Any]


class ArgError(Exception):
    def __init__(self, message: str, span: Span | None, *notes: str):
        super().__init__(message)
        self.message = message
        self.span = span
        self.notes = [n for n in notes if n]


_CONSTANTS = {"None": None, "True": True, "False": False}


def literal(v: S.Value, name: str = "value") -> Any:
    """The plain Python value of numbers, strings, None/True/False, tuples, lists."""
    if isinstance(v, S.Number) and isinstance(v.value, float) and not math.isfinite(v.value):
        # a Keras config's NaN/Infinity, a script's float("nan"): no argument wants one
        raise ArgError(f"`{name}` must be a finite number, got {v.value!r}", v.span)
    if isinstance(v, (S.Number, S.String)):
        return v.value
    if isinstance(v, S.Open):
        return v.expr
    if isinstance(v, S.Name) and v.dotted in _CONSTANTS:
        return _CONSTANTS[v.dotted]
    if isinstance(v, S.Tuple):
        return tuple(literal(i, name) for i in v.items)
    if isinstance(v, S.List):
        return [literal(i, name) for i in v.items]
    if isinstance(v, (S.Name, S.BinOp)) and _non_finite_name(v):
        # how a Keras config's NaN or Infinity reads as .cnn text (cnnc import writes `inf`)
        raise ArgError(f"`{name}` must be a finite number, got {_non_finite_name(v)}", v.span)
    if isinstance(v, S.BinOp):
        names = [i.dotted for i in v.items if isinstance(i, S.Name)]
        raise ArgError(f"`{name}`: {S.describe(v)} uses {', '.join(repr(n) for n in names) or 'a name'}, "
                       "which is not a number defined earlier in the file", v.span)
    if isinstance(v, S.Name):
        hint = did_you_mean(v.dotted, _CONSTANTS)
        raise ArgError(f"`{name}` cannot be the name {v.dotted!r}", v.span,
                       hint or f"if you meant a string, quote it: '{v.dotted}'")
    raise ArgError(f"`{name}` cannot be a call here: {S.describe(v)}", v.span)


_NON_FINITE = {"inf", "nan", "Infinity", "NaN", "infinity", "Inf"}


def _non_finite_name(v: S.Value) -> str:
    """'inf', '-inf' or 'nan' when `v` is such a name (or its negation), else ''."""
    if isinstance(v, S.Name) and v.dotted in _NON_FINITE:
        return "nan" if v.dotted.lower() == "nan" else "inf"
    if isinstance(v, S.BinOp) and v.op in ("neg", "pos") and len(v.items) == 1:
        inner = _non_finite_name(v.items[0])
        return ("-" + inner) if inner == "inf" and v.op == "neg" else inner
    return ""


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def expect_int(v: S.Value, name: str, minimum: int | None = None) -> int:
    x = literal(v, name)
    if isinstance(x, float) and x.is_integer() and abs(x) <= 2 ** 53:   # 32.0, not 1e308
        x = int(x)
    if not _is_int(x):
        raise ArgError(f"`{name}` must be an integer, got {S.describe(v)}", v.span)
    if minimum is not None and x < minimum:
        what = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise ArgError(f"`{name}` must be {what}, got {x}", v.span)
    return x


def positive_int(v: S.Value, name: str) -> int:
    return expect_int(v, name, minimum=1)


def count(v: S.Value, name: str) -> int | Expr:
    """A count that may be open (units=num_classes): a positive int, or an expression in
    open dimensions that is positive for every value (dimensions are >= 1; every
    coefficient positive)."""
    x = literal(v, name)
    if isinstance(x, Expr):
        if not positive_everywhere(x):
            raise ArgError(f"`{name}` must be positive for every value of its open sizes, got "
                           f"{S.describe(v)}", v.span)
        return x
    return expect_int(v, name, minimum=1)


def positive_everywhere(x: Expr) -> bool:
    """Every coefficient positive: dimensions are >= 1, so the expression is >= 1."""
    return all(c > 0 for _, c in x.terms)

def any_int(v: S.Value, name: str) -> int:
    return expect_int(v, name)


def optional_int(v: S.Value, name: str) -> int | None:
    return None if literal(v, name) is None else expect_int(v, name)


def tuple_of(n: int, allow_zero: bool = False) -> Converter:
    """Keras's standardize_tuple: an int, or n ints; > 0 (>= 0 with allow_zero)."""
    def convert(v: S.Value, name: str) -> tuple[int, ...]:
        x = literal(v, name)
        if isinstance(x, list):
            x = tuple(x)
        if _is_int(x):
            x = (x,) * n
        elif not isinstance(x, tuple) or len(x) != n:
            shape = "an integer or a tuple of " + (f"{n} integers" if n > 1 else "1 integer")
            raise ArgError(f"`{name}` must be {shape}, got {S.describe(v)}", v.span,
                           f"e.g. {name}={_example(n)}" if n > 1 else "")
        x = tuple(int(i) if isinstance(i, float) and i.is_integer() else i for i in x)
        bad = [i for i in x if not _is_int(i)]
        if bad:
            raise ArgError(f"`{name}` must hold integers, got {S.describe(v)}", v.span)
        low = [i for i in x if (i < 0 if allow_zero else i <= 0)]
        if low:
            need = ">= 0" if allow_zero else "> 0"
            raise ArgError(f"`{name}` values must be {need}, got {S.describe(v)}", v.span)
        return x
    return convert


def _example(n: int) -> str:
    return "(" + ", ".join(["3"] * n) + ")"


def fraction(lo: float, hi: float, hi_open: bool = False) -> Converter:
    def convert(v: S.Value, name: str) -> float:
        x = literal(v, name)
        if not isinstance(x, (int, float)) or isinstance(x, bool):
            raise ArgError(f"`{name}` must be a number, got {S.describe(v)}", v.span)
        ok = lo <= x < hi if hi_open else lo <= x <= hi
        if not ok:
            bracket = ")" if hi_open else "]"
            raise ArgError(f"`{name}` must be in [{lo:g}, {hi:g}{bracket}, got {S.describe(v)}", v.span)
        return float(x)
    return convert


FLOAT32_MAX = 3.4028234663852886e38     # numpy.finfo(float32).max, without NumPy
FLOAT32_TINY = 1.401298464324817e-45    # the smallest positive float32 (a subnormal)


def number(minimum: float | None = None, strict: bool = False) -> Converter:
    """A real number, finite and within float32's range (cnnc computes in float32: 1e300
    would be inf, 1e-50 would be 0); >= minimum (> with strict)."""
    def convert(v: S.Value, name: str) -> float:
        x = literal(v, name)
        if not isinstance(x, (int, float)) or isinstance(x, bool):
            raise ArgError(f"`{name}` must be a number, got {S.describe(v)}", v.span)
        if minimum is not None and (x <= minimum if strict else x < minimum):
            rel = ">" if strict else ">="
            raise ArgError(f"`{name}` must be {rel} {minimum:g}, got {S.describe(v)}", v.span)
        if abs(x) > FLOAT32_MAX:
            raise ArgError(f"`{name}` is {S.describe(v)}, beyond float32's range (at most "
                           f"{FLOAT32_MAX:.4g})", v.span, "cnnc computes in float32, as Keras does")
        if strict and minimum == 0 and x < FLOAT32_TINY / 2:
            raise ArgError(f"`{name}` is {S.describe(v)}, which is 0 in float32 and must be > 0",
                           v.span, "cnnc computes in float32, as Keras does")
        return float(x)
    return convert


def optional(conv: Converter) -> Converter:
    def convert(v: S.Value, name: str) -> Any:
        if isinstance(v, S.Name) and v.dotted == "None":
            return None
        return conv(v, name)
    return convert


def boolean(v: S.Value, name: str) -> bool:
    x = literal(v, name)
    if not isinstance(x, bool):
        raise ArgError(f"`{name}` must be True or False, got {S.describe(v)}", v.span)
    return x


def string(v: S.Value, name: str) -> str:
    x = literal(v, name)
    if not isinstance(x, str):
        raise ArgError(f"`{name}` must be a string, got {S.describe(v)}", v.span)
    return x


def choice(options: Sequence[str], lower: bool = True) -> Converter:
    def convert(v: S.Value, name: str) -> str:
        x = string(v, name)
        key = x.lower() if lower else x
        if key not in options:
            quoted = ", ".join(repr(o) for o in options)
            raise ArgError(f"`{name}` must be one of {quoted}; got {x!r}", v.span,
                           did_you_mean(key, options))
        return key
    return convert


def layer_name(v: S.Value, name: str) -> str:
    x = string(v, name)
    if not x:
        raise ArgError("`name` cannot be empty", v.span)
    if "/" in x:
        raise ArgError(f"`name` cannot contain '/': {x!r}", v.span,
                       "Keras refuses it too: '/' separates layer and weight in weight paths")
    return x


def shape(v: S.Value, name: str) -> tuple[int | None, ...]:
    """A sample shape: positive ints, None for a size known only at run time, and open
    sizes: a name not defined anywhere (`input (H, W, 3)`) stands for a size Keras leaves
    as None, named; an open dimension declared with `name: int` for one fixed before the
    model is built."""
    if isinstance(v, S.Tuple):
        v = S.Tuple(tuple(_open_name(i) for i in v.items), v.span)
    x = literal(v, name)
    if _is_int(x):
        x = (x,)
    if isinstance(x, list):
        x = tuple(x)
    if not isinstance(x, tuple) or not x:
        raise ArgError(f"`{name}` must be a tuple of sizes such as (28, 28, 1), got {S.describe(v)}",
                       v.span)
    for item in x:
        if isinstance(item, Expr):
            if not positive_everywhere(item):
                raise ArgError(f"`{name}` sizes must be positive for every value of their open "
                               f"sizes, got {S.describe(v)}", v.span)
        elif item is not None and (not _is_int(item) or item <= 0):
            raise ArgError(f"`{name}` sizes must be positive integers or None, got {S.describe(v)}",
                           v.span)
    return x


def _open_name(item: S.Value) -> S.Value:
    """A plain name in a shape that is not a constant: a size left open (Keras's None),
    named by the source."""
    if isinstance(item, S.Name) and len(item.parts) == 1 and item.dotted not in _CONSTANTS:
        return S.Open(dim(item.dotted, none=True), item.span)
    return item


_UNSET = object()


def must_be(*allowed: Any, why: str) -> Converter:
    """An argument cnnc accepts only at the values that change nothing."""
    def convert(v: S.Value, name: str) -> Any:
        try:
            x = literal(v, name)
        except ArgError:
            x = _UNSET
        # Compare types too, so that True is not taken for 1.
        if not any(type(x) is type(a) and x == a for a in allowed):
            raise ArgError(f"cnnc does not support {name}={S.describe(v)}", v.span, why)
        return x
    return convert


@dataclass(frozen=True)
class Regularizer:
    """Keras's L1/L2/L1L2 weight penalty: l1 * sum(|w|) + l2 * sum(w**2)."""

    l1: float = 0.0
    l2: float = 0.0

    def __str__(self) -> str:
        return f"L1L2(l1={self.l1:g}, l2={self.l2:g})"


# Keras 3 spellings -> (parameters in order, defaults). l1/l2/l1_l2 are the classes' aliases.
_REGULARIZERS = {"L1": (("l1", 0.01),), "L2": (("l2", 0.01),), "L1L2": (("l1", 0.0), ("l2", 0.0))}
_REG_NAMES = {"L1": "L1", "l1": "L1", "L2": "L2", "l2": "L2", "L1L2": "L1L2", "l1l2": "L1L2"}
_REG_CALLS = {**_REG_NAMES, "l1_l2": "L1L2"}


def regularizer(v: S.Value, name: str) -> Regularizer | None:
    """None, 'l2', l2(0.001), L1L2(l1=0.01, l2=0.01), keras.regularizers.L2(1e-4), ..."""
    if isinstance(v, S.Name) and v.dotted == "None":
        return None
    if isinstance(v, S.String):
        cls, span, args, table = v.value, v.span, (), _REG_NAMES
    elif isinstance(v, S.Call):
        cls, span, args, table = v.name.last, v.name.span, v.args, _REG_CALLS
    else:
        raise ArgError(f"`{name}` must be a regularizer such as l2(0.001) or 'l2', got "
                       f"{S.describe(v)}", v.span)
    canonical = table.get(cls)
    if canonical is None:
        known = sorted(set(table))
        raise ArgError(f"unknown or unsupported regularizer {cls!r}", span,
                       did_you_mean(cls, known) or "supported: " + ", ".join(known))
    values = bind_simple(f"{cls}()", _REGULARIZERS[canonical], args, span)
    for key, x in values.items():
        if isinstance(x, bool) or not isinstance(x, (int, float)) or x < 0:
            raise ArgError(f"{cls}() needs {key} >= 0, got {x!r}", span)
    return Regularizer(float(values.get("l1", 0.0)), float(values.get("l2", 0.0)))


@dataclass(frozen=True)
class Initializer:
    """An initializer as written: Keras class name and its arguments."""

    name: str
    args: tuple[tuple[str, Any], ...] = ()

    def get(self, key: str, default: Any = None) -> Any:
        return dict(self.args).get(key, default)

    def __str__(self) -> str:
        if not self.args:
            return self.name
        return f"{self.name}({', '.join(f'{k}={v!r}' for k, v in self.args)})"


# Keras 3 initializers cnnc implements: class name -> (parameter, default) in order.
INITIALIZERS: dict[str, tuple[tuple[str, Any], ...]] = {
    "Zeros": (), "Ones": (),
    "Constant": (("value", 0.0),),
    "RandomNormal": (("mean", 0.0), ("stddev", 0.05), ("seed", None)),
    "RandomUniform": (("minval", -0.05), ("maxval", 0.05), ("seed", None)),
    "TruncatedNormal": (("mean", 0.0), ("stddev", 0.05), ("seed", None)),
    "VarianceScaling": (("scale", 1.0), ("mode", "fan_in"),
                        ("distribution", "truncated_normal"), ("seed", None)),
    "GlorotUniform": (("seed", None),), "GlorotNormal": (("seed", None),),
    "HeNormal": (("seed", None),), "HeUniform": (("seed", None),),
    "LecunNormal": (("seed", None),), "LecunUniform": (("seed", None),),
}
_INIT_ALIASES = {"normal": "RandomNormal", "uniform": "RandomUniform", "zero": "Zeros", "one": "Ones"}
_KERAS_ONLY_INITS = {"Orthogonal", "Identity", "STFT", "orthogonal", "identity", "stft"}


@functools.lru_cache(maxsize=None)
def snake_case(name: str) -> str:
    """Keras's to_snake_case: Conv2D -> conv2d, MaxPooling2D -> max_pooling2d."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


_INIT_BY_NAME = {**{c: c for c in INITIALIZERS}, **{snake_case(c): c for c in INITIALIZERS},
                 **_INIT_ALIASES}


def initializer(v: S.Value, name: str) -> Initializer:
    """'he_normal', HeNormal(), keras.initializers.RandomNormal(stddev=0.01), ..."""
    if isinstance(v, S.Call):
        cls, span, args = v.name.last, v.name.span, v.args
    elif isinstance(v, S.String):
        cls, span, args = v.value, v.span, ()
    else:
        raise ArgError(f"`{name}` must be an initializer name such as 'he_normal' or a call such "
                       f"as RandomNormal(stddev=0.01), got {S.describe(v)}", v.span)
    canonical = _INIT_BY_NAME.get(cls)
    if canonical is None:
        if cls in _KERAS_ONLY_INITS:
            raise ArgError(f"cnnc does not support the initializer {cls!r}", span,
                           "supported: " + ", ".join(sorted(INITIALIZERS)))
        raise ArgError(f"unknown initializer {cls!r}", span,
                       did_you_mean(cls, list(_INIT_BY_NAME)) or
                       "supported: " + ", ".join(sorted(INITIALIZERS)))
    params = INITIALIZERS[canonical]
    values = bind_simple(f"{canonical}()", params, args, span)
    return Initializer(canonical, tuple(values.items()))


def bind_simple(what: str, params: Sequence[tuple[str, Any]], args: Sequence[S.Arg],
                span: Span) -> dict[str, Any]:
    """Bind literal arguments to (name, default) pairs as Python would."""
    names = [p for p, _ in params]
    out = dict(params)
    given: set[str] = set()
    positional = [a for a in args if a.keyword is None]
    if len(positional) > len(names):
        extra = positional[len(names)]
        raise ArgError(f"{what} takes at most {len(names)} positional argument(s)", extra.span)
    for p, a in zip(names, positional):
        out[p] = literal(a.value, p)
        given.add(p)
    for a in args:
        if a.keyword is None:
            continue
        if a.keyword not in names:
            raise ArgError(f"{what} has no argument `{a.keyword}`", a.keyword_span or a.span,
                           did_you_mean(a.keyword, names))
        if a.keyword in given:
            raise ArgError(f"{what} got `{a.keyword}` twice", a.span)
        out[a.keyword] = literal(a.value, a.keyword)
        given.add(a.keyword)
    return out
