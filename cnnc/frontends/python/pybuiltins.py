"""Python's builtins and the pure part of its standard library, run on the evaluator's
values: `len`, `isinstance`, `sorted(key=...)`, `functools.reduce`, `itertools.product`,
`operator.itemgetter`, `math.ceil`, string/list/dict/set methods, dataclasses, enum,
namedtuple, argparse/click/absl flags, and what six, builtins and future re-export.

Each runs Python's own function on known values, after bounding what Python's C code
would do with them (sizes, nesting: Interpreter.measure); a function the script
passes in (a key, a lambda for map or reduce) runs through the interpreter. An
unknown argument makes the result unknown, named after the expression.
"""

from __future__ import annotations

import ast
import itertools
import math
import re
from typing import Callable

from cnnc.frontends.python.limits import (
    _BINOPS,
    EXCEPTIONS,
    MAX_INT,
    MAX_SEQUENCE,
    Budget,
    _all_plain,
    _Raise,
)
from cnnc.frontends.python.values import (
    ArgVal,
    BoundMethod,
    Builtin,
    ClassMethod,
    ClassVal,
    Endless,
    FuncVal,
    InstanceVal,
    IterVal,
    ObjectVal,
    PartialVal,
    Property,
    StaticMethod,
    SuperRef,
    Unknown,
    python_error,
)

_WIDTHS = re.compile(r"\d+")
_IMPLS: dict[str, Callable] = {}

# names Python defines in builtins that cnnc runs (or knows to be unknowable)
BUILTIN_NAMES = frozenset({
    "abs", "all", "any", "ascii", "bin", "bool", "callable", "chr", "dict", "dir", "divmod",
    "enumerate", "filter", "float", "format", "frozenset", "getattr", "globals", "hasattr", "hash",
    "hex", "id", "input", "int", "isinstance", "issubclass", "iter", "len", "list", "locals", "map",
    "max", "min", "next", "object", "oct", "open", "ord", "pow", "print", "range", "repr", "reversed",
    "round", "set", "setattr", "slice", "sorted", "staticmethod", "classmethod", "property", "str",
    "sum", "super", "tuple", "type", "vars", "zip", "exit", "quit", "eval", "exec", "compile",
    "delattr", "bytes", "bytearray", "complex", "memoryview", "breakpoint", "__import__",
    "NotImplemented", "help",
}) | frozenset(EXCEPTIONS)

_TYPES = {bool: "bool", int: "int", float: "float", complex: "complex", str: "str", bytes: "bytes",
          tuple: "tuple", list: "list", dict: "dict", set: "set", frozenset: "frozenset",
          range: "range", slice: "slice", type(None): "NoneType", type(Ellipsis): "ellipsis"}
_TYPE_PARENTS = {"bool": "int"}


def builtin_name(name: str):
    if name in BUILTIN_NAMES:
        return Builtin(name)
    if name == "Ellipsis":
        return Ellipsis
    if name == "__file__":
        return Unknown("the script's own path", None, name="__file__")
    return None


def impl(*names: str):
    def register(f):
        for n in names:
            _IMPLS[n] = f
        return f
    return register


def _pos(args: list[ArgVal]) -> list:
    return [a.value for a in args if a.keyword is None]


def _kws(args: list[ArgVal]) -> dict:
    return {a.keyword: a.value for a in args if a.keyword is not None}


def _unknown_in(vals) -> Unknown | None:
    return next((v for v in vals if isinstance(v, Unknown)), None)


def _named(ev, u: Unknown, node) -> Unknown:
    return Unknown(u.why, u.span, u.data, ev.snippet(node) if u.name else None)


def call_builtin(ev, b: Builtin, args: list[ArgVal], node):
    f = _IMPLS.get(b.name)
    if f is None:
        if b.name in _EXCEPTION_NAMES:
            return ObjectVal("exception", {"type": b.name, "args": tuple(_pos(args))})
        return Unknown(f"`{ev.snippet(node)}` is not followed by cnnc", ev.span(node),
                       name=ev.snippet(node) if b.name in ("input", "open") else None)
    try:
        return f(ev, b, args, node)
    except (TypeError, ValueError, ZeroDivisionError, OverflowError, IndexError, KeyError,
            AttributeError) as e:
        return Unknown(f"`{ev.snippet(node)}` fails in Python: {_short(e)}", ev.span(node))


_short = python_error


_EXCEPTION_NAMES = frozenset(EXCEPTIONS)


def _seq(ev, v, node):
    """The items of an iterable argument (a list), or an Unknown."""
    return ev.iterable(v, node)


def _plain_all(ev, items, node) -> Unknown | None:
    """An Unknown when Python's C code cannot work on these items (too deep, or not plain)."""
    for x in items:
        if isinstance(x, Unknown):
            return x
        if isinstance(x, (tuple, list, dict, set, frozenset)):
            bad = ev.guarded(x, node)
            if bad is not None:
                return bad
    if not _all_plain(list(items)):
        return Unknown(f"`{ev.snippet(node)}` works on values cnnc cannot compare", ev.span(node))
    return None


# --- the builtins -----------------------------------------------------------------------

@impl("print", "help", "breakpoint", "delattr")
def _nothing(ev, b, args, node):
    return None


@impl("len")
def _len(ev, b, args, node):
    from cnnc.frontends.python.datasize import data_size
    (v,) = _pos(args)
    v = ev.resolved(v)
    if isinstance(v, Unknown):
        if v.data:
            return data_size(ev.snippet(node), ev.span(node))
        return _named(ev, v, node)
    if isinstance(v, (list, tuple, str, bytes, dict, set, frozenset, range)):
        return len(v)
    if isinstance(v, IterVal):
        return Unknown("len() of an iterator", ev.span(node))
    if isinstance(v, InstanceVal):
        if v.cls.tuple_like:
            return len(v.cls.fields or ())
        f = ev.class_attr(v.cls, "__len__")
        if isinstance(f, FuncVal):
            return ev.call_function(f, [], node, self_obj=v)
    return ev.len_other(v, node)


@impl("range")
def _range(ev, b, args, node):
    vals = _pos(args)
    bad = _unknown_in(vals)
    if bad is not None:
        return _named(ev, bad, node)
    if not all(isinstance(v, int) for v in vals) or not 1 <= len(vals) <= 3:
        return Unknown(f"`{ev.snippet(node)}` fails in Python", ev.span(node))
    r = range(*vals)
    if len(r) > MAX_SEQUENCE:
        raise Budget(f"range of more than {MAX_SEQUENCE:,} numbers", ev.span(node))
    return r


@impl("int", "float", "bool", "complex")
def _number(ev, b, args, node):
    vals = _pos(args)
    if not vals:
        return {"int": 0, "float": 0.0, "bool": False, "complex": 0j}[b.name]
    bad = _unknown_in(vals)
    if bad is not None:
        return Unknown(bad.why, bad.span, bad.data, bad.name and ev.snippet(node))
    v = vals[0]
    if b.name == "bool":
        t = ev.truth(v, node)
        return t if t is not None else Unknown(f"`{ev.snippet(node)}`", ev.span(node))
    if isinstance(v, str) and len(v) > 400:
        return Unknown("a number written with too many digits", ev.span(node))
    if not isinstance(v, (int, float, str, bytes, bool)):
        f = _dunder(ev, v, "__" + b.name + "__", node)
        return f if f is not None else ev.number_other(b.name, v, node)
    out = {"int": int, "float": float, "complex": complex}[b.name](*vals)
    if isinstance(out, int) and abs(out) > MAX_INT:
        return Unknown("a number too large", ev.span(node))
    return out


def _dunder(ev, v, name: str, node):
    if isinstance(v, InstanceVal):
        f = ev.class_attr(v.cls, name)
        if isinstance(f, FuncVal):
            return ev.call_function(f, [], node, self_obj=v)
    return None


@impl("str", "repr", "ascii")
def _str(ev, b, args, node):
    vals = _pos(args)
    if not vals:
        return ""
    if b.name == "str" and len(vals) > 1:
        vals = vals[:1]
    return ev.to_str(vals[0], node, b.name)


@impl("format")
def _format(ev, b, args, node):
    vals = _pos(args)
    spec = vals[1] if len(vals) > 1 else ""
    if not isinstance(spec, str):
        return ev.as_unknown(spec, node)
    return ev.to_str(vals[0], node, "str", spec)


@impl("abs", "round", "divmod", "pow", "chr", "ord", "hex", "oct", "bin")
def _math_builtin(ev, b, args, node):
    vals = _pos(args)
    bad = _unknown_in(vals)
    if bad is not None:
        return _named(ev, bad, node)
    if not all(isinstance(v, (int, float, str)) and not isinstance(v, bool) or isinstance(v, bool)
               for v in vals) or (b.name in ("round",) and len(vals) > 1 and not isinstance(vals[1], int)):
        return ev.number_other(b.name, vals[0] if vals else None, node)
    if b.name == "pow" and (abs(vals[1]) > 64 or (len(vals) == 2 and isinstance(vals[0], int)
                                                    and abs(vals[0]) > 2 ** 63)):
        return Unknown("a power this large", ev.span(node))
    out = {"abs": abs, "round": round, "divmod": divmod, "pow": pow, "chr": chr, "ord": ord,
           "hex": hex, "oct": oct, "bin": bin}[b.name](*vals)
    return out


