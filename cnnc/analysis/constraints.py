"""Which values of the open dimensions a model works for.

A rule that checks a size (a kernel fits, a merge's inputs agree, a reshape's sizes
match) states the check on expressions: `size >= k` or `a == b`. A check that holds for
every value is dropped; one no value satisfies is an error with its arithmetic; one that
restricts a single dimension narrows that dimension's `SizeSet`, solved exactly:
expressions built from + - * and floor division by constants are, on each residue class
of a period L, affine in the class index (x = L*q + r gives e(x) = e(r) + D*q), so each
check becomes a bound on q per residue. Checks on several dimensions at once are kept as
conditions, stated exactly and evaluated once the values are known.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

from cnnc.analysis.symbolic import Dim, Floor, dims_of, evaluate, render

MAX_PERIOD = 1 << 16      # beyond this the set is not solved in closed form


class NotAffine(Exception):
    """The expression is not affine on residue classes (a product of dimensions)."""


Interval = tuple  # (lo, hi): values lo, lo + period, ..., hi (hi None: no end)


@dataclass(frozen=True)
class SizeSet:
    """Positive integers: for each residue r of `period`, the values v = r (mod period)
    in a few intervals (sorted, disjoint; hi None: no bound)."""

    period: int
    ranges: tuple[tuple[Interval, ...], ...]

    @staticmethod
    def everything() -> "SizeSet":
        return SizeSet(1, (((1, None),),))

    def __contains__(self, v: int) -> bool:
        return v >= 1 and any(lo <= v and (hi is None or v <= hi)
                              for lo, hi in self.ranges[v % self.period])

    @property
    def empty(self) -> bool:
        return not any(self.ranges)

    @property
    def is_everything(self) -> bool:
        return all(len(rs) == 1 and rs[0][1] is None and rs[0][0] <= (i or self.period)
                   for i, rs in enumerate(self.ranges))

    @property
    def bounded(self) -> bool:
        return all(hi is not None for rs in self.ranges for _, hi in rs)

    def first(self, n: int, start: int = 1) -> list[int]:
        """The n smallest values (from `start`)."""
        out: list[int] = []
        heads = []
        for r, rs in enumerate(self.ranges):
            for lo, hi in rs:
                v = max(lo, _align_up(start, r, self.period))
                if hi is None or v <= hi:
                    heads.append([v, hi])
        while heads and len(out) < n:
            heads.sort(key=lambda h: h[0])
            v, hi = heads[0]
            out.append(v)
            heads[0][0] = v + self.period
            if hi is not None and heads[0][0] > hi:
                heads.pop(0)
        return out

    def _combine(self, other: "SizeSet", op) -> "SizeSet | None":
        period = math.lcm(self.period, other.period)
        if period > MAX_PERIOD:
            return None
        ranges = []
        for r in range(period):
            a = _lift(self.ranges[r % self.period], r, period)
            b = _lift(other.ranges[r % other.period], r, period)
            ranges.append(op(a, b, period))
        return SizeSet(period, tuple(ranges)).reduced()

    def intersect(self, other: "SizeSet") -> "SizeSet | None":
        """The common values; None when the period would grow beyond MAX_PERIOD."""
        return self._combine(other, _intersect_intervals)

    def union(self, other: "SizeSet") -> "SizeSet | None":
        return self._combine(other, lambda a, b, p: _normal(list(a) + list(b), p))

    def reduced(self) -> "SizeSet":
        """The same set with the smallest period that describes it."""
        for p in range(1, self.period):
            if self.period % p == 0:
                candidate = self._with_period(p)
                if candidate is not None:
                    return candidate
        return self

    def _with_period(self, p: int) -> "SizeSet | None":
        ranges = []
        for r in range(p):
            merged = _normal([iv for s in range(r, self.period, p) for iv in
                              _relax(self.ranges[s], p)], p)
            for s in range(r, self.period, p):
                if _lift(merged, s, self.period) != self.ranges[s]:
                    return None
            ranges.append(merged)
        return SizeSet(p, tuple(ranges))

    def describe(self) -> str:
        """Closed form where there is one ("multiples of 16, at least 32"), else the first
        valid values."""
        if self.empty:
            return "no size"
        if self.is_everything:
            return "any size"
        if self.bounded:
            values = self.first(4)
            if len(values) <= 3:
                return "only " + _listing(values)
        live = [(r, rs) for r, rs in enumerate(self.ranges) if rs]
        if all(len(rs) == 1 for _, rs in live):
            lows = [rs[0][0] for _, rs in live]
            highs = [rs[0][1] for _, rs in live]
            lo = min(lows)
            hi = None if None in highs else max(highs)
            same_lo = all(rs[0][0] == _align_up(lo, r, self.period) for r, rs in live)
            same_hi = all(h is None for h in highs) or (
                hi is not None and all(rs[0][1] == _align_down(hi, r, self.period) for r, rs in live))
            if same_lo and same_hi:
                residues = [r for r, _ in live]
                if self.period == 1:
                    return f"{lo} to {hi}" if hi is not None else f"at least {lo}"
                parts = [_residue_text(residues, self.period)]
                if any(rs[0][0] > (r or self.period) for r, rs in live):
                    parts.append(f"at least {lo}")
                if hi is not None:
                    parts.append(f"at most {hi}")
                return ", ".join(parts)
        values = self.first(7)
        more = len(values) > 6
        return "the sizes " + ", ".join(map(str, values[:6])) + (", ..." if more else "")


def _lift(intervals, r: int, period: int) -> tuple:
    """Intervals of a coarser period, restricted to residue r of `period`."""
    out = []
    for lo, hi in intervals:
        lo2 = _align_up(lo, r, period)
        hi2 = None if hi is None else _align_down(hi, r, period)
        if hi2 is None or lo2 <= hi2:
            out.append((lo2, hi2))
    return tuple(out)


def _relax(intervals, p: int) -> list:
    """Intervals of a finer period read with period p: the same end points."""
    return [(lo, hi) for lo, hi in intervals]


def _normal(intervals: list, period: int) -> tuple:
    """Sorted, merged intervals of one residue (touching ones joined)."""
    out: list = []
    for lo, hi in sorted(intervals, key=lambda iv: iv[0]):
        if out and (out[-1][1] is None or lo <= out[-1][1] + period):
            prev_lo, prev_hi = out[-1]
            out[-1] = (prev_lo, None if prev_hi is None or hi is None else max(prev_hi, hi))
        else:
            out.append((lo, hi))
    return tuple(out)


def _intersect_intervals(a, b, period: int) -> tuple:
    out = []
    for lo1, hi1 in a:
        for lo2, hi2 in b:
            lo = max(lo1, lo2)
            his = [h for h in (hi1, hi2) if h is not None]
            hi = min(his) if his else None
            if hi is None or lo <= hi:
                out.append((lo, hi))
    return _normal(out, period)


def _listing(values: Sequence[int]) -> str:
    if len(values) == 1:
        return str(values[0])
    return ", ".join(map(str, values[:-1])) + f" and {values[-1]}"


def _residue_text(residues: list[int], period: int) -> str:
    if period == 2:
        return "odd sizes" if residues == [1] else "even sizes"
    if residues == [0]:
        return f"multiples of {period}"
    if len(residues) == 1:
        return f"sizes of the form {period}k + {residues[0]}"
    return f"sizes that are {', '.join(map(str, residues))} mod {period}"


def _align_up(v: int, r: int, p: int) -> int:
    """The smallest value >= v that is r mod p."""
    return v + (r - v) % p


def _align_down(v: int, r: int, p: int) -> int:
    return v - (v - r) % p


# --- solving one check on one dimension ------------------------------------------------------

def _profile(x) -> tuple[int, int]:
    """(P, D) with x(v + P) = x(v) + D for every integer v: affine on residues mod P."""
    if isinstance(x, int):
        return 1, 0
    period, inc = 1, 0
    parts = []
    for m, c in x.terms:
        if m == ():
            continue
        if len(m) != 1 or m[0][1] != 1:
            raise NotAffine(render(x))
        atom = m[0][0]
        if isinstance(atom, Dim):
            p, d = 1, 1
        else:
            p, d = _floor_profile(atom)
        parts.append((p, c * d))
    for p, _ in parts:
        period = math.lcm(period, p)
        if period > MAX_PERIOD:
            raise NotAffine(render(x))
    for p, d in parts:
        inc += d * (period // p)
    return period, inc


def _floor_profile(atom: Floor) -> tuple[int, int]:
    p, d = _profile(atom.num)
    m = atom.den // math.gcd(d, atom.den) if d else 1
    return p * m, d * m // atom.den


def solve(x, relation: str) -> SizeSet:
    """The positive values of x's one dimension for which `x >= 0` (relation "ge") or
    `x == 0` ("eq") holds. NotAffine when x is not affine on residue classes."""
    names = list(dims_of(x))
    if len(names) != 1:
        raise ValueError("solve takes an expression in one dimension")
    name = names[0]
    period, inc = _profile(x)
    ranges = []
    for r in range(period):
        base = evaluate(x, {name: r})
        q_lo, q_hi = 1 if r == 0 else 0, None      # values >= 1
        if relation == "ge":
            if inc > 0:
                q_lo = max(q_lo, -(base // inc))
            elif inc < 0:
                q_hi = base // (-inc)
            elif base < 0:
                ranges.append(())
                continue
        else:
            if inc == 0:
                if base != 0:
                    ranges.append(())
                    continue
            elif base % inc:
                ranges.append(())
                continue
            else:
                q = -base // inc
                q_lo, q_hi = max(q_lo, q), q
        if q_hi is not None and q_hi < q_lo:
            ranges.append(())
            continue
        ranges.append(((r + period * q_lo, None if q_hi is None else r + period * q_hi),))
    return SizeSet(period, tuple(ranges)).reduced()


# --- the checks of one model ------------------------------------------------------------------

@dataclass(frozen=True)
class Check:
    """One size check a layer made: it holds when any of its terms holds (`expr >= 0`
    for "ge", `expr == 0` for "eq"); `text` says it as the rule does (a function giving
    the text is accepted: most checks hold for every value and are never shown)."""

    terms: tuple[tuple[object, str], ...]
    wording: object                 # str, or a function returning it
    layer: str
    line: int | None = None

    @property
    def text(self) -> str:
        return self.wording() if callable(self.wording) else self.wording

    def dims(self) -> dict[str, Dim]:
        out: dict[str, Dim] = {}
        for e, _ in self.terms:
            out.update(dims_of(e))
        return out

    def holds(self, values) -> bool:
        for e, rel in self.terms:
            v = evaluate(e, values)
            if (v >= 0 if rel == "ge" else v == 0):
                return True
        return False

    def solve(self) -> SizeSet | None:
        """The values of its one dimension that satisfy it; None when it involves several
        dimensions or is not affine (then it stays a condition)."""
        if len(self.dims()) != 1:
            return None
        out = None
        for e, rel in self.terms:
            if isinstance(e, int):
                part = SizeSet.everything() if (e >= 0 if rel == "ge" else e == 0) \
                    else SizeSet(1, ((),))
            else:
                try:
                    part = solve(e, rel)
                except NotAffine:
                    return None
            out = part if out is None else out.union(part)
            if out is None:
                return None
        return out


class Unsatisfiable(Exception):
    """A check that some values satisfy, but none that the earlier checks allow."""

    def __init__(self, dim: str, before: SizeSet, alone: SizeSet, check: Check):
        super().__init__(dim)
        self.dim, self.before, self.alone, self.check = dim, before, alone, check


@dataclass
class Constraints:
    """What a model needs of its open dimensions: a SizeSet per dimension, and the
    checks on several dimensions at once (conditions)."""

    dims: dict[str, Dim] = field(default_factory=dict)
    sets: dict[str, SizeSet] = field(default_factory=dict)
    checks: list[Check] = field(default_factory=list)        # the checks that narrowed a set
    conditions: list[Check] = field(default_factory=list)    # checks on several dimensions

    def declare(self, d: Dim) -> None:
        self.dims.setdefault(d.name, d)

    def require(self, check: Check) -> bool:
        """Record `check`; False when no value satisfies it alone (the caller reports that
        as the layer's error); Unsatisfiable when some values do, but none that the
        earlier checks allow."""
        found = check.dims()
        for d in found.values():
            self.declare(d)
        if not found:
            return check.holds({})
        alone = check.solve()
        if alone is None:
            self.checks.append(check)
            self.conditions.append(check)
            return True
        if alone.empty:
            return False
        if alone.is_everything:
            return True
        name = next(iter(found))
        before = self.sets.get(name, SizeSet.everything())
        both = before.intersect(alone)
        if both is None:                 # too fine a period to solve: keep it as a condition
            self.checks.append(check)
            self.conditions.append(check)
            return True
        if both.empty:
            raise Unsatisfiable(name, before, alone, check)
        if both != before:               # only the checks that narrow a set explain it
            self.sets[name] = both
            self.checks.append(check)
        return True

    def checks_of(self, name: str) -> list[Check]:
        return [c for c in self.checks if name in c.dims()]

    def describe(self, name: str) -> str:
        s = self.sets.get(name)
        return s.describe() if s is not None else "any size"

    def failures(self, values) -> list[Check]:
        """The checks that the given values (one per dimension) break."""
        out = []
        for c in self.checks:
            try:
                if not c.holds(values):
                    out.append(c)
            except KeyError:
                continue
        return out
