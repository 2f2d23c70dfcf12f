"""Sizes not known yet: exact integer expressions in named dimensions.

A dimension (`Dim`) is a positive integer the source leaves open: a class count taken
from data (`num_classes`), a free image size (`H` of `input (H, W, 3)`, or an axis Keras
leaves as `None`). A size computed from dimensions is an `Expr`: an integer polynomial
whose atoms are dimensions and floors of expressions divided by a positive integer, in a
canonical form (a floor's numerator has coefficients in [0, divisor), no common factor
with it, and nested floors are merged), so equal sizes mostly compare equal and the
constraint solver (constraints.py) decides the rest.

Every operation gives a plain int when the result is constant: code that computes sizes
(`(n - k) // s + 1`, `math.prod(shape)`) works unchanged on ints and expressions alike.
Ordering comparisons are not defined on expressions: a rule that checks a size states
the check as a constraint (constraints.py), it does not branch on it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Mapping, Union

# a monomial: ((atom, power), ...) sorted by atom key; () is the constant monomial
_Mono = tuple
_Poly = dict


@dataclass(frozen=True)
class Dim:
    """An open dimension. `none`: it stands for an axis Keras leaves as None (Keras
    refuses it where a layer needs a defined size, and so does cnnc). `auto`: the source
    wrote None and cnnc named it (H, W, ...): shown as None, as Keras shows it."""

    name: str
    none: bool = False
    auto: bool = False

    @property
    def key(self) -> tuple:
        return (0, self.name)

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class Floor:
    """floor(num / den): num a non-constant Expr, den >= 2."""

    num: "Expr"
    den: int

    @property
    def key(self) -> tuple:
        return (1, self.den, self.num.key)

    def __str__(self) -> str:
        # floor((e + den - 1) / den) reads better as ceil(e / den)
        const = self.num.constant
        if const == self.den - 1:
            return f"ceil({_paren(self.num - const)}/{self.den})"
        return f"floor({_paren(self.num)}/{self.den})"


Atom = Union[Dim, Floor]


def _paren(e: "Expr") -> str:
    text = str(e)
    return f"({text})" if len(e.terms) > 1 or e.terms[0][1] < 0 else text


class Expr:
    """An integer polynomial in atoms; never a constant (constants are ints)."""

    __slots__ = ("terms", "_key", "_hash")

    def __init__(self, terms: tuple):
        self.terms = terms          # ((monomial, coefficient), ...) sorted, no zero coefficient
        self._key = None
        self._hash = None

    # --- identity ----------------------------------------------------------------------

    @property
    def key(self) -> tuple:
        if self._key is None:
            self._key = tuple((tuple((a.key, p) for a, p in m), c) for m, c in self.terms)
        return self._key

    def __eq__(self, other) -> bool:
        return isinstance(other, Expr) and self.key == other.key

    def __hash__(self) -> int:
        if self._hash is None:
            self._hash = hash(self.key)
        return self._hash

    def __bool__(self) -> bool:
        raise TypeError("an open size has no truth value: state the check as a constraint")

    def __lt__(self, other):
        raise TypeError("open sizes are not ordered: state the check as a constraint")

    __le__ = __gt__ = __ge__ = __lt__

    # --- arithmetic --------------------------------------------------------------------

    def __add__(self, other):
        return add(self, other)

    __radd__ = __add__

    def __sub__(self, other):
        return add(self, mul(other, -1))

    def __rsub__(self, other):
        return add(other, mul(self, -1))

    def __neg__(self):
        return mul(self, -1)

    def __pos__(self):
        return self

    def __mul__(self, other):
        return mul(self, other)

    __rmul__ = __mul__

    def __floordiv__(self, other):
        if not isinstance(other, int) or isinstance(other, bool) or other < 1:
            return NotImplemented
        return floor_div(self, other)

    # --- reading -----------------------------------------------------------------------

    @property
    def constant(self) -> int:
        return next((c for m, c in self.terms if m == ()), 0)

    def __str__(self) -> str:
        return render(self)

    def __repr__(self) -> str:
        return f"Expr({render(self)})"


Size = Union[int, Expr, None]


# --- canonical polynomials -----------------------------------------------------------------

def _poly(x) -> _Poly:
    if isinstance(x, Expr):
        return dict(x.terms)
    if isinstance(x, (Dim, Floor)):
        return {((x, 1),): 1}
    if isinstance(x, bool) or not isinstance(x, int):
        raise TypeError(f"not an integer size: {x!r}")
    return {(): x} if x else {}


def _make(poly: _Poly) -> int | Expr:
    poly = {m: c for m, c in poly.items() if c}
    if not poly:
        return 0
    if list(poly) == [()]:
        return poly[()]
    terms = sorted(poly.items(), key=lambda t: (len(t[0]), tuple((a.key, p) for a, p in t[0])))
    return Expr(tuple(terms))


def _mono_mul(a: _Mono, b: _Mono) -> _Mono:
    powers: dict = {}
    atoms: dict = {}
    for atom, p in (*a, *b):
        powers[atom.key] = powers.get(atom.key, 0) + p
        atoms[atom.key] = atom
    return tuple((atoms[k], powers[k]) for k in sorted(powers))


def add(a, b) -> int | Expr:
    if isinstance(a, int) and isinstance(b, int) and not isinstance(a, bool) and not isinstance(b, bool):
        return a + b
    out = _poly(a)
    for m, c in _poly(b).items():
        out[m] = out.get(m, 0) + c
    return _make(out)


def mul(a, b) -> int | Expr:
    if isinstance(a, int) and isinstance(b, int) and not isinstance(a, bool) and not isinstance(b, bool):
        return a * b
    out: _Poly = {}
    for m1, c1 in _poly(a).items():
        for m2, c2 in _poly(b).items():
            m = _mono_mul(m1, m2)
            out[m] = out.get(m, 0) + c1 * c2
    return _make(out)


def floor_div(x, c: int) -> int | Expr:
    """floor(x / c), c a positive int, in canonical form."""
    if c < 1:
        raise ValueError(f"floor division by {c}")
    if isinstance(x, int):
        return x // c
    if c == 1:
        return x
    whole: _Poly = {}
    rest: _Poly = {}
    for m, a in _poly(x).items():
        q, r = divmod(a, c)
        if q:
            whole[m] = q
        if r:
            rest[m] = r
    const = rest.pop((), 0)
    if not rest:                       # 0 <= const < c
        return _make(whole)
    g = math.gcd(c, *rest.values())
    c, const = c // g, const // g
    rest = {m: a // g for m, a in rest.items()}
    if c == 1:
        return add(_make(whole), _make({**rest, (): const}))
    inner = _single_floor(rest)
    if inner is not None:              # floor((floor(e/d) + k)/c) = floor((e + d*k)/(d*c))
        return add(_make(whole), floor_div(add(inner.num, inner.den * const), inner.den * c))
    atom = Floor(_make({**rest, (): const}), c)
    whole[((atom, 1),)] = whole.get(((atom, 1),), 0) + 1
    return _make(whole)


def _single_floor(poly: _Poly) -> Floor | None:
    if len(poly) == 1:
        (m, a), = poly.items()
        if a == 1 and len(m) == 1 and m[0][1] == 1 and isinstance(m[0][0], Floor):
            return m[0][0]
    return None


def ceil_div(x, c: int) -> int | Expr:
    return floor_div(add(x, c - 1), c)


def exact_div(x, c: int) -> int | Expr | None:
    """x / c when every coefficient of x is a multiple of c (so the quotient is an exact
    polynomial), else None."""
    if isinstance(x, int):
        return x // c if x % c == 0 else None
    poly = _poly(x)
    if all(a % c == 0 for a in poly.values()):
        return _make({m: a // c for m, a in poly.items()})
    return None


# --- reading expressions -------------------------------------------------------------------

def is_open(x) -> bool:
    return isinstance(x, Expr)


def atoms_of(x) -> Iterable[Atom]:
    if not isinstance(x, Expr):
        return
    for m, _ in x.terms:
        for atom, _ in m:
            yield atom
            if isinstance(atom, Floor):
                yield from atoms_of(atom.num)


def dims_of(x) -> dict[str, Dim]:
    """The dimensions an expression depends on, by name."""
    return {a.name: a for a in atoms_of(x) if isinstance(a, Dim)}


def undefined_in_keras(x) -> bool:
    """Whether Keras would see None here: the size depends on an axis Keras leaves open."""
    return any(d.none for d in dims_of(x).values())


def shown_as_none(x) -> bool:
    """Whether a summary shows None here, as Keras does: it depends on a size the source
    wrote as None (the names cnnc gave those are explained under the table)."""
    return any(d.auto for d in dims_of(x).values())


def evaluate(x, values: Mapping[str, int]) -> int:
    """The value of a size once its dimensions are known (KeyError names a missing one)."""
    if x is None or isinstance(x, int):
        return x
    total = 0
    for m, c in x.terms:
        term = c
        for atom, p in m:
            v = values[atom.name] if isinstance(atom, Dim) else evaluate(atom.num, values) // atom.den
            term *= v ** p
        total += term
    return total


def substitute(x, values: Mapping[str, int]):
    """`x` with the dimensions named in `values` replaced by them (others stay open)."""
    if not isinstance(x, Expr):
        return x
    total = 0
    for m, c in x.terms:
        term = c
        for atom, p in m:
            if isinstance(atom, Dim):
                v = values.get(atom.name, atom)
            else:
                v = floor_div(substitute(atom.num, values), atom.den)
            for _ in range(p):
                term = mul(term, v)
        total = add(total, term)
    return total


def keras_view(shape: tuple) -> tuple:
    """A shape as Keras shows it before the sizes are known: None for each open size."""
    return tuple(None if isinstance(n, Expr) else n for n in shape)


def dim(name: str, none: bool = False, auto: bool = False) -> Expr:
    """The expression that is just one dimension."""
    return _make({((Dim(name, none, auto), 1),): 1})


def render(x, constant_first: bool = False, digits: bool = False) -> str:
    """Readable text: `2*floor(H/2) + 1`; `constant_first` for counts (`3,987,904 +
    129*num_classes`), `digits` groups the constant's digits."""
    if not isinstance(x, Expr):
        return f"{x:,}" if digits and isinstance(x, int) else str(x)
    terms = []                                     # (coefficient, text without its sign)
    for m, c in x.terms:
        if m == ():
            text = f"{abs(c):,}" if digits else str(abs(c))
        else:
            body = "*".join(str(a) if p == 1 else f"{a}^{p}" for a, p in m)
            text = body if abs(c) == 1 else f"{abs(c)}*{body}"
        terms.append((c, text, m == ()))
    # the constant comes first in canonical order; counts keep it there, sizes put it last
    if not constant_first and terms[0][2]:
        terms = terms[1:] + terms[:1]
    out = ("-" if terms[0][0] < 0 else "") + terms[0][1]
    for c, text, _ in terms[1:]:
        out += f" {'-' if c < 0 else '+'} {text}"
    return out


def count_text(n) -> str:
    """A count as reports show it: 1,234,567, an expression in open dimensions
    (`3,987,904 + 129*num_classes`), or ? when unknown."""
    if n is None:
        return "?"
    if isinstance(n, Expr):
        return render(n, constant_first=True, digits=True)
    return f"{n:,}"