@impl("tuple", "list", "set", "frozenset")
def _container(ev, b, args, node):
    vals = _pos(args)
    if not vals:
        return {"tuple": (), "list": [], "set": set(), "frozenset": frozenset()}[b.name]
    it = _seq(ev, vals[0], node)
    if isinstance(it, Unknown):
        return _named(ev, it, node)
    ev.count_items(len(it), node)
    if b.name in ("set", "frozenset"):
        s = ev.make_set(list(it), node)
        return frozenset(s) if b.name == "frozenset" and isinstance(s, set) else s
    return tuple(it) if b.name == "tuple" else list(it)


@impl("dict")
def _dict(ev, b, args, node):
    vals = _pos(args)
    out: dict = {}
    if vals:
        v = vals[0]
        if isinstance(v, dict):
            out = dict(v)
        else:
            it = _seq(ev, v, node)
            if isinstance(it, Unknown):
                return _named(ev, it, node)
            for pair in it:
                if not (isinstance(pair, (tuple, list)) and len(pair) == 2 and ev.hashable(pair[0], node)):
                    return Unknown(f"`{ev.snippet(node)}`: a dict cnnc cannot follow", ev.span(node))
                out[pair[0]] = pair[1]
    out.update(_kws(args))
    ev.count_items(len(out), node)
    return out


@impl("enumerate")
def _enumerate(ev, b, args, node):
    vals, kws = _pos(args), _kws(args)
    it = _seq(ev, vals[0], node)
    if isinstance(it, Unknown):
        return _named(ev, it, node)
    start = kws.get("start", vals[1] if len(vals) > 1 else 0)
    if not isinstance(start, int):
        return ev.as_unknown(start, node)
    ev.count_items(len(it), node)
    return list(enumerate(it, start))


def _finite(ev, vals, node) -> list | Unknown:
    """The iterables of zip/map/enumerate, endless ones cut to the shortest finite one."""
    seqs = [v if isinstance(v, Endless) else _seq(ev, v, node) for v in vals]
    bad = _unknown_in(seqs)
    if bad is not None:
        return _named(ev, bad, node)
    finite = [len(s) for s in seqs if not isinstance(s, Endless)]
    if not finite:
        return Unknown(f"`{ev.snippet(node)}` never ends; cnnc follows finite sequences", ev.span(node))
    n = min(finite)
    return [s.take(n) if isinstance(s, Endless) else s for s in seqs]


@impl("zip")
def _zip(ev, b, args, node):
    seqs = _finite(ev, _pos(args), node)
    if isinstance(seqs, Unknown):
        return seqs
    if _kws(args).get("strict") and len({len(s) for s in seqs}) > 1:
        return Unknown(f"`{ev.snippet(node)}` fails in Python: lengths differ", ev.span(node))
    out = list(zip(*seqs))
    ev.count_items(len(out), node)
    return out


@impl("reversed")
def _reversed(ev, b, args, node):
    it = _seq(ev, _pos(args)[0], node)
    if isinstance(it, Unknown):
        return _named(ev, it, node)
    ev.count_items(len(it), node)
    return list(reversed(list(it)))


@impl("iter")
def _iter(ev, b, args, node):
    v = _pos(args)[0]
    if isinstance(v, IterVal):
        return v
    it = _seq(ev, v, node)
    if isinstance(it, Unknown):
        return _named(ev, it, node)
    return IterVal(list(it))


@impl("next")
def _next(ev, b, args, node):
    vals = _pos(args)
    v = vals[0]
    if isinstance(v, IterVal):
        if v.pos < len(v.items):
            v.pos += 1
            return v.items[v.pos - 1]
        if len(vals) > 1:
            return vals[1]
        raise _Raise(ObjectVal("exception", {"type": "StopIteration", "args": ()}))
    return ev.next_other(v, node)


def _keyed(ev, items, key, node) -> list | Unknown:
    """The key of each item (sorted, min, max with key=)."""
    if key is None:
        return list(items)
    out = []
    for x in items:
        k = ev.call_value(key, [ArgVal(None, x, ev.span(node))], node)
        if isinstance(k, Unknown):
            return k
        out.append(k)
    return out


@impl("sorted", "min", "max")
def _order(ev, b, args, node):
    vals, kws = _pos(args), _kws(args)
    items = vals if b.name != "sorted" and len(vals) > 1 else _seq(ev, vals[0], node) if vals else []
    if isinstance(items, Unknown):
        return _named(ev, items, node)
    items = list(items)
    ev.charge(len(items) * max(1, len(items).bit_length()), node)
    keys = _keyed(ev, items, kws.get("key"), node)
    if isinstance(keys, Unknown):
        return _named(ev, keys, node)
    bad = _plain_all(ev, keys, node)
    if bad is not None:
        return _named(ev, bad, node) if isinstance(bad, Unknown) and bad.name else bad
    order = sorted(range(len(items)), key=lambda i: keys[i], reverse=bool(kws.get("reverse")))
    if b.name == "sorted":
        return [items[i] for i in order]
    if not items:
        if "default" in kws:
            return kws["default"]
        return Unknown(f"`{ev.snippet(node)}` fails in Python: empty sequence", ev.span(node))
    pick = (min if b.name == "min" else max)(range(len(items)), key=lambda i: keys[i])
    return items[pick]


@impl("sum")
def _sum(ev, b, args, node):
    vals, kws = _pos(args), _kws(args)
    it = _seq(ev, vals[0], node)
    if isinstance(it, Unknown):
        return _named(ev, it, node)
    total = vals[1] if len(vals) > 1 else kws.get("start", 0)
    for x in it:
        total = ev.binop(ast.Add, total, x, node, node, node)
        if isinstance(total, Unknown):
            return total
    return total


@impl("any", "all")
def _any_all(ev, b, args, node):
    it = _seq(ev, _pos(args)[0], node)
    if isinstance(it, Unknown):
        return _named(ev, it, node)
    want = b.name == "any"
    unknown = None
    for x in it:
        t = ev.truth(x, node)
        if t is None:
            unknown = ev.as_unknown(x, node)
        elif t == want:
            return want
    return unknown if unknown is not None else not want


@impl("map")
def _map(ev, b, args, node):
    vals = _pos(args)
    f, seqs = vals[0], _finite(ev, vals[1:], node)
    if isinstance(seqs, Unknown):
        return seqs
    out = [ev.call_value(f, [ArgVal(None, x, ev.span(node)) for x in xs], node) for xs in zip(*seqs)]
    return IterVal(out)


@impl("filter")
def _filter(ev, b, args, node):
    f, seq = _pos(args)
    it = _seq(ev, seq, node)
    if isinstance(it, Unknown):
        return _named(ev, it, node)
    out = []
    for x in it:
        v = x if f is None else ev.call_value(f, [ArgVal(None, x, ev.span(node))], node)
        t = ev.truth(v, node)
        if t is None:
            return Unknown(f"`{ev.snippet(node)}`: a condition cnnc cannot know", ev.span(node))
        if t:
            out.append(x)
    return IterVal(out)


@impl("isinstance", "issubclass")
def _isinstance(ev, b, args, node):
    v, types = _pos(args)[:2]
    v = ev.resolved(v)
    if isinstance(v, Unknown):
        return _named(ev, v, node)
    types = types if isinstance(types, tuple) else (types,)
    unknown = False
    for t in types:
        hit = type_check(ev, v, t, subclass=b.name == "issubclass")
        if hit is True:
            return True
        unknown = unknown or hit is None
    return Unknown(f"`{ev.snippet(node)}` cannot be known", ev.span(node)) if unknown else False


def type_check(ev, v, t, subclass: bool = False) -> bool | None:
    """isinstance(v, t): True, False, or None when cnnc cannot tell."""
    if isinstance(t, Builtin):
        if t.name == "object":
            return True
        name = type_name(v) if not subclass else (v.name if isinstance(v, Builtin) else None)
        if name is None:
            other = ev.isinstance_other(v, t)
            # an object cnnc stands in for (a function, a layer, a class) is no str or list
            return False if other is None and not subclass and not isinstance(v, Unknown) else other
        while name is not None:
            if name == t.name:
                return True
            name = _TYPE_PARENTS.get(name) or (EXCEPTION_PARENTS.get(name) if name in EXCEPTION_PARENTS else None)
        if t.name in ("Sequence", "Iterable", "collections.abc.Sequence"):
            return type_name(v) in ("list", "tuple", "str", "range")
        return False
    if isinstance(t, ClassVal):
        cls = v if subclass else v.cls if isinstance(v, InstanceVal) else None
        if isinstance(cls, ClassVal):
            return t is cls or t in cls.bases
        return ev.isinstance_other(v, t)
    return ev.isinstance_other(v, t)


EXCEPTION_PARENTS = EXCEPTIONS


def type_name(v) -> str | None:
    if isinstance(v, Builtin):
        return "type" if v.name in _TYPES.values() else "builtin_function_or_method"
    if isinstance(v, ObjectVal) and v.kind == "exception":
        return v.attrs.get("type")
    return _TYPES.get(type(v))


