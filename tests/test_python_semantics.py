"""The script reader as an abstract interpreter of Python, checked against Python itself.

Each program below is pure Python (no Keras): Python runs it (the truth), cnnc's
evaluator follows it (never running it), and every variable cnnc claims to know must
equal Python's value. cnnc may say "unknown" (a value from a file, the clock), never a
different value. A seeded generator adds random programs over the same constructs.
"""

from __future__ import annotations

import ast
import random
import textwrap

import pytest

from cnnc.frontends.python.evaluator import Evaluator
from cnnc.frontends.python.modules import Project
from cnnc.frontends.python.source import SourceMap, read_python
from cnnc.frontends.python.values import Unknown
from cnnc.support.diagnostics import Reporter


def follow(code: str) -> dict:
    """The module's variables as cnnc's evaluator leaves them."""
    rep = Reporter("prog.py")
    src = read_python("prog.py", code, rep)
    smap = SourceMap(src)
    ev = Evaluator(smap, rep, None, None, Project(None, smap, rep))
    ev.run(src.chunks)
    assert not rep.has_errors, [d.message for d in rep.diagnostics]
    return ev.module_scope.vars


def python(code: str) -> dict:
    namespace: dict = {"__name__": "__main__"}
    exec(compile(code, "prog.py", "exec"), namespace)      # the truth: Python runs it
    return namespace


def plain(v) -> bool:
    if type(v) in (int, float, str, bool, type(None), bytes):
        return True
    if type(v) in (list, tuple, set, frozenset):
        return all(plain(x) for x in v)
    if type(v) is dict:
        return all(plain(k) and plain(x) for k, x in v.items())
    return False


def agree(code: str, names: list[str] | None = None, must_know: tuple = ()) -> None:
    code = textwrap.dedent(code)
    want = python(code)
    got = follow(code)
    names = names or [n for n in want if not n.startswith("_") and plain(want[n])]
    for n in names:
        assert n in got, f"{n}: cnnc lost the variable"
        if isinstance(got[n], Unknown):
            assert n not in must_know, f"{n}: cnnc does not know {want[n]!r}: {got[n].why}"
            continue
        assert got[n] == want[n] and type(got[n]) is type(want[n]), (n, got[n], want[n])