@impl("type")
def _type(ev, b, args, node):
    vals = _pos(args)
    if len(vals) != 1:
        return Unknown("type() with three arguments makes a class cnnc does not follow", ev.span(node))
    v = ev.resolved(vals[0])
    if isinstance(v, Unknown):
        return _named(ev, v, node)
    if isinstance(v, InstanceVal):
        return v.cls
    name = type_name(v)
    if name is not None and name in _TYPES.values():
        return Builtin(name)
    return ev.type_other(v, node)


@impl("callable")
def _callable(ev, b, args, node):
    v = _pos(args)[0]
    if isinstance(v, Unknown):
        return _named(ev, v, node)
    if isinstance(v, InstanceVal):
        return ev.class_attr(v.cls, "__call__") is not None
    if isinstance(v, (int, float, str, bytes, tuple, list, dict, set, frozenset, type(None), range)):
        return False
    return True


@impl("getattr")
def _getattr(ev, b, args, node):
    vals = _pos(args)
    obj, name = vals[0], vals[1]
    if not isinstance(name, str):
        return ev.as_unknown(name, node)
    v = ev.attribute(obj, name, node)
    if len(vals) > 2 and isinstance(v, Unknown) and not isinstance(obj, Unknown) and _absent(ev, obj, name):
        return vals[2]
    return v


@impl("hasattr")
def _hasattr(ev, b, args, node):
    obj, name = _pos(args)[:2]
    if isinstance(obj, Unknown):
        return _named(ev, obj, node)
    if not isinstance(name, str):
        return ev.as_unknown(name, node)
    if isinstance(obj, (InstanceVal, ObjectVal, ClassVal)):
        return not _absent(ev, obj, name)
    if isinstance(obj, (int, float, str, bytes, tuple, list, dict, set, type(None))):
        return hasattr(obj, name)
    return Unknown(f"`{ev.snippet(node)}` cannot be known", ev.span(node))


def _absent(ev, obj, name: str) -> bool:
    """Whether an attribute is certainly missing (an object of the script's own)."""
    if isinstance(obj, InstanceVal):
        return name not in obj.attrs and ev.class_attr(obj.cls, name) is None and obj.cls.kind == "other"
    if isinstance(obj, ObjectVal):
        return name not in obj.attrs
    if isinstance(obj, ClassVal):
        return ev.class_attr(obj, name) is None and obj.kind == "other"
    return False


@impl("setattr")
def _setattr(ev, b, args, node):
    obj, name, value = _pos(args)[:3]
    if isinstance(name, str):
        ev.set_attribute(obj, name, value, node)
    return None


@impl("vars")
def _vars(ev, b, args, node):
    vals = _pos(args)
    if vals and isinstance(vals[0], (ObjectVal, InstanceVal)):
        return vals[0].attrs
    return Unknown(f"`{ev.snippet(node)}` is not followed by cnnc", ev.span(node))


@impl("hash")
def _hash(ev, b, args, node):
    v = _pos(args)[0]
    return hash(v) if ev.hashable(v, node) and isinstance(v, (int, str, tuple, bool, float)) else \
        Unknown("hash()", ev.span(node))


@impl("slice")
def _slice(ev, b, args, node):
    return slice(*_pos(args))


@impl("super")
def _super(ev, b, args, node):
    vals = _pos(args)
    if len(vals) == 2 and isinstance(vals[0], ClassVal):
        return SuperRef(vals[1], vals[0])
    if ev.self_stack:
        obj, owner = ev.self_stack[-1]
        return SuperRef(obj, owner)
    return Unknown("super() outside a method", ev.span(node))


@impl("exit", "quit", "sys.exit", "os._exit")
def _exit(ev, b, args, node):
    raise _Raise(ObjectVal("exception", {"type": "SystemExit", "args": ()}), exits=True)


@impl("staticmethod", "classmethod", "property")
def _wrappers(ev, b, args, node):
    f = _pos(args)[0] if _pos(args) else None
    return {"staticmethod": StaticMethod, "classmethod": ClassMethod, "property": Property}[b.name](f)


@impl("object")
def _object(ev, b, args, node):
    return ObjectVal("object")


# --- the standard library ----------------------------------------------------------------

@impl("functools.partial")
def _partial(ev, b, args, node):
    if not args:
        return Unknown("partial() without a function", ev.span(node))
    return PartialVal(args[0].value, args[1:])


@impl("functools.reduce")
def _reduce(ev, b, args, node):
    vals = _pos(args)
    f = vals[0]
    it = _seq(ev, vals[1], node)
    if isinstance(it, Unknown):
        return _named(ev, it, node)
    items = list(it)
    if len(vals) > 2:
        acc = vals[2]
    elif items:
        acc = items.pop(0)
    else:
        return Unknown(f"`{ev.snippet(node)}` fails in Python: empty sequence", ev.span(node))
    for x in items:
        acc = ev.call_value(f, [ArgVal(None, acc, ev.span(node)), ArgVal(None, x, ev.span(node))], node)
    return acc


@impl("functools.wraps", "functools.lru_cache", "functools.cache", "functools.total_ordering",
      "functools.singledispatch", "abc.abstractmethod", "typing.overload", "typing.final",
      "dataclasses.dataclass", "functools.cached_property", "contextlib.contextmanager",
      "enum.unique")
def _decorator_factory(ev, b, args, node):
    """lru_cache(maxsize=None), wraps(f), dataclass(frozen=True): a decorator."""
    if b.name in ("functools.cached_property",) and args:
        return Property(args[0].value)
    if b.name in ("functools.lru_cache", "functools.cache", "dataclasses.dataclass",
                  "functools.total_ordering", "abc.abstractmethod", "typing.overload",
                  "typing.final", "enum.unique", "functools.singledispatch",
                  "contextlib.contextmanager") and len(args) == 1 and args[0].keyword is None \
            and isinstance(args[0].value, (FuncVal, ClassVal)):
        return decorator_builtin(ev, b, args[0].value, node)
    return Builtin(b.name, ("decorator",))


def decorator_builtin(ev, dec: Builtin, value, node):
    """A builtin used as a decorator."""
    name = dec.name
    if name == "staticmethod":
        return StaticMethod(value)
    if name == "classmethod":
        return ClassMethod(value)
    if name in ("property", "functools.cached_property"):
        return Property(value)
    if name == "dataclasses.dataclass" and isinstance(value, ClassVal):
        value.fields = _annotated_fields(ev, value)
        return value
    if name.startswith("click.") or name.startswith("absl."):
        return click_decorator(ev, dec, value, node)
    if name in _DECORATOR_IDENTITY or dec.bound[:1] == ("decorator",):
        return value
    out = call_builtin(ev, dec, [ArgVal(None, value, ev.span(node))], node)
    return value if isinstance(out, Unknown) else out


_DECORATOR_IDENTITY = frozenset({
    "functools.wraps", "functools.lru_cache", "functools.cache", "functools.total_ordering",
    "functools.singledispatch", "abc.abstractmethod", "typing.overload", "typing.final",
    "enum.unique", "contextlib.contextmanager", "typing.no_type_check"})


@impl("dataclasses.field")
def _field(ev, b, args, node):
    kws = _kws(args)
    return ObjectVal("field", {"default": kws.get("default", _NO_DEFAULT),
                               "default_factory": kws.get("default_factory")})


_NO_DEFAULT = ObjectVal("missing")


def _annotated_fields(ev, cls: ClassVal) -> list:
    """A dataclass's (or NamedTuple's) fields: the annotated names of its body, with
    their defaults, base classes' first."""
    out: list = []
    for c in reversed([cls, *cls.bases]):
        if c.node is None:
            continue
        for stmt in c.node.body:
            if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
                name = stmt.target.id
                default = c.attrs.get(name, _NO_DEFAULT) if stmt.value is not None else _NO_DEFAULT
                out = [f for f in out if f[0] != name] + [(name, default)]
    return out


@impl("dataclasses.asdict")
def _asdict(ev, b, args, node):
    v = _pos(args)[0]
    if isinstance(v, InstanceVal) and v.cls.fields is not None:
        return {f: v.attrs.get(f) for f, _ in v.cls.fields}
    return ev.as_unknown(v, node)


@impl("dataclasses.replace")
def _replace(ev, b, args, node):
    v = _pos(args)[0]
    if isinstance(v, InstanceVal) and v.cls.fields is not None:
        new = InstanceVal(v.cls, dict(v.attrs))
        new.attrs.update(_kws(args))
        return new
    return ev.as_unknown(v, node)


@impl("collections.namedtuple", "typing.NamedTuple")
def _namedtuple(ev, b, args, node):
    vals, kws = _pos(args), _kws(args)
    name = vals[0] if vals else kws.get("typename")
    names = vals[1] if len(vals) > 1 else kws.get("field_names", kws.get("fields"))
    if isinstance(names, str):
        names = names.replace(",", " ").split()
    if not isinstance(name, str) or not isinstance(names, (list, tuple)):
        return Unknown(f"`{ev.snippet(node)}` is not followed by cnnc", ev.span(node))
    fields = [n if isinstance(n, str) else n[0] for n in names]
    defaults = kws.get("defaults") or ()
    pad = [_NO_DEFAULT] * (len(fields) - len(defaults)) + list(defaults)
    return ClassVal(name, "other", None, ev.span(node), fields=list(zip(fields, pad)), tuple_like=True)


@impl("collections.OrderedDict", "collections.Counter", "collections.defaultdict")
def _dicts(ev, b, args, node):
    if b.name == "collections.defaultdict":
        vals = _pos(args)
        rest = [ArgVal(None, v, ev.span(node)) for v in vals[1:]]
        return _dict(ev, Builtin("dict"), rest, node)
    if b.name == "collections.Counter":
        vals = _pos(args)
        if not vals:
            return {}
        it = _seq(ev, vals[0], node)
        if isinstance(it, Unknown):
            return _named(ev, it, node)
        out: dict = {}
        for x in it:
            if not ev.hashable(x, node):
                return Unknown("a Counter of values cnnc cannot follow", ev.span(node))
            out[x] = out.get(x, 0) + 1
        return out
    return _dict(ev, Builtin("dict"), args, node)


@impl("collections.deque")
def _deque(ev, b, args, node):
    return _container(ev, Builtin("list"), [a for a in args if a.keyword is None], node)


@impl("copy.copy", "copy.deepcopy")
def _copy(ev, b, args, node):
    v = _pos(args)[0]
    if isinstance(v, Unknown):
        return v
    bad = ev.guarded(v, node) if isinstance(v, (list, tuple, dict, set)) else None
    if bad is not None:
        return bad
    if isinstance(v, (list, dict, set)):
        if b.name == "copy.copy":
            return type(v)(v)
        import copy as _c
        if _all_plain(v):
            return _c.deepcopy(v)
        return Unknown(f"`{ev.snippet(node)}` copies objects cnnc stands in for", ev.span(node))
    if isinstance(v, (int, float, str, bytes, bool, type(None), tuple, frozenset)):
        return v
    if isinstance(v, InstanceVal) and v.cls.kind == "other":
        return InstanceVal(v.cls, dict(v.attrs))
    return ev.copy_other(v, node, deep=b.name == "copy.deepcopy")


def _iter_args(ev, args, node) -> list | Unknown:
    seqs = [_seq(ev, v, node) for v in _pos(args)]
    bad = _unknown_in(seqs)
    return _named(ev, bad, node) if bad is not None else [list(s) for s in seqs]


def _bounded(ev, gen, node):
    out = list(itertools.islice(gen, MAX_SEQUENCE + 1))
    ev.check_size(out, node)
    ev.count_items(len(out), node)
    return IterVal(out)


@impl("itertools.chain", "itertools.product", "itertools.permutations", "itertools.combinations",
      "itertools.combinations_with_replacement", "itertools.zip_longest", "itertools.pairwise",
      "itertools.accumulate", "itertools.islice", "itertools.repeat", "itertools.compress",
      "itertools.chain.from_iterable", "itertools.tee", "itertools.starmap", "itertools.groupby",
      "itertools.takewhile", "itertools.dropwhile", "itertools.filterfalse", "itertools.count",
      "itertools.cycle")
def _itertools(ev, b, args, node):
    fn = b.name.split(".", 1)[1]
    vals, kws = _pos(args), _kws(args)
    if fn == "count":
        start = vals[0] if vals else kws.get("start", 0)
        step = vals[1] if len(vals) > 1 else kws.get("step", 1)
        if not all(isinstance(v, (int, float)) for v in (start, step)):
            return ev.as_unknown(start if isinstance(start, Unknown) else step, node)
        return Endless("count", start, step)
    if fn == "cycle":
        it = _seq(ev, vals[0], node)
        return _named(ev, it, node) if isinstance(it, Unknown) else Endless("cycle", items=tuple(it))
    if fn == "repeat":
        times = vals[1] if len(vals) > 1 else kws.get("times")
        if times is None:
            return Endless("repeat", vals[0])
        if not isinstance(times, int):
            return ev.as_unknown(times, node)
        return _bounded(ev, itertools.repeat(vals[0], max(times, 0)), node)
    if fn in ("starmap", "takewhile", "dropwhile", "filterfalse", "groupby", "accumulate") and (
            fn != "accumulate" or len(vals) > 1 or "func" in kws):
        return _itertools_with_function(ev, fn, vals, kws, node)
    if fn in ("permutations", "combinations", "combinations_with_replacement"):
        seqs = _iter_args(ev, [ArgVal(None, vals[0], ev.span(node))], node)
        if isinstance(seqs, Unknown):
            return seqs
        r = vals[1] if len(vals) > 1 else kws.get("r")
        if (r is not None and not isinstance(r, int)) or len(seqs[0]) > 64:
            return Unknown(f"`{ev.snippet(node)}` is not followed by cnnc", ev.span(node))
        return _bounded(ev, getattr(itertools, fn)(seqs[0], *([r] if r is not None else [])), node)
    if fn in ("islice",):
        if not all(v is None or isinstance(v, int) for v in vals[1:]):
            return ev.as_unknown(next(v for v in vals[1:] if not isinstance(v, int)), node)
        if isinstance(vals[0], Endless):
            stop = vals[2] if len(vals) > 2 else vals[1] if len(vals) > 1 else None
            if not isinstance(stop, int):
                return Unknown(f"`{ev.snippet(node)}` never ends", ev.span(node))
            from cnnc.frontends.python.limits import MAX_SEQUENCE as _M
            return _bounded(ev, itertools.islice(vals[0].take(min(stop, _M + 1)), *vals[1:]), node)
        seqs = _iter_args(ev, args[:1], node)
        if isinstance(seqs, Unknown):
            return seqs
        return _bounded(ev, itertools.islice(seqs[0], *vals[1:]), node)
    if fn == "tee":
        seqs = _iter_args(ev, args[:1], node)
        if isinstance(seqs, Unknown):
            return seqs
        n = vals[1] if len(vals) > 1 else 2
        return tuple(IterVal(list(seqs[0])) for _ in range(n if isinstance(n, int) and 0 <= n <= 64 else 2))
    seqs = _iter_args(ev, [a for a in args if a.keyword is None], node)
    if isinstance(seqs, Unknown):
        return seqs
    if fn == "from_iterable" or b.name == "itertools.chain.from_iterable":
        inner = [_seq(ev, s, node) for s in seqs[0]]
        bad = _unknown_in(inner)
        return _named(ev, bad, node) if bad is not None else _bounded(ev, itertools.chain(*inner), node)
    if fn == "product":
        repeat = kws.get("repeat", 1)
        size = 1
        for s in seqs:
            size *= max(len(s), 1)
        if not isinstance(repeat, int) or size ** max(repeat, 1) > 10 ** 6:
            return Unknown(f"`{ev.snippet(node)}` makes too many combinations", ev.span(node))
        return _bounded(ev, itertools.product(*seqs, repeat=repeat), node)
    if fn == "zip_longest":
        return _bounded(ev, itertools.zip_longest(*seqs, fillvalue=kws.get("fillvalue")), node)
    if fn == "compress":
        return _bounded(ev, itertools.compress(*seqs[:2]), node)
    if fn == "pairwise":
        return _bounded(ev, zip(seqs[0], seqs[0][1:]), node)
    if fn == "accumulate":
        total, out = None, []
        for i, x in enumerate(seqs[0]):
            total = x if i == 0 and "initial" not in kws else ev.binop(
                ast.Add, total if i or "initial" not in kws else kws["initial"], x, node, node, node)
            out.append(total)
        return IterVal(out)
    return _bounded(ev, itertools.chain(*seqs), node)


def _itertools_with_function(ev, fn, vals, kws, node):
    span = ev.span(node)
    f = vals[0] if fn != "groupby" else kws.get("key", vals[1] if len(vals) > 1 else None)
    src = vals[1] if fn != "groupby" else vals[0]
    it = _seq(ev, src, node)
    if isinstance(it, Unknown):
        return _named(ev, it, node)
    call = (lambda *xs: ev.call_value(f, [ArgVal(None, x, span) for x in xs], node)) if f is not None \
        else (lambda x: x)
    out: list = []
    if fn == "starmap":
        return IterVal([call(*x) if isinstance(x, (tuple, list)) else Unknown("starmap", span) for x in it])
    if fn == "accumulate":
        acc = None
        for i, x in enumerate(it):
            acc = x if i == 0 else call(acc, x)
            out.append(acc)
        return IterVal(out)
    if fn == "groupby":
        for x in it:
            k = call(x)
            if isinstance(k, Unknown):
                return k
            if out and ev.equal(out[-1][0], k, node) is True:
                out[-1][1].append(x)
            else:
                out.append((k, [x]))
        return IterVal([(k, IterVal(g)) for k, g in out])
    dropping = True
    for x in it:
        t = ev.truth(call(x), node)
        if t is None:
            return Unknown(f"`{ev.snippet(node)}`: a condition cnnc cannot know", span)
        if fn == "takewhile":
            if not t:
                break
            out.append(x)
        elif fn == "dropwhile":
            if dropping and t:
                continue
            dropping = False
            out.append(x)
        elif not t:
            out.append(x)
    return IterVal(out)


_OPERATORS = {
    "add": ast.Add, "sub": ast.Sub, "mul": ast.Mult, "truediv": ast.Div, "floordiv": ast.FloorDiv,
    "mod": ast.Mod, "pow": ast.Pow, "and_": ast.BitAnd, "or_": ast.BitOr, "xor": ast.BitXor,
    "lshift": ast.LShift, "rshift": ast.RShift, "matmul": ast.MatMult, "concat": ast.Add,
    "iadd": ast.Add, "isub": ast.Sub, "imul": ast.Mult, "itruediv": ast.Div}