PROGRAMS = {
    "arithmetic and strings": """
        a = 7 // 2 + 3 ** 2 - 10 % 4 + (1 << 3)
        b = divmod(17, 5), pow(2, 10), abs(-3.5), round(2.675, 2), int("42") + int(3.9)
        c = "block{}_conv{}".format(3, 1) + "_%s_%03d" % ("bn", 7) + f"{a:>4}|{2.5:.2f}|{'x'!r}"
        d = "a,b,,c".split(",") + "  pad  ".strip().upper().split() + ["-".join(["x", "y"])]
        e = ("res" + str(2) + "a").replace("a", "b").title(), "abc"[::-1], "abc".startswith(("a", "z"))
        f = not (a > 3 and b[0] == (3, 2)) or None
        g = 3 if a else 4
        h = [i * i for i in range(6) if i % 2] + [x for x in "ab"]
        i = {k: v for k, v in zip("abc", range(3))}
        j = sorted({x % 3 for x in range(10)}, reverse=True)
        k = min(5, 3, key=lambda t: -t), max([(1, "b"), (1, "a")]), sum([1, 2, 3], 10)
        l = any(x > 2 for x in [1, 3]), all([]), list(enumerate("ab", start=1))
        m = list(map(lambda p, q: p * q, [1, 2], [3, 4])), list(filter(None, [0, 1, "", "x"]))
        n = list(reversed(range(3))), tuple(zip(*[(1, 2), (3, 4)])), dict(a=1, **{"b": 2})
        o = 1 < 2 < 3, 1 < 3 < 2, "a" in "cat", 3 not in [1, 2], [1, 2] == [1, 2], a is not None
        p = isinstance(3, (str, int)), isinstance(True, int), type([]) is list, type(3.0) == float
        q = chr(65) + str(ord("B")) + hex(255) + bin(5) + oct(8)
        r = [1, 2, 3][1:], (1, 2, 3)[::2], "hello"[-3:], list(range(10))[2:8:3]
        s = 2 ** -1, 7 / 2, -7 // 2, -7 % 3, 1e3, 3 * "ab", [0] * 3, (1, 2) + (3,)
        t = "%d items" % 3, "{0}{1}{0}".format("a", "b"), "{name}".format(name="n"), f"{3 * 4}"
        """,
    "functions, closures, scopes": """
        def f(a, b=2, *args, c, d=4, **kw):
            return a + b + sum(args) + c + d + sum(kw.values())
        r1 = f(1, c=3), f(1, 2, 3, 4, c=5, e=6), f(*[1, 2], **{"c": 3, "z": 1})
        def outer():
            n = 0
            def inc(by=1):
                nonlocal n
                n += by
                return n
            inc(); inc(5)
            return inc()
        r2 = outer()
        G = 1
        def setg():
            global G
            G = G * 10
        setg(); setg()
        r3 = G
        def pos(a, /, b):
            return a - b
        r4 = pos(5, b=2)
        adders = [lambda x, i=i: x + i for i in range(3)]
        r5 = [g(10) for g in adders]
        late = [lambda x: x + i for i in range(3)]
        r6 = [g(10) for g in late]
        def gen(n):
            for i in range(n):
                yield i * 2
            yield from [100, 101]
        r7 = list(gen(3)), sum(gen(2))
        def rec(n):
            return 1 if n <= 1 else n * rec(n - 1)
        r8 = rec(6)
        if (w := len("walrus")) > 3:
            r9 = w
        r10 = [y for x in range(4) if (y := x * 3) > 3]
        """,
    "classes": """
        class Base:
            scale = 2
            def __init__(self, n):
                self.n = n
            def width(self):
                return self.n * self.scale
            @staticmethod
            def s(x):
                return x + 1
            @classmethod
            def make(cls, n):
                return cls(n)
            @property
            def double(self):
                return self.n * 2
            def __len__(self):
                return self.n
        class Child(Base):
            scale = 3
            def width(self):
                return super().width() + 1
        class Grand(Child):
            def width(self):
                return super(Child, self).width() * 10
        c = Child.make(4)
        r1 = c.width(), Base.s(1), c.double, len(c), Grand(1).width(), type(c).__name__
        r2 = isinstance(c, Base), isinstance(c, Grand), issubclass(Child, Base)
        class P:
            def __init__(self):
                self._v = 1
            @property
            def v(self):
                return self._v
            @v.setter
            def v(self, value):
                self._v = value * 10
        p = P()
        p.v = 3
        r3 = p.v, getattr(p, "v"), getattr(p, "nope", 7), hasattr(p, "v"), hasattr(p, "nope")
        setattr(p, "w", 5)
        r4 = p.w
        class Vec:
            def __init__(self, x):
                self.x = x
            def __add__(self, o):
                return Vec(self.x + o.x)
            def __getitem__(self, i):
                return self.x * i
            def __call__(self, k):
                return self.x + k
            def __iter__(self):
                return iter([self.x, -self.x])
        v = Vec(2) + Vec(3)
        r5 = v.x, v[3], v(1), list(v)
        """,
    "standard library": """
        import functools, itertools, operator, math, copy
        from collections import namedtuple, OrderedDict, Counter, defaultdict
        from dataclasses import dataclass, field
        from enum import Enum, auto
        r1 = functools.reduce(operator.mul, [1, 2, 3, 4]), functools.reduce(lambda a, b: a + b, [], 5)
        p = functools.partial(lambda a, b, c=0: a * 100 + b * 10 + c, 1, c=3)
        r2 = p(2), p(b=5)
        r3 = list(itertools.product([1, 2], "ab")), list(itertools.chain([1], (2, 3))), \\
            list(itertools.accumulate([1, 2, 3])), list(itertools.combinations(range(4), 2)), \\
            list(itertools.islice(itertools.count(5, 2), 3)), list(zip(itertools.repeat(0), "ab")), \\
            list(itertools.chain.from_iterable([[1], [2, 3]])), list(itertools.zip_longest([1], [2, 3]))
        r4 = math.ceil(7 / 2), math.floor(-1.5), math.sqrt(16), math.prod((2, 3, 4)), math.log2(8), \\
            math.gcd(12, 18), int(math.pi * 100), math.isclose(0.1 + 0.2, 0.3)
        r5 = operator.itemgetter(1)([5, 6]), operator.itemgetter(0, 2)("abc"), operator.add(2, 3), \\
            operator.attrgetter("real")(3), operator.neg(4), operator.contains([1], 1)
        P = namedtuple("P", ["k", "s"])
        q = P(3, s=1)
        k, s = q
        r6 = q.k, q[1], k + s, tuple(q), P._fields if False else len(q)
        @dataclass
        class Cfg:
            filters: int = 8
            sizes: list = field(default_factory=lambda: [1, 2])
            name: str = "m"
        cfg = Cfg(filters=16)
        r7 = cfg.filters, cfg.sizes, cfg.name
        class Color(Enum):
            RED = auto()
            GREEN = auto()
            BLUE = "b"
        r8 = Color.RED.value, Color.GREEN.name, Color("b").name, [c.name for c in Color], Color.RED is Color.RED
        r9 = dict(OrderedDict([("a", 1)])), dict(Counter("aab")), copy.deepcopy([[1], [2]])
        d = defaultdict(list)
        r10 = sorted([3, 1, 2], key=lambda x: -x), sorted(["bb", "a"], key=len)
        """,
    "control flow": """
        out = []
        for i in range(10):
            if i == 2:
                continue
            if i == 6:
                break
            out.append(i)
        else:
            out.append(-1)
        n = 0
        while n < 5:
            n += 2
        else:
            out.append(n)
        try:
            raise ValueError("x")
        except KeyError:
            out.append("key")
        except (TypeError, ValueError) as e:
            out.append("value")
        else:
            out.append("else")
        finally:
            out.append("finally")
        try:
            out.append("ok")
        except Exception:
            out.append("no")
        else:
            out.append("else")
        def choose(x):
            match x:
                case 0:
                    return "zero"
                case [a, b]:
                    return f"pair {a}{b}"
                case {"k": v}:
                    return f"dict {v}"
                case str() as s if s:
                    return "str"
                case _:
                    return "other"
        r = [choose(0), choose([1, 2]), choose({"k": 3}), choose(4.5)]
        assert r[0] == "zero", "never"
        del out[0]
        class Ctx:
            def __enter__(self):
                return 42
            def __exit__(self, *a):
                return False
        with Ctx() as entered:
            out.append(entered)
        """,
    "containers in place": """
        a = [3, 1, 2]
        a.sort()
        a.append(4); a.extend((5, 6)); a.insert(0, 0); a.remove(6)
        last = a.pop()
        a += [9]
        b = a.copy(); b.reverse()
        d = {"x": 1}
        d["y"] = 2; d.update(z=3); d.setdefault("w", 0)
        popped = d.pop("x")
        items = list(d.items()), list(d.keys()), d.get("q", -1)
        s = {1, 2}
        s.add(3); s.discard(1)
        u = s | {9}, s & {2, 3}, s - {2}, sorted(s ^ {3, 4})
        t = a.index(4), a.count(9), len(a), a[-1]
        m = [[0] * 2 for _ in range(2)]
        m[0][1] = 5
        x, *rest, y = range(5)
        (p, q), r = (1, 2), 3
        """,
}