_COMPARES = {"eq": ast.Eq, "ne": ast.NotEq, "lt": ast.Lt, "le": ast.LtE, "gt": ast.Gt, "ge": ast.GtE,
             "is_": ast.Is, "is_not": ast.IsNot, "contains": ast.In}


@impl(*(f"operator.{n}" for n in list(_OPERATORS) + list(_COMPARES) + [
    "neg", "pos", "not_", "truth", "getitem", "itemgetter", "attrgetter", "methodcaller", "index",
    "abs", "invert"]))
def _operator(ev, b, args, node):
    fn = b.name.split(".", 1)[1]
    vals = _pos(args)
    if fn in ("itemgetter", "attrgetter", "methodcaller"):
        return Builtin(f"operator.{fn}.bound", (tuple(vals), tuple(_kws(args).items())))
    if fn in _OPERATORS:
        return ev.binop(_OPERATORS[fn], vals[0], vals[1], node, node, node)
    if fn in _COMPARES:
        a, c = (vals[1], vals[0]) if fn == "contains" else (vals[0], vals[1])
        return ev.compare_values(_COMPARES[fn], a, c, node)
    if fn in ("neg", "pos", "invert", "not_", "abs"):
        if fn == "not_":
            t = ev.truth(vals[0], node)
            return Unknown("not", ev.span(node)) if t is None else not t
        if fn == "abs":
            return _math_builtin(ev, Builtin("abs"), args, node)
        op = {"neg": ast.USub(), "pos": ast.UAdd(), "invert": ast.Invert()}[fn]
        fake = ast.UnaryOp(op=op, operand=ast.Constant(0))
        ast.copy_location(fake, node)
        return ev.unary_value(fake, vals[0])
    if fn == "truth":
        t = ev.truth(vals[0], node)
        return Unknown("truth", ev.span(node)) if t is None else t
    if fn == "index":
        return vals[0] if isinstance(vals[0], int) else ev.as_unknown(vals[0], node)
    return ev.subscript(vals[0], vals[1], node)


@impl("operator.itemgetter.bound", "operator.attrgetter.bound", "operator.methodcaller.bound")
def _getters(ev, b, args, node):
    (keys, kwitems) = b.bound
    obj = _pos(args)[0]
    kind = b.name.split(".")[1]
    if kind == "methodcaller":
        m = ev.attribute(obj, keys[0], node)
        return ev.call_value(m, [ArgVal(None, v, ev.span(node)) for v in keys[1:]]
                             + [ArgVal(k, v, ev.span(node)) for k, v in kwitems], node)
    out = []
    for k in keys:
        if kind == "itemgetter":
            out.append(ev.subscript(obj, k, node))
        else:
            v = obj
            for part in str(k).split("."):
                v = ev.attribute(v, part, node)
            out.append(v)
    return out[0] if len(out) == 1 else tuple(out)


_MATH_UNARY = {"ceil": math.ceil, "floor": math.floor, "trunc": math.trunc, "sqrt": math.sqrt,
               "isqrt": math.isqrt, "exp": math.exp, "log2": math.log2, "log10": math.log10,
               "log1p": math.log1p, "fabs": math.fabs, "sin": math.sin, "cos": math.cos,
               "tan": math.tan, "atan": math.atan, "tanh": math.tanh, "degrees": math.degrees,
               "radians": math.radians, "isfinite": math.isfinite, "isinf": math.isinf,
               "isnan": math.isnan, "erf": math.erf, "expm1": math.expm1}
_MATH_MULTI = {"log": math.log, "pow": math.pow, "gcd": math.gcd, "lcm": math.lcm,
               "copysign": math.copysign, "fmod": math.fmod, "hypot": math.hypot,
               "atan2": math.atan2, "isclose": math.isclose, "comb": math.comb, "perm": math.perm,
               "ldexp": math.ldexp}


@impl(*(f"math.{n}" for n in list(_MATH_UNARY) + list(_MATH_MULTI) + ["prod", "factorial", "fsum"]))
def _math(ev, b, args, node):
    fn = b.name.split(".", 1)[1]
    vals = _pos(args)
    bad = _unknown_in(vals)
    if bad is not None:
        return _named(ev, bad, node)
    if fn in ("prod", "fsum"):
        it = _seq(ev, vals[0], node)
        if isinstance(it, Unknown):
            return _named(ev, it, node)
        total = _kws(args).get("start", 1) if fn == "prod" else 0.0
        for x in it:
            total = ev.binop(ast.Mult if fn == "prod" else ast.Add, total, x, node, node, node)
            if isinstance(total, Unknown):
                return total
        return total
    if not all(isinstance(v, (int, float)) for v in vals):
        return Unknown(f"`{ev.snippet(node)}` fails in Python", ev.span(node))
    if fn == "factorial" and (not isinstance(vals[0], int) or vals[0] > 20):
        return Unknown("a factorial this large", ev.span(node))
    if fn in ("comb", "perm", "pow", "ldexp") and any(abs(v) > 1000 for v in vals):
        return Unknown(f"`{ev.snippet(node)}`: numbers this large", ev.span(node))
    f = _MATH_UNARY.get(fn) or _MATH_MULTI.get(fn) or getattr(math, fn)
    out = f(*vals)
    if isinstance(out, int) and abs(out) > MAX_INT:
        return Unknown("a number too large", ev.span(node))
    return out


MATH_CONSTANTS = {"pi": math.pi, "e": math.e, "tau": math.tau, "inf": math.inf, "nan": math.nan}


@impl("os.path.join")
def _join(ev, b, args, node):
    vals = _pos(args)
    if all(isinstance(v, str) for v in vals):
        import posixpath
        out = posixpath.join(*vals)
        ev.count_items(len(out), node)
        return out
    bad = _unknown_in(vals)
    return _named(ev, bad, node) if bad is not None else ev.as_unknown(None, node)


@impl("os.path.basename", "os.path.dirname", "os.path.splitext", "os.path.split")
def _pathparts(ev, b, args, node):
    import posixpath
    vals = _pos(args)
    if vals and isinstance(vals[0], str):
        return getattr(posixpath, b.name.split(".")[-1])(vals[0])
    return ev.as_unknown(vals[0] if vals else None, node)


@impl("os.listdir", "glob.glob", "os.walk", "os.scandir", "glob.iglob")
def _listing(ev, b, args, node):
    return Unknown(f"`{ev.snippet(node)}` lists files cnnc does not read", ev.span(node), data=True,
                   name=ev.snippet(node))


@impl("os.path.exists", "os.path.isfile", "os.path.isdir", "os.getenv", "os.environ.get",
      "os.getcwd", "random.random", "random.randint", "random.choice", "random.uniform",
      "random.sample", "random.shuffle", "time.time", "time.perf_counter", "datetime.datetime.now",
      "platform.system", "socket.gethostname", "uuid.uuid4", "getpass.getuser")
def _environment(ev, b, args, node):
    if b.name == "random.shuffle":
        return None
    return Unknown(f"`{ev.snippet(node)}` depends on the machine the script runs on", ev.span(node),
                   name=ev.snippet(node))


@impl("os.makedirs", "os.mkdir", "os.remove", "os.chdir", "shutil.rmtree", "shutil.copy",
      "shutil.move", "time.sleep", "random.seed", "warnings.warn", "warnings.filterwarnings",
      "warnings.simplefilter", "gc.collect", "logging.basicConfig", "os.system", "sys.path.append",
      "sys.path.insert", "json.dump", "pickle.dump", "pprint.pprint", "sys.setrecursionlimit")
def _effect(ev, b, args, node):
    return None


@impl("json.dumps")
def _dumps(ev, b, args, node):
    vals = _pos(args)
    bad = _plain_all(ev, vals[:1], node)
    if bad is not None:
        return bad
    import json
    try:
        out = json.dumps(vals[0])
    except (TypeError, ValueError, RecursionError):
        return Unknown(f"`{ev.snippet(node)}` fails in Python", ev.span(node))
    ev.count_items(len(out), node)
    return out


@impl("json.load", "json.loads", "yaml.safe_load", "yaml.load", "pickle.load", "toml.load",
      "configparser.ConfigParser")
def _config_files(ev, b, args, node):
    return Unknown(f"`{ev.snippet(node)}` reads a file cnnc does not open", ev.span(node),
                   name=ev.snippet(node))


@impl("typing.cast")
def _cast(ev, b, args, node):
    return _pos(args)[1]


@impl("types.SimpleNamespace", "argparse.Namespace")
def _namespace(ev, b, args, node):
    return ObjectVal("namespace", dict(_kws(args)))


@impl("six.iteritems", "six.itervalues", "six.iterkeys")
def _six_items(ev, b, args, node):
    d = _pos(args)[0]
    if isinstance(d, dict):
        return list(getattr(d, b.name.split(".")[1][4:])())
    return ev.as_unknown(d, node)


@impl("enum.auto")
def _auto(ev, b, args, node):
    return ObjectVal("auto")


@impl("string.Template", "re.compile")
def _unknown_objects(ev, b, args, node):
    return Unknown(f"`{ev.snippet(node)}` is not followed by cnnc", ev.span(node))


# --- argparse, click, absl: the script's command-line flags at their defaults ---------

@impl("argparse.ArgumentParser")
def _parser(ev, b, args, node):
    return ObjectVal("parser", {"_flags": {}})


def parser_method(ev, parser: ObjectVal, name: str, args: list[ArgVal], node):
    flags: dict = parser.attrs.setdefault("_flags", {})
    if name == "add_argument":
        _add_argument(ev, flags, args, node)
        return None
    if name in ("add_argument_group", "add_mutually_exclusive_group"):
        return parser
    if name == "set_defaults":
        for k, v in _kws(args).items():
            flags[k] = v
        return None
    if name in ("parse_args", "parse_known_args"):
        ns = ObjectVal("namespace", dict(flags))
        return (ns, []) if name == "parse_known_args" else ns
    if name in ("print_help", "print_usage", "error", "exit"):
        return None
    return Unknown(f"`{ev.snippet(node)}` is not followed by cnnc", ev.span(node))


def _add_argument(ev, flags: dict, args: list[ArgVal], node) -> None:
    names = [v for v in _pos(args) if isinstance(v, str)]
    kws = _kws(args)
    if not names:
        return
    long = next((n for n in names if n.startswith("--")), None)
    dest = kws.get("dest") or (long or names[0]).lstrip("-").replace("-", "_")
    if not isinstance(dest, str):
        return
    action = kws.get("action", "store")
    if "default" in kws:
        value = kws["default"]
        kind = kws.get("type")
        if isinstance(value, str) and isinstance(kind, Builtin) and kind.name in ("int", "float"):
            try:
                value = {"int": int, "float": float}[kind.name](value)
            except ValueError:
                value = Unknown(f"the default of {long or names[0]}", ev.span(node), name=f"args.{dest}")
    elif action == "store_true":
        value = False
    elif action == "store_false":
        value = True
    elif action in ("count", "append", "store_const") and not names[0].startswith("-"):
        value = None
    elif not names[0].startswith("-") or kws.get("required"):
        value = Unknown(f"the command-line argument {long or names[0]} has no default", ev.span(node),
                        name=f"args.{dest}")
    elif action in ("count", "append", "store_const", "append_const"):
        value = None
    else:
        # Python gives None; which model the flag picks is explored both ways instead
        value = Unknown(f"the flag {long or names[0]} has no default", ev.span(node), name=f"args.{dest}")
    flags[dest] = value


def click_decorator(ev, dec: Builtin, value, node):
    """@click.command() / @click.option('--epochs', default=10): the function, called
    without arguments (as click's entry point is), takes the options' defaults."""
    if not isinstance(value, FuncVal):
        return value
    if value.options is None:
        value.options = {}
    if dec.name in ("click.option", "click.argument") and dec.bound[:1] == ("decorator",):
        names, kws = dec.bound[1], dict(dec.bound[2])
        strs = [n for n in names if isinstance(n, str)]
        plain = [n for n in strs if not n.startswith("-")]
        dest = plain[0] if plain else (max(strs, key=len) if strs else None)
        if isinstance(dest, str):
            dest = dest.lstrip("-").replace("-", "_")
            if "default" in kws:
                value.options[dest] = kws["default"]
            elif kws.get("is_flag"):
                value.options[dest] = False
            else:
                value.options[dest] = Unknown(f"the option {dest} has no default", ev.span(node),
                                              name=f"args.{dest}")
    return value


@impl("click.option", "click.argument", "click.command", "click.group", "click.pass_context")
def _click(ev, b, args, node):
    if len(args) == 1 and isinstance(args[0].value, FuncVal) and b.name in ("click.command", "click.group"):
        return click_decorator(ev, Builtin(b.name, ("decorator",)), args[0].value, node)
    return Builtin(b.name, ("decorator", tuple(_pos(args)), tuple(_kws(args).items())))


@impl("absl.flags.DEFINE_integer", "absl.flags.DEFINE_float", "absl.flags.DEFINE_string",
      "absl.flags.DEFINE_boolean", "absl.flags.DEFINE_bool", "absl.flags.DEFINE_enum",
      "absl.flags.DEFINE_list", "tf.app.flags.DEFINE_integer")
def _absl_define(ev, b, args, node):
    vals, kws = _pos(args), _kws(args)
    name = vals[0] if vals else kws.get("name")
    default = vals[1] if len(vals) > 1 else kws.get("default")
    if isinstance(name, str):
        ev.absl_flags[name] = default if default is not None else Unknown(
            f"the flag --{name} has no default", ev.span(node), name=f"FLAGS.{name}")
    return None


@impl("absl.app.run", "tf.compat.v1.app.run")
def _absl_run(ev, b, args, node):
    vals, kws = _pos(args), _kws(args)
    main = vals[0] if vals else kws.get("main")
    if isinstance(main, (FuncVal, PartialVal)):
        return ev.call_value(main, [ArgVal(None, ["script"], ev.span(node))], node)
    return None


# --- what modules give: attribute lookup --------------------------------------------------

STDLIB_MODULES = frozenset({
    "functools", "itertools", "operator", "math", "copy", "collections", "dataclasses", "enum",
    "typing", "os", "sys", "random", "time", "json", "re", "glob", "string", "abc", "types",
    "argparse", "click", "absl", "six", "builtins", "__builtin__", "future", "past", "warnings",
    "logging", "pathlib", "shutil", "datetime", "pprint", "gc", "pickle", "yaml", "contextlib",
    "platform", "socket", "uuid", "getpass", "configparser", "toml", "tqdm", "__future__",
    "numbers", "inspect", "traceback", "subprocess", "csv", "io", "zipfile", "tarfile"})
_RENAMED = {
    ("six", "moves", "range"): "range", ("six", "moves", "xrange"): "range",
    ("six", "moves", "zip"): "zip", ("six", "moves", "map"): "map", ("six", "moves", "filter"): "filter",
    ("six", "moves", "reduce"): "functools.reduce", ("six", "moves", "input"): "input",
    ("six", "moves", "zip_longest"): "itertools.zip_longest",
    ("past", "builtins", "xrange"): "range", ("past", "builtins", "basestring"): "str",
    ("six", "string_types"): ("str",), ("six", "integer_types"): ("int",),
    ("six", "text_type"): "str", ("six", "binary_type"): "bytes",
    ("collections", "abc", "Sequence"): "Sequence", ("collections", "abc", "Iterable"): "Iterable",
    ("typing", "Sequence"): "Sequence", ("typing", "Iterable"): "Iterable",
    ("typing", "List"): "list", ("typing", "Tuple"): "tuple", ("typing", "Dict"): "dict",
    ("typing", "Set"): "set", ("numbers", "Number"): ("int", "float"),
    ("numbers", "Integral"): ("int",), ("numbers", "Real"): ("int", "float"),
    ("tf", "app", "flags"): None,
}


def stdlib_value(ev, path: tuple[str, ...]):
    """The value of `module.attr` for the modules cnnc knows (None: not one of them)."""
    if not path or path[0] not in STDLIB_MODULES:
        return None
    if path in _RENAMED:
        v = _RENAMED[path]
        if isinstance(v, tuple):
            return tuple(Builtin(x) for x in v)
        return Builtin(v) if v is not None else None
    if path[0] in ("builtins", "__builtin__", "future", "past") and len(path) >= 2:
        b = builtin_name(path[-1])
        if b is not None:
            return b
    dotted = ".".join(path)
    if path[:2] == ("absl", "flags") and len(path) == 3 and path[2] == "FLAGS":
        return ObjectVal("flags", ev.absl_flags)
    if len(path) == 2 and path[0] == "math" and path[1] in MATH_CONSTANTS:
        return MATH_CONSTANTS[path[1]]
    if path == ("sys", "argv"):
        return Unknown("the script's command-line arguments (sys.argv)", None, name="sys.argv")
    if path == ("sys", "version_info"):
        return (3, 11, 0, "final", 0)       # a Python that runs Keras 3
    if path == ("sys", "maxsize"):
        return 2 ** 63 - 1
    if path == ("os", "sep") or path == ("os", "path", "sep"):
        return "/"
    if path == ("os", "environ"):
        return ObjectVal("environ")
    if path == ("typing", "TYPE_CHECKING"):
        return False
    if path[0] == "string" and len(path) == 2 and path[1] in ("ascii_letters", "ascii_lowercase",
                                                             "ascii_uppercase", "digits", "punctuation"):
        import string
        return getattr(string, path[1])
    if path[0] == "enum" and len(path) == 2 and path[1] in ("Enum", "IntEnum", "StrEnum", "Flag", "IntFlag"):
        return Builtin("enum." + path[1])
    if dotted in _IMPLS:
        return Builtin(dotted)
    if dotted in ("abc.ABC", "typing.Generic", "typing.Protocol", "abc.ABCMeta"):
        return Builtin(dotted)
    if path[0] == "typing" or path[:2] == ("collections", "abc"):
        return Builtin("typing." + path[-1])
    if path[0] == "tqdm" and path[-1] in ("tqdm", "trange"):
        return Builtin("tqdm." + path[-1])
    return None


@impl("tqdm.tqdm")
def _tqdm(ev, b, args, node):
    vals = _pos(args)
    return vals[0] if vals else ObjectVal("progress")