@pytest.mark.parametrize("name", list(PROGRAMS))
def test_programs_follow_python(name):
    agree(PROGRAMS[name])


def test_values_cnnc_cannot_know_stay_unknown():
    """A value from a file or the clock is unknown everywhere it flows, never guessed;
    what does not depend on it is still known."""
    code = textwrap.dedent("""
        import json, os, time, random
        cfg = json.load(open("config.json"))
        width = cfg["width"] * 2 + 1
        name = f"layer_{width}"
        seq = [width, 3][1:] + [len(os.listdir("."))]
        t = time.time() > 5
        pick = random.choice([1, 2])
        known = 5 * 5
        mixed = [known, width]
        """)
    got = follow(code)
    for n in ("cfg", "width", "name", "t", "pick"):
        assert isinstance(got[n], Unknown), n
    assert got["seq"][0] == 3 and isinstance(got["seq"][1], Unknown)
    assert got["known"] == 25 and got["mixed"][0] == 25 and isinstance(got["mixed"][1], Unknown)


# --- random programs: the same constructs, drawn at random ------------------------------------

_ATOMS = ["0", "1", "2", "3", "-1", "7", "2.5", "x", "y", "x", "y", "5", "'a'", "'bc'", "[1, 2]",
          "(3, 4)", "True", "None", "s", "l", "t"]