@impl("tqdm.trange")
def _trange(ev, b, args, node):
    return _range(ev, Builtin("range"), args, node)


def builtin_attribute(ev, b: Builtin, attr: str, node):
    """`str.join`, `dict.fromkeys`, `itertools.chain.from_iterable`, an enum base's members."""
    if b.name == "itertools.chain" and attr == "from_iterable":
        return Builtin("itertools.chain.from_iterable")
    if b.name in ("str", "list", "dict", "tuple", "set", "int", "float", "bytes"):
        if attr == "__name__":
            return b.name
        return Builtin(f"{b.name}.{attr}")
    if attr == "__name__":
        return b.name.rsplit(".", 1)[-1]
    return Unknown(f"`{ev.snippet(node)}` is not followed by cnnc", ev.span(node))


@impl(*(f"str.{m}" for m in ("join", "format", "upper", "lower", "strip", "split", "replace",
                              "startswith", "endswith", "title", "capitalize", "lstrip", "rstrip")),
      "dict.fromkeys", "dict.items", "dict.keys", "dict.values", "dict.get", "list.append",
      "list.extend")
def _unbound(ev, b, args, node):
    """str.upper(s), dict.fromkeys(keys), list.append(l, x): the method of the first argument."""
    kind, name = b.name.split(".", 1)
    if b.name == "dict.fromkeys":
        vals = _pos(args)
        it = _seq(ev, vals[0], node)
        if isinstance(it, Unknown):
            return _named(ev, it, node)
        value = vals[1] if len(vals) > 1 else None
        if not all(ev.hashable(k, node) for k in it):
            return Unknown("a dict with keys cnnc cannot follow", ev.span(node))
        return {k: value for k in it}
    if not args:
        return Unknown(f"`{ev.snippet(node)}`", ev.span(node))
    return plain_method(ev, args[0].value, name, args[1:], node)


# --- methods of plain values ----------------------------------------------------------------

def plain_attribute(ev, obj, attr: str, node):
    if isinstance(obj, complex) and attr in ("real", "imag"):
        return getattr(obj, attr)
    if isinstance(obj, int) and attr in ("real", "numerator"):
        return obj
    if isinstance(obj, int) and attr == "value":
        return obj                        # TensorFlow 1's Dimension.value on a known size
    if isinstance(obj, slice) and attr in ("start", "stop", "step"):
        return getattr(obj, attr)
    if isinstance(obj, range) and attr in ("start", "stop", "step"):
        return getattr(obj, attr)
    if attr == "__class__":
        return _type(ev, Builtin("type"), [ArgVal(None, obj, ev.span(node))], node)
    return BoundMethod(obj, attr, ev.span(node))


def plain_method(ev, obj, name: str, args: list[ArgVal], node):
    """list.append, dict.get, str.format, ... on known values, bounded."""
    vals, kws = _pos(args), _kws(args)
    span = ev.span(node)
    if isinstance(obj, ObjectVal):
        return object_method(ev, obj, name, args, node)
    if isinstance(obj, IterVal):
        if name == "__next__":
            return _next(ev, Builtin("next"), [ArgVal(None, obj, span)], node)
        return Unknown(f"`{ev.snippet(node)}` is not followed by cnnc", span)
    if isinstance(obj, list):
        out = _list_method(ev, obj, name, vals, kws, node)
        if out is not _NOT_A_METHOD:
            return out
    if isinstance(obj, dict):
        out = _dict_method(ev, obj, name, vals, kws, node)
        if out is not _NOT_A_METHOD:
            return out
    if isinstance(obj, (set, frozenset)):
        out = _set_method(ev, obj, name, vals, node)
        if out is not _NOT_A_METHOD:
            return out
    if isinstance(obj, (str, bytes)):
        return _str_method(ev, obj, name, vals, kws, node)
    if isinstance(obj, tuple):
        if name in ("index", "count") and vals:
            return _index_count(ev, obj, name, vals, node)
        if name == "as_list":               # TensorShape.as_list() on a known shape
            return list(obj)
        if name == "_asdict":
            return Unknown("_asdict", span)
    if isinstance(obj, (int, float)) and name in ("bit_length", "is_integer", "conjugate", "__index__"):
        return getattr(obj, name)(*vals)
    return Unknown(f"`{ev.snippet(node)}` is not followed by cnnc", span)


_NOT_A_METHOD = object()


def _index_count(ev, obj, name, vals, node):
    ev.charge(len(obj), node)
    hits = []
    for i, x in enumerate(obj):
        e = ev.equal(x, vals[0], node)
        if isinstance(e, Unknown):
            return e
        if e:
            hits.append(i)
    if name == "count":
        return len(hits)
    if not hits:
        return Unknown(f"`{ev.snippet(node)}` fails in Python: not in the list", ev.span(node))
    return hits[0]


def _list_method(ev, obj: list, name, vals, kws, node):
    span = ev.span(node)
    if name == "append" and len(vals) == 1:
        obj.append(vals[0])
        ev.check_size(obj, node)
        ev.count_items(1, node)
        ev.touched = True
        return None
    if name == "extend" and len(vals) == 1:
        it = _seq(ev, vals[0], node)
        if isinstance(it, Unknown):
            obj.append(it)
            return None
        obj.extend(it)
        ev.check_size(obj, node)
        ev.count_items(len(it), node)
        return None
    if name == "insert" and len(vals) == 2 and isinstance(vals[0], int):
        obj.insert(vals[0], vals[1])
        ev.check_size(obj, node)
        return None
    if name == "pop":
        if not obj:
            return Unknown(f"`{ev.snippet(node)}` fails in Python: pop from an empty list", span)
        if vals and isinstance(vals[0], int):
            return obj.pop(vals[0]) if -len(obj) <= vals[0] < len(obj) else Unknown("pop", span)
        return obj.pop()
    if name == "remove" and vals:
        i = _index_count(ev, obj, "index", vals, node)
        if isinstance(i, int):
            del obj[i]
        return None
    if name in ("index", "count") and vals:
        return _index_count(ev, obj, name, vals, node)
    if name == "copy":
        ev.count_items(len(obj), node)
        return list(obj)
    if name == "clear":
        obj.clear()
        return None
    if name == "reverse":
        obj.reverse()
        return None
    if name == "sort":
        out = _order(ev, Builtin("sorted"), [ArgVal(None, obj, span)] + [
            ArgVal(k, v, span) for k, v in kws.items()], node)
        if isinstance(out, list):
            obj[:] = out
        return None
    return _NOT_A_METHOD


def _dict_method(ev, obj: dict, name, vals, kws, node):
    span = ev.span(node)
    if name in ("get", "pop", "setdefault"):
        if not vals:
            return _NOT_A_METHOD
        key = vals[0]
        if not ev.hashable(key, node):
            return key if isinstance(key, Unknown) else Unknown(f"`{ev.snippet(node)}`", span)
        default = vals[1] if len(vals) > 1 else None
        if name == "get":
            return obj.get(key, default)
        if name == "setdefault":
            return obj.setdefault(key, default)
        if key in obj:
            return obj.pop(key)
        return default if len(vals) > 1 else Unknown(f"`{ev.snippet(node)}`: no such key", span)
    if name in ("keys", "values", "items"):
        ev.charge(len(obj), node)
        return list(getattr(obj, name)())
    if name == "copy":
        return dict(obj)
    if name == "update":
        if vals:
            other = vals[0]
            if isinstance(other, dict):
                obj.update(other)
            elif isinstance(other, Unknown):
                return other
            else:
                d = _dict(ev, Builtin("dict"), [ArgVal(None, other, span)], node)
                if isinstance(d, dict):
                    obj.update(d)
        obj.update(kws)
        return None
    if name == "clear":
        obj.clear()
        return None
    if name == "popitem" and obj:
        return obj.popitem()
    return _NOT_A_METHOD


def _set_method(ev, obj, name, vals, node):
    if name in ("add", "discard", "remove"):
        if not vals or not ev.hashable(vals[0], node) or isinstance(obj, frozenset):
            return None
        getattr(obj, "discard" if name == "remove" else name)(vals[0])
        return None
    if name in ("union", "intersection", "difference", "symmetric_difference", "issubset",
                "issuperset", "isdisjoint", "update", "copy"):
        others = []
        for v in vals:
            it = _seq(ev, v, node)
            if isinstance(it, Unknown):
                return it
            s = ev.make_set(list(it), node)
            if isinstance(s, Unknown):
                return s
            others.append(s)
        return getattr(obj, name)(*others)
    return _NOT_A_METHOD


def small_format(fmt: str, values: tuple, percent: bool = False) -> bool:
    """Whether formatting `fmt` stays small: no width or precision (written, or taken
    from the values by `*` or a nested `{}`) beyond MAX_SEQUENCE. Python would build
    a gigabyte for `'{:{}}'.format(1, 10**9)` before cnnc could look at the result."""
    if any(int(d) > MAX_SEQUENCE for d in _WIDTHS.findall(fmt) if len(d) > 5):
        return False
    nested = ("*" in fmt) if percent else fmt.count("{") > 1
    return not nested or not any(isinstance(v, int) and abs(v) > MAX_SEQUENCE for v in values)