_BINOPS = ["+", "-", "*", "//", "%", "**", "/", "<<", ">>", "&", "|", "^"]
_CMPS = ["<", "<=", "==", "!=", ">", ">=", "in", "not in", "is", "is not"]
_CALLS = ["len({})", "abs({})", "str({})", "int({})", "float({})", "bool({})", "repr({})",
          "list({})", "tuple({})", "sorted({})", "max({}, 1)", "min({}, 0)", "sum({})",
          "({}) if x else ({})", "[{}, {}][1]", "({}, {})", "'{{}}_{{}}'.format({}, {})",
          "f'{{{}}}-{{{}}}'", "divmod({}, 3)", "round({})", "[v for v in {}]",
          "{{{}: {}}}", "not {}", "({}) and ({})", "({}) or ({})", "-({})", "{}[::-1]",
          "{}[0]", "list(enumerate({}))", "list(zip({}, {}))", "any({})", "all({})",
          "{}.upper()", "{}.split()", "({}) * 2", "hash({})"]


def _expr(rng: random.Random, depth: int) -> str:
    if depth <= 0 or rng.random() < 0.3:
        return rng.choice(_ATOMS)
    kind = rng.random()
    if kind < 0.35:
        return f"({_expr(rng, depth - 1)} {rng.choice(_BINOPS)} {_expr(rng, depth - 1)})"
    if kind < 0.5:
        return f"({_expr(rng, depth - 1)} {rng.choice(_CMPS)} {_expr(rng, depth - 1)})"
    form = rng.choice(_CALLS)
    return form.format(*(_expr(rng, depth - 1) for _ in range(form.count("{}"))))


def random_program(rng: random.Random) -> str:
    lines = ["x = 3", "y = -2", "s = 'ab'", "l = [1, 2, 3]", "t = (1, 'a')"]
    for k in range(rng.randint(1, 6)):
        e = _expr(rng, rng.randint(1, 4))
        form = rng.random()
        if form < 0.6:
            lines.append(f"v{k} = {e}")
        elif form < 0.8:
            lines.append(f"if {e}:\n    v{k} = 1\nelse:\n    v{k} = 2")
        else:
            lines.append(f"v{k} = [{e} for _ in range(2)]")
    return "\n".join(lines) + "\n"


def _runs_in_python(code: str) -> dict | None:
    try:
        ast.parse(code)
        return python(code)
    except Exception:  # noqa: BLE001 - a program Python itself refuses is not a case
        return None


@pytest.mark.parametrize("seed", range(4))
def test_random_programs_never_guess(seed):
    """Random expressions over numbers, strings, lists and tuples: wherever cnnc claims a
    value, it is Python's. Programs Python refuses are skipped."""
    rng = random.Random(20261207 + seed)
    checked = known = 0
    for _ in range(400):
        code = random_program(rng)
        want = _runs_in_python(code)
        if want is None:
            continue
        got = follow(code)
        for n, w in want.items():
            if not n.startswith("v") or not plain(w):
                continue
            checked += 1
            g = got.get(n)
            if isinstance(g, Unknown):
                continue
            known += 1
            if isinstance(w, float) and w != w:
                assert isinstance(g, float) and g != g, (code, n)
                continue
            assert g == w and type(g) is type(w), (code, n, g, w)
    assert checked > 100 and known > checked * 0.8, (checked, known)