def _str_method(ev, obj, name, vals, kws, node):
    span = ev.span(node)
    bad = _unknown_in(list(vals) + list(kws.values()))
    if bad is not None:
        return _named(ev, bad, node)
    long = Unknown("a long string", span)
    if name == "format":
        values = list(vals) + list(kws.values())
        texts = []
        for v in values:
            if not isinstance(v, (int, float, str, bool, type(None))):
                t = ev.to_str(v, node)
                if isinstance(t, Unknown):
                    return t
            texts.append(v)
        if not small_format(obj, tuple(values)):
            return Unknown("a string formatted wider than cnnc allows", span)
        if sum(len(str(v)) if isinstance(v, str) else 24 for v in values) * max(obj.count("{"), 1) \
                + len(obj) > 4 * MAX_SEQUENCE:
            return long
        try:
            out = obj.format(*vals, **kws)
        except (IndexError, KeyError, ValueError, AttributeError, TypeError) as e:
            return Unknown(f"`{ev.snippet(node)}` fails in Python: {_short(e)}", span)
        ev.count_items(len(out), node)
        return out if len(out) <= MAX_SEQUENCE else long
    if name == "replace" and len(vals) >= 2 and all(isinstance(v, type(obj)) for v in vals[:2]):
        old, new = vals[:2]
        n = obj.count(old) if old else len(obj) + 1
        if len(obj) + n * (len(new) - len(old)) > MAX_SEQUENCE:
            return long
        out = obj.replace(*vals)
        ev.count_items(len(out), node)
        return out
    if name == "join":
        it = _seq(ev, vals[0], node) if vals else []
        if isinstance(it, Unknown):
            return _named(ev, it, node)
        if not all(isinstance(v, type(obj)) for v in it):
            bad = next((v for v in it if isinstance(v, Unknown)), None)
            return bad or Unknown(f"`{ev.snippet(node)}` joins values that are not strings", span)
        if sum(map(len, it)) + len(obj) * len(it) > MAX_SEQUENCE:
            return long
        out = obj.join(it)
        ev.count_items(len(out), node)
        return out
    if name in ("center", "ljust", "rjust", "zfill") and vals and isinstance(vals[0], int) \
            and vals[0] > MAX_SEQUENCE:
        return long
    if name in ("expandtabs",) and vals and isinstance(vals[0], int) and vals[0] > 64:
        return long
    if name in ("encode", "decode"):
        return obj.encode("utf-8") if name == "encode" else obj.decode("utf-8", "replace")
    method = getattr(obj, name, None)
    if method is None or name.startswith("_") or name in ("maketrans", "translate"):
        return Unknown(f"`{ev.snippet(node)}` is not followed by cnnc", span)
    if not all(isinstance(v, (str, bytes, int, tuple, type(None))) for v in list(vals) + list(kws.values())):
        return Unknown(f"`{ev.snippet(node)}` is not followed by cnnc", span)
    out = method(*vals, **kws)
    if isinstance(out, (str, bytes)):
        if len(out) > MAX_SEQUENCE:
            return long
        ev.count_items(len(out), node)
    elif isinstance(out, list):
        ev.count_items(len(out), node)
    return out


def object_method(ev, obj: ObjectVal, name: str, args: list[ArgVal], node):
    if obj.kind == "parser":
        return parser_method(ev, obj, name, args, node)
    if obj.kind == "environ" and name == "get":
        vals = _pos(args)
        return Unknown(f"the environment variable {vals[0]!r}" if vals and isinstance(vals[0], str)
                       else "an environment variable", ev.span(node), name=ev.snippet(node))
    if obj.kind == "namespace" and name == "__dict__":
        return obj.attrs
    return Unknown(f"`{ev.snippet(node)}` is not followed by cnnc", ev.span(node))


# --- arithmetic on plain values ---------------------------------------------------------------

def plain_binop(ev, op, a, b, node):
    span = ev.span(node)
    if op is ast.Mod and isinstance(a, (str, bytes)):
        values = b if isinstance(b, tuple) else (b,)
        if not all(isinstance(v, (int, float, str, bool, type(None))) for v in values) and not isinstance(b, dict):
            return Unknown(f"`{ev.snippet(node)}` formats values cnnc cannot show", span)
        if not small_format(a, values, percent=True):
            return Unknown("a string formatted wider than cnnc allows", span)
        if len(a) + sum(len(v) if isinstance(v, str) else 24 for v in values) > 4 * MAX_SEQUENCE:
            return Unknown("a very long string", span)
        try:
            out = a % b
        except (TypeError, ValueError, KeyError, OverflowError):
            return Unknown(f"`{ev.snippet(node)}` fails in Python", span)
        ev.count_items(len(out), node)
        return out if len(out) <= MAX_SEQUENCE else Unknown("a very long string", span)
    fn = _BINOPS.get(op)
    if op is ast.Mult and (isinstance(a, (str, bytes, list, tuple)) or isinstance(b, (str, bytes, list, tuple))):
        n, seq = (b, a) if isinstance(b, int) else (a, b)
        if isinstance(n, int) and isinstance(seq, (str, bytes, list, tuple)):
            if n * len(seq) > MAX_SEQUENCE:
                raise Budget(f"this builds a sequence of more than {MAX_SEQUENCE:,} items", span)
            ev.count_items(max(n, 0) * len(seq), node)
    if op is ast.Pow and isinstance(b, (int, float)) and not isinstance(b, bool) and (
            abs(b) > 64 or (isinstance(a, (int, float)) and abs(a) > MAX_INT)):
        return Unknown("a power this large", span)
    if op in (ast.LShift,) and isinstance(b, int) and (b > 64 or b < 0):
        return Unknown("a shift this large", span)
    if op is ast.Add and isinstance(a, (str, bytes, list, tuple)) and isinstance(b, type(a)):
        if len(a) + len(b) > MAX_SEQUENCE:
            raise Budget(f"this builds a sequence of more than {MAX_SEQUENCE:,} items", span)
        ev.count_items(len(a) + len(b), node)
    if isinstance(a, (set, frozenset, dict)) or isinstance(b, (set, frozenset, dict)):
        ev.charge(len(a) if hasattr(a, "__len__") else 1, node)
    try:
        out = fn(a, b)
    except (TypeError, ValueError, ZeroDivisionError, OverflowError) as e:
        return Unknown(f"`{ev.snippet(node)}` fails in Python: {_short(e)}", span)
    if isinstance(out, int) and not isinstance(out, bool) and abs(out) > MAX_INT:
        return Unknown("a number too large for any model", span)
    if isinstance(out, float) and out != out and not (isinstance(a, float) and a != a):
        return out
    return out


# --- classes: dataclasses, enums, namedtuples ------------------------------------------------

def finish_class(ev, cls: ClassVal, bases: list, node) -> None:
    """What a class's bases make of it: an Enum's members, a NamedTuple's fields."""
    names = {b.name for b in bases if isinstance(b, Builtin)}
    if names & {"enum.Enum", "enum.IntEnum", "enum.StrEnum", "enum.Flag", "enum.IntFlag"} or any(
            isinstance(b, ClassVal) and b.kind == "enum" for b in bases):
        cls.kind = "enum"
        n = 0
        for key, value in list(cls.attrs.items()):
            if key.startswith("_") or isinstance(value, (FuncVal, StaticMethod, ClassMethod, Property)):
                continue
            if isinstance(value, ObjectVal) and value.kind == "auto":
                n += 1
                value = n if "enum.StrEnum" not in names else key.lower()
            elif isinstance(value, int):
                n = value
            cls.attrs[key] = InstanceVal(cls, {"name": key, "value": value, "_value_": value})
    if "typing.NamedTuple" in names:
        cls.fields = _annotated_fields(ev, cls)
        cls.tuple_like = True


def new_instance(ev, cls: ClassVal, args: list[ArgVal], node):
    """An instance of a plain class: dataclass and namedtuple fields, then __init__."""
    if cls.kind == "enum":
        vals = _pos(args)
        for m in cls.attrs.values():
            if isinstance(m, InstanceVal) and m.cls is cls and vals and ev.equal(
                    m.attrs.get("value"), vals[0], node) is True:
                return m
        return Unknown(f"`{ev.snippet(node)}`: no such member", ev.span(node))
    inst = InstanceVal(cls)
    if cls.fields is not None and ev.class_attr(cls, "__init__") is None:
        vals, kws = _pos(args), _kws(args)
        for i, (name, default) in enumerate(cls.fields):
            if i < len(vals):
                value = vals[i]
            elif name in kws:
                value = kws[name]
            elif isinstance(default, ObjectVal) and default.kind == "field":
                factory = default.attrs.get("default_factory")
                value = default.attrs["default"] if default.attrs["default"] is not _NO_DEFAULT else (
                    ev.call_value(factory, [], node) if factory is not None else
                    Unknown(f"{cls.name}() is called without '{name}'", ev.span(node), name=name))
            elif default is not _NO_DEFAULT:
                value = default
            else:
                value = Unknown(f"{cls.name}() is called without '{name}'", ev.span(node), name=name)
            inst.attrs[name] = value
        post = ev.class_attr(cls, "__post_init__")
        if isinstance(post, FuncVal):
            ev.call_function(post, [], node, self_obj=inst)
        return inst
    ev.run_init(inst, args, node)
    return inst

